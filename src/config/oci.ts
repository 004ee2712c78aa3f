/**
 * Projects published as OCI artifacts (`tsfig publish`, `docker compose publish`) and loaded with
 * `-f oci://REGISTRY/REPO[:TAG]`. The format is docker compose's: artifactType `application/vnd.docker.compose.project`
 * (OCI 1.1; in OCI 1.0 the config media type `application/vnd.docker.compose.config.empty.v1+json` says it), one
 * layer `application/vnd.docker.compose.file+yaml` per project file (annotation `com.docker.compose.file`), and with
 * `--with-env` one layer `application/vnd.docker.compose.envfile` per env file, named `<sha256 of its path>.env`
 * (annotation `com.docker.compose.envfile`) as the published files' `env_file:` entries say.
 *
 * The loader is synchronous, so the CLI fetches every `oci://` file of its argv first (`fetchRemoteProjectFiles`),
 * into a cache directory per manifest digest ($XDG_CACHE_HOME/tsfig/oci/<hex>); `remoteProjectFiles` then maps the
 * reference to the local files.
 */
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isMap, isScalar, isSeq, parseDocument } from 'yaml';
import type { PulledArtifact } from '../../engine/registry/index.js';
import { TsfigError } from '../errors.js';

export const OCI_PREFIX = 'oci://';
export const COMPOSE_PROJECT_ARTIFACT_TYPE = 'application/vnd.docker.compose.project';
export const COMPOSE_EMPTY_CONFIG_MEDIA_TYPE = 'application/vnd.docker.compose.config.empty.v1+json';
export const COMPOSE_FILE_MEDIA_TYPE = 'application/vnd.docker.compose.file+yaml';
export const COMPOSE_ENVFILE_MEDIA_TYPE = 'application/vnd.docker.compose.envfile';
/** The compose version tsfig's artifacts say they follow (annotation `com.docker.compose.version`). */
export const COMPOSE_VERSION = '5.0.0';

const fetched = new Map<string, readonly string[]>();

/** The local files of an `oci://` reference fetched by this process; undefined when it was not fetched. */
export function remoteProjectFiles(reference: string): readonly string[] | undefined {
  return fetched.get(reference);
}

/** The `-f`/`--file` values of argv that are `oci://` references (before the command's own `--`). */
export function ociFileArguments(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index] ?? '';
    if (arg === '--') break;
    let value: string | undefined;
    if (arg === '-f' || arg === '--file') value = argv[++index];
    else if (arg.startsWith('--file=')) value = arg.slice('--file='.length);
    else if (arg.startsWith('-f') && arg.length > 2 && !arg.startsWith('--')) value = arg.slice(2);
    if (value?.startsWith(OCI_PREFIX) === true) out.push(value);
  }
  return out;
}

function cacheRoot(env: NodeJS.ProcessEnv): string {
  const base = env.XDG_CACHE_HOME !== undefined && env.XDG_CACHE_HOME !== '' ? env.XDG_CACHE_HOME : undefined;
  return path.join(base ?? path.join(os.homedir(), '.cache'), 'tsfig', 'oci');
}

/** A file name from an annotation: one plain path component, nothing that could leave the cache directory. */
function safeName(name: string | undefined, what: string): string {
  if (name === undefined || name === '' || name === '.' || name === '..' || /[/\\\0]/.test(name)) {
    throw new TsfigError('config', `invalid OCI artifact: ${what} names the file ${JSON.stringify(name ?? '')}`, {
      hint: 'the artifact was not published by docker compose or tsfig publish',
    });
  }
  return name;
}

/** Points each `env_file:` entry that names a published env file at its copy in the cache directory. */
function localiseEnvFiles(yamlText: string, envFiles: ReadonlySet<string>, dir: string): string {
  if (envFiles.size === 0) return yamlText;
  const doc = parseDocument(yamlText);
  const services: unknown = doc.get('services');
  if (!isMap(services)) return yamlText;
  const local = (value: unknown): string | undefined =>
    typeof value === 'string' && envFiles.has(value) ? path.join(dir, value) : undefined;
  for (const pair of services.items) {
    const service = pair.value;
    if (!isMap(service)) continue;
    const entry: unknown = service.get('env_file', true);
    if (isScalar(entry)) {
      const replaced = local(entry.value);
      if (replaced !== undefined) entry.value = replaced;
    } else if (isSeq(entry)) {
      for (const item of entry.items) {
        if (isScalar(item)) {
          const replaced = local(item.value);
          if (replaced !== undefined) item.value = replaced;
        } else if (isMap(item)) {
          const replaced = local(item.get('path'));
          if (replaced !== undefined) item.set('path', replaced);
        }
      }
    }
  }
  return doc.toString({ lineWidth: 0 });
}

/**
 * Fetches the compose project artifacts of the given `oci://` references (verified blobs) into the cache and
 * remembers their local files. A manifest already in the cache (same digest) is not written again.
 */
export async function fetchRemoteProjectFiles(
  references: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  if (references.length === 0) return;
  const { pullArtifact, registryClientFromEnv } = await import('../../engine/registry/index.js');
  const client = registryClientFromEnv(env);
  try {
    for (const reference of references) {
      if (fetched.has(reference)) continue;
      const artifact = await pullArtifact(client, reference.slice(OCI_PREFIX.length), {
        artifactType: COMPOSE_PROJECT_ARTIFACT_TYPE,
      });
      if (
        artifact.artifactType !== COMPOSE_PROJECT_ARTIFACT_TYPE &&
        artifact.artifactType !== COMPOSE_EMPTY_CONFIG_MEDIA_TYPE
      ) {
        throw new TsfigError('config', `${reference} is not a compose project artifact (${artifact.artifactType})`, {
          hint: 'publish the project with tsfig publish or docker compose publish',
        });
      }
      fetched.set(reference, await writeArtifact(artifact, path.join(cacheRoot(env), artifact.digest.slice(7))));
    }
  } finally {
    client.close();
  }
}

async function writeArtifact(artifact: PulledArtifact, dir: string): Promise<string[]> {
  const composeLayers = artifact.layers.filter((layer) => layer.descriptor.mediaType === COMPOSE_FILE_MEDIA_TYPE);
  const mainLayers = composeLayers.filter(
    (layer) => layer.descriptor.annotations?.['com.docker.compose.extends'] === undefined,
  );
  const files = mainLayers.map((_, index) => path.join(dir, index === 0 ? 'compose.yaml' : `compose-${index}.yaml`));
  if (mainLayers.length === 0) {
    throw new TsfigError('config', `the OCI artifact ${artifact.digest} holds no compose file`);
  }
  if (existsSync(dir)) return files;
  const envNames = new Set<string>();
  const writes: Array<[string, Buffer | string]> = [];
  for (const layer of artifact.layers) {
    const annotations = layer.descriptor.annotations ?? {};
    if (layer.descriptor.mediaType === COMPOSE_ENVFILE_MEDIA_TYPE) {
      const name = safeName(annotations['com.docker.compose.envfile'], 'an env file layer');
      envNames.add(name);
      writes.push([name, layer.data]);
    } else if (
      layer.descriptor.mediaType === COMPOSE_FILE_MEDIA_TYPE &&
      annotations['com.docker.compose.extends'] !== undefined
    ) {
      writes.push([safeName(annotations['com.docker.compose.file'], 'an extends layer'), layer.data]);
    }
  }
  await fs.mkdir(path.dirname(dir), { recursive: true, mode: 0o700 });
  const staging = await fs.mkdtemp(path.join(path.dirname(dir), '.staging-'));
  try {
    for (const [name, data] of writes) await fs.writeFile(path.join(staging, name), data, { mode: 0o600 });
    for (const [index, layer] of mainLayers.entries()) {
      const text = localiseEnvFiles(layer.data.toString('utf8'), envNames, dir);
      await fs.writeFile(path.join(staging, path.basename(files[index] ?? 'compose.yaml')), text, { mode: 0o600 });
    }
    await fs.rename(staging, dir).catch(async (error: NodeJS.ErrnoException) => {
      // another process wrote the same digest first: theirs is the same content
      if (error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST') throw error;
      await fs.rm(staging, { recursive: true, force: true });
    });
  } catch (error) {
    await fs.rm(staging, { recursive: true, force: true });
    throw error;
  }
  return files;
}
