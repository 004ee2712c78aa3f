/**
 * `docker save` / `docker load`: image archives in the docker-archive format (manifest.json + repositories, with the
 * OCI layout Docker 25+ also writes) and as OCI image-layout archives. Layers are saved as uncompressed tars named
 * by their DiffID, re-made byte for byte from the layer's tar-split when it has one. Loading reads the archive as a
 * stream into numbered temp files (never by an entry's path), checks every blob digest, DiffID and entry name, and
 * only then adds layers and images to the store.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { upperDirLayer } from '../layers/capture.js';
import { processStartTime } from '../containers/liveness.js';
import { EngineError } from '../errors.js';
import {
  archiveLinkTarget,
  archiveMemberName,
  CONTAINERD_NAME_ANNOTATION,
  descriptors,
  detectArchiveLayout,
  isAttestation,
  isIndexType,
  isManifestType,
  MEDIA_TYPES,
  normalizeTag,
  parseDockerManifest,
  parseJsonDocument,
  REF_NAME_ANNOTATION,
  tagFromAnnotations,
  checkDescriptor,
  type Descriptor,
} from './archive-format.js';
import { decompressed } from './layer.js';
import { DEFAULT_TAG, familiarize, formatReference, parseReference } from './reference.js';
import type { ImageStore } from './store.js';
import { readTarSplit, reassemble } from '../layers/tarsplit.js';
import { endOfArchive, memberHeader, padding, tarEntries } from '../layers/tar.js';
import type { ImageConfigFile, ImageRecord } from './types.js';

export type ArchiveFormat = 'docker' | 'oci';

export interface SaveOptions {
  /** @default docker */
  format?: ArchiveFormat | undefined;
  /** Told when a layer cannot be re-made byte for byte (its image is saved with a new id). */
  onWarning?: ((message: string) => void) | undefined;
}

export interface LoadedImage {
  id: string;
  /** Familiar form. */
  tags: string[];
}

function hexOf(digest: string): string {
  return digest.replace(/^sha256:/, '');
}

function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Resolves when stream can take more data or never will (closed, failed); its listeners are removed either way. */
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

async function writeAll(out: Writable, chunk: Buffer, what = 'the output'): Promise<void> {
  const closed = (): EngineError =>
    new EngineError('runtime', `${what} was closed while writing`, { hint: 'check the space left and the reader' });
  if (out.destroyed || out.writableEnded) throw closed();
  if (!out.write(chunk)) {
    await writable(out);
    if (out.destroyed) throw closed();
  }
}

/** Streams a generator into a file, returning sha256 and size. */
async function spool(source: AsyncIterable<Uint8Array>, file: string): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  const out = createWriteStream(file, { mode: 0o600 });
  let failure: Error | undefined;
  out.on('error', (error) => (failure = error));
  try {
    for await (const chunk of source) {
      hash.update(chunk);
      size += chunk.length;
      await writeAll(out, Buffer.from(chunk), file);
    }
  } finally {
    if (!out.destroyed) {
      out.end();
      await once(out, 'close').catch(() => undefined);
    }
  }
  if (failure !== undefined) throw failure;
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

interface SavedLayer {
  file: string;
  diffId: string;
  size: number;
}

interface SavedImage {
  configBytes: Buffer;
  id: string;
  layers: SavedLayer[];
  /** Full form. */
  tags: string[];
}

/** The tags a save argument names: the one it names, or all of the image's when given by id. */
function tagsOf(arg: string, image: ImageRecord): string[] {
  const idMatch = /^(?:sha256:)?([0-9a-f]{4,64})$/.exec(arg);
  if (idMatch !== null && hexOf(image.id).startsWith(idMatch[1] ?? '')) {
    return image.repoTags.map((tag) => formatReference(parseReference(tag)));
  }
  const ref = parseReference(arg);
  return ref.digest === undefined ? [formatReference({ ...ref, tag: ref.tag ?? DEFAULT_TAG })] : [];
}

/** Writes images (references or ids) to out as one archive. out is not ended. */
export async function saveImages(
  store: ImageStore,
  refs: readonly string[],
  out: Writable,
  options: SaveOptions = {},
): Promise<void> {
  if (refs.length === 0) throw new EngineError('invalid', 'no image to save', { hint: 'name one or more images' });
  const format = options.format ?? 'docker';
  const images = new Map<string, { record: ImageRecord; tags: string[] }>();
  for (const ref of refs) {
    const record = await store.resolve(ref);
    const entry = images.get(record.id) ?? { record, tags: [] };
    for (const tag of tagsOf(ref, record)) if (!entry.tags.includes(tag)) entry.tags.push(tag);
    images.set(record.id, entry);
  }
  await fs.mkdir(path.join(store.paths.root, 'tmp'), { recursive: true, mode: 0o700 });
  const tmp = await fs.mkdtemp(path.join(store.paths.root, 'tmp', 'save-'));
  try {
    const layerFiles = new Map<string, SavedLayer>(); // by chain id
    const saved: SavedImage[] = [];
    let n = 0;
    for (const { record, tags } of images.values()) {
      const layers: SavedLayer[] = [];
      const dirs = [...store.layerDirs(record)].reverse(); // bottom first
      for (const [i, chainId] of record.chainIds.entries()) {
        const known = layerFiles.get(chainId);
        if (known !== undefined) {
          layers.push(known);
          continue;
        }
        const diffDir = dirs[i] as string;
        const diffId = record.diffIds[i] as string;
        const file = path.join(tmp, `layer-${n++}.tar`);
        let made: { digest: string; size: number } | undefined;
        const split = await readTarSplit(path.dirname(diffDir));
        if (split !== undefined) {
          made = await spool(reassemble(split, diffDir), file).catch(() => undefined);
          if (made !== undefined && made.digest !== diffId) made = undefined;
        }
        if (made === undefined) {
          made = await spool(
            upperDirLayer(diffDir, () => false),
            file,
          );
          if (made.digest !== diffId) {
            options.onWarning?.(
              `layer ${diffId} of ${record.id} cannot be re-made byte for byte (no tar-split): it is saved as ` +
                `${made.digest}, and the image with a new id`,
            );
          }
        }
        const layer = { file, diffId: made.digest, size: made.size };
        layerFiles.set(chainId, layer);
        layers.push(layer);
      }
      let configBytes = await fs.readFile(store.blobPath(record.id));
      if (layers.some((l, i) => l.diffId !== record.diffIds[i])) {
        const config = JSON.parse(configBytes.toString('utf8')) as ImageConfigFile;
        config.rootfs = { type: 'layers', diff_ids: layers.map((l) => l.diffId) };
        configBytes = Buffer.from(JSON.stringify(config));
      }
      saved.push({ configBytes, id: sha256(configBytes), layers, tags });
    }
    await writeArchive(saved, out, format);
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

async function writeArchive(images: SavedImage[], out: Writable, format: ArchiveFormat): Promise<void> {
  const blobs = new Map<string, { data?: Buffer; file?: string; size: number }>();
  const index: Descriptor[] = [];
  const manifestJson: Array<{ Config: string; RepoTags: string[]; Layers: string[] }> = [];
  const repositories: Record<string, Record<string, string>> = {};
  for (const image of images) {
    const config = JSON.parse(image.configBytes.toString('utf8')) as ImageConfigFile;
    blobs.set(image.id, { data: image.configBytes, size: image.configBytes.length });
    for (const layer of image.layers) blobs.set(layer.diffId, { file: layer.file, size: layer.size });
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPES.ociManifest,
        config: { mediaType: MEDIA_TYPES.ociConfig, digest: image.id, size: image.configBytes.length },
        layers: image.layers.map((l) => ({ mediaType: MEDIA_TYPES.ociLayer, digest: l.diffId, size: l.size })),
      }),
    );
    const manifestDigest = sha256(manifest);
    blobs.set(manifestDigest, { data: manifest, size: manifest.length });
    const descriptor: Descriptor = {
      mediaType: MEDIA_TYPES.ociManifest,
      digest: manifestDigest,
      size: manifest.length,
      platform: { architecture: config.architecture, os: config.os },
    };
    if (image.tags.length === 0) index.push(descriptor);
    for (const tag of image.tags) {
      const ref = parseReference(tag);
      index.push({
        ...descriptor,
        annotations: { [CONTAINERD_NAME_ANNOTATION]: tag, [REF_NAME_ANNOTATION]: ref.tag ?? DEFAULT_TAG },
      });
      const familiarName = familiarize(tag).replace(/:[^:/]+$/, '');
      const top = image.layers.at(-1);
      (repositories[familiarName] ??= {})[ref.tag ?? DEFAULT_TAG] = hexOf(top?.diffId ?? image.id);
    }
    manifestJson.push({
      Config: `blobs/sha256/${hexOf(image.id)}`,
      RepoTags: image.tags.map(familiarize),
      Layers: image.layers.map((l) => `blobs/sha256/${hexOf(l.diffId)}`),
    });
  }
  const indexBytes = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: index }),
  );
  const members: Array<{ name: string; data?: Buffer; file?: string; size: number }> = [];
  for (const [digest, blob] of [...blobs].sort(([a], [b]) => a.localeCompare(b))) {
    members.push({ name: `blobs/sha256/${hexOf(digest)}`, ...blob });
  }
  const text = (name: string, value: string): void => {
    const data = Buffer.from(value);
    members.push({ name, data, size: data.length });
  };
  members.push({ name: 'index.json', data: indexBytes, size: indexBytes.length });
  if (format === 'docker') text('manifest.json', JSON.stringify(manifestJson));
  text('oci-layout', JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  if (format === 'docker') text('repositories', JSON.stringify(repositories));

  await writeAll(out, memberHeader({ name: 'blobs/', size: 0, type: 'dir' }));
  await writeAll(out, memberHeader({ name: 'blobs/sha256/', size: 0, type: 'dir' }));
  for (const member of members) {
    await writeAll(out, memberHeader({ name: member.name, size: member.size, type: 'file' }));
    if (member.data !== undefined) await writeAll(out, member.data);
    else if (member.file !== undefined) {
      let written = 0;
      for await (const chunk of createReadStream(member.file)) {
        written += (chunk as Buffer).length;
        await writeAll(out, chunk as Buffer);
      }
      if (written !== member.size) throw new EngineError('internal', `${member.name} changed while saving`);
    }
    await writeAll(out, padding(member.size));
  }
  await writeAll(out, endOfArchive());
}

// ---- load ------------------------------------------------------------------------------------------------------

interface Member {
  file: string;
  digest: string;
  size: number;
}

interface PlannedImage {
  configBytes: Buffer;
  id: string;
  /** Entry names of the layers, bottom first, and their files. */
  layers: Array<{ name: string; member: Member }>;
  /** Full form. */
  tags: string[];
  /** From the config, once checked. */
  diffIds?: string[];
}

class ArchiveContents {
  readonly members = new Map<string, Member>();
  readonly links = new Map<string, string>();

  get(name: string, what: string): Member {
    let current = archiveMemberName(name);
    for (let hops = 0; hops < 16; hops++) {
      const member = this.members.get(current);
      if (member !== undefined) return member;
      const next = this.links.get(current);
      if (next === undefined) break;
      current = next;
    }
    throw new EngineError('invalid', `${what} "${name}" is not in the archive`, {
      hint: 'the archive is incomplete; nothing was loaded',
    });
  }

  async text(name: string, what: string): Promise<string> {
    return fs.readFile(this.get(name, what).file, 'utf8');
  }

  blob(digest: string, what: string): Member {
    const member = this.get(`blobs/sha256/${hexOf(digest)}`, what);
    return member;
  }
}

/** Reads the archive into numbered files under dir, hashing each; entry names are checked, never used as paths. */
async function readArchive(input: AsyncIterable<Uint8Array>, dir: string): Promise<ArchiveContents> {
  const contents = new ArchiveContents();
  let n = 0;
  try {
    for await (const { header: entry, data } of tarEntries(decompressed(input))) {
      const name = archiveMemberName(entry.name);
      if (entry.type === 'dir') continue;
      if (entry.type === 'symlink' || entry.type === 'hardlink') {
        contents.links.set(name, archiveLinkTarget(name, entry.linkname, entry.type === 'hardlink'));
        continue;
      }
      if (entry.type !== 'file') {
        throw new EngineError('invalid', `archive entry "${entry.name}" is not a regular file (type ${entry.flag})`, {
          hint: 'the archive is corrupt or malicious; nothing was loaded',
        });
      }
      const file = path.join(dir, `m${n++}`);
      const { digest, size } = await spool(data, file);
      contents.members.set(name, { file, digest, size });
    }
  } catch (error) {
    if (error instanceof EngineError) throw error;
    throw new EngineError('invalid', `cannot read the archive: ${(error as Error).message}`, {
      hint: 'the archive is corrupt or truncated; nothing was loaded',
      cause: error,
    });
  }
  return contents;
}

/** Checks that every blobs/sha256/<hex> member has that digest. */
function checkBlobDigests(contents: ArchiveContents): void {
  for (const [name, member] of contents.members) {
    const match = /^blobs\/([^/]+)\/([^/]+)$/.exec(name);
    if (match === null) continue;
    if (match[1] !== 'sha256') continue;
    if (member.digest !== `sha256:${match[2]}`) {
      throw new EngineError('invalid', `archive entry "${name}" does not match its digest (it is ${member.digest})`, {
        hint: 'the archive is corrupt or was tampered with; nothing was loaded',
      });
    }
  }
}

/** The DiffID of a layer blob (gzip or plain), checking while reading that no entry climbs out of the root. */
async function layerDiffId(member: Member, name: string): Promise<string> {
  const hash = createHash('sha256');
  const hashed = async function* (): AsyncGenerator<Buffer> {
    for await (const chunk of decompressed(createReadStream(member.file))) {
      hash.update(chunk);
      yield chunk;
    }
  };
  const iterator = hashed();
  try {
    for await (const { header: entry } of tarEntries({ [Symbol.asyncIterator]: () => iterator })) {
      const parts = entry.name.split('/');
      const hardOut = entry.type === 'hardlink' && entry.linkname.split('/').includes('..');
      if (parts.includes('..') || hardOut) {
        throw new EngineError('invalid', `layer "${name}" has an entry that escapes the root: ${entry.name}`, {
          hint: 'the archive is corrupt or malicious; nothing was loaded',
        });
      }
    }
    for await (const _chunk of iterator) void _chunk; // what follows the end-of-archive marker
  } catch (error) {
    if (error instanceof EngineError) throw error;
    throw new EngineError('invalid', `layer "${name}" is not a valid tar: ${(error as Error).message}`, {
      hint: 'the archive is corrupt; nothing was loaded',
      cause: error,
    });
  }
  return `sha256:${hash.digest('hex')}`;
}

async function planFromManifestJson(contents: ArchiveContents): Promise<PlannedImage[]> {
  const items = parseDockerManifest(await contents.text('manifest.json', 'manifest.json'));
  const planned: PlannedImage[] = [];
  for (const item of items) {
    const config = contents.get(item.Config, 'image config');
    const configBytes = await fs.readFile(config.file);
    const legacy = /^([0-9a-f]{64})\.json$/.exec(archiveMemberName(item.Config));
    if (legacy !== null && config.digest !== `sha256:${legacy[1]}`) {
      throw new EngineError('invalid', `archive entry "${item.Config}" does not match its digest`, {
        hint: 'the archive is corrupt or was tampered with; nothing was loaded',
      });
    }
    planned.push({
      configBytes,
      id: config.digest,
      layers: item.Layers.map((name) => ({ name, member: contents.get(name, 'layer') })),
      tags: item.RepoTags.map(normalizeTag),
    });
  }
  return planned;
}

async function planFromIndex(contents: ArchiveContents): Promise<PlannedImage[]> {
  const planned = new Map<string, PlannedImage>();
  const visit = async (descriptor: Descriptor, tag: string | undefined, depth: number): Promise<void> => {
    if (depth > 4) throw new EngineError('invalid', 'index.json nests indexes too deeply');
    const blob = contents.blob(descriptor.digest, `blob ${descriptor.digest}`);
    if (blob.size !== descriptor.size) {
      throw new EngineError('invalid', `blob ${descriptor.digest} has ${blob.size} bytes, not ${descriptor.size}`);
    }
    const doc = parseJsonDocument(await fs.readFile(blob.file, 'utf8'), descriptor.digest);
    const mediaType = typeof doc.mediaType === 'string' ? doc.mediaType : descriptor.mediaType;
    if (isIndexType(mediaType)) {
      for (const child of descriptors(doc, 'manifests', descriptor.digest)) {
        if (isAttestation(child)) continue;
        if (child.platform?.os !== undefined && child.platform.os !== 'linux') continue;
        await visit(child, tag ?? tagFromAnnotations(child.annotations), depth + 1);
      }
      return;
    }
    if (!isManifestType(mediaType)) return; // not an image (e.g. an artifact)
    const configDesc = checkDescriptor(doc.config, `manifest ${descriptor.digest} config`);
    const config = contents.blob(configDesc.digest, 'image config');
    const existing = planned.get(config.digest);
    if (existing !== undefined) {
      if (tag !== undefined && !existing.tags.includes(tag)) existing.tags.push(tag);
      return;
    }
    planned.set(config.digest, {
      configBytes: await fs.readFile(config.file),
      id: config.digest,
      layers: descriptors(doc, 'layers', `manifest ${descriptor.digest}`).map((layer) => {
        const name = `blobs/sha256/${hexOf(layer.digest)}`;
        return { name, member: contents.get(name, 'layer') };
      }),
      tags: tag !== undefined ? [tag] : [],
    });
  };
  const index = parseJsonDocument(await contents.text('index.json', 'index.json'), 'index.json');
  for (const descriptor of descriptors(index, 'manifests', 'index.json')) {
    if (isAttestation(descriptor)) continue;
    await visit(descriptor, tagFromAnnotations(descriptor.annotations), 0);
  }
  return [...planned.values()];
}

/** Checks each planned image's config against its layers (count and DiffIDs). */
async function checkImages(images: PlannedImage[]): Promise<void> {
  const checked = new Map<string, string>();
  for (const image of images) {
    let config: Partial<ImageConfigFile>;
    try {
      config = JSON.parse(image.configBytes.toString('utf8')) as Partial<ImageConfigFile>;
    } catch {
      throw new EngineError('invalid', `the config of image ${image.id} is not JSON`);
    }
    const diffIds = config.rootfs?.diff_ids;
    if (!Array.isArray(diffIds) || diffIds.length !== image.layers.length) {
      throw new EngineError(
        'invalid',
        `image ${image.id} lists ${Array.isArray(diffIds) ? diffIds.length : 0} DiffIDs for ${image.layers.length} layers`,
        { hint: 'the archive is corrupt; nothing was loaded' },
      );
    }
    image.diffIds = diffIds;
    for (const [i, layer] of image.layers.entries()) {
      const diffId = checked.get(layer.member.file) ?? (await layerDiffId(layer.member, layer.name));
      checked.set(layer.member.file, diffId);
      if (diffId !== diffIds[i]) {
        throw new EngineError(
          'invalid',
          `archive entry "${layer.name}" does not match the image's DiffID ${String(diffIds[i])} (it is ${diffId})`,
          { hint: 'the archive is corrupt or was tampered with; nothing was loaded' },
        );
      }
    }
  }
}

/**
 * `docker load`: reads a docker-archive or OCI image-layout archive (plain or gzip) and adds its images. Every
 * digest, DiffID and entry is checked before anything is added; a bad archive adds nothing.
 */
export async function loadImages(store: ImageStore, input: AsyncIterable<Uint8Array>): Promise<LoadedImage[]> {
  await fs.mkdir(path.join(store.paths.root, 'tmp'), { recursive: true, mode: 0o700 });
  // named after this process: a sweep removes it once this process is gone (ImageStore.checkUnreferenced)
  const start = (await processStartTime(process.pid)) ?? 0;
  const tmp = await fs.mkdtemp(path.join(store.paths.root, 'tmp', `load-${process.pid}.${start}-`));
  try {
    const contents = await readArchive(input, tmp);
    checkBlobDigests(contents);
    const layout = detectArchiveLayout(contents.members.keys());
    if (layout === undefined) {
      throw new EngineError('invalid', 'the archive has neither manifest.json nor index.json', {
        hint: 'give a file made by docker save, tsfig image save or an OCI image-layout archive',
      });
    }
    const images = layout === 'docker' ? await planFromManifestJson(contents) : await planFromIndex(contents);
    if (images.length === 0) throw new EngineError('invalid', 'the archive holds no image for linux');
    await checkImages(images);

    // under a claim: what it adds before each image is written is never swept while it runs
    return await store.withClaim('load', async () => {
      const loaded: LoadedImage[] = [];
      for (const image of images) {
        let parent: string | null = null;
        for (const [i, layer] of image.layers.entries()) {
          const record = await store.addLayer(createReadStream(layer.member.file), parent, image.diffIds?.[i]);
          parent = record.chainId;
        }
        const [first, ...rest] = image.tags;
        const record = await store.addImage(image.configBytes, { reference: first, expectedId: image.id });
        for (const tag of rest) await store.tag(record.id, tag);
        loaded.push({ id: record.id, tags: image.tags.map(familiarize) });
      }
      return loaded;
    });
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}
