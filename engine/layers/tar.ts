/**
 * The engine's one tar reader and writer (ustar, PAX, GNU long names and base-256 numbers on read). Images (load,
 * tar-split), containers (`cp`) and builds (COPY/ADD, RUN layers) all read through `tarEntries`: it streams an
 * entry's data (a layer's files are never held whole) and can report every byte it reads, in order, so tar-split
 * can record the archive's own bytes exactly (`onBytes`). `readTar` holds each entry's data in memory, for the small
 * archives of `cp` and of RUN steps. PAX and long-name records are held in memory, so they are refused over 1 MiB. Nothing is ever
 * written to disk by an entry's path here.
 */

export type TarEntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

/** An entry as `readTar` gives it and `encodeEntry` writes it. */
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
  /** Or: the content is the first `size` bytes of this host file, streamed when the entry is written. */
  file?: { readonly path: string; readonly size: number };
}

/** A header as `tarEntries` reads it: the archive's own fields, PAX records and GNU long names applied. */
export interface TarHeader {
  /** As in the archive (PAX path / GNU long name applied), not normalised. */
  readonly name: string;
  /** undefined: a kind this engine does not handle (GNU sparse, volume label, ...). */
  readonly type: TarEntryType | undefined;
  /** The raw type flag. */
  readonly flag: string;
  /** The size of its data in the archive (PAX `size` applied). */
  readonly size: number;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtime: number;
  /** As in the archive (PAX linkpath / GNU long link applied). */
  readonly linkname: string;
  readonly devmajor: number;
  readonly devminor: number;
  /** The PAX records that applied to this entry (`x` headers; `g` headers are read past). */
  readonly pax: ReadonlyMap<string, Buffer>;
}

export interface TarStreamEntry {
  readonly header: TarHeader;
  /** Its data: read it to the end before asking for the next entry, or not at all (it is then skipped). */
  readonly data: AsyncIterable<Buffer>;
}

export interface TarReadOptions {
  /**
   * Called with every byte read, in order, each once: the data of a regular file with that file's header, all
   * else (headers, PAX and long-name records, other entries' data, padding, the end-of-archive marker and whatever
   * follows it) without. With it, the reader reads the stream to its end.
   */
  readonly onBytes?: (bytes: Buffer, file?: TarHeader) => void;
}

const BLOCK = 512;
const CHUNK = 1 << 16;
/** The largest PAX or GNU long-name record read (they are held in memory). */
const MAX_RECORD = 1 << 20;
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

// ---- header fields ---------------------------------------------------------------------------------------------

function readString(block: Buffer, offset: number, length: number): string {
  const slice = block.subarray(offset, offset + length);
  const end = slice.indexOf(0);
  return slice.subarray(0, end < 0 ? length : end).toString('utf8');
}

/** An octal number field, or GNU base-256 when the high bit of the first byte is set; an empty field is 0. */
function readNumber(block: Buffer, offset: number, length: number): number {
  const slice = block.subarray(offset, offset + length);
  if (((slice[0] ?? 0) & 0x80) !== 0) {
    let value = 0;
    for (let i = 1; i < slice.length; i++) value = value * 256 + (slice[i] ?? 0);
    return value;
  }
  const text = readString(block, offset, length).trim();
  if (text === '') return 0;
  const value = parseInt(text, 8);
  if (!Number.isFinite(value)) throw new Error('malformed tar header (a number field is not octal)');
  return value;
}

function checksumOk(block: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (block[i] ?? 0);
  return sum === readNumber(block, 148, 8);
}

/** A size: a whole number of bytes that JavaScript can count exactly. */
function sizeOf(value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new Error('malformed tar header (bad entry size)');
  return value;
}

export function paddingOf(size: number): number {
  const rest = size % BLOCK;
  return rest === 0 ? 0 : BLOCK - rest;
}

/** The records of a PAX header's data (`<length> <key>=<value>\n` each); values are bytes (xattrs need not be text). */
export function parsePax(data: Buffer): Map<string, Buffer> {
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

/** The bytes as a Buffer, without copying them. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// ---- reading ---------------------------------------------------------------------------------------------------

/** Buffers a byte stream so exact amounts can be taken from it. */
class ByteReader {
  private chunks: Buffer[] = [];
  private length = 0;
  private readonly iterator: AsyncIterator<Uint8Array>;
  private done = false;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  /** Exactly n bytes, fewer at the end of the stream (possibly none). */
  async take(n: number): Promise<Buffer> {
    while (this.length < n && !this.done) {
      const next = await this.iterator.next();
      if (next.done === true) this.done = true;
      else if (next.value.length > 0) {
        const chunk = asBuffer(next.value);
        this.chunks.push(chunk);
        this.length += chunk.length;
      }
    }
    const all = this.chunks.length === 1 ? (this.chunks[0] ?? Buffer.alloc(0)) : Buffer.concat(this.chunks);
    const result = all.subarray(0, Math.min(n, all.length));
    const rest = all.subarray(result.length);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.length = rest.length;
    return result;
  }

  /** Exactly n bytes; a shorter stream is an error. */
  async exactly(n: number): Promise<Buffer> {
    const bytes = await this.take(n);
    if (bytes.length < n) throw new Error('unexpected end of tar stream');
    return bytes;
  }
}

function headerOf(block: Buffer, pax: Map<string, Buffer>, longName?: string, longLink?: string): TarHeader {
  const text = (key: string): string | undefined => pax.get(key)?.toString('utf8');
  const number = (key: string, offset: number, length: number): number => {
    const value = text(key);
    return value !== undefined ? Number(value) : readNumber(block, offset, length);
  };
  const prefix = readString(block, 345, 155);
  const ustarName = prefix !== '' ? `${prefix}/${readString(block, 0, 100)}` : readString(block, 0, 100);
  const flag = String.fromCharCode(block[156] ?? 0);
  // GNU sparse files (`S`, or PAX `GNU.sparse.*` records on a regular file) hold a map, not the file's bytes
  const sparse = [...pax.keys()].some((key) => key.startsWith('GNU.sparse.'));
  return {
    name: text('path') ?? longName ?? ustarName,
    type: sparse ? undefined : FLAG_TYPES[flag],
    flag,
    size: sizeOf(number('size', 124, 12)),
    mode: readNumber(block, 100, 8) & 0o7777,
    uid: number('uid', 108, 8),
    gid: number('gid', 116, 8),
    mtime: number('mtime', 136, 12),
    linkname: text('linkpath') ?? longLink ?? readString(block, 157, 100),
    devmajor: readNumber(block, 329, 8),
    devminor: readNumber(block, 337, 8),
    pax,
  };
}

/**
 * The entries of an uncompressed tar stream, in order, up to the end-of-archive marker (or the end of the stream).
 * PAX (`x`) and GNU long-name (`L`, `K`) headers apply to the next entry; a global PAX header (`g`) is read past.
 * Throws on a bad checksum, a malformed field or a truncated archive.
 */
export async function* tarEntries(
  source: AsyncIterable<Uint8Array>,
  options: TarReadOptions = {},
): AsyncGenerator<TarStreamEntry> {
  const onBytes = options.onBytes ?? (() => undefined);
  const reader = new ByteReader(source);
  const archive = async (n: number): Promise<Buffer> => {
    const bytes = await reader.exactly(n);
    if (bytes.length > 0) onBytes(bytes);
    return bytes;
  };
  let pax = new Map<string, Buffer>();
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    const block = await reader.take(BLOCK);
    if (block.length > 0) onBytes(block);
    if (block.length === 0) return;
    if (block.length < BLOCK) throw new Error('unexpected end of tar stream');
    if (block.every((byte) => byte === 0)) break;
    if (!checksumOk(block)) throw new Error('malformed tar header (bad checksum)');
    const flag = String.fromCharCode(block[156] ?? 0);
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      const size = sizeOf(readNumber(block, 124, 12));
      // held in memory: a hostile archive must not declare gigabytes of it (Go's archive/tar has the same bound)
      if (size > MAX_RECORD) throw new Error(`malformed tar header (a PAX or long-name record of ${size} bytes)`);
      const body = (await archive(size + paddingOf(size))).subarray(0, size);
      if (flag === 'x') pax = new Map([...pax, ...parsePax(body)]);
      else if (flag === 'L') longName = body.toString('utf8').replace(/\0+$/, '');
      else if (flag === 'K') longLink = body.toString('utf8').replace(/\0+$/, '');
      continue;
    }
    const header = headerOf(block, pax, longName, longLink);
    pax = new Map();
    longName = undefined;
    longLink = undefined;
    const file = header.type === 'file' ? header : undefined;
    let left = header.size;
    const next = async (): Promise<Buffer> => {
      const chunk = await reader.exactly(Math.min(left, CHUNK));
      left -= chunk.length;
      onBytes(chunk, file);
      return chunk;
    };
    const data = (async function* () {
      while (left > 0) yield await next();
    })();
    yield { header, data };
    while (left > 0) await next(); // whatever the consumer left unread
    await archive(paddingOf(header.size));
  }
  if (options.onBytes === undefined) return;
  for (;;) {
    const rest = await reader.take(CHUNK); // the rest of the end marker and what follows it
    if (rest.length === 0) return;
    onBytes(rest);
  }
}

function normalizeName(name: string): string {
  return name.replace(/^(\.\/|\/)+/, '').replace(/\/+$/, '');
}

/**
 * An entry as `TarEntry` describes it, without its data: name normalised, link names, device numbers and xattrs
 * applied; undefined for a kind `TarEntry` has no type for (GNU sparse files, volume labels...).
 */
export function entryOf(header: TarHeader): TarEntry | undefined {
  const type = header.type;
  if (type === undefined) return undefined;
  const entry: TarEntry = {
    name: normalizeName(header.name),
    type,
    mode: header.mode,
    uid: header.uid,
    gid: header.gid,
    mtime: header.mtime,
  };
  if (type === 'hardlink') entry.linkname = normalizeName(header.linkname);
  if (type === 'symlink') entry.linkname = header.linkname;
  if (type === 'char' || type === 'block') {
    entry.devmajor = header.devmajor;
    entry.devminor = header.devminor;
  }
  const xattrs: Record<string, Buffer> = {};
  for (const [key, value] of header.pax) if (key.startsWith('SCHILY.xattr.')) xattrs[key.slice(13)] = value;
  if (Object.keys(xattrs).length > 0) entry.xattrs = xattrs;
  return entry;
}

/** The entries of an uncompressed tar stream with their data in memory; kinds `TarEntry` has no type for are skipped. */
export async function* readTar(source: AsyncIterable<Uint8Array>): AsyncGenerator<TarEntry> {
  for await (const { header, data } of tarEntries(source)) {
    const entry = entryOf(header);
    if (entry === undefined) continue;
    if (entry.type === 'file') {
      const parts: Buffer[] = [];
      for await (const chunk of data) parts.push(chunk);
      entry.data = Buffer.concat(parts);
    }
    yield entry;
  }
}

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

/** The zero bytes that fill an entry's data of this size up to a whole block. */
export function padding(size: number): Buffer {
  return Buffer.alloc(paddingOf(size));
}

/** The header of an image archive's member (`image save`): owned by root, 0644 files and 0755 dirs, no PAX. */
export function memberHeader(fields: { name: string; size: number; type: 'file' | 'dir'; mtime?: number }): Buffer {
  if (Buffer.byteLength(fields.name) > 100) throw new Error(`tar member name too long: ${fields.name}`);
  const dir = fields.type === 'dir';
  return header({
    name: fields.name,
    mode: dir ? 0o755 : 0o644,
    uid: 0,
    gid: 0,
    size: dir ? 0 : fields.size,
    mtime: fields.mtime ?? 0,
    flag: dir ? '5' : '0',
    linkname: '',
    devmajor: 0,
    devminor: 0,
  });
}

function fitsUstar(text: string): boolean {
  return Buffer.byteLength(text) <= 100 && /^[\x20-\x7e]*$/.test(text);
}

/** The blocks of one entry (a PAX header first when a field does not fit ustar, or with xattrs). */
export function encodeEntry(entry: TarEntry): Buffer {
  const data = entry.type === 'file' ? (entry.data ?? Buffer.alloc(0)) : Buffer.alloc(0);
  return Buffer.concat([encodeHeader(entry, data.length), data, padding(data.length)]);
}

/** An entry's header blocks for content of `size` bytes (what follows them: the content, then padding(size)). */
export function encodeHeader(entry: TarEntry, size: number): Buffer {
  const name = entry.type === 'dir' ? `${entry.name}/` : entry.name;
  const linkname = entry.linkname ?? '';
  const records: Buffer[] = [];
  if (!fitsUstar(name)) records.push(paxRecord('path', name));
  if (!fitsUstar(linkname)) records.push(paxRecord('linkpath', linkname));
  if (entry.uid > 0o7777777) records.push(paxRecord('uid', String(entry.uid)));
  if (entry.gid > 0o7777777) records.push(paxRecord('gid', String(entry.gid)));
  if (size > 0o77777777777) records.push(paxRecord('size', String(size)));
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
      size,
      mtime: entry.mtime,
      flag: TYPE_FLAGS[entry.type],
      linkname,
      devmajor: entry.devmajor ?? 0,
      devminor: entry.devminor ?? 0,
    }),
  );
  return Buffer.concat(parts);
}

/** The end-of-archive marker. */
export function endOfArchive(): Buffer {
  return Buffer.alloc(BLOCK * 2);
}
