/**
 * OCI artifacts (image-spec 1.1 "artifact usage"): a manifest whose layers are arbitrary blobs with their own media
 * types, an `artifactType`, and the empty config (`{}`). Pushed as OCI 1.1 (artifactType + the empty descriptor),
 * or as OCI 1.0 (no artifactType; the config's media type names the kind) for registries that refuse 1.1, which
 * is what `auto` falls back to on a non-auth 4xx, as docker compose does. Pulled blobs are verified (digest, size).
 */
import { EngineError } from '../errors.js';
import { DEFAULT_TAG, familiarReference, parseReference, type ImageReference } from '../images/reference.js';
import type { RegistryClient } from './client.js';
import { fetchManifest } from './pull.js';
import { blobExists, uploadBlob } from './push.js';
import { MEDIA, sha256Digest, type Descriptor } from './manifest.js';

/** The empty descriptor's media type and content (image-spec 1.1). */
export const EMPTY_JSON_MEDIA_TYPE = 'application/vnd.oci.empty.v1+json';
const EMPTY_JSON = Buffer.from('{}');

export interface ArtifactLayer {
  readonly mediaType: string;
  readonly data: Buffer;
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface PushArtifactOptions {
  /** The artifact type (OCI 1.1 `artifactType`). */
  readonly artifactType: string;
  /** The config media type of an OCI 1.0 push (where artifactType cannot be said). */
  readonly legacyConfigMediaType: string;
  readonly layers: readonly ArtifactLayer[];
  /** Manifest annotations. */
  readonly annotations?: Readonly<Record<string, string>>;
  /** @default auto: 1.1, then 1.0 when the registry refuses the manifest with a non-auth 4xx */
  readonly ociVersion?: '1.0' | '1.1' | 'auto' | undefined;
}

export interface PushArtifactResult {
  readonly reference: string;
  readonly digest: string;
  readonly size: number;
  readonly ociVersion: '1.0' | '1.1';
}

/** A pulled artifact: its manifest (as sent), and each layer's descriptor with its verified bytes. */
export interface PulledArtifact {
  readonly digest: string;
  /** `artifactType` of the manifest, else its config media type (OCI 1.0 artifacts). */
  readonly artifactType: string;
  readonly annotations: Readonly<Record<string, string>>;
  readonly layers: ReadonlyArray<{ readonly descriptor: Descriptor; readonly data: Buffer }>;
}

function taggedReference(reference: string): ImageReference {
  const parsed = parseReference(reference);
  if (parsed.digest !== undefined) {
    throw new EngineError('invalid', `cannot push to ${reference}: give a NAME[:TAG], not a digest`);
  }
  return { ...parsed, tag: parsed.tag ?? DEFAULT_TAG };
}

async function ensureBlob(client: RegistryClient, ref: ImageReference, data: Buffer, what: string): Promise<void> {
  const desc = { digest: sha256Digest(data), size: data.length };
  if (await blobExists(client, ref, desc.digest, what)) return;
  await uploadBlob(client, ref, desc, { data }, { chunkSize: 64 * 1024 * 1024, what });
}

/** Pushes the blobs, then the manifest under ref's tag. */
export async function pushArtifact(
  client: RegistryClient,
  reference: string,
  options: PushArtifactOptions,
): Promise<PushArtifactResult> {
  const ref = taggedReference(reference);
  const what = `pushing ${familiarReference(ref)}`;
  await ensureBlob(client, ref, EMPTY_JSON, what);
  for (const layer of options.layers) await ensureBlob(client, ref, layer.data, what);
  const version = options.ociVersion ?? 'auto';
  if (version !== 'auto') return stored(await putManifest(client, ref, options, version, what, false), what);
  const modern = await putManifest(client, ref, options, '1.1', what, true);
  return modern ?? stored(await putManifest(client, ref, options, '1.0', what, false), what);
}

/** A non-tolerant PUT either stores the manifest or throws. */
function stored(result: PushArtifactResult | undefined, what: string): PushArtifactResult {
  if (result === undefined) throw new EngineError('runtime', `the registry did not store the manifest ${what}`);
  return result;
}

/** PUTs the manifest in one OCI version; undefined when tolerant and the registry refused it (client error). */
async function putManifest(
  client: RegistryClient,
  ref: ImageReference,
  options: PushArtifactOptions,
  version: '1.0' | '1.1',
  what: string,
  tolerant: boolean,
): Promise<PushArtifactResult | undefined> {
  const config = {
    mediaType: version === '1.1' ? EMPTY_JSON_MEDIA_TYPE : options.legacyConfigMediaType,
    digest: sha256Digest(EMPTY_JSON),
    size: EMPTY_JSON.length,
    ...(version === '1.1' ? { data: EMPTY_JSON.toString('base64') } : {}),
  };
  if (version === '1.0') await ensureBlob(client, ref, EMPTY_JSON, what);
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA.ociManifest,
    ...(version === '1.1' ? { artifactType: options.artifactType } : {}),
    config,
    layers: options.layers.map((layer) => ({
      mediaType: layer.mediaType,
      digest: sha256Digest(layer.data),
      size: layer.data.length,
      ...(layer.annotations === undefined ? {} : { annotations: layer.annotations }),
    })),
    ...(options.annotations === undefined ? {} : { annotations: options.annotations }),
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  const digest = sha256Digest(bytes);
  // a registry without OCI 1.1 refuses the manifest with a client error other than an auth one
  const fallback = tolerant ? [400, 404, 405, 409, 413, 415, 422] : [];
  const res = await client.request(ref.domain, ref.path, `/v2/${ref.path}/manifests/${ref.tag ?? DEFAULT_TAG}`, {
    method: 'PUT',
    actions: 'pull,push',
    headers: { 'Content-Type': MEDIA.ociManifest, 'Content-Length': String(bytes.length) },
    body: () => bytes,
    ok: [201, ...fallback],
    what,
  });
  res.body.resume();
  if (res.status !== 201) return undefined;
  const echoed = res.headers['docker-content-digest'];
  if (typeof echoed === 'string' && echoed !== digest) {
    throw new EngineError('runtime', `the registry stored the manifest as ${echoed}, tsfig computed ${digest} ${what}`);
  }
  return { reference: familiarReference(ref), digest, size: bytes.length, ociVersion: version };
}

/**
 * Pulls an artifact: the manifest by tag or digest (in an index, the first manifest of `artifactType`), then each
 * layer, verified against its digest and size and at most maxLayerBytes long. Nothing is stored.
 */
export async function pullArtifact(
  client: RegistryClient,
  reference: string,
  options: { readonly artifactType: string; readonly maxLayerBytes?: number },
): Promise<PulledArtifact> {
  const parsed = parseReference(reference);
  const ref: ImageReference = parsed.digest === undefined ? { ...parsed, tag: parsed.tag ?? DEFAULT_TAG } : parsed;
  const what = `pulling ${familiarReference(ref)}`;
  let fetched = await fetchManifest(client, ref, ref.digest ?? ref.tag ?? DEFAULT_TAG, what);
  if (fetched.parsed.kind === 'index') {
    const manifests = (JSON.parse(fetched.bytes.toString('utf8')) as { manifests?: Array<{ artifactType?: string }> })
      .manifests;
    const index = (manifests ?? []).findIndex((entry) => entry.artifactType === options.artifactType);
    const entry = fetched.parsed.manifests[index];
    if (entry === undefined) {
      throw new EngineError('invalid', `${familiarReference(ref)} is an index without a ${options.artifactType}`);
    }
    fetched = await fetchManifest(client, ref, entry.digest, what);
  }
  if (fetched.parsed.kind !== 'manifest') throw new EngineError('invalid', `${what}: nested index`);
  const raw = JSON.parse(fetched.bytes.toString('utf8')) as {
    artifactType?: unknown;
    annotations?: Record<string, string>;
  };
  const artifactType = typeof raw.artifactType === 'string' ? raw.artifactType : fetched.parsed.config.mediaType;
  const limit = options.maxLayerBytes ?? 16 * 1024 * 1024;
  const layers: Array<{ descriptor: Descriptor; data: Buffer }> = [];
  for (const descriptor of fetched.parsed.layers) {
    if (descriptor.size > limit) {
      throw new EngineError(
        'invalid',
        `${what}: layer ${descriptor.digest} is ${descriptor.size} bytes (limit ${limit})`,
      );
    }
    const res = await client.request(ref.domain, ref.path, `/v2/${ref.path}/blobs/${descriptor.digest}`, { what });
    const data = await res.bytes(limit);
    if (data.length !== descriptor.size || sha256Digest(data) !== descriptor.digest) {
      throw new EngineError('invalid', `blob digest mismatch ${what}: ${descriptor.digest}`, {
        hint: 'the registry sent corrupt or tampered data; nothing was stored',
      });
    }
    layers.push({ descriptor, data });
  }
  return { digest: fetched.digest, artifactType, annotations: raw.annotations ?? {}, layers };
}
