/**
 * A small tar reader and writer (ustar + PAX, GNU long names on read) for build layers: the writer makes COPY/ADD
 * layers and re-emits a container's upper dir with Docker's whiteouts; the reader parses GNU tar's output and ADD's
 * local archives. An entry's data is held in memory.
 */
import { readNumber, readString } from '../images/tar-fields.js';

export type TarEntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarEntry {
  /** Relative path without `./` or a leading `/`; directories without a trailing `/`. */
  name: string;
  type: TarEntryType;
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch (may be fractional). */
  mtime: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** `SCHILY.xattr.<name>` values. */
  xattrs?: Record<string, Buffer>;
  /** File content (regular files only). */
  data?: Buffer;
}

const BLOCK = 512;
const TYPE_FLAGS: Record<TarEntryType, string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  dir: '5',
  fifo: '6',
};
const FLAG_TYPES: Record<string, TarEntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};

// ---- writing ---------------------------------------------------------------------------------------------------

function octal(value: number, width: number): string {
  return Math.max(0, Math.floor(value))
    .toString(8)
    .padStart(width - 1, '0');
}

function paxRecord(key: string, value: Buffer | string): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), Buffer.from(value), Buffer.from('\n')]);
  let length = body.length + 1;
  while (String(length).length + body.length !== length) length = String(length).length + body.length;
  return Buffer.concat([Buffer.from(String(length)), body]);
}

function header(fields: {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  flag: string;
  linkname: string;
  devmajor: number;
  devminor: number;
}): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write(fields.name.slice(0, 100), 0, 'utf8');
  block.write(`${octal(fields.mode & 0o7777, 8)}\0`, 100, 'ascii');
  block.write(`${octal(Math.min(fields.uid, 0o7777777), 8)}\0`, 108, 'ascii');
  block.write(`${octal(Math.min(fields.gid, 0o7777777), 8)}\0`, 116, 'ascii');
  block.write(`${octal(fields.size, 12)}\0`, 124, 'ascii');
  block.write(`${octal(fields.mtime, 12)}\0`, 136, 'ascii');
  block.write('        ', 148, 'ascii');
  block.write(fields.flag, 156, 'ascii');
  block.write(fields.linkname.slice(0, 100), 157, 'utf8');
  block.write('ustar\0' + '00', 257, 'ascii');
  block.write(`${octal(fields.devmajor, 8)}\0`, 329, 'ascii');
  block.write(`${octal(fields.devminor, 8)}\0`, 337, 'ascii');
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${octal(sum, 7)}\0 `, 148, 'ascii');
  return block;
}

function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return Buffer.alloc(rest === 0 ? 0 : BLOCK - rest);
}

function fitsUstar(text: string): boolean {
  return Buffer.byteLength(text) <= 100 && /^[\x20-\x7e]*$/.test(text);
}

/** The blocks of one entry (a PAX header first when a field does not fit ustar, or with xattrs). */
export function encodeEntry(entry: TarEntry): Buffer {
  const name = entry.type === 'dir' ? `${entry.name}/` : entry.name;
  const data = entry.type === 'file' ? (entry.data ?? Buffer.alloc(0)) : Buffer.alloc(0);
  const linkname = entry.linkname ?? '';
  const records: Buffer[] = [];
  if (!fitsUstar(name)) records.push(paxRecord('path', name));
  if (!fitsUstar(linkname)) records.push(paxRecord('linkpath', linkname));
  if (entry.uid > 0o7777777) records.push(paxRecord('uid', String(entry.uid)));
  if (entry.gid > 0o7777777) records.push(paxRecord('gid', String(entry.gid)));
  if (data.length > 0o77777777777) records.push(paxRecord('size', String(data.length)));
  if (!Number.isInteger(entry.mtime)) records.push(paxRecord('mtime', entry.mtime.toFixed(9).replace(/0+$/, '')));
  for (const [key, value] of Object.entries(entry.xattrs ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
    records.push(paxRecord(`SCHILY.xattr.${key}`, value));
  }
  const parts: Buffer[] = [];
  if (records.length > 0) {
    const pax = Buffer.concat(records);
    const paxName = `PaxHeaders/${name.replace(/\/$/, '').split('/').at(-1) ?? ''}`.slice(0, 99);
    parts.push(
      header({
        name: paxName,
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: pax.length,
        mtime: 0,
        flag: 'x',
        linkname: '',
        devmajor: 0,
        devminor: 0,
      }),
      pax,
      padding(pax.length),
    );
  }
  parts.push(
    header({
      name,
      mode: entry.mode,
      uid: entry.uid,
      gid: entry.gid,
      size: data.length,
      mtime: entry.mtime,
      flag: TYPE_FLAGS[entry.type],
      linkname,
      devmajor: entry.devmajor ?? 0,
      devminor: entry.devminor ?? 0,
    }),
    data,
    padding(data.length),
  );
  return Buffer.concat(parts);
}

/** The end-of-archive marker. */
export function endOfArchive(): Buffer {
  return Buffer.alloc(BLOCK * 2);
}

// ---- reading ---------------------------------------------------------------------------------------------------

function parsePax(data: Buffer): Map<string, Buffer> {
  const records = new Map<string, Buffer>();
  let offset = 0;
  while (offset < data.length) {
    const space = data.indexOf(0x20, offset);
    if (space < 0) break;
    const length = Number(data.subarray(offset, space).toString('ascii'));
    if (!Number.isInteger(length) || length <= 0) throw new Error('malformed PAX header');
    const record = data.subarray(space + 1, offset + length - 1);
    const eq = record.indexOf(0x3d);
    if (eq > 0) records.set(record.subarray(0, eq).toString('utf8'), Buffer.from(record.subarray(eq + 1)));
    offset += length;
  }
  return records;
}

/** Buffers a byte stream so exact amounts can be taken from it. */
class ByteQueue {
  private chunks: Buffer[] = [];
  private length = 0;
  private readonly iterator: AsyncIterator<Uint8Array>;
  private done = false;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  /** Exactly n bytes, or undefined at the end of the stream (a short tail is an error). */
  async take(n: number): Promise<Buffer | undefined> {
    while (this.length < n && !this.done) {
      const next = await this.iterator.next();
      if (next.done === true) this.done = true;
      else {
        const chunk = Buffer.from(next.value);
        this.chunks.push(chunk);
        this.length += chunk.length;
      }
    }
    if (this.length === 0 && n > 0) return undefined;
    if (this.length < n) throw new Error('unexpected end of tar stream');
    const all = this.chunks.length === 1 ? (this.chunks[0] ?? Buffer.alloc(0)) : Buffer.concat(this.chunks);
    const result = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.length = rest.length;
    return result;
  }
}

function normalizeName(name: string): string {
  return name.replace(/^(\.\/|\/)+/, '').replace(/\/+$/, '');
}

/** The entries of an uncompressed tar stream; PAX and GNU long-name headers are applied to the next entry. */
export async function* readTar(source: AsyncIterable<Uint8Array>): AsyncGenerator<TarEntry> {
  const queue = new ByteQueue(source);
  let pax = new Map<string, Buffer>();
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    const block = await queue.take(BLOCK);
    if (block === undefined || block.every((byte) => byte === 0)) return;
    const flag = String.fromCharCode(block[156] ?? 0);
    const size = readNumber(block, 124, 12);
    const data = Buffer.from((await queue.take(size + padding(size).length)) ?? Buffer.alloc(0)).subarray(0, size);
    if (flag === 'x') {
      pax = new Map([...pax, ...parsePax(data)]);
      continue;
    }
    if (flag === 'g') continue;
    if (flag === 'L' || flag === 'K') {
      const text = data.toString('utf8').replace(/\0+$/, '');
      if (flag === 'L') longName = text;
      else longLink = text;
      continue;
    }
    const type = FLAG_TYPES[flag];
    const prefix = readString(block, 345, 155);
    const ustarName = prefix !== '' ? `${prefix}/${readString(block, 0, 100)}` : readString(block, 0, 100);
    const name = pax.get('path')?.toString('utf8') ?? longName ?? ustarName;
    const linkname = pax.get('linkpath')?.toString('utf8') ?? longLink ?? readString(block, 157, 100);
    const xattrs: Record<string, Buffer> = {};
    for (const [key, value] of pax) if (key.startsWith('SCHILY.xattr.')) xattrs[key.slice(13)] = value;
    const entry: TarEntry = {
      name: normalizeName(name),
      type: type ?? 'file',
      mode: readNumber(block, 100, 8) & 0o7777,
      uid: Number(pax.get('uid')?.toString() ?? readNumber(block, 108, 8)),
      gid: Number(pax.get('gid')?.toString() ?? readNumber(block, 116, 8)),
      mtime: Number(pax.get('mtime')?.toString() ?? readNumber(block, 136, 12)),
    };
    if (type === 'hardlink' || type === 'symlink')
      entry.linkname = type === 'hardlink' ? normalizeName(linkname) : linkname;
    if (type === 'char' || type === 'block') {
      entry.devmajor = readNumber(block, 329, 8);
      entry.devminor = readNumber(block, 337, 8);
    }
    if (Object.keys(xattrs).length > 0) entry.xattrs = xattrs;
    if (entry.type === 'file') entry.data = data;
    pax = new Map();
    longName = undefined;
    longLink = undefined;
    if (type === undefined) continue; // unknown entry kinds (GNU sparse, volume labels) are skipped
    yield entry;
  }
}
