/**
 * OCI / Docker v2 manifests: media types, parsing with the checks the distribution spec asks for, and platform
 * selection in an index (manifest list).
 */
import { createHash } from 'node:crypto';
import { EngineError } from '../errors.js';

export const MEDIA = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeignLayer: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

/** The Accept header of a manifest GET: every kind tsfig can use. */
export const MANIFEST_ACCEPT = [MEDIA.ociIndex, MEDIA.dockerList, MEDIA.ociManifest, MEDIA.dockerManifest].join(', ');

const INDEX_TYPES = new Set<string>([MEDIA.ociIndex, MEDIA.dockerList]);
const MANIFEST_TYPES = new Set<string>([MEDIA.ociManifest, MEDIA.dockerManifest]);

export interface Platform {
  os: string;
  architecture: string;
  variant?: string | undefined;
  'os.version'?: string | undefined;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform | undefined;
  annotations?: Record<string, string> | undefined;
  urls?: string[] | undefined;
}

export type ParsedManifest =
  | { kind: 'index'; mediaType: string; manifests: Descriptor[] }
  | { kind: 'manifest'; mediaType: string; config: Descriptor; layers: Descriptor[] };

export function sha256Digest(data: Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;

function bad(message: string): EngineError {
  return new EngineError('invalid', message, { hint: 'the registry sent a malformed manifest; nothing was stored' });
}

function descriptor(value: unknown, what: string): Descriptor {
  const d = value as Partial<Descriptor> | null;
  if (d === null || typeof d !== 'object') throw bad(`${what} is not an object`);
  if (typeof d.digest !== 'string' || !DIGEST.test(d.digest)) {
    throw bad(`${what} has an invalid or unsupported digest ${String(d.digest)} (tsfig verifies sha256 only)`);
  }
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw bad(`${what} has an invalid size`);
  }
  if (typeof d.mediaType !== 'string') throw bad(`${what} has no mediaType`);
  return {
    mediaType: d.mediaType,
    digest: d.digest,
    size: d.size,
    platform: d.platform,
    annotations: d.annotations,
    urls: d.urls,
  };
}

/** The media type without parameters (`application/json; charset=utf-8` → `application/json`). */
function bareType(contentType: string | undefined): string | undefined {
  return contentType?.split(';')[0]?.trim().toLowerCase() || undefined;
}

/**
 * Parses a manifest body. The kind comes from the body's mediaType, else the Content-Type, else its shape. A body
 * whose mediaType contradicts a manifest Content-Type is rejected (distribution-spec); schema 1 is refused.
 */
export function parseManifest(body: Uint8Array, contentType?: string): ParsedManifest {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(Buffer.from(body).toString('utf8')) as Record<string, unknown>;
  } catch {
    throw bad('the manifest is not JSON');
  }
  if (json === null || typeof json !== 'object') throw bad('the manifest is not a JSON object');
  const header = bareType(contentType);
  const declared = typeof json.mediaType === 'string' ? json.mediaType : undefined;
  if (json.schemaVersion === 1 || header === MEDIA.dockerSchema1 || header === MEDIA.dockerSchema1Signed) {
    throw new EngineError('unsupported', 'the image has a Docker schema 1 manifest, which tsfig does not support', {
      hint: 'push the image again with a current client (Docker v2 schema 2 or OCI)',
    });
  }
  const known = (t: string | undefined): boolean => t !== undefined && (INDEX_TYPES.has(t) || MANIFEST_TYPES.has(t));
  if (declared !== undefined && known(header) && known(declared) && declared !== header) {
    throw bad(`the manifest's mediaType ${declared} differs from its Content-Type ${header ?? ''}`);
  }
  const mediaType =
    declared ??
    (known(header) ? header : undefined) ??
    (Array.isArray(json.manifests) ? MEDIA.ociIndex : MEDIA.ociManifest);
  if (INDEX_TYPES.has(mediaType)) {
    if (!Array.isArray(json.manifests)) throw bad('the index has no manifests array');
    return {
      kind: 'index',
      mediaType,
      manifests: json.manifests.map((m, i) => descriptor(m, `manifests[${i}]`)),
    };
  }
  if (MANIFEST_TYPES.has(mediaType)) {
    if (!Array.isArray(json.layers)) throw bad('the manifest has no layers array');
    return {
      kind: 'manifest',
      mediaType,
      config: descriptor(json.config, 'config'),
      layers: json.layers.map((l, i) => descriptor(l, `layers[${i}]`)),
    };
  }
  throw new EngineError('unsupported', `unsupported manifest media type ${mediaType}`, {
    hint: 'tsfig pulls OCI and Docker v2 schema 2 images (and their indexes)',
  });
}

/** Layer compression from its media type; undefined for a layer type tsfig cannot use. */
export function layerCompression(mediaType: string): 'gzip' | 'zstd' | 'none' | undefined {
  switch (mediaType) {
    case MEDIA.ociLayerGzip:
    case MEDIA.dockerLayerGzip:
    case MEDIA.dockerForeignLayer:
    case 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip':
      return 'gzip';
    case MEDIA.ociLayerZstd:
    case 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd':
      return 'zstd';
    case MEDIA.ociLayer:
    case 'application/vnd.oci.image.layer.nondistributable.v1.tar':
      return 'none';
    default:
      return undefined;
  }
}

/** Node's arch as a Go/OCI architecture. */
export function goArch(arch: string = process.arch): string {
  const map: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le' };
  return map[arch] ?? arch;
}

/** `linux/arm64/v8` → platform; the default is linux and this machine's architecture. */
export function parsePlatform(text?: string): Platform {
  if (text === undefined || text === '') return { os: 'linux', architecture: goArch() };
  const parts = text.toLowerCase().split('/');
  const [os, architecture, variant] = parts;
  if (parts.length < 2 || parts.length > 3 || !os || !architecture || (parts.length === 3 && !variant)) {
    throw new EngineError('invalid', `invalid platform "${text}": expected OS/ARCH[/VARIANT], e.g. linux/amd64`);
  }
  const normalized = architecture === 'x86_64' ? 'amd64' : architecture === 'aarch64' ? 'arm64' : architecture;
  return { os, architecture: normalized, ...(variant !== undefined ? { variant } : {}) };
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter((s) => s !== undefined && s !== '').join('/');
}

function defaultVariant(arch: string): string | undefined {
  if (arch === 'arm64') return 'v8';
  if (arch === 'arm') return 'v7';
  return undefined;
}

/**
 * The manifest of an index for a platform: same OS and architecture, and variant (arm64's is v8 when absent, arm's
 * v7). Attestation manifests (`unknown/unknown`) are never chosen. Throws not-found listing what the index has.
 */
export function selectPlatform(manifests: readonly Descriptor[], wanted: Platform): Descriptor {
  const candidates = manifests.filter(
    (m) =>
      m.platform !== undefined &&
      m.platform.os !== 'unknown' &&
      m.annotations?.['vnd.docker.reference.type'] !== 'attestation-manifest',
  );
  const wantedVariant = wanted.variant ?? defaultVariant(wanted.architecture);
  const match = candidates.find((m) => {
    const p = m.platform as Platform;
    if (p.os !== wanted.os || p.architecture !== wanted.architecture) return false;
    const variant = p.variant ?? defaultVariant(p.architecture);
    return wantedVariant === undefined || variant === undefined || variant === wantedVariant;
  });
  if (match !== undefined) return match;
  const available = candidates.map((m) => formatPlatform(m.platform as Platform)).join(', ') || 'none';
  throw new EngineError(
    'not-found',
    `no matching manifest for ${formatPlatform(wanted)} in the manifest list entries`,
    {
      hint: `the image is available for: ${available} (choose one with --platform)`,
    },
  );
}
