import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { processStartTime } from '../containers/liveness.js';
import { EngineError, isErrno } from '../errors.js';
import { pathExists, readJson, syncDir, writeFileAtomic, writeJsonAtomic } from '../state/atomic.js';
import { withLock } from '../state/lock.js';
import { stopPoint } from '../state/stop-point.js';
import { currentClaim, ImageClaim, readClaims, type ClaimKind } from './claims.js';
import type { EnginePaths } from '../state/paths.js';
import { applyChanges } from './changes.js';
import { chainIds as computeChainIds, unpackLayer } from './layer.js';
import { packDirectory } from '../layers/pack.js';
import { TAR_SPLIT_FILE } from '../layers/tarsplit.js';
import { DEFAULT_TAG, familiarize, formatReference, parseReference, parseTagReference } from './reference.js';
import type {
  ContainerConfig,
  ImageConfigFile,
  ImageRecord,
  ImportOptions,
  ImportSource,
  LayerRecord,
  RemoveAction,
} from './types.js';

/** A leftover in the image store (`system check`). */
export interface StoreFinding {
  readonly kind: 'layer' | 'blob' | 'tmp' | 'claim';
  readonly name: string;
  readonly problem: string;
}

/** Finds the names of containers using an image (by id); a non-empty answer blocks removal without force. */
export type IsInUse = (imageId: string) => Promise<string[]>;

export interface RemoveOptions {
  /** Remove even when several tags point to the image; untag (but keep) an image containers use. */
  force?: boolean;
  isInUse?: IsInUse | undefined;
}

/** `docker image inspect`'s shape. */
export interface ImageInspect {
  Id: string;
  RepoTags: string[];
  RepoDigests: string[];
  Parent: string;
  Comment: string;
  Created: string;
  Architecture: string;
  Os: string;
  Config: {
    User: string;
    ExposedPorts: Record<string, Record<string, never>> | null;
    Env: string[] | null;
    Cmd: string[] | null;
    Entrypoint: string[] | null;
    Volumes: Record<string, Record<string, never>> | null;
    WorkingDir: string;
    Labels: Record<string, string> | null;
    StopSignal: string;
  };
  RootFS: { Type: 'layers'; Layers: string[] };
  Size: number;
}

const STALE_TMP_MS = 60 * 60 * 1000;

function hexOf(digest: string): string {
  return digest.replace(/^sha256:/, '');
}

function sha256(data: string | Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Node's arch as an OCI/Go architecture. */
function goArch(): string {
  const map: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le' };
  return map[process.arch] ?? process.arch;
}

function notFound(ref: string): EngineError {
  return new EngineError('not-found', `no such image: ${ref}`, {
    hint: 'list images with: tsfig image ls (or add one with: tsfig image import FILE|DIR|- NAME[:TAG])',
  });
}

/**
 * The content-addressed image store under the engine root:
 * - `blobs/sha256/<hex>`: config blobs, written only once their sha256 is verified;
 * - `layers/<chainid-hex>/{diff/,layer.json}`: each layer unpacked once and shared; `layer.json` is written last,
 *   atomically, and is what marks the layer complete;
 * - `images/<hex>.json`: the images present (id = sha256 of the config blob);
 * - `refs.json`: `{"docker.io/library/busybox:latest": "sha256:..."}`.
 * Every change to layers, images and refs is made under one lock of the root, so a crash or a concurrent command
 * never sees a ref to a missing image or an image with a missing layer.
 */
export class ImageStore {
  readonly paths: EnginePaths;
  private readonly tmpDir: string;
  private readonly imagesDir: string;

  constructor(paths: EnginePaths) {
    this.paths = paths;
    this.tmpDir = path.join(paths.root, 'tmp');
    this.imagesDir = paths.images;
  }

  private get lockName(): string {
    return `images:${this.paths.root}`;
  }

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    return withLock(this.lockName, fn);
  }

  private async ensureDirs(): Promise<void> {
    for (const dir of [this.paths.blobs, this.paths.layers, this.imagesDir, this.tmpDir]) {
      await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    }
  }

  // ---- blobs -------------------------------------------------------------------------------------------------

  blobPath(digest: string): string {
    return path.join(this.paths.blobs, hexOf(digest));
  }

  /** Stores a blob; its sha256 is checked against expected (when given) before it is renamed into place. */
  async putBlob(data: Uint8Array, expected?: string): Promise<string> {
    const digest = sha256(data);
    if (expected !== undefined && digest !== expected) {
      throw new EngineError('invalid', `blob digest mismatch: expected ${expected}, got ${digest}`, {
        hint: 'the data is corrupt; nothing was stored',
      });
    }
    await this.ensureDirs();
    const file = this.blobPath(digest);
    if (!(await pathExists(file))) await writeFileAtomic(file, data, 0o644);
    return digest;
  }

  // ---- layers ------------------------------------------------------------------------------------------------

  private layerDir(chainId: string): string {
    return path.join(this.paths.layers, hexOf(chainId));
  }

  /** The record of a complete layer; undefined when absent or half-made (no layer.json). */
  async layer(chainId: string): Promise<LayerRecord | undefined> {
    return readJson<LayerRecord>(path.join(this.layerDir(chainId), 'layer.json'));
  }

  /**
   * Unpacks a layer stream (gzip or plain tar) on top of parent (a chain id, null for a base layer) unless that
   * layer is already complete, and returns its record. Unpacking happens in a temp dir; the commit (rename, then
   * layer.json) happens under the store lock. Must be called with the lock NOT held.
   *
   * `beforeCommit` runs once the layer is unpacked and its DiffID checked, before the commit; when it throws, nothing
   * is committed (its temp dir is removed). A pull unpacks several layers while they download, and waits there for
   * the blob's digest to be verified and for the parent layer to be committed.
   */
  async addLayer(
    source: AsyncIterable<Uint8Array>,
    parent: string | null,
    expectedDiffId?: string,
    options: { beforeCommit?: (() => Promise<void>) | undefined } = {},
  ): Promise<LayerRecord> {
    if (expectedDiffId !== undefined) {
      const chainId = this.chainOf(parent, expectedDiffId);
      if ((await this.layer(chainId)) !== undefined) {
        // claimed under the lock, so that no sweep removes it before the image that will use it is written
        const known = await this.locked(async () => {
          const again = await this.layer(chainId);
          if (again !== undefined) await this.claimItem('layers', hexOf(chainId));
          return again;
        });
        if (known !== undefined) return known;
      }
    }
    await this.ensureDirs();
    // named after this process (as pulls' downloads), so a sweep can tell a dead process's from a live one's
    const start = (await processStartTime(process.pid)) ?? 0;
    const tmp = await fs.mkdtemp(path.join(this.tmpDir, `layer-${process.pid}.${start}-`));
    try {
      const diff = path.join(tmp, 'diff');
      await fs.mkdir(diff, { mode: 0o755 });
      const result = await unpackLayer(source, diff, expectedDiffId, { tarSplit: path.join(tmp, TAR_SPLIT_FILE) });
      await options.beforeCommit?.();
      return await this.locked(() => this.commitLayer(tmp, parent, result.diffId, result.size));
    } finally {
      await fs.rm(tmp, { recursive: true, force: true });
    }
  }

  private chainOf(parent: string | null, diffId: string): string {
    return parent === null ? diffId : (computeChainIds([parent, diffId])[1] ?? diffId);
  }

  /** Moves an unpacked temp layer into place (lock held). An existing complete layer is reused as is. */
  private async commitLayer(tmp: string, parent: string | null, diffId: string, size: number): Promise<LayerRecord> {
    if (parent !== null && (await this.layer(parent)) === undefined) {
      throw new EngineError('not-found', `parent layer ${parent} is missing`, {
        hint: 'pull or import the base again',
      });
    }
    const chainId = this.chainOf(parent, diffId);
    await this.claimItem('layers', hexOf(chainId)); // before it is in place: claimed, so no sweep takes it
    const existing = await this.layer(chainId);
    if (existing !== undefined) return existing;
    const dir = this.layerDir(chainId);
    await fs.rm(dir, { recursive: true, force: true }); // a half-made layer from a crash: redo it
    await fs.rename(tmp, dir);
    await syncDir(this.paths.layers);
    const record: LayerRecord = { diffId, chainId, parent, size, created: new Date().toISOString() };
    await writeJsonAtomic(path.join(dir, 'layer.json'), record);
    return record;
  }

  // ---- claims ------------------------------------------------------------------------------------------------

  /** The claim of this process when no operation opened one (callers outside withClaim): it lives until exit. */
  private processClaim: Promise<ImageClaim> | undefined;

  /** The claim what this code writes goes to: its operation's (withClaim), else this process's. */
  private async activeClaim(): Promise<ImageClaim> {
    const claim = currentClaim.getStore();
    if (claim !== undefined && claim.root === this.paths.root) return claim;
    if (this.processClaim === undefined) {
      this.processClaim = ImageClaim.open(this.paths.root, 'process');
      this.processClaim.catch(() => (this.processClaim = undefined));
    }
    return this.processClaim;
  }

  /** Lists a layer or blob in the active claim before it is written or reused (store lock held). */
  private async claimItem(kind: ClaimKind, hex: string): Promise<void> {
    await (await this.activeClaim()).add(kind, hex);
  }

  /**
   * Runs an operation that adds layers and images (pull, import, load, build, commit) under a claim of its own
   * (engine/images/claims.ts): what it writes is claimed before it is in place, so no sweep removes it while it
   * runs; the claim goes once fn is done, its images written. Before, what operations killed earlier left (a dead
   * claim's layers and blobs no image uses) is removed. Nested calls share the outer claim.
   */
  async withClaim<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    if (currentClaim.getStore()?.root === this.paths.root) return fn();
    await this.sweepAbandoned();
    const claim = await ImageClaim.open(this.paths.root, operation);
    try {
      return await currentClaim.run(claim, fn);
    } finally {
      await claim.release();
    }
  }

  /**
   * Which of the layers (chain ids) are complete in the store; those are claimed, so the image that uses them can be
   * written later (a pull skips the layers it has).
   */
  async claimPresentLayers(chainIds: readonly string[]): Promise<boolean[]> {
    return this.locked(async () => {
      const present: boolean[] = [];
      for (const chainId of chainIds) {
        const here = (await this.layer(chainId)) !== undefined;
        if (here) await this.claimItem('layers', hexOf(chainId));
        present.push(here);
      }
      return present;
    });
  }

  /**
   * When an operation died with a claim (its record left, its lock free), removes the layers and blobs no image
   * uses and no live claim lists, then the dead records. Cheap when there is none: one listing of image-claims/.
   */
  async sweepAbandoned(): Promise<void> {
    if ((await readClaims(this.paths.root)).dead.length === 0) return;
    await this.locked(() => this.scanUnreferenced(true));
  }

  // ---- images and refs ---------------------------------------------------------------------------------------

  /** refs.json as last read, with the identity of the file it came from (atomic writes replace the inode). */
  private refsCache: { readonly key: string; readonly refs: Readonly<Record<string, string>> } | undefined;

  private async readRefs(): Promise<Record<string, string>> {
    const stat = await fs.stat(this.paths.refsFile).catch(() => undefined);
    if (stat === undefined) return {};
    const key = `${stat.ino}:${stat.size}:${stat.mtimeMs}`;
    if (this.refsCache?.key !== key) {
      this.refsCache = { key, refs: (await readJson<Record<string, string>>(this.paths.refsFile)) ?? {} };
    }
    return { ...this.refsCache.refs };
  }

  private async writeRefs(refs: Record<string, string>): Promise<void> {
    const sorted = Object.fromEntries(Object.entries(refs).sort(([a], [b]) => a.localeCompare(b)));
    await fs.mkdir(path.dirname(this.paths.refsFile), { recursive: true });
    await writeJsonAtomic(this.paths.refsFile, sorted);
  }

  /** `repodigests.json`: `{"registry/name@sha256:<manifest digest>": "<image id>"}`, written by pulls. */
  private get repoDigestsFile(): string {
    return path.join(this.paths.root, 'repodigests.json');
  }

  private async readRepoDigests(): Promise<Record<string, string>> {
    return (await readJson<Record<string, string>>(this.repoDigestsFile)) ?? {};
  }

  private async writeRepoDigests(map: Record<string, string>): Promise<void> {
    const sorted = Object.fromEntries(Object.entries(map).sort(([a], [b]) => a.localeCompare(b)));
    await writeJsonAtomic(this.repoDigestsFile, sorted);
  }

  private async imageIds(): Promise<string[]> {
    let names: string[];
    try {
      names = await fs.readdir(this.imagesDir);
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return [];
      throw error;
    }
    return names.filter((name) => /^[0-9a-f]{64}\.json$/.test(name)).map((name) => `sha256:${name.slice(0, 64)}`);
  }

  private async hasImage(id: string): Promise<boolean> {
    return pathExists(path.join(this.imagesDir, `${hexOf(id)}.json`));
  }

  /**
   * Adds an image from its config JSON (exact bytes; the id is their sha256) whose layers are already in the
   * store, and tags it with reference. Must be called with the lock held.
   */
  private async commitImage(configBytes: Uint8Array, tagKey: string | undefined): Promise<string> {
    const config = JSON.parse(Buffer.from(configBytes).toString('utf8')) as ImageConfigFile;
    for (const chainId of computeChainIds(config.rootfs.diff_ids)) {
      if ((await this.layer(chainId)) === undefined) {
        throw new EngineError('not-found', `layer ${chainId} of the image is not in the store`, {
          hint: 'add the layers first, bottom first (ImageStore.addLayer)',
        });
      }
    }
    await this.claimItem('blobs', hexOf(sha256(configBytes)));
    const id = await this.putBlob(configBytes);
    stopPoint('image-after-blob');
    const marker = path.join(this.imagesDir, `${hexOf(id)}.json`);
    if (!(await pathExists(marker))) await writeJsonAtomic(marker, { id, added: new Date().toISOString() });
    if (tagKey !== undefined) {
      const refs = await this.readRefs();
      if (refs[tagKey] !== id) {
        refs[tagKey] = id;
        await this.writeRefs(refs);
      }
    }
    return id;
  }

  /**
   * What an image's config says, by id: content-addressed, so it never changes while the image exists (recordOf
   * checks it still does). An `up` resolved the same image three times per container.
   */
  private readonly configs = new Map<
    string,
    { config: ImageConfigFile; diffIds: string[]; chainIds: string[]; size: number }
  >();

  private async recordOf(id: string, refs?: Record<string, string>): Promise<ImageRecord> {
    let known = this.configs.get(id);
    if (known !== undefined && !(await pathExists(this.blobPath(id)))) {
      this.configs.delete(id);
      known = undefined;
    }
    if (known === undefined) {
      let text: string;
      try {
        text = await fs.readFile(this.blobPath(id), 'utf8');
      } catch (error) {
        if (isErrno(error, 'ENOENT')) throw notFound(id);
        throw error;
      }
      const config = JSON.parse(text) as ImageConfigFile;
      const chainIds = computeChainIds(config.rootfs.diff_ids);
      let size = 0;
      for (const chainId of chainIds) size += (await this.layer(chainId))?.size ?? 0;
      known = { config, diffIds: config.rootfs.diff_ids, chainIds, size };
      this.configs.set(id, known);
    }
    const { config, diffIds, chainIds, size } = known;
    const allRefs = refs ?? (await this.readRefs());
    const repoTags = Object.entries(allRefs)
      .filter(([, target]) => target === id)
      .map(([key]) => familiarize(key))
      .sort();
    return { id, repoTags, created: config.created ?? '', config, diffIds, chainIds, size };
  }

  /** Resolves a reference to an image id: NAME[:TAG], NAME@DIGEST, full id, or short id (>= 4 hex, unambiguous). */
  private async resolveId(input: string): Promise<{ id: string; tagKey: string | undefined }> {
    const idMatch = /^(?:sha256:)?([0-9a-f]{4,64})$/.exec(input);
    if (input.startsWith('sha256:') && idMatch === null) {
      throw new EngineError('invalid', `invalid image id "${input}": sha256: must be followed by 4-64 lowercase hex`);
    }
    if (!input.startsWith('sha256:')) {
      let parsed;
      try {
        parsed = parseReference(input);
      } catch (error) {
        if (idMatch === null) throw error;
      }
      if (parsed !== undefined) {
        if (parsed.digest !== undefined) {
          if (await this.hasImage(parsed.digest)) return { id: parsed.digest, tagKey: undefined };
          const pulled = (await this.readRepoDigests())[formatReference({ ...parsed, tag: undefined })];
          if (pulled !== undefined && (await this.hasImage(pulled))) return { id: pulled, tagKey: undefined };
          throw notFound(input);
        }
        const tagKey = formatReference({ ...parsed, tag: parsed.tag ?? DEFAULT_TAG });
        const target = (await this.readRefs())[tagKey];
        if (target !== undefined) return { id: target, tagKey };
      }
    }
    if (idMatch !== null) {
      const prefix = idMatch[1] ?? '';
      // A full id (what containers record) is one lookup, not a listing of every image.
      if (prefix.length === 64 && (await this.hasImage(`sha256:${prefix}`))) {
        return { id: `sha256:${prefix}`, tagKey: undefined };
      }
      const matches = (await this.imageIds()).filter((id) => hexOf(id).startsWith(prefix));
      if (matches.length === 1 && matches[0] !== undefined) return { id: matches[0], tagKey: undefined };
      if (matches.length > 1) {
        throw new EngineError('conflict', `short id "${input}" matches ${matches.length} images`, {
          hint: 'give more characters of the id (full ids: tsfig image ls --no-trunc)',
        });
      }
    }
    throw notFound(input);
  }

  /** The image a reference names; not-found EngineError otherwise. */
  async resolve(ref: string): Promise<ImageRecord> {
    const { id } = await this.resolveId(ref);
    return this.recordOf(id);
  }

  /** Every image, newest first. */
  async list(): Promise<ImageRecord[]> {
    const refs = await this.readRefs();
    const records: ImageRecord[] = [];
    for (const id of await this.imageIds()) {
      try {
        records.push(await this.recordOf(id, refs));
      } catch (error) {
        if (!(error instanceof EngineError && error.kind === 'not-found')) throw error;
      }
    }
    return records.sort((a, b) => b.created.localeCompare(a.created) || a.id.localeCompare(b.id));
  }

  /** `docker image inspect` for one image. */
  async inspect(ref: string): Promise<ImageInspect> {
    const image = await this.resolve(ref);
    const config: ContainerConfig = image.config.config ?? {};
    const history = image.config.history ?? [];
    return {
      Id: image.id,
      RepoTags: [...image.repoTags],
      RepoDigests: Object.entries(await this.readRepoDigests())
        .filter(([, target]) => target === image.id)
        .map(([key]) => familiarize(key))
        .sort(),
      Parent: '',
      Comment: history.at(-1)?.comment ?? '',
      Created: image.created,
      Architecture: image.config.architecture,
      Os: image.config.os,
      Config: {
        User: config.User ?? '',
        ExposedPorts: config.ExposedPorts ?? null,
        Env: config.Env ?? null,
        Cmd: config.Cmd ?? null,
        Entrypoint: config.Entrypoint ?? null,
        Volumes: config.Volumes ?? null,
        WorkingDir: config.WorkingDir ?? '',
        Labels: config.Labels ?? null,
        StopSignal: config.StopSignal ?? '',
      },
      RootFS: { Type: 'layers', Layers: [...image.diffIds] },
      Size: image.size,
    };
  }

  /** The layers' `diff` dirs, topmost first, as overlay's lowerdir wants them. */
  layerDirs(image: ImageRecord): string[] {
    return [...image.chainIds].reverse().map((chainId) => path.join(this.layerDir(chainId), 'diff'));
  }

  /** Adds tag newRef (NAME[:TAG]) to the image ref names. */
  async tag(ref: string, newRef: string): Promise<void> {
    const target = parseTagReference(newRef);
    await this.locked(async () => {
      const { id } = await this.resolveId(ref);
      const refs = await this.readRefs();
      refs[formatReference(target)] = id;
      await this.writeRefs(refs);
    });
  }

  /**
   * Adds an image from the exact bytes of its OCI config (the id is their sha256, checked against expectedId when
   * given) whose layers are already in the store (addLayer, bottom first), and tags it with reference. For pull and
   * build; importRootfs does both steps itself.
   */
  async addImage(
    configBytes: Uint8Array,
    options: {
      reference?: string | undefined;
      expectedId?: string | undefined;
      /** `NAME@sha256:<manifest digest>` the image was pulled as: it then resolves to the image (RepoDigests). */
      repoDigest?: string | undefined;
    } = {},
  ): Promise<ImageRecord> {
    const target = options.reference !== undefined ? parseTagReference(options.reference) : undefined;
    const pulledAs = options.repoDigest !== undefined ? parseReference(options.repoDigest) : undefined;
    if (pulledAs !== undefined && pulledAs.digest === undefined) {
      throw new EngineError('invalid', `"${options.repoDigest}" is not a NAME@DIGEST reference`);
    }
    const id = sha256(configBytes);
    if (options.expectedId !== undefined && id !== options.expectedId) {
      throw new EngineError('invalid', `image config digest mismatch: expected ${options.expectedId}, got ${id}`, {
        hint: 'the config is corrupt; nothing was stored',
      });
    }
    let config: Partial<ImageConfigFile>;
    try {
      config = JSON.parse(Buffer.from(configBytes).toString('utf8')) as Partial<ImageConfigFile>;
    } catch (error) {
      throw new EngineError('invalid', 'the image config is not JSON', { cause: error });
    }
    const diffIds: unknown = config.rootfs?.diff_ids;
    if (!Array.isArray(diffIds) || !diffIds.every((d) => typeof d === 'string' && /^sha256:[0-9a-f]{64}$/.test(d))) {
      throw new EngineError('invalid', 'the image config has no valid rootfs.diff_ids', {
        hint: 'rootfs.diff_ids must list the sha256 of each uncompressed layer, bottom first',
      });
    }
    await this.ensureDirs();
    stopPoint('image-before-record');
    await this.locked(async () => {
      await this.commitImage(configBytes, target !== undefined ? formatReference(target) : undefined);
      if (pulledAs !== undefined) {
        const key = formatReference({ ...pulledAs, tag: undefined });
        const map = await this.readRepoDigests();
        if (map[key] !== id) {
          map[key] = id;
          await this.writeRepoDigests(map);
        }
      }
    });
    return this.recordOf(id);
  }

  // ---- import ------------------------------------------------------------------------------------------------

  private async sourceBytes(source: ImportSource): Promise<AsyncIterable<Uint8Array>> {
    if (source.kind === 'stream') return source.stream as AsyncIterable<Uint8Array>;
    let stat;
    try {
      stat = await fs.stat(source.path);
    } catch (error) {
      if (isErrno(error, 'ENOENT')) {
        throw new EngineError('not-found', `${source.path} does not exist`, {
          hint: 'give a tar file (plain or gzip), a directory, or - for stdin',
        });
      }
      throw error;
    }
    if (source.kind === 'dir') {
      if (!stat.isDirectory()) throw new EngineError('invalid', `${source.path} is not a directory`);
      return packDirectory(source.path);
    }
    if (stat.isDirectory()) throw new EngineError('invalid', `${source.path} is a directory, not a tar file`);
    return createReadStream(source.path);
  }

  /**
   * `docker import`: one layer from a tar file (plain or gzip), a directory or a stream, with `--change`
   * instructions applied to an empty config. Importing the same content with the same options gives the same
   * image id (the creation time is the layer's first unpack). A corrupt or unsafe tarball changes nothing.
   */
  async importRootfs(source: ImportSource, options: ImportOptions = {}): Promise<ImageRecord> {
    return this.withClaim('import', () => this.importUnderClaim(source, options));
  }

  private async importUnderClaim(source: ImportSource, options: ImportOptions): Promise<ImageRecord> {
    const target = options.reference !== undefined ? parseTagReference(options.reference) : undefined;
    const containerConfig = applyChanges({}, options.changes ?? []);
    const bytes = await this.sourceBytes(source);
    const layer = await this.addLayer(bytes, null);
    const created = layer.created ?? new Date().toISOString();
    const sourceLabel = source.kind === 'stream' ? '-' : source.path;
    const configFile: ImageConfigFile = {
      architecture: goArch(),
      config: containerConfig,
      created,
      history: [{ created, comment: options.message ?? `Imported from ${sourceLabel}` }],
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: [layer.diffId] },
    };
    const configBytes = Buffer.from(JSON.stringify(configFile));
    stopPoint('image-before-record');
    const id = await this.locked(async () => {
      if ((await this.layer(layer.chainId)) === undefined) {
        throw new EngineError('conflict', 'the imported layer was removed while importing', { hint: 'import again' });
      }
      return this.commitImage(configBytes, target !== undefined ? formatReference(target) : undefined);
    });
    return this.recordOf(id);
  }

  // ---- removal -----------------------------------------------------------------------------------------------

  /**
   * `docker rmi`: by NAME[:TAG] removes that tag, and the image when it was the last; by id removes the image
   * (refused when several tags name it, unless force). An image containers use is refused with their names, or with
   * force only untagged.
   */
  async remove(ref: string, options: RemoveOptions = {}): Promise<RemoveAction[]> {
    // under a claim: a removal killed between an image and its layers leaves a dead claim, which the next sweep sees
    return this.withClaim('rm', () => this.removeUnderClaim(ref, options));
  }

  private async removeUnderClaim(ref: string, options: RemoveOptions): Promise<RemoveAction[]> {
    const force = options.force ?? false;
    return this.locked(async () => {
      const { id, tagKey } = await this.resolveId(ref);
      const refs = await this.readRefs();
      const tags = Object.keys(refs).filter((key) => refs[key] === id);
      const actions: RemoveAction[] = [];
      if (tagKey !== undefined && tags.length > 1) {
        delete refs[tagKey];
        await this.writeRefs(refs);
        return [{ kind: 'untagged', ref: familiarize(tagKey) }];
      }
      if (tagKey === undefined && tags.length > 1 && !force) {
        throw new EngineError('conflict', `image ${hexOf(id).slice(0, 12)} is referenced by ${tags.length} tags`, {
          hint: `remove the tags one by one (tsfig image rm ${familiarize(tags[0] ?? '')}) or use -f`,
        });
      }
      const users = (await options.isInUse?.(id)) ?? [];
      if (users.length > 0 && !force) {
        throw new EngineError('conflict', `image ${ref} is in use by container(s) ${users.join(', ')}`, {
          hint: `remove the container(s) first (tsfig rm ${users.join(' ')}) or use -f to only untag it`,
        });
      }
      for (const key of tags) {
        delete refs[key];
        actions.push({ kind: 'untagged', ref: familiarize(key) });
      }
      if (tags.length > 0) await this.writeRefs(refs);
      if (users.length > 0) return actions; // forced: untagged only, the containers keep their layers
      await this.deleteImage(id);
      actions.push({ kind: 'deleted', id });
      return actions;
    });
  }

  /** Deletes an untagged image and its layers no other image uses (lock held). */
  private async deleteImage(id: string): Promise<void> {
    const record = await this.recordOf(id, {});
    await fs.rm(path.join(this.imagesDir, `${hexOf(id)}.json`), { force: true });
    await syncDir(this.imagesDir);
    const stillUsed = new Set<string>();
    for (const other of await this.imageIds()) {
      if (other === id) continue;
      try {
        for (const chainId of (await this.recordOf(other, {})).chainIds) stillUsed.add(chainId);
      } catch (error) {
        if (!(error instanceof EngineError && error.kind === 'not-found')) throw error;
      }
    }
    await fs.rm(this.blobPath(id), { force: true });
    const pulled = await this.readRepoDigests();
    const kept = Object.fromEntries(Object.entries(pulled).filter(([, target]) => target !== id));
    if (Object.keys(kept).length !== Object.keys(pulled).length) await this.writeRepoDigests(kept);
    for (const chainId of record.chainIds) {
      if (stillUsed.has(chainId)) continue;
      // layer.json goes first: a crash in between leaves a half layer, which the next commit redoes.
      await fs.rm(path.join(this.layerDir(chainId), 'layer.json'), { force: true });
      await fs.rm(this.layerDir(chainId), { recursive: true, force: true });
    }
  }

  /**
   * Removes dangling images (no tag) that no container uses, then what crashes left: layers and blobs no image uses
   * and no live operation claims, half-made layers, temp dirs of dead processes. Returns the ids of the images deleted.
   */
  async prune(options: { isInUse?: IsInUse | undefined } = {}): Promise<string[]> {
    return this.withClaim('prune', () =>
      this.locked(async () => {
        const refs = await this.readRefs();
        const tagged = new Set(Object.values(refs));
        const deleted: string[] = [];
        for (const id of await this.imageIds()) {
          if (tagged.has(id)) continue;
          if (((await options.isInUse?.(id)) ?? []).length > 0) continue;
          await this.deleteImage(id);
          deleted.push(id);
        }
        await this.scanUnreferenced(true);
        return deleted;
      }),
    );
  }

  /**
   * What crashes leave in the store (`system check`): half-made layers (no layer.json; commits hold the lock, so only
   * a crash leaves one), layers no image uses and blobs no image marker refers to that no live operation claims (an
   * operation killed between a layer or config blob and its image, or a crash while deleting an image), temp files
   * of interrupted blob writes, temp entries of dead processes, and claim records of dead processes. With repair
   * they are deleted.
   */
  async checkUnreferenced(options: { readonly repair: boolean }): Promise<StoreFinding[]> {
    return this.locked(() => this.scanUnreferenced(options.repair));
  }

  /** checkUnreferenced's work; the store lock is held (so no layer, blob or record is being added meanwhile). */
  private async scanUnreferenced(repair: boolean): Promise<StoreFinding[]> {
    const found: StoreFinding[] = [];
    const claims = await readClaims(this.paths.root);
    const used = new Set<string>();
    const markers = new Set<string>();
    for (const id of await this.imageIds()) {
      markers.add(hexOf(id));
      try {
        for (const chainId of (await this.recordOf(id, {})).chainIds) used.add(hexOf(chainId));
      } catch (error) {
        if (!(error instanceof EngineError && error.kind === 'not-found')) throw error;
      }
    }
    for (const name of await fs.readdir(this.paths.layers).catch(() => [] as string[])) {
      if (!/^[0-9a-f]{64}$/.test(name)) continue;
      const dir = path.join(this.paths.layers, name);
      const marker = await fs.lstat(path.join(dir, 'layer.json')).catch(() => undefined);
      let problem: string | undefined;
      if (marker === undefined) problem = 'half-made layer (no layer.json)';
      else if (!used.has(name) && !claims.layers.has(name)) problem = 'layer no image uses';
      if (problem === undefined) continue;
      found.push({ kind: 'layer', name, problem });
      if (repair) {
        await fs.rm(path.join(dir, 'layer.json'), { force: true });
        await fs.rm(dir, { recursive: true, force: true });
      }
    }
    for (const name of await fs.readdir(this.paths.blobs).catch(() => [] as string[])) {
      if (markers.has(name) || claims.blobs.has(name)) continue;
      // blobs are written under the store lock (commitImage): a temp file now is an interrupted write's
      found.push({
        kind: 'blob',
        name,
        problem: /^[0-9a-f]{64}$/.test(name) ? 'blob no image refers to' : 'temp file of an interrupted write',
      });
      if (repair) await fs.rm(path.join(this.paths.blobs, name), { force: true });
    }
    for (const name of await fs.readdir(this.tmpDir).catch(() => [] as string[])) {
      const owner = /^[a-z]+-(\d+)\.(\d+)-/.exec(name);
      const stat = await fs.lstat(path.join(this.tmpDir, name)).catch(() => undefined);
      if (stat === undefined) continue;
      // entries of another naming (none are made any more) are left an hour
      const dead =
        owner !== null
          ? (await processStartTime(Number(owner[1]))) !== Number(owner[2])
          : Date.now() - stat.mtimeMs > STALE_TMP_MS;
      if (!dead) continue;
      found.push({ kind: 'tmp', name, problem: 'temp dir of a process that is gone' });
      if (repair) await fs.rm(path.join(this.tmpDir, name), { recursive: true, force: true });
    }
    for (const file of claims.dead) {
      found.push({ kind: 'claim', name: path.basename(file), problem: 'claim of an image operation that is gone' });
      // last: a sweep killed before this point is done again by the next one
      if (repair) await fs.rm(file, { force: true });
    }
    return found;
  }
}
