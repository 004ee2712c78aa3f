/**
 * Tar-split (as Docker keeps it): a layer's tar headers and padding, byte for byte, with references to the files'
 * content in the unpacked layer dir. With it, `image save` re-makes the exact tar a layer was added from, so its
 * DiffID (and the image id) survive a save → load round trip. Written next to the layer's `diff/` as
 * `tar-split.json.gz`.
 */
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { EngineError } from '../errors.js';
import { asBuffer, tarEntries, type TarHeader } from './tar.js';

export const TAR_SPLIT_FILE = 'tar-split.json.gz';

/** A segment: raw bytes (base64), or the content of a regular file of the layer (name as in the tar, size). */
export type TarSplitSegment = { r: string } | { f: string; s: number };

const MAX_KEPT = 256 * 1024 * 1024;

/** Reads a tar stream (`tarEntries`) as it passes through and records its tar-split. */
export class TarSplitRecorder {
  private readonly segments: TarSplitSegment[] = [];
  private raw: Buffer[] = [];
  /** The file whose content the last bytes were. */
  private file: TarHeader | undefined;
  private broken = false;
  /** Bytes kept so far (headers, padding, metadata); a stream that needs more is not recorded. */
  private kept = 0;

  /**
   * The bytes of an uncompressed tar stream, passed on unchanged, recorded as they go. A stream the reader cannot
   * read is passed on all the same; it gets no tar-split.
   */
  async *tap(source: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
    const iterator = source[Symbol.asyncIterator]();
    const pulled: Buffer[] = []; // what the reader took from source and the consumer has not been given yet
    let failed: { error: unknown } | undefined; // source's own failure (a download's): passed on, never swallowed
    const feed: AsyncIterable<Uint8Array> = {
      [Symbol.asyncIterator]: () => ({
        next: async () => {
          try {
            const next = await iterator.next();
            if (next.done !== true) pulled.push(asBuffer(next.value));
            return next;
          } catch (error) {
            failed = { error };
            throw error;
          }
        },
      }),
    };
    try {
      const entries = tarEntries(feed, { onBytes: (bytes, file) => this.record(bytes, file) });
      for await (const { data } of entries) {
        yield* pulled.splice(0);
        for await (const _chunk of data) yield* pulled.splice(0);
      }
    } catch {
      if (failed !== undefined) {
        yield* pulled.splice(0);
        throw failed.error;
      }
      this.broken = true; // not a tar the reader understands: the layer gets no tar-split
      this.raw = [];
      this.segments.length = 0;
    }
    yield* pulled.splice(0);
    for (let next = await iterator.next(); next.done !== true; next = await iterator.next()) {
      yield asBuffer(next.value);
    }
  }

  private record(bytes: Buffer, file: TarHeader | undefined): void {
    if (file === undefined) {
      this.kept += bytes.length;
      if (this.kept > MAX_KEPT) throw new Error('too much metadata to record');
      this.raw.push(bytes);
      this.file = undefined;
      return;
    }
    if (file === this.file) return; // the rest of the same file's content
    this.flushRaw();
    this.segments.push({ f: file.name, s: file.size });
    this.file = file;
  }

  private flushRaw(): void {
    if (this.raw.length > 0) this.segments.push({ r: Buffer.concat(this.raw).toString('base64') });
    this.raw = [];
  }

  /** Writes the record (gzip JSON); nothing when the stream could not be read. */
  async save(file: string): Promise<void> {
    if (this.broken) return;
    this.flushRaw();
    await fs.writeFile(file, gzipSync(Buffer.from(JSON.stringify(this.segments))), { mode: 0o600 });
  }
}

/**
 * Turns the record `tsfig-runtime unpack --tar-split` wrote (native/PROTOCOL.md: `R` <u32 length> <bytes> for the
 * archive's own bytes, `F` <u32 name length> <name> <u64 size> for a regular file's content, little endian) into the
 * layer's tar-split, the same segments TarSplitRecorder gives for the same stream.
 */
export async function saveTarSplitRecord(record: string, file: string): Promise<void> {
  const data = await fs.readFile(record);
  const segments: TarSplitSegment[] = [];
  let raw: Buffer[] = [];
  const flush = (): void => {
    if (raw.length > 0) segments.push({ r: Buffer.concat(raw).toString('base64') });
    raw = [];
  };
  const bad = (): EngineError =>
    new EngineError('internal', 'the tar-split record of the native unpacker is malformed', {
      hint: 'rebuild the native helper (npm run build:native)',
    });
  let offset = 0;
  while (offset < data.length) {
    const kind = data[offset];
    if (offset + 5 > data.length) throw bad();
    const length = data.readUInt32LE(offset + 1);
    offset += 5;
    if (offset + length > data.length) throw bad();
    if (kind === 0x52 /* R */) {
      raw.push(data.subarray(offset, offset + length));
      offset += length;
    } else if (kind === 0x46 /* F */) {
      if (offset + length + 8 > data.length) throw bad();
      const name = data.subarray(offset, offset + length).toString('utf8');
      const size = Number(data.readBigUInt64LE(offset + length));
      offset += length + 8;
      flush();
      segments.push({ f: name, s: size });
    } else {
      throw bad();
    }
  }
  flush();
  await fs.writeFile(file, gzipSync(Buffer.from(JSON.stringify(segments))), { mode: 0o600 });
}

/** A name of the tar as a path under the layer dir; undefined when it would leave it. */
function insideName(name: string): string | undefined {
  const clean = name.replace(/^(\.\/|\/)+/, '');
  const parts = clean.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..')) return undefined;
  return parts.join('/');
}

/** The segments of a layer's tar-split; undefined when the layer has none. */
export async function readTarSplit(layerDir: string): Promise<TarSplitSegment[] | undefined> {
  let data: Buffer;
  try {
    data = await fs.readFile(path.join(layerDir, TAR_SPLIT_FILE));
  } catch {
    return undefined;
  }
  try {
    return JSON.parse(gunzipSync(data).toString('utf8')) as TarSplitSegment[];
  } catch {
    return undefined;
  }
}

/**
 * The original tar of a layer, re-made from its tar-split and its `diff/` dir. The caller checks the digest (a file
 * changed on disk, or a name given twice in the tar, gives other bytes).
 */
export async function* reassemble(segments: readonly TarSplitSegment[], diffDir: string): AsyncGenerator<Buffer> {
  for (const segment of segments) {
    if ('r' in segment) {
      yield Buffer.from(segment.r, 'base64');
      continue;
    }
    const name = insideName(segment.f);
    if (name === undefined) throw new EngineError('invalid', `tar-split names a path outside the layer: ${segment.f}`);
    const file = path.join(diffDir, name);
    const stat = await fs.lstat(file).catch(() => undefined);
    if (stat?.isFile() !== true || stat.size !== segment.s) {
      throw new EngineError('internal', `the layer's file ${name} no longer matches its tar`, {
        hint: 'the unpacked layer was changed on disk',
      });
    }
    for await (const chunk of createReadStream(file, { start: 0, end: segment.s - 1 })) yield chunk as Buffer;
  }
}
