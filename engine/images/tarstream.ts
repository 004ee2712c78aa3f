/**
 * A streaming tar reader and a header writer for image archives: entries' data is never held in memory whole (layer
 * tars are big), and nothing is ever written to disk by an entry's path.
 */
import { readNumber, readString } from './tar-fields.js';

const BLOCK = 512;

/** Buffers a byte stream so exact amounts can be taken from it. */
export class ByteReader {
  private chunks: Buffer[] = [];
  private length = 0;
  private readonly iterator: AsyncIterator<Uint8Array>;
  private done = false;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  private async fill(n: number): Promise<void> {
    while (this.length < n && !this.done) {
      const next = await this.iterator.next();
      if (next.done === true) this.done = true;
      else if (next.value.length > 0) {
        const chunk = Buffer.from(next.value);
        this.chunks.push(chunk);
        this.length += chunk.length;
      }
    }
  }

  /** Exactly n bytes, fewer at the end of the stream (possibly none). */
  async take(n: number): Promise<Buffer> {
    await this.fill(n);
    const all = this.chunks.length === 1 ? (this.chunks[0] ?? Buffer.alloc(0)) : Buffer.concat(this.chunks);
    const result = all.subarray(0, Math.min(n, all.length));
    const rest = all.subarray(result.length);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.length = rest.length;
    return result;
  }
}

export type StreamEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'other';

export interface StreamEntryHeader {
  /** As in the archive (PAX path / GNU long name applied), not normalised. */
  name: string;
  type: StreamEntryType;
  /** The raw type flag. */
  flag: string;
  size: number;
  mode: number;
  linkname: string;
}

function checksumOk(block: Buffer): boolean {
  const stored = readNumber(block, 148, 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (block[i] ?? 0);
  return sum === stored;
}

export function parsePax(data: Buffer): Map<string, string> {
  const records = new Map<string, string>();
  let offset = 0;
  while (offset < data.length) {
    const space = data.indexOf(0x20, offset);
    if (space < 0) break;
    const length = Number(data.subarray(offset, space).toString('ascii'));
    if (!Number.isInteger(length) || length <= 0) throw new Error('malformed PAX header');
    const record = data.subarray(space + 1, offset + length - 1);
    const eq = record.indexOf(0x3d);
    if (eq > 0) records.set(record.subarray(0, eq).toString('utf8'), record.subarray(eq + 1).toString('utf8'));
    offset += length;
  }
  return records;
}

export function paddingOf(size: number): number {
  const rest = size % BLOCK;
  return rest === 0 ? 0 : BLOCK - rest;
}

const TYPES: Record<string, StreamEntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '5': 'dir',
};

/**
 * The entries of an uncompressed tar stream. For each, consume(data) is called with the entry's data as a stream
 * (it must be read to the end, or not at all: the rest is skipped). Throws on a malformed header.
 */
export async function walkTar(
  source: AsyncIterable<Uint8Array>,
  consume: (entry: StreamEntryHeader, data: AsyncIterable<Buffer>) => Promise<void> | void,
): Promise<void> {
  const reader = new ByteReader(source);
  let pax = new Map<string, string>();
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    const block = await reader.take(BLOCK);
    if (block.length === 0) return;
    if (block.length < BLOCK) throw new Error('unexpected end of tar stream');
    if (block.every((byte) => byte === 0)) return;
    if (!checksumOk(block)) throw new Error('malformed tar header (bad checksum)');
    const flag = String.fromCharCode(block[156] ?? 0);
    const size = readNumber(block, 124, 12);
    const pad = paddingOf(size);
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      const data = await reader.take(size + pad);
      if (data.length < size + pad) throw new Error('unexpected end of tar stream');
      const body = data.subarray(0, size);
      if (flag === 'x') pax = new Map([...pax, ...parsePax(body)]);
      else if (flag === 'L') longName = body.toString('utf8').replace(/\0+$/, '');
      else if (flag === 'K') longLink = body.toString('utf8').replace(/\0+$/, '');
      continue;
    }
    const prefix = readString(block, 345, 155);
    const ustarName = prefix !== '' ? `${prefix}/${readString(block, 0, 100)}` : readString(block, 0, 100);
    const paxSize = pax.get('size');
    const realSize = paxSize !== undefined ? Number(paxSize) : size;
    const entry: StreamEntryHeader = {
      name: pax.get('path') ?? longName ?? ustarName,
      type: TYPES[flag] ?? 'other',
      flag,
      size: realSize,
      mode: readNumber(block, 100, 8) & 0o7777,
      linkname: pax.get('linkpath') ?? longLink ?? readString(block, 157, 100),
    };
    pax = new Map();
    longName = undefined;
    longLink = undefined;
    let left = realSize;
    const next = async (): Promise<Buffer> => {
      const chunk = await reader.take(Math.min(left, 1 << 16));
      if (chunk.length === 0) throw new Error('unexpected end of tar stream');
      left -= chunk.length;
      return chunk;
    };
    const body = (async function* () {
      while (left > 0) yield await next();
    })();
    await consume(entry, body);
    while (left > 0) await next(); // whatever consume left unread
    const tail = await reader.take(paddingOf(realSize));
    if (tail.length < paddingOf(realSize)) throw new Error('unexpected end of tar stream');
  }
}

function octal(value: number, width: number): string {
  return Math.max(0, Math.floor(value))
    .toString(8)
    .padStart(width - 1, '0');
}

/** A ustar header for an archive member (names up to 100 bytes: `blobs/sha256/<hex>` fits). */
export function tarHeader(fields: { name: string; size: number; type: 'file' | 'dir'; mtime?: number }): Buffer {
  const block = Buffer.alloc(BLOCK);
  if (Buffer.byteLength(fields.name) > 100) throw new Error(`tar member name too long: ${fields.name}`);
  block.write(fields.name, 0, 'utf8');
  block.write(`${octal(fields.type === 'dir' ? 0o755 : 0o644, 8)}\0`, 100, 'ascii');
  block.write(`${octal(0, 8)}\0`, 108, 'ascii');
  block.write(`${octal(0, 8)}\0`, 116, 'ascii');
  block.write(`${octal(fields.type === 'dir' ? 0 : fields.size, 12)}\0`, 124, 'ascii');
  block.write(`${octal(fields.mtime ?? 0, 12)}\0`, 136, 'ascii');
  block.write('        ', 148, 'ascii');
  block.write(fields.type === 'dir' ? '5' : '0', 156, 'ascii');
  block.write('ustar\0' + '00', 257, 'ascii');
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${octal(sum, 7)}\0 `, 148, 'ascii');
  return block;
}

export function tarPadding(size: number): Buffer {
  return Buffer.alloc(paddingOf(size));
}

export function tarEnd(): Buffer {
  return Buffer.alloc(BLOCK * 2);
}
