/**
 * `docker pull`: manifest (index → platform), config, then the missing layers, several at once, each unpacked while
 * it downloads into a temp dir of the store (engine/registry/pipe.ts hands the bytes over). A layer is committed
 * only once its blob's digest and size are verified, its DiffID checked and the layer below it committed; the image
 * is committed after its last layer.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { once } from 'node:events';
import { abortable, ownedTmpDir, sweepTmpDirs } from '../layers/tmpdir.js';
import { EngineError } from '../errors.js';
import { chainIds } from '../images/layer.js';
import {
  DEFAULT_TAG,
  familiarReference,
  formatReference,
  parseReference,
  type ImageReference,
} from '../images/reference.js';
import type { ImageStore } from '../images/store.js';
import type { ImageConfigFile, ImageRecord } from '../images/types.js';
import { BlobCache } from './blobcache.js';
import type { RegistryClient } from './client.js';
import {
  MANIFEST_ACCEPT,
  formatPlatform,
  layerCompression,
  parseManifest,
  parsePlatform,
  selectPlatform,
  sha256Digest,
  type Descriptor,
  type ParsedManifest,
} from './manifest.js';
import { ChunkPipe, RestartedFromZero } from './pipe.js';
import { asError, boundedAll } from './util.js';
import { zstdDecompress } from './zstd.js';

export type PullEvent =
  | { type: 'resolved'; reference: string; digest: string; platform?: string | undefined }
  | {
      type: 'layer';
      digest: string;
      status: 'exists' | 'waiting' | 'downloading' | 'verified' | 'extracting' | 'done';
      current?: number;
      total?: number;
    }
  | { type: 'done'; reference: string; digest: string; id: string; status: 'downloaded' | 'up-to-date' };

export interface PullOptions {
  /** OS/ARCH[/VARIANT]. @default linux/<this machine> */
  platform?: string | undefined;
  onEvent?: ((event: PullEvent) => void) | undefined;
  /** Layers downloaded at once. @default 3 */
  concurrency?: number | undefined;
  /**
   * Stops the pull between requests and layers and inside downloads; the pull then rejects with the signal's reason,
   * its temp files deleted. Layers already unpacked stay in the store (the next pull reuses them); no image is added.
   */
  signal?: AbortSignal | undefined;
}

export interface PullResult {
  image: ImageRecord;
  /** The digest of the manifest pulled (of the index when the reference named one). */
  digest: string;
  /** The reference in familiar form (`localhost:5000/app:1`). */
  reference: string;
  /** False when the image and every layer were already in the store. */
  downloaded: boolean;
}

export interface FetchedManifest {
  bytes: Buffer;
  digest: string;
  contentType: string | undefined;
  parsed: ParsedManifest;
}

/** GETs a manifest by tag or digest and verifies it: hash = requested digest, = Docker-Content-Digest if sent. */
export async function fetchManifest(
  client: RegistryClient,
  ref: ImageReference,
  tagOrDigest: string,
  what: string,
): Promise<FetchedManifest> {
  if (tagOrDigest.includes(':') && !/^sha256:[0-9a-f]{64}$/.test(tagOrDigest)) {
    throw new EngineError(
      'unsupported',
      `cannot verify the digest ${tagOrDigest} ${what}: tsfig verifies sha256 digests only`,
      {
        hint: 'use the sha256 digest of the manifest (NAME@sha256:...)',
      },
    );
  }
  const res = await client.request(ref.domain, ref.path, `/v2/${ref.path}/manifests/${tagOrDigest}`, {
    headers: { Accept: MANIFEST_ACCEPT },
    what,
  });
  const bytes = await res.bytes(4 * 1024 * 1024);
  const digest = sha256Digest(bytes);
  if (tagOrDigest.startsWith('sha256:') && digest !== tagOrDigest) {
    throw new EngineError('invalid', `manifest digest mismatch ${what}: expected ${tagOrDigest}, got ${digest}`, {
      hint: 'the registry sent corrupt or tampered data; nothing was stored',
    });
  }
  const header = res.headers['docker-content-digest'];
  if (typeof header === 'string' && header.startsWith('sha256:') && header !== digest) {
    throw new EngineError(
      'invalid',
      `manifest digest mismatch ${what}: the registry says ${header}, the body is ${digest}`,
      {
        hint: 'the registry sent corrupt or tampered data; nothing was stored',
      },
    );
  }
  const contentType = res.headers['content-type'];
  return { bytes, digest, contentType, parsed: parseManifest(bytes, contentType) };
}

/** Where a blob's bytes go as they arrive: a file, or the unpacking of a layer (a ChunkPipe). */
export interface BlobSink {
  /** A response starts at offset (0: from the first byte, again after a server that ignored a Range). */
  begin(offset: number): void | Promise<void>;
  write(chunk: Buffer): void | Promise<void>;
  /** The response ended, complete or broken off. */
  end(): Promise<void>;
}

/** A sink that writes the blob to file (created 0600; appended to when a download resumes). */
function fileSink(file: string): BlobSink {
  let out: ReturnType<typeof createWriteStream> | undefined;
  return {
    begin(offset) {
      out = createWriteStream(file, { flags: offset > 0 ? 'a' : 'w', mode: 0o600 });
    },
    async write(chunk) {
      if (out !== undefined && !out.write(chunk)) await once(out, 'drain');
    },
    async end() {
      if (out === undefined) return;
      out.end();
      await once(out, 'close').catch(() => undefined);
      out = undefined;
    },
  };
}

/**
 * Downloads a blob to file, hashing as it goes, resuming with Range after a broken connection when the server
 * allows it; throws (and removes the file) unless digest and size match.
 */
export async function downloadBlob(
  client: RegistryClient,
  ref: ImageReference,
  desc: Descriptor,
  file: string,
  what: string,
  onBytes?: (current: number, total: number) => void,
  signal?: AbortSignal,
): Promise<void> {
  try {
    await receiveBlob(client, ref, desc, fileSink(file), what, onBytes, signal);
  } catch (error) {
    await fs.rm(file, { force: true });
    throw error;
  }
}

/**
 * Downloads a blob into sink, hashing as it goes, resuming with Range after a broken connection when the server
 * allows it (from the first byte again when it does not); resolves only once digest and size match.
 */
export async function receiveBlob(
  client: RegistryClient,
  ref: ImageReference,
  desc: Descriptor,
  sink: BlobSink,
  what: string,
  onBytes?: (current: number, total: number) => void,
  signal?: AbortSignal,
): Promise<void> {
  let hash = createHash('sha256');
  let received = 0;
  let resumes = 0;
  for (;;) {
    signal?.throwIfAborted();
    const headers: Record<string, string> = {};
    if (received > 0) headers.Range = `bytes=${received}-`;
    const res = await client.request(ref.domain, ref.path, `/v2/${ref.path}/blobs/${desc.digest}`, {
      headers,
      ok: [200, 206],
      what,
    });
    if (signal?.aborted === true) {
      res.body.destroy();
      signal.throwIfAborted();
    }
    if (received > 0 && res.status !== 206) {
      // no range support: this response is the whole blob again
      received = 0;
      hash = createHash('sha256');
    }
    try {
      await sink.begin(received);
    } catch (error) {
      res.body.destroy();
      throw error;
    }
    let broken: unknown;
    let sinkFailed = false;
    // an abort ends the transfer at once (the loop below then rethrows the reason)
    const onAbort = (): void => void res.body.destroy();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for await (const chunk of res.body) {
        const buf = chunk as Buffer;
        received += buf.length;
        if (received > desc.size) {
          res.body.destroy();
          throw new EngineError(
            'invalid',
            `blob ${desc.digest} is larger than the ${desc.size} bytes its manifest says ${what}`,
            {
              hint: 'the registry sent corrupt or tampered data; nothing was stored',
            },
          );
        }
        hash.update(buf);
        sinkFailed = true;
        await sink.write(buf);
        sinkFailed = false;
        onBytes?.(received, desc.size);
      }
    } catch (error) {
      if (error instanceof EngineError || sinkFailed) throw error;
      broken = error;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      await sink.end();
    }
    signal?.throwIfAborted();
    if (broken === undefined) break;
    if (++resumes > 3) {
      throw new EngineError(
        'runtime',
        `the download of blob ${desc.digest} broke off after ${received} of ${desc.size} bytes ${what}: ${asError(broken).message}`,
        { hint: 'the network or the registry is failing; try again (nothing was stored)', cause: broken },
      );
    }
    await sleep(100 * 2 ** resumes, signal);
  }
  const digest = `sha256:${hash.digest('hex')}`;
  if (received !== desc.size || digest !== desc.digest) {
    throw new EngineError(
      'invalid',
      `blob digest mismatch ${what}: expected ${desc.digest} (${desc.size} bytes), got ${digest} (${received} bytes)`,
      { hint: 'the registry sent corrupt or tampered data; nothing was stored' },
    );
  }
}

/** Waits ms, or rejects with the signal's reason once it is aborted. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    signal?.throwIfAborted();
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Resolves reference to a single-platform manifest: { manifest, digest pulled, platform chosen }. */
export async function resolveManifest(
  client: RegistryClient,
  ref: ImageReference,
  options: { platform?: string | undefined; what: string },
): Promise<{ top: FetchedManifest; manifest: FetchedManifest; platform: string | undefined }> {
  const top = await fetchManifest(client, ref, ref.digest ?? ref.tag ?? DEFAULT_TAG, options.what);
  if (top.parsed.kind === 'manifest') return { top, manifest: top, platform: undefined };
  const wanted = parsePlatform(options.platform);
  const chosen = selectPlatform(top.parsed.manifests, wanted);
  const manifest = await fetchManifest(client, ref, chosen.digest, options.what);
  if (manifest.parsed.kind !== 'manifest') {
    throw new EngineError(
      'invalid',
      `the index entry for ${formatPlatform(wanted)} is not an image manifest ${options.what}`,
    );
  }
  return { top, manifest, platform: formatPlatform(wanted) };
}

function pulledFile(store: ImageStore, reference: string): string {
  const key = createHash('sha256')
    .update(formatReference(parseReference(reference)))
    .digest('hex');
  return path.join(store.paths.root, 'registry', 'pulled', key);
}

/** When reference was last pulled (checked against its registry) into store; undefined when never. */
export async function lastPulled(store: ImageStore, reference: string): Promise<Date | undefined> {
  try {
    return new Date((await fs.readFile(pulledFile(store, reference), 'utf8')).trim());
  } catch {
    return undefined;
  }
}

async function recordPull(store: ImageStore, reference: string): Promise<void> {
  const file = pulledFile(store, reference);
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await fs.writeFile(`${file}.tmp`, new Date().toISOString());
  await fs.rename(`${file}.tmp`, file);
}

/**
 * Pulls reference into store, under a claim (engine/images/claims.ts): the layers and config it adds before the
 * image is written are never swept while it runs, and are once it is killed.
 */
export async function pullImage(
  client: RegistryClient,
  store: ImageStore,
  reference: string,
  options: PullOptions = {},
): Promise<PullResult> {
  return store.withClaim('pull', () => pullUnderClaim(client, store, reference, options));
}

async function pullUnderClaim(
  client: RegistryClient,
  store: ImageStore,
  reference: string,
  options: PullOptions,
): Promise<PullResult> {
  const parsed = parseReference(reference);
  const ref: ImageReference = parsed.digest === undefined ? { ...parsed, tag: parsed.tag ?? DEFAULT_TAG } : parsed;
  const shown = familiarReference(ref);
  const what = `pulling ${formatReference(ref)}`;
  const emit = options.onEvent ?? (() => undefined);
  const signal = options.signal;
  signal?.throwIfAborted();
  const tmpBase = path.join(store.paths.root, 'tmp');
  // downloads of pulls killed outright (their process is gone) are not resumed: remove them
  await sweepTmpDirs(tmpBase, ['pull']).catch(() => undefined);
  const { top, manifest, platform } = await resolveManifest(client, ref, { platform: options.platform, what });
  signal?.throwIfAborted();
  emit({ type: 'resolved', reference: shown, digest: top.digest, platform });
  if (manifest.parsed.kind !== 'manifest') throw new EngineError('internal', 'not a manifest');
  const { config: configDesc, layers } = manifest.parsed;
  for (const layer of layers) {
    if (layerCompression(layer.mediaType) === undefined) {
      throw new EngineError(
        'unsupported',
        `layer ${layer.digest} has media type ${layer.mediaType}, which tsfig cannot unpack ${what}`,
      );
    }
  }

  // config: small, verified in memory
  const configRes = await client.request(ref.domain, ref.path, `/v2/${ref.path}/blobs/${configDesc.digest}`, { what });
  const configBytes = await configRes.bytes(16 * 1024 * 1024);
  signal?.throwIfAborted();
  if (configBytes.length !== configDesc.size || sha256Digest(configBytes) !== configDesc.digest) {
    throw new EngineError(
      'invalid',
      `image config digest mismatch ${what}: expected ${configDesc.digest}, got ${sha256Digest(configBytes)}`,
      {
        hint: 'the registry sent corrupt or tampered data; nothing was stored',
      },
    );
  }
  const config = JSON.parse(configBytes.toString('utf8')) as ImageConfigFile;
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== layers.length) {
    throw new EngineError(
      'invalid',
      `the image has ${layers.length} layers but its config lists ${diffIds.length} diff_ids ${what}`,
    );
  }
  const chains = chainIds(diffIds);
  const tagRef = ref.digest === undefined ? formatReference(ref) : undefined;
  const repoDigest = `${ref.domain}/${ref.path}@${top.digest}`;

  // the layers it has are claimed: no sweep removes them before the image that uses them is written
  const present = await store.claimPresentLayers(chains);
  const existing = await store.resolve(configDesc.digest).catch(() => undefined);
  if (existing !== undefined && present.every(Boolean)) {
    signal?.throwIfAborted();
    const image = await store.addImage(configBytes, { reference: tagRef, repoDigest });
    await recordPull(store, reference).catch(() => undefined);
    emit({ type: 'done', reference: shown, digest: top.digest, id: image.id, status: 'up-to-date' });
    return { image, digest: top.digest, reference: shown, downloaded: false };
  }

  // named after this process, so that the next pull removes it if this one is killed outright
  const tmp = await ownedTmpDir(tmpBase, 'pull');
  try {
    const missing = layers.map((layer, i) => ({ layer, i })).filter(({ i }) => present[i] !== true);
    for (const { layer, i } of layers.map((layer, i) => ({ layer, i }))) {
      emit({
        type: 'layer',
        digest: layer.digest,
        status: present[i] === true ? 'exists' : 'waiting',
        total: layer.size,
      });
    }
    // Each missing layer is unpacked while it downloads (several at once), into a temp dir of the store. A layer is
    // committed only once its blob's digest and size are verified, its DiffID checked and its parent committed;
    // until then nothing of it is in the store.
    const committed = layers.map(() => deferred());
    for (const [i, step] of committed.entries()) {
      if (present[i] === true) step.resolve();
      else step.promise.catch(() => undefined); // awaited by the layer above, if it gets that far
    }
    await boundedAll(missing, options.concurrency ?? 3, async ({ layer, i }, release) => {
      const step = committed[i] as Deferred;
      try {
        signal?.throwIfAborted();
        await pullLayer({
          client,
          ref,
          store,
          layer,
          parent: i > 0 ? (chains[i - 1] ?? null) : null,
          diffId: diffIds[i] as string,
          parentCommitted: committed[i - 1]?.promise ?? Promise.resolve(),
          file: path.join(tmp, `${i}`),
          what,
          emit,
          signal,
          unpacked: release,
        });
        step.resolve();
      } catch (error) {
        step.reject(asError(error));
        throw error;
      }
    });
    signal?.throwIfAborted(); // no image (nor tag) for an interrupted pull
    const image = await store.addImage(configBytes, { reference: tagRef, expectedId: configDesc.digest, repoDigest });
    const cache = new BlobCache(store.paths);
    for (let i = 0; i < layers.length; i++) {
      const layer = layers[i] as Descriptor;
      const blob = { digest: layer.digest, size: layer.size, mediaType: layer.mediaType, diffId: diffIds[i] as string };
      await cache.rememberRemote(blob, `${ref.domain}/${ref.path}`).catch(() => undefined);
    }
    await recordPull(store, reference).catch(() => undefined);
    emit({ type: 'done', reference: shown, digest: top.digest, id: image.id, status: 'downloaded' });
    return { image, digest: top.digest, reference: shown, downloaded: true };
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
  reject(error: Error): void;
}

function deferred(): Deferred {
  let resolve: () => void = () => undefined;
  let reject: (error: Error) => void = () => undefined;
  const promise = new Promise<void>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  return { promise, resolve, reject };
}

interface LayerPull {
  client: RegistryClient;
  ref: ImageReference;
  store: ImageStore;
  layer: Descriptor;
  parent: string | null;
  diffId: string;
  /** Settles when the layer below is in the store (rejects when it failed). */
  parentCommitted: Promise<void>;
  /** Where the blob goes when it has to be downloaded to a file first. */
  file: string;
  what: string;
  emit: (event: PullEvent) => void;
  signal: AbortSignal | undefined;
  /** Called once the layer is downloaded and unpacked: waiting for the layer below is no download (its place goes to
   * the next layer). */
  unpacked: () => void;
}

/**
 * Downloads one layer straight into its unpacking and commits it once its digest is verified and its parent is
 * committed. When the download fails, that is the error (a tampered or cut blob also breaks the gzip stream it feeds).
 * A server that answers a resumed download from the first byte again makes the layer go through a file.
 */
async function pullLayer(job: LayerPull): Promise<void> {
  const { layer, emit, signal } = job;
  const pipe = new ChunkPipe();
  let last = 0;
  const onBytes = (current: number, total: number): void => {
    if (current - last >= 512 * 1024 || current === total) {
      last = current;
      emit({ type: 'layer', digest: layer.digest, status: 'downloading', current, total });
    }
  };
  const sink: BlobSink = {
    begin: (offset) => pipe.begin(offset),
    write: (chunk) => pipe.write(chunk),
    end: () => Promise.resolve(), // a broken response is resumed into the same pipe
  };
  const download = receiveBlob(job.client, job.ref, layer, sink, job.what, onBytes, signal).then(
    () => {
      pipe.end();
      emit({ type: 'layer', digest: layer.digest, status: 'verified', current: layer.size, total: layer.size });
      emit({ type: 'layer', digest: layer.digest, status: 'extracting', total: layer.size });
    },
    (error: unknown) => {
      const reason = asError(error);
      pipe.fail(reason);
      throw reason;
    },
  );
  download.catch(() => undefined); // awaited below, whichever way the unpacking ends
  const source = layerCompression(layer.mediaType) === 'zstd' ? zstdDecompress(pipe) : pipe;
  try {
    // an abort stops the unpacking (the store removes its half-made layer); committed layers are kept
    await job.store.addLayer(abortable(source, signal), job.parent, job.diffId, {
      beforeCommit: async () => {
        await download;
        job.unpacked();
        await job.parentCommitted;
        signal?.throwIfAborted();
      },
    });
  } catch (error) {
    const failed = await download.then(
      () => undefined,
      (reason: unknown) => reason,
    );
    if (failed instanceof RestartedFromZero) return await pullLayerViaFile(job);
    throw failed ?? error;
  }
  emit({ type: 'layer', digest: layer.digest, status: 'done', total: layer.size });
}

/** The layer downloaded and verified to a file, then unpacked from it (when its download cannot be streamed). */
async function pullLayerViaFile(job: LayerPull): Promise<void> {
  const { layer, emit, signal } = job;
  await downloadBlob(job.client, job.ref, layer, job.file, job.what, undefined, signal);
  emit({ type: 'layer', digest: layer.digest, status: 'verified', current: layer.size, total: layer.size });
  emit({ type: 'layer', digest: layer.digest, status: 'extracting', total: layer.size });
  try {
    const raw = createReadStream(job.file, { highWaterMark: 1024 * 1024 });
    const source = layerCompression(layer.mediaType) === 'zstd' ? zstdDecompress(raw) : raw;
    await job.store.addLayer(abortable(source, signal), job.parent, job.diffId, {
      beforeCommit: async () => {
        job.unpacked();
        await job.parentCommitted;
        signal?.throwIfAborted();
      },
    });
  } finally {
    await fs.rm(job.file, { force: true });
  }
  emit({ type: 'layer', digest: layer.digest, status: 'done', total: layer.size });
}
