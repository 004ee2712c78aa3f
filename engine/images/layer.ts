import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { constants } from 'node:os';
import { Readable, type Writable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { EngineError } from '../errors.js';
import { saveTarSplitRecord, TarSplitRecorder } from '../layers/tarsplit.js';
import { runtimeBinary } from '../runtime/binary.js';

/** ChainID per the OCI image spec: ChainID(L0) = DiffID(L0); ChainID(L0..n) = sha256(ChainID(L0..n-1) + " " + DiffID(Ln)). */
export function chainIds(diffIds: readonly string[]): string[] {
  const result: string[] = [];
  let previous: string | undefined;
  for (const diffId of diffIds) {
    const chainId =
      previous === undefined ? diffId : `sha256:${createHash('sha256').update(`${previous} ${diffId}`).digest('hex')}`;
    result.push(chainId);
    previous = chainId;
  }
  return result;
}

export type Compression = 'gzip' | 'bzip2' | 'xz' | 'zstd' | 'none';

/** Compression of a stream from its first bytes (magic numbers); `none` is taken to be a plain tar. */
export function detectCompression(head: Uint8Array): Compression {
  const starts = (...bytes: number[]): boolean => bytes.every((b, i) => head[i] === b);
  if (starts(0x1f, 0x8b, 0x08)) return 'gzip';
  if (starts(0x42, 0x5a, 0x68)) return 'bzip2';
  if (starts(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return 'xz';
  if (starts(0x28, 0xb5, 0x2f, 0xfd)) return 'zstd';
  return 'none';
}

/** bytes as a Buffer without copying them. */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The uncompressed bytes of a layer stream: gunzipped when it is gzip, as is when it is a plain tar. */
export async function* decompressed(input: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  const { head, stream } = await peek(input);
  const compression = detectCompression(head);
  if (compression === 'none') {
    yield* stream;
    return;
  }
  if (compression !== 'gzip') {
    throw new EngineError(
      'unsupported',
      `the layer is ${compression}-compressed; only gzip and plain tar are supported`,
      {
        hint: `decompress it first (e.g. ${compression === 'zstd' ? 'zstd -d' : compression === 'xz' ? 'xz -d' : 'bunzip2'}) and import the tar`,
      },
    );
  }
  // 16 KiB output chunks (zlib's default) cost a round trip to the thread pool and a callback each
  const gunzip = createGunzip({ chunkSize: 256 * 1024 });
  const source = Readable.from(stream);
  source.on('error', (error) => gunzip.destroy(error));
  source.pipe(gunzip);
  try {
    for await (const chunk of gunzip) yield chunk as Buffer;
  } catch (error) {
    if (error instanceof EngineError) throw error;
    throw new EngineError('invalid', `the layer is not a valid gzip stream: ${(error as Error).message}`, {
      hint: 'the file is corrupt or truncated; get a fresh copy',
      cause: error,
    });
  } finally {
    source.destroy();
  }
}

/** Resolves when stream can take more data, or will never (closed, failed): listeners are removed either way. */
function writable(stream: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      stream.off('error', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
    stream.on('error', done);
  });
}

export interface UnpackResult {
  /** sha256 of the uncompressed tar stream. */
  diffId: string;
  /** Bytes of the uncompressed tar stream. */
  size: number;
  entries: number;
}

export interface UnpackOptions {
  /** Where the layer's tar-split goes (`tar-split.json.gz`); none when the stream is not a tar its reader knows. */
  tarSplit?: string | undefined;
}

interface RuntimeMessage {
  v: number;
  type: string;
  entries?: number;
  bytes?: number;
  diffId?: string;
  size?: number;
  tarSplit?: boolean;
  gzip?: string;
  sha256?: boolean;
  step?: string;
  errno?: number;
  message?: string;
}

function lastMessage(stdout: string): RuntimeMessage | undefined {
  const lines = stdout
    .trim()
    .split('\n')
    .filter((line) => line.startsWith('{'));
  const last = lines.at(-1);
  if (last === undefined) return undefined;
  try {
    return JSON.parse(last) as RuntimeMessage;
  } catch {
    return undefined;
  }
}

/** What the native unpacker can do itself (`tsfig-runtime unpack --features`). */
export interface UnpackFeatures {
  /** The inflate library it gunzips with (`isal`: Intel ISA-L, `zlib`); undefined when it cannot gunzip. */
  gzip: 'isal' | 'zlib' | undefined;
  /** Whether it hashes the uncompressed stream (libcrypto): without, the engine does all of it, as before. */
  sha256: boolean;
}

const features = new Map<string, Promise<UnpackFeatures>>();

/**
 * Asked once per process (and per value of the variables that turn the helper's libraries off, for tests and
 * benchmarks); an unpacker that does not know `--features` (or fails) can do none of it.
 */
export function unpackFeatures(): Promise<UnpackFeatures> {
  const key = `${process.env.TSFIG_UNPACK_NO_ISAL ?? ''}:${process.env.TSFIG_UNPACK_NO_SHA256 ?? ''}`;
  const known = features.get(key);
  if (known !== undefined) return known;
  const asked = new Promise<UnpackFeatures>((resolve) => {
    const none: UnpackFeatures = { gzip: undefined, sha256: false };
    const child = spawn(runtimeBinary(), ['unpack', '--features'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.once('error', () => resolve(none));
    child.once('close', (code) => {
      const message = lastMessage(stdout);
      if (code !== 0 || message?.type !== 'features') return resolve(none);
      const gzip = message.gzip === 'isal' || message.gzip === 'zlib' ? message.gzip : undefined;
      resolve({ gzip, sha256: message.sha256 === true });
    });
  });
  features.set(key, asked);
  return asked;
}

/** The first bytes of a stream (at least 6 unless it is shorter) and the stream from its first byte again. */
async function peek(input: AsyncIterable<Uint8Array>): Promise<{ head: Buffer; stream: AsyncIterable<Buffer> }> {
  const iterator = input[Symbol.asyncIterator]();
  let head: Buffer = Buffer.alloc(0);
  let done = false;
  while (head.length < 6 && !done) {
    const next = await iterator.next();
    if (next.done === true) done = true;
    else head = head.length === 0 ? asBuffer(next.value) : Buffer.concat([head, next.value]);
  }
  const stream = async function* (): AsyncGenerator<Buffer> {
    if (head.length > 0) yield head;
    if (done) return;
    for (;;) {
      const next = await iterator.next();
      if (next.done === true) return;
      yield asBuffer(next.value);
    }
  };
  return { head, stream: stream() };
}

/**
 * Streams a layer (gzip or plain tar) into `tsfig-runtime unpack <diffDir>`. diffDir must exist and be empty. Throws
 * when the stream is corrupt, the extractor refuses an entry, or the DiffID differs from expectedDiffId; the caller
 * then removes diffDir.
 *
 * Where the unpacker can (`unpackFeatures`), it gunzips, hashes the uncompressed bytes and records the tar-split
 * itself, in its own process: this process then only hands it the bytes as they come. Otherwise this process gunzips
 * (zlib), hashes and records (TarSplitRecorder) and hands it the tar.
 */
export async function unpackLayer(
  source: AsyncIterable<Uint8Array>,
  diffDir: string,
  expectedDiffId?: string,
  options: UnpackOptions = {},
): Promise<UnpackResult> {
  const { head, stream } = await peek(source);
  const compression = detectCompression(head);
  const can = await unpackFeatures();
  const native = can.sha256 && (compression === 'none' || (compression === 'gzip' && can.gzip !== undefined));
  const record = options.tarSplit !== undefined ? `${options.tarSplit}.record` : undefined;
  const split = options.tarSplit !== undefined && !native ? new TarSplitRecorder() : undefined;
  const args = native
    ? [
        'unpack',
        '--digest',
        ...(compression === 'gzip' ? ['--gzip'] : []),
        ...(record !== undefined ? ['--tar-split', record] : []),
        diffDir,
      ]
    : ['unpack', diffDir];
  const child = spawn(runtimeBinary(), args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
  });
  exited.catch(() => undefined); // handled where it is awaited; a spawn failure must not be an unhandled rejection
  let stdinBroken = false;
  child.stdin.on('error', () => (stdinBroken = true));

  const hash = native ? undefined : createHash('sha256');
  let size = 0;
  let streamError: Error | undefined;
  try {
    const bytes = native ? stream : decompressed(stream);
    for await (const chunk of split !== undefined ? split.tap(bytes) : bytes) {
      hash?.update(chunk);
      size += chunk.length;
      if (stdinBroken || child.stdin.destroyed) break; // the extractor gave up; its error line says why
      if (!child.stdin.write(chunk)) await writable(child.stdin);
    }
  } catch (error) {
    streamError = error instanceof Error ? error : new Error(String(error));
    child.kill('SIGKILL');
  }
  child.stdin.end();
  let code: number | null;
  try {
    code = await exited;
  } catch (error) {
    throw new EngineError('runtime', `cannot run the native helper: ${(error as Error).message}`, {
      hint: 'build it with: npm run build:native',
      cause: error,
    });
  }
  try {
    if (streamError !== undefined) throw streamError;

    const message = lastMessage(stdout);
    if (code !== 0 || message?.type !== 'done') {
      const detail = message?.type === 'error' ? (message.message ?? 'unknown error') : stderr.trim() || `exit ${code}`;
      const contentFault = message?.type === 'error' && (message.errno ?? 0) === 0;
      const denied = message?.errno === constants.errno.EPERM;
      throw new EngineError(
        contentFault ? 'invalid' : denied ? 'permission' : 'runtime',
        `cannot unpack layer: ${detail}`,
        {
          hint: contentFault
            ? 'the tarball is corrupt or unsafe; nothing was added to the store'
            : denied
              ? 'run tsfig as root: unpacking needs a private mount namespace, chroot, chown and mknod'
              : 'check the native helper (npm run build:native) and the space left under the state root',
          step: message?.step,
          errno: message?.errno,
        },
      );
    }
    const diffId = hash !== undefined ? `sha256:${hash.digest('hex')}` : (message.diffId ?? '');
    if (native) size = message.size ?? 0;
    if (expectedDiffId !== undefined && diffId !== expectedDiffId) {
      throw new EngineError('invalid', `layer digest mismatch: expected ${expectedDiffId}, got ${diffId}`, {
        hint: 'the layer is corrupt; nothing was added to the store',
      });
    }
    if (options.tarSplit !== undefined) {
      // so that `image save` gives back the exact tar (the DiffID)
      if (split !== undefined) await split.save(options.tarSplit);
      else if (record !== undefined && message.tarSplit === true) await saveTarSplitRecord(record, options.tarSplit);
    }
    return { diffId, size, entries: message.entries ?? 0 };
  } finally {
    if (record !== undefined) await fs.rm(record, { force: true });
  }
}
