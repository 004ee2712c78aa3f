/**
 * `docker push`: each layer's blob is skipped when the repository has it (HEAD), mounted from another repository
 * of the same registry when tsfig knows one that holds it, or uploaded (monolithic, or in chunks above chunkSize);
 * then the config, then the manifest (Docker v2 schema 2, or OCI).
 */
import { createReadStream, promises as fs } from 'node:fs';
import type { Readable } from 'node:stream';
import { EngineError } from '../errors.js';
import {
  DEFAULT_TAG,
  familiarReference,
  formatReference,
  parseReference,
  type ImageReference,
} from '../images/reference.js';
import type { ImageStore } from '../images/store.js';
import type { ImageConfigFile } from '../images/types.js';
import { BlobCache, type RemoteBlob } from './blobcache.js';
import type { RegistryClient } from './client.js';
import { MEDIA, sha256Digest, type Descriptor } from './manifest.js';
import { asError, boundedAll } from './util.js';

export type PushEvent =
  | {
      type: 'layer';
      digest: string;
      status: 'preparing' | 'exists' | 'mounted' | 'pushing' | 'pushed';
      current?: number;
      total?: number;
    }
  | { type: 'done'; reference: string; digest: string; size: number };

export interface PushOptions {
  /** Manifest format. @default docker */
  format?: 'docker' | 'oci' | undefined;
  /** Blobs larger than this go up in PATCH chunks of this size. @default 64 MiB */
  chunkSize?: number | undefined;
  /** Layers uploaded at once. @default 3 */
  concurrency?: number | undefined;
  onEvent?: ((event: PushEvent) => void) | undefined;
}

export interface PushResult {
  reference: string;
  digest: string;
  size: number;
  mediaType: string;
}

type BlobSource = { file: string } | { data: Buffer };

function bodyOf(source: BlobSource, start?: number, end?: number): () => Buffer | Readable {
  if ('data' in source) return () => (start === undefined ? source.data : source.data.subarray(start, (end ?? 0) + 1));
  return () => createReadStream(source.file, start === undefined ? {} : { start, end });
}

/** HEAD of a blob in ref's repository: true when present. */
export async function blobExists(
  client: RegistryClient,
  ref: ImageReference,
  digest: string,
  what: string,
): Promise<boolean> {
  const res = await client.request(ref.domain, ref.path, `/v2/${ref.path}/blobs/${digest}`, {
    method: 'HEAD',
    actions: 'pull,push',
    ok: [200, 404],
    what,
  });
  res.body.resume();
  return res.status === 200;
}

/** Tries a cross-repository mount; true when the registry mounted it. */
async function tryMount(
  client: RegistryClient,
  ref: ImageReference,
  digest: string,
  from: string,
  what: string,
): Promise<boolean> {
  const res = await client.request(
    ref.domain,
    ref.path,
    `/v2/${ref.path}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`,
    {
      method: 'POST',
      actions: 'pull,push',
      extraScopes: [`repository:${from}:pull`],
      ok: [201, 202],
      what,
      headers: { 'Content-Length': '0' },
    },
  );
  res.body.resume();
  if (res.status === 202) {
    // an upload session was opened instead: cancel it
    const location = res.headers.location;
    if (location !== undefined) {
      await client
        .request(ref.domain, ref.path, new URL(location, res.url).toString(), {
          method: 'DELETE',
          actions: 'pull,push',
          ok: [204, 200, 202, 404],
          what,
        })
        .then((r) => r.body.resume())
        .catch(() => undefined);
    }
    return false;
  }
  return true;
}

/** Uploads a blob: POST a session, then one PUT, or PATCH chunks and a closing PUT. */
export async function uploadBlob(
  client: RegistryClient,
  ref: ImageReference,
  desc: { digest: string; size: number },
  source: BlobSource,
  options: { chunkSize: number; what: string; onBytes?: (current: number) => void },
): Promise<void> {
  const { what } = options;
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const start = await client.request(ref.domain, ref.path, `/v2/${ref.path}/blobs/uploads/`, {
        method: 'POST',
        actions: 'pull,push',
        ok: [202],
        headers: { 'Content-Length': '0' },
        what,
      });
      start.body.resume();
      let location = new URL(start.headers.location ?? '', start.url);
      const withDigest = (url: URL): string => {
        const next = new URL(url);
        next.searchParams.set('digest', desc.digest);
        return next.toString();
      };
      if (desc.size <= options.chunkSize) {
        const put = await client.request(ref.domain, ref.path, withDigest(location), {
          method: 'PUT',
          actions: 'pull,push',
          headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(desc.size) },
          body: bodyOf(source),
          ok: [201],
          once: true,
          what,
        });
        put.body.resume();
        options.onBytes?.(desc.size);
        return;
      }
      for (let offset = 0; offset < desc.size; offset += options.chunkSize) {
        const end = Math.min(desc.size, offset + options.chunkSize) - 1;
        const patch = await client.request(ref.domain, ref.path, location.toString(), {
          method: 'PATCH',
          actions: 'pull,push',
          headers: {
            'Content-Type': 'application/octet-stream',
            'Content-Length': String(end - offset + 1),
            'Content-Range': `${offset}-${end}`,
          },
          body: bodyOf(source, offset, end),
          ok: [202],
          once: true,
          what,
        });
        patch.body.resume();
        if (patch.headers.location !== undefined) location = new URL(patch.headers.location, patch.url);
        options.onBytes?.(end + 1);
      }
      const put = await client.request(ref.domain, ref.path, withDigest(location), {
        method: 'PUT',
        actions: 'pull,push',
        headers: { 'Content-Length': '0' },
        ok: [201],
        once: true,
        what,
      });
      put.body.resume();
      return;
    } catch (error) {
      lastError = error;
      if (error instanceof EngineError && error.kind !== 'runtime') throw error;
    }
  }
  throw asError(lastError);
}

function layerType(mediaType: string, format: 'docker' | 'oci'): string {
  if (format === 'oci') return mediaType === MEDIA.dockerLayerGzip ? MEDIA.ociLayerGzip : mediaType;
  return mediaType === MEDIA.ociLayerGzip ? MEDIA.dockerLayerGzip : mediaType;
}

/** Pushes the local image named reference to its registry. */
export async function pushImage(
  client: RegistryClient,
  store: ImageStore,
  reference: string,
  options: PushOptions = {},
): Promise<PushResult> {
  const parsed = parseReference(reference);
  if (parsed.digest !== undefined) {
    throw new EngineError('invalid', `cannot push ${reference}: push a NAME[:TAG], not a digest`);
  }
  const ref: ImageReference = { ...parsed, tag: parsed.tag ?? DEFAULT_TAG };
  const image = await store.resolve(formatReference(ref));
  const what = `pushing ${formatReference(ref)}`;
  const emit = options.onEvent ?? (() => undefined);
  const cache = new BlobCache(store.paths);
  const repository = `${ref.domain}/${ref.path}`;
  const chunkSize = options.chunkSize ?? 64 * 1024 * 1024;
  const layers: Array<{ desc: Descriptor; diffId: string }> = [];

  await boundedAll(
    image.chainIds.map((chainId, i) => ({ chainId, i, diffId: image.diffIds[i] as string })),
    options.concurrency ?? 3,
    async ({ chainId, i, diffId }) => {
      // 1. a blob the registry already has, or can mount from a repository tsfig pulled it from
      const known: RemoteBlob[] = await cache.remote(diffId);
      for (const blob of known) {
        const desc = { mediaType: blob.mediaType, digest: blob.digest, size: blob.size };
        if (await blobExists(client, ref, blob.digest, what)) {
          emit({ type: 'layer', digest: blob.digest, status: 'exists' });
          layers[i] = { desc, diffId };
          return;
        }
        for (const repo of blob.repositories) {
          const slash = repo.indexOf('/');
          if (repo.slice(0, slash) !== ref.domain || repo === repository) continue;
          if (await tryMount(client, ref, blob.digest, repo.slice(slash + 1), what)) {
            emit({ type: 'layer', digest: blob.digest, status: 'mounted' });
            await cache.rememberRemote(blob, repository);
            layers[i] = { desc, diffId };
            return;
          }
        }
      }
      // 2. tsfig's own tar+gzip of the unpacked layer
      emit({ type: 'layer', digest: diffId, status: 'preparing' });
      const blob = await cache.compressed(chainId, diffId);
      const desc = { mediaType: MEDIA.dockerLayerGzip, digest: blob.digest, size: blob.size };
      layers[i] = { desc, diffId: blob.diffId };
      if (await blobExists(client, ref, blob.digest, what)) {
        emit({ type: 'layer', digest: blob.digest, status: 'exists' });
      } else {
        await uploadBlob(
          client,
          ref,
          blob,
          { file: blob.file },
          {
            chunkSize,
            what,
            onBytes: (current) =>
              emit({ type: 'layer', digest: blob.digest, status: 'pushing', current, total: blob.size }),
          },
        );
        emit({ type: 'layer', digest: blob.digest, status: 'pushed', current: blob.size, total: blob.size });
      }
      await cache.rememberRemote({ ...desc, diffId: blob.diffId }, repository);
    },
  );

  // the config: as stored, unless tsfig's tars of the layers differ from the originals
  let configBytes: Buffer = await fs.readFile(store.blobPath(image.id));
  const diffIds = layers.map((l) => l.diffId);
  if (diffIds.some((d, i) => d !== image.diffIds[i])) {
    const config = JSON.parse(configBytes.toString('utf8')) as ImageConfigFile;
    config.rootfs = { type: 'layers', diff_ids: diffIds };
    configBytes = Buffer.from(JSON.stringify(config));
  }
  const format =
    options.format ??
    (layers.some((l) => l.desc.mediaType.startsWith('application/vnd.oci.')) &&
    layers.every((l) => l.desc.mediaType !== MEDIA.dockerLayerGzip)
      ? 'oci'
      : 'docker');
  const configDesc = {
    mediaType: format === 'oci' ? MEDIA.ociConfig : MEDIA.dockerConfig,
    digest: sha256Digest(configBytes),
    size: configBytes.length,
  };
  if (!(await blobExists(client, ref, configDesc.digest, what))) {
    await uploadBlob(client, ref, configDesc, { data: configBytes }, { chunkSize, what });
  }
  const manifest = {
    schemaVersion: 2,
    mediaType: format === 'oci' ? MEDIA.ociManifest : MEDIA.dockerManifest,
    config: configDesc,
    layers: layers.map((l) => ({ ...l.desc, mediaType: layerType(l.desc.mediaType, format) })),
  };
  if (format === 'docker' && manifest.layers.some((l) => l.mediaType.startsWith('application/vnd.oci.'))) {
    throw new EngineError(
      'unsupported',
      `cannot push ${reference} as a Docker manifest: it has OCI-only layers (zstd)`,
      {
        hint: 'push it as OCI',
      },
    );
  }
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const digest = sha256Digest(manifestBytes);
  const res = await client.request(ref.domain, ref.path, `/v2/${ref.path}/manifests/${ref.tag ?? DEFAULT_TAG}`, {
    method: 'PUT',
    actions: 'pull,push',
    headers: { 'Content-Type': manifest.mediaType, 'Content-Length': String(manifestBytes.length) },
    body: () => manifestBytes,
    ok: [201],
    what,
  });
  res.body.resume();
  const echoed = res.headers['docker-content-digest'];
  if (typeof echoed === 'string' && echoed !== digest) {
    throw new EngineError('runtime', `the registry stored the manifest as ${echoed}, tsfig computed ${digest} ${what}`);
  }
  emit({ type: 'done', reference: familiarReference(ref), digest, size: manifestBytes.length });
  return { reference: familiarReference(ref), digest, size: manifestBytes.length, mediaType: manifest.mediaType };
}
