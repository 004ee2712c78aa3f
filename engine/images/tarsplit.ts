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
import { decompressed } from './layer.js';
import { paddingOf, parsePax } from './tarstream.js';
import { readNumber, readString } from './tar-fields.js';

export const TAR_SPLIT_FILE = 'tar-split.json.gz';

/** A segment: raw bytes (base64), or the content of a regular file of the layer (name as in the tar, size). */
export type TarSplitSegment = { r: string } | { f: string; s: number };

const BLOCK = 512;
const MAX_KEPT = 256 * 1024 * 1024;

/** Parses a tar stream as it passes through and records its tar-split. */
export class TarSplitRecorder {
  private readonly segments: TarSplitSegment[] = [];
  private raw: Buffer[] = [];
  private pending = Buffer.alloc(0);
  /** What the next bytes are. */
  private state: 'header' | 'raw' | 'content' | 'meta' | 'trailer' = 'header';
  private left = 0;
  private afterContent = 0;
  private meta: Buffer[] = [];
  private metaFlag = '';
  private metaSize = 0;
  private pax = new Map<string, string>();
  private longName: string | undefined;
  private broken = false;
  /** Bytes kept so far (headers, padding, metadata); a stream that needs more is not recorded. */
  private kept = 0;

  /** The decompressed bytes of source, recorded as they go. */
  async *tap(source: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
    for await (const chunk of decompressed(source)) {
      if (!this.broken) {
        try {
          this.feed(chunk);
        } catch {
          this.broken = true; // not a tar this recorder understands: the layer gets no tar-split
          this.raw = [];
          this.segments.length = 0;
        }
      }
      yield chunk;
    }
  }

  private keep(part: Buffer): void {
    this.kept += part.length;
    if (this.kept > MAX_KEPT) throw new Error('too much metadata to record');
    this.raw.push(part);
  }

  private flushRaw(): void {
    if (this.raw.length > 0) this.segments.push({ r: Buffer.concat(this.raw).toString('base64') });
    this.raw = [];
  }

  private feed(input: Buffer): void {
    let chunk = input;
    while (chunk.length > 0) {
      if (this.state === 'trailer') {
        this.keep(chunk);
        return;
      }
      if (this.state === 'raw' || this.state === 'content' || this.state === 'meta') {
        const n = Math.min(this.left, chunk.length);
        const part = chunk.subarray(0, n);
        if (this.state === 'raw') this.keep(part);
        if (this.state === 'meta') {
          this.keep(part);
          this.meta.push(part);
        }
        this.left -= n;
        chunk = chunk.subarray(n);
        if (this.left === 0) this.endOfData();
        continue;
      }
      // header
      const need = BLOCK - this.pending.length;
      this.pending = Buffer.concat([this.pending, chunk.subarray(0, need)]);
      chunk = chunk.subarray(Math.min(need, chunk.length));
      if (this.pending.length < BLOCK) return;
      const block = this.pending;
      this.pending = Buffer.alloc(0);
      this.header(block);
    }
  }

  private endOfData(): void {
    if (this.state === 'meta') {
      const body = Buffer.concat(this.meta).subarray(0, this.metaSize);
      if (this.metaFlag === 'x') this.pax = new Map([...this.pax, ...parsePax(body)]);
      if (this.metaFlag === 'L') this.longName = body.toString('utf8').replace(/\0+$/, '');
      this.meta = [];
      this.state = 'header';
      return;
    }
    if (this.state === 'content') {
      this.state = 'raw';
      this.left = this.afterContent;
      if (this.left === 0) this.state = 'header';
      return;
    }
    this.state = 'header';
  }

  private header(block: Buffer): void {
    this.keep(block);
    if (block.every((byte) => byte === 0)) {
      this.state = 'trailer';
      return;
    }
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (block[i] ?? 0);
    if (sum !== readNumber(block, 148, 8)) throw new Error('bad tar header checksum');
    const flag = String.fromCharCode(block[156] ?? 0);
    let size = readNumber(block, 124, 12);
    if (!Number.isSafeInteger(size) || size < 0) throw new Error('bad tar entry size');
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      this.metaFlag = flag;
      this.metaSize = size;
      this.state = 'meta';
      this.left = size + paddingOf(size);
      if (this.left === 0) this.endOfData();
      return;
    }
    const paxSize = this.pax.get('size');
    if (paxSize !== undefined) size = Number(paxSize);
    if (!Number.isSafeInteger(size) || size < 0) throw new Error('bad tar entry size');
    const prefix = readString(block, 345, 155);
    const ustarName = prefix !== '' ? `${prefix}/${readString(block, 0, 100)}` : readString(block, 0, 100);
    const name = this.pax.get('path') ?? this.longName ?? ustarName;
    this.pax = new Map();
    this.longName = undefined;
    const regular = flag === '0' || flag === '\0' || flag === '7';
    if (regular && size > 0) {
      this.flushRaw();
      this.segments.push({ f: name, s: size });
      this.state = 'content';
      this.left = size;
      this.afterContent = paddingOf(size);
      return;
    }
    this.state = 'raw';
    this.left = size + paddingOf(size);
    if (this.left === 0) this.state = 'header';
  }

  /** Writes the record (gzip JSON); nothing when the stream could not be parsed. */
  async save(file: string): Promise<void> {
    if (this.broken) return;
    this.flushRaw();
    await fs.writeFile(file, gzipSync(Buffer.from(JSON.stringify(this.segments))), { mode: 0o600 });
  }
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
