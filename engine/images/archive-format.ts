/**
 * The pure parts of image archives: `docker save`'s manifest.json, OCI index/manifest documents, which layout an
 * archive is, and the names images are tagged with.
 */
import path from 'node:path';
import { EngineError } from '../errors.js';
import { familiarize, formatReference, parseTagReference } from './reference.js';

export const MEDIA_TYPES = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';
export const CONTAINERD_NAME_ANNOTATION = 'io.containerd.image.name';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture?: string; os?: string; variant?: string };
}

/** One image of `docker save`'s manifest.json. */
export interface DockerManifestItem {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

/** Which layout an archive has, from its member names: docker (manifest.json, read first) or oci (index.json). */
export function detectArchiveLayout(names: Iterable<string>): 'docker' | 'oci' | undefined {
  const set = new Set(names);
  if (set.has('manifest.json')) return 'docker';
  if (set.has('index.json')) return 'oci';
  return undefined;
}

/**
 * A member name of an archive, normalised (no `./`, no trailing `/`); an `invalid` error naming the entry when it
 * is absolute or climbs out with `..`.
 */
export function archiveMemberName(name: string): string {
  const parts = name.split('/');
  if (name.startsWith('/') || parts.some((part) => part === '..')) {
    throw new EngineError('invalid', `archive entry "${name}" escapes the archive`, {
      hint: 'the archive is corrupt or malicious; nothing was loaded',
    });
  }
  return parts.filter((part) => part !== '' && part !== '.').join('/');
}

/** A link target inside the archive, relative to the link's dir; an `invalid` error when it leaves the archive. */
export function archiveLinkTarget(name: string, target: string, hard: boolean): string {
  const joined = hard ? target : path.posix.join(path.posix.dirname(name), target);
  const normal = path.posix.normalize(joined.replace(/^\.\//, ''));
  if (path.posix.isAbsolute(target) || normal === '..' || normal.startsWith('../')) {
    throw new EngineError('invalid', `archive entry "${name}" links outside the archive (${target})`, {
      hint: 'the archive is corrupt or malicious; nothing was loaded',
    });
  }
  return archiveMemberName(normal);
}

function invalidArchive(message: string): EngineError {
  return new EngineError('invalid', message, { hint: 'the archive is not a docker save or OCI image-layout archive' });
}

/** Parses and checks manifest.json. */
export function parseDockerManifest(text: string): DockerManifestItem[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw invalidArchive(`manifest.json is not JSON: ${(error as Error).message}`);
  }
  if (!Array.isArray(value)) throw invalidArchive('manifest.json is not a list of images');
  return value.map((item: unknown, i) => {
    const record = item as Partial<Record<string, unknown>> | null;
    if (record === null || typeof record !== 'object') throw invalidArchive(`manifest.json item ${i} is not an object`);
    const { Config, RepoTags, Layers } = record;
    if (typeof Config !== 'string') throw invalidArchive(`manifest.json item ${i} has no Config`);
    if (!Array.isArray(Layers) || !Layers.every((l) => typeof l === 'string')) {
      throw invalidArchive(`manifest.json item ${i} has no Layers list`);
    }
    const tags = RepoTags ?? [];
    if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string')) {
      throw invalidArchive(`manifest.json item ${i} has a bad RepoTags`);
    }
    return { Config, RepoTags: tags, Layers };
  });
}

/** Parses a JSON document (index or manifest) of an OCI layout. */
export function parseJsonDocument(text: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw invalidArchive(`${what} is not JSON: ${(error as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw invalidArchive(`${what} is not an object`);
  return value as Record<string, unknown>;
}

/** The descriptors of a list field (`manifests`, `layers`), checked. */
export function descriptors(doc: Record<string, unknown>, field: string, what: string): Descriptor[] {
  const list = doc[field];
  if (!Array.isArray(list)) throw invalidArchive(`${what} has no ${field} list`);
  return list.map((entry: unknown) => checkDescriptor(entry, `${what} ${field}`));
}

export function checkDescriptor(entry: unknown, what: string): Descriptor {
  const d = entry as Partial<Descriptor> | null;
  if (d === null || typeof d !== 'object' || typeof d.digest !== 'string' || typeof d.mediaType !== 'string') {
    throw invalidArchive(`${what}: a descriptor lacks mediaType or digest`);
  }
  if (!/^sha256:[0-9a-f]{64}$/.test(d.digest)) {
    throw new EngineError('unsupported', `${what}: digest ${d.digest} is not sha256`, {
      hint: 'only sha256 content is supported',
    });
  }
  return d as Descriptor;
}

export function isIndexType(mediaType: string): boolean {
  return mediaType === MEDIA_TYPES.ociIndex || mediaType === MEDIA_TYPES.dockerList;
}

export function isManifestType(mediaType: string): boolean {
  return mediaType === MEDIA_TYPES.ociManifest || mediaType === MEDIA_TYPES.dockerManifest;
}

/** BuildKit's attestation manifests (platform unknown/unknown) are not images. */
export function isAttestation(d: Descriptor): boolean {
  return (
    d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest' ||
    (d.platform?.os === 'unknown' && d.platform.architecture === 'unknown')
  );
}

/**
 * The reference (full form) an index entry tags its image with: `io.containerd.image.name`, else a
 * `org.opencontainers.image.ref.name` that is a whole reference (`name:tag`, not only a tag); undefined otherwise.
 */
export function tagFromAnnotations(annotations: Record<string, string> | undefined): string | undefined {
  const candidates = [annotations?.[CONTAINERD_NAME_ANNOTATION], annotations?.[REF_NAME_ANNOTATION]];
  for (const candidate of candidates) {
    if (candidate === undefined || candidate === '') continue;
    if (!candidate.includes(':') && !candidate.includes('/')) continue; // a bare tag names no repository
    try {
      return formatReference(parseTagReference(candidate));
    } catch {
      continue;
    }
  }
  return undefined;
}

/** A RepoTags entry in full form; an `invalid` error when it is not NAME:TAG. */
export function normalizeTag(tag: string): string {
  return formatReference(parseTagReference(tag));
}

/** The familiar form (`busybox:latest`) of a full reference. */
export function familiarTag(full: string): string {
  return familiarize(full);
}
