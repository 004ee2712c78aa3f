/**
 * `docker export` (a container's merged filesystem as one flat tar) and `docker commit` (a new image: the container's
 * image plus one layer made from its overlay upper dir, with Docker's whiteouts).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { upperDirLayer } from '../layers/capture.js';
import { withContainerOwners } from '../layers/ids.js';
import { LayerView, withMergedRootfs } from '../layers/rootfs.js';
import type { ContainerRecord } from '../containers/types.js';
import { EngineError } from '../errors.js';
import type { Engine } from '../index.js';
import { applyChanges } from './changes.js';
import { packDirectory } from '../layers/pack.js';
import type { ContainerConfig, HistoryEntry, ImageConfigFile, ImageRecord } from './types.js';

/** Files the runtime creates empty in the upper dir to mount over (not part of a commit unless the image has them). */
const STUB_FILES = ['etc/hosts', 'etc/resolv.conf', 'etc/hostname'];

function upperOf(engine: Engine, record: ContainerRecord): string {
  return path.join(engine.paths.containers, record.id, 'upper');
}

async function upperDir(engine: Engine, record: ContainerRecord): Promise<string> {
  const upper = upperOf(engine, record);
  const stat = await fs.stat(upper).catch(() => undefined);
  if (stat?.isDirectory() !== true) {
    throw new EngineError('not-found', `container ${record.name} has no filesystem (${upper} is missing)`);
  }
  return upper;
}

async function writeTo(out: Writable, chunk: Buffer): Promise<void> {
  if (out.destroyed || out.writableEnded) throw new EngineError('runtime', 'the output was closed while exporting');
  if (out.write(chunk)) return;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      out.off('drain', done);
      out.off('close', done);
      out.off('error', done);
      resolve();
    };
    out.on('drain', done);
    out.on('close', done);
    out.on('error', done);
  });
  if (out.destroyed) throw new EngineError('runtime', 'the output was closed while exporting');
}

/**
 * Writes the container's merged filesystem (its image's layers under its upper dir, whiteouts applied) to out as a
 * tar, read from a read-only overlay mounted in a private mount namespace. out is not ended.
 */
export async function exportContainer(engine: Engine, ref: string, out: Writable): Promise<void> {
  const record = await engine.containers.get(ref);
  const image = await engine.images.resolve(record.imageId);
  const upper = await upperDir(engine, record);
  const lower = [upper, ...engine.images.layerDirs(image)];
  await withMergedRootfs(lower, path.join(engine.paths.root, 'tmp'), async (root) => {
    // with a user namespace its upper dir holds host ids: the export shows the container's (as Docker's does)
    const tar =
      record.userns === undefined ? packDirectory(root) : withContainerOwners(packDirectory(root), record.userns);
    for await (const chunk of tar) await writeTo(out, chunk);
  });
}

export interface CommitOptions {
  /** NAME[:TAG] for the new image. */
  reference?: string | undefined;
  /** Dockerfile instructions applied to the config (`--change`). */
  changes?: readonly string[] | undefined;
  /** History comment (`--message`). */
  message?: string | undefined;
  /** `--author`. */
  author?: string | undefined;
}

function mergeEnv(base: readonly string[], extra: readonly string[]): string[] {
  const result = [...base];
  for (const entry of extra) {
    const key = entry.split('=')[0] ?? entry;
    const at = result.findIndex((e) => (e.split('=')[0] ?? e) === key);
    if (at >= 0) result[at] = entry;
    else result.push(entry);
  }
  return result;
}

/** The container's config as Docker's commit starts from it: the image's, with what the container was run with. */
export function containerConfigOf(imageConfig: ContainerConfig, record: ContainerRecord): ContainerConfig {
  const spec = record.spec;
  const config: ContainerConfig = JSON.parse(JSON.stringify(imageConfig)) as ContainerConfig;
  if (spec.entrypoint !== undefined) {
    if (spec.entrypoint.length > 0) config.Entrypoint = [...spec.entrypoint];
    else delete config.Entrypoint;
    if (spec.cmd === undefined) delete config.Cmd;
  }
  if (spec.cmd !== undefined) config.Cmd = [...spec.cmd];
  if (spec.env !== undefined && spec.env.length > 0) config.Env = mergeEnv(config.Env ?? [], spec.env);
  if (spec.workingDir !== undefined && spec.workingDir !== '') config.WorkingDir = spec.workingDir;
  if (spec.user !== undefined && spec.user !== '') config.User = spec.user;
  if (spec.labels !== undefined && Object.keys(spec.labels).length > 0) {
    config.Labels = { ...(config.Labels ?? {}), ...spec.labels };
  }
  return config;
}

/**
 * `docker commit`: a new image = the container's image + one layer of its changes (its upper dir, whiteouts as
 * `.wh.` files, the runtime's mount stubs left out, owners as the container sees them), with its config and changes
 * applied, tagged with reference.
 */
export async function commitContainer(engine: Engine, ref: string, options: CommitOptions = {}): Promise<ImageRecord> {
  const record = await engine.containers.get(ref);
  const image = await engine.images.resolve(record.imageId);
  const upper = await upperDir(engine, record);
  const lowerDirs = engine.images.layerDirs(image);

  const view = new LayerView(lowerDirs);
  const stubs = new Set<string>();
  const candidates = [...STUB_FILES, ...record.mounts.map((m) => m.destination.replace(/^\/+/, ''))];
  for (const candidate of candidates) {
    const full = path.join(upper, candidate);
    const stat = await fs.lstat(full).catch(() => undefined);
    if (stat === undefined) continue;
    const empty = stat.isFile() ? stat.size === 0 : stat.isDirectory() && (await fs.readdir(full)).length === 0;
    if (empty && (await view.lookup(`/${candidate}`)) === undefined) stubs.add(candidate);
  }

  // the config is made before the layer so a bad --change fails with nothing added
  const base = JSON.parse(await fs.readFile(engine.images.blobPath(image.id), 'utf8')) as ImageConfigFile;
  const containerConfig = applyChanges(containerConfigOf(base.config ?? {}, record), options.changes ?? []);

  const parent = image.chainIds.at(-1) ?? null;
  // under a claim: the layer is never swept before its image is written, and is if this process is killed first
  return engine.images.withClaim('commit', async () => {
    const layer = await engine.images.addLayer(
      upperDirLayer(upper, (entry) => stubs.has(entry.name), record.userns),
      parent,
    );
    const created = new Date().toISOString();
    const history: HistoryEntry & { author?: string } = { created };
    if (options.author !== undefined) history.author = options.author;
    if (options.message !== undefined) history.comment = options.message;
    const config: ImageConfigFile & { author?: string; container?: string } = {
      ...base,
      created,
      config: containerConfig,
      rootfs: { type: 'layers', diff_ids: [...image.diffIds, layer.diffId] },
      history: [...(base.history ?? []), history],
    };
    if (options.author !== undefined) config.author = options.author;
    else delete config.author;
    return engine.images.addImage(Buffer.from(JSON.stringify(config)), { reference: options.reference });
  });
}
