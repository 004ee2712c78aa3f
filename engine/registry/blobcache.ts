/**
 * What tsfig knows about layers' compressed forms, under `<root>/registry/`:
 * - `compressed/<diffid-hex>.json` + `blobs/<hex>`: the deterministic tar+gzip tsfig made of an unpacked layer (for
 *   push), keyed by the layer's DiffID;
 * - `remote/<diffid-hex>.json`: blobs seen in registries for a DiffID (digest, size, media type, repositories), so
 *   a push skips or mounts them instead of uploading a re-made blob (Docker's distribution metadata).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, promises as fs } from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import { createGzip } from 'node:zlib';
import { upperDirLayer } from '../layers/capture.js';
import { isErrno } from '../errors.js';
import type { EnginePaths } from '../state/paths.js';

export interface CompressedLayer {
  /** sha256 of the gzip blob. */
  digest: string;
  size: number;
  /** sha256 of the tar inside (what the pushed config lists). */
  diffId: string;
  file: string;
}

export interface RemoteBlob {
  digest: string;
  size: number;
  mediaType: string;
  /** The DiffID of the blob's content (the key of the file it is in). */
  diffId: string;
  /** `host[:port]/path` repositories known to hold the blob. */
  repositories: string[];
}

function hexOf(digest: string): string {
  return digest.replace(/^sha256:/, '');
}

async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  await fs.writeFile(tmp, JSON.stringify(value));
  await fs.rename(tmp, file);
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as T;
  } catch (error) {
    if (isErrno(error, 'ENOENT') || error instanceof SyntaxError) return undefined;
    throw error;
  }
}

export class BlobCache {
  readonly dir: string;
  private readonly layersDir: string;

  constructor(paths: EnginePaths) {
    this.dir = path.join(paths.root, 'registry');
    this.layersDir = paths.layers;
  }

  private compressedRecord(diffId: string): string {
    return path.join(this.dir, 'compressed', `${hexOf(diffId)}.json`);
  }

  private blobFile(digest: string): string {
    return path.join(this.dir, 'blobs', hexOf(digest));
  }

  /**
   * The tar+gzip of the layer chainId (DiffID diffId), made once from its unpacked dir (overlay whiteouts back to
   * `.wh.` files, entries sorted, so the same layer always gives the same blob) and cached.
   */
  async compressed(chainId: string, diffId: string): Promise<CompressedLayer> {
    const known = await readJson<Omit<CompressedLayer, 'file'>>(this.compressedRecord(diffId));
    if (known !== undefined) {
      const file = this.blobFile(known.digest);
      const stat = await fs.stat(file).catch(() => undefined);
      if (stat?.size === known.size) return { ...known, file };
    }
    await fs.mkdir(path.join(this.dir, 'blobs'), { recursive: true, mode: 0o700 });
    const tmp = path.join(this.dir, 'blobs', `tmp-${randomBytes(6).toString('hex')}`);
    const tarHash = createHash('sha256');
    const gzHash = createHash('sha256');
    let size = 0;
    try {
      const gzip = createGzip({ level: 6 });
      const out = createWriteStream(tmp, { mode: 0o600 });
      const written = (async () => {
        for await (const chunk of gzip) {
          const buf = chunk as Buffer;
          gzHash.update(buf);
          size += buf.length;
          if (!out.write(buf)) await once(out, 'drain');
        }
        out.end();
        await once(out, 'close');
      })();
      written.catch(() => undefined); // awaited below; a failed pack must not leave an unhandled rejection
      const diffDir = path.join(this.layersDir, hexOf(chainId), 'diff');
      try {
        for await (const chunk of upperDirLayer(diffDir, () => false)) {
          tarHash.update(chunk);
          if (!gzip.write(chunk)) await once(gzip, 'drain');
        }
      } catch (error) {
        gzip.destroy();
        out.destroy();
        throw error;
      } finally {
        gzip.end();
      }
      await written;
      const record = { digest: `sha256:${gzHash.digest('hex')}`, size, diffId: `sha256:${tarHash.digest('hex')}` };
      await fs.rename(tmp, this.blobFile(record.digest));
      await writeJsonAtomic(this.compressedRecord(diffId), record);
      return { ...record, file: this.blobFile(record.digest) };
    } finally {
      await fs.rm(tmp, { force: true });
    }
  }

  private remoteRecord(diffId: string): string {
    return path.join(this.dir, 'remote', `${hexOf(diffId)}.json`);
  }

  /** Blobs known in registries whose content has DiffID diffId. */
  async remote(diffId: string): Promise<RemoteBlob[]> {
    return (await readJson<RemoteBlob[]>(this.remoteRecord(diffId))) ?? [];
  }

  /** Remembers that repository (`host/path`) holds blob. */
  async rememberRemote(blob: Omit<RemoteBlob, 'repositories'>, repository: string): Promise<void> {
    const list = await this.remote(blob.diffId);
    const entry = list.find((b) => b.digest === blob.digest);
    if (entry === undefined) list.push({ ...blob, repositories: [repository] });
    else if (!entry.repositories.includes(repository)) entry.repositories.push(repository);
    else return;
    await writeJsonAtomic(this.remoteRecord(blob.diffId), list);
  }
}
