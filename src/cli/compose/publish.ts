/**
 * `tsfig publish REPO[:TAG]` (compose 2.34): the project's files pushed as an OCI artifact in docker compose's format
 * (src/config/oci.ts), loadable with `-f oci://REPO[:TAG]` by tsfig and docker compose. As compose does: each project
 * file is a layer as written, with its `env_file:` entries renamed `<sha256 of the path>.env` (so no local path is
 * published) and local `extends.file` parents added as layers named `<sha256>.yaml`; env files themselves go only
 * with `--with-env`; a project with local `include:`s, or a service with `build:` and no `image:`, is refused; bind
 * mounts and env files are published only when confirmed (`-y`).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { isMap, isScalar, isSeq, parseDocument, type Document } from 'yaml';
import {
  COMPOSE_EMPTY_CONFIG_MEDIA_TYPE,
  COMPOSE_ENVFILE_MEDIA_TYPE,
  COMPOSE_FILE_MEDIA_TYPE,
  COMPOSE_PROJECT_ARTIFACT_TYPE,
  COMPOSE_VERSION,
  OCI_PREFIX,
} from '../../config/oci.js';
import { TsfigError } from '../../errors.js';
import type { Project } from '../../model/project.js';
import { askOnStdin } from '../prompt.js';
import { loadForServices } from './context.js';

export interface PublishLayer {
  readonly mediaType: string;
  readonly data: Buffer;
  readonly annotations: Readonly<Record<string, string>>;
}

export interface PublishContent {
  readonly layers: readonly PublishLayer[];
  /** Services with env_file entries (their files are published only with --with-env). */
  readonly envFileServices: readonly string[];
  /** `service: source:target` of every bind mount declared. */
  readonly bindMounts: readonly string[];
}

const hashName = (absolute: string, extension: string): string =>
  `${createHash('sha256').update(absolute).digest('hex')}${extension}`;

function fileLayer(name: string, data: Buffer, extra: Record<string, string> = {}): PublishLayer {
  return {
    mediaType: COMPOSE_FILE_MEDIA_TYPE,
    data,
    annotations: { 'com.docker.compose.version': COMPOSE_VERSION, 'com.docker.compose.file': name, ...extra },
  };
}

/** A file's text with its env_file and local extends.file entries renamed; the renamed files, by absolute path. */
function rewriteFile(
  file: string,
  projectDirectory: string,
  envFiles: Map<string, string>,
  parents: Map<string, string>,
): Buffer {
  const raw = readFileSync(file);
  const doc: Document = parseDocument(raw.toString('utf8'));
  const includes: unknown = doc.get('include');
  if (isSeq(includes) && includes.items.length > 0) {
    const local = includes.items.some((item) => {
      const value: unknown = isScalar(item) ? item.value : isMap(item) ? item.get('path') : undefined;
      const paths = isSeq(value) ? value.items.map((p) => (isScalar(p) ? p.value : p)) : [value];
      return paths.some((p) => typeof p !== 'string' || !p.startsWith(OCI_PREFIX));
    });
    if (local) {
      throw new TsfigError('usage', `cannot publish a project with local includes (${file})`, {
        hint: 'merge the included files with -f, or include published projects (oci://...)',
      });
    }
  }
  const services: unknown = doc.get('services');
  let changed = false;
  if (isMap(services)) {
    for (const pair of services.items) {
      const service = pair.value;
      if (!isMap(service)) continue;
      const rename = (value: unknown): string | undefined => {
        if (typeof value !== 'string') return undefined;
        const absolute = path.resolve(projectDirectory, value);
        const name = hashName(absolute, '.env');
        envFiles.set(absolute, name);
        changed = true;
        return name;
      };
      const entry: unknown = service.get('env_file', true);
      if (isScalar(entry)) entry.value = rename(entry.value) ?? entry.value;
      else if (isSeq(entry)) {
        for (const item of entry.items) {
          if (isScalar(item)) item.value = rename(item.value) ?? item.value;
          else if (isMap(item)) item.set('path', rename(item.get('path')) ?? item.get('path'));
        }
      }
      const extendsNode: unknown = service.get('extends', true);
      const parent: unknown = isMap(extendsNode) ? extendsNode.get('file') : undefined;
      if (isMap(extendsNode) && typeof parent === 'string' && !parent.startsWith(OCI_PREFIX)) {
        const absolute = path.resolve(path.dirname(file), parent);
        const name = hashName(absolute, '.yaml');
        parents.set(absolute, name);
        extendsNode.set('file', name);
        changed = true;
      }
    }
  }
  return changed ? Buffer.from(doc.toString({ lineWidth: 0 })) : raw;
}

/** The artifact's layers for a loaded project (pure but for reading the project's files). */
export function publishContent(project: Project, options: { readonly withEnv: boolean }): PublishContent {
  const buildOnly = Object.values(project.services).filter((s) => s.image === undefined && s.build !== undefined);
  if (buildOnly.length > 0) {
    throw new TsfigError(
      'usage',
      `cannot publish the project: service(s) ${buildOnly.map((s) => `"${s.name}"`).join(', ')} only have a build section`,
      { hint: 'give them an image: (and push it with tsfig push) so that the published project can run' },
    );
  }
  const envFiles = new Map<string, string>();
  const parents = new Map<string, string>();
  const layers: PublishLayer[] = project.config_files.map((file) =>
    fileLayer(path.basename(file), rewriteFile(file, project.project_directory, envFiles, parents)),
  );
  const done = new Set<string>();
  for (let pending = [...parents]; pending.length > 0; pending = [...parents].filter(([file]) => !done.has(file))) {
    for (const [file, name] of pending) {
      done.add(file);
      const data = rewriteFile(file, project.project_directory, envFiles, parents);
      layers.push(fileLayer(name, data, { 'com.docker.compose.extends': 'true' }));
    }
  }
  if (options.withEnv) {
    for (const [file, name] of envFiles) {
      let data: Buffer;
      try {
        data = readFileSync(file);
      } catch {
        continue; // an optional env file that is absent (the loader refused missing required ones)
      }
      layers.push({
        mediaType: COMPOSE_ENVFILE_MEDIA_TYPE,
        data,
        annotations: { 'com.docker.compose.version': COMPOSE_VERSION, 'com.docker.compose.envfile': name },
      });
    }
  }
  const services = Object.values(project.services).sort((a, b) => a.name.localeCompare(b.name));
  return {
    layers,
    envFileServices: services.filter((s) => s.env_file.length > 0).map((s) => s.name),
    bindMounts: services.flatMap((s) =>
      s.volumes.filter((v) => v.type === 'bind').map((v) => `${s.name}: ${v.source ?? ''}:${v.target}`),
    ),
  };
}

interface PublishFlags {
  readonly withEnv?: boolean;
  readonly yes?: boolean;
  readonly ociVersion?: '1.0' | '1.1';
  readonly dryRun?: boolean;
}

async function confirm(question: string, yes: boolean, hint: string): Promise<void> {
  if (yes) return;
  if (await askOnStdin(`${question} [y/N] `)) return;
  throw new TsfigError('usage', 'publish cancelled: nothing was pushed', { hint });
}

/** `publish`. */
export function registerPublishCommand(program: Command): void {
  program
    .command('publish')
    .description('publish the project as an OCI artifact to a registry (load it with -f oci://REPOSITORY[:TAG])')
    .argument('<repository>', 'REPOSITORY[:TAG]')
    .option('--with-env', 'include the env files in the published artifact')
    .option('-y, --yes', 'answer yes to the questions (bind mounts, env files)')
    .addOption(
      new Option('--oci-version <version>', 'OCI image/artifact specification version').choices(['1.0', '1.1']),
    )
    .option('--dry-run', 'show what would be published, push nothing')
    .action(async function (this: Command, repository: string) {
      const flags = this.opts<PublishFlags>();
      const target = repository.startsWith(OCI_PREFIX) ? repository.slice(OCI_PREFIX.length) : repository;
      const { project } = loadForServices(this, []);
      const content = publishContent(project, { withEnv: flags.withEnv === true });
      const yes = flags.yes === true;
      if (content.bindMounts.length > 0) {
        await confirm(
          `you are about to publish bind mount declarations (not their content):\n  ${content.bindMounts.join('\n  ')}\nare you ok to publish them?`,
          yes,
          'check the bind mounts, then run again with -y',
        );
      }
      if (content.envFileServices.length > 0 && flags.withEnv !== true) {
        await confirm(
          `services ${content.envFileServices.join(', ')} declare env_file: their entries are published without the files\nare you ok to publish them?`,
          yes,
          'add --with-env to publish the env files too, or -y to publish without them',
        );
      }
      const err = (text: string) => process.stderr.write(text);
      for (const layer of content.layers) {
        const name = layer.annotations['com.docker.compose.file'] ?? layer.annotations['com.docker.compose.envfile'];
        err(
          ` ${layer.mediaType === COMPOSE_ENVFILE_MEDIA_TYPE ? 'env file' : 'file'} ${name ?? ''} (${layer.data.length} bytes)\n`,
        );
      }
      if (flags.dryRun === true) return;
      const { pushArtifact, registryClientFromEnv } = await import('../../../engine/registry/index.js');
      const client = registryClientFromEnv();
      try {
        err(` Publishing ${target}\n`);
        const result = await pushArtifact(client, target, {
          artifactType: COMPOSE_PROJECT_ARTIFACT_TYPE,
          legacyConfigMediaType: COMPOSE_EMPTY_CONFIG_MEDIA_TYPE,
          layers: content.layers,
          annotations: { 'org.opencontainers.image.created': new Date().toISOString().replace(/\.\d+Z$/, 'Z') },
          ociVersion: flags.ociVersion ?? 'auto',
        });
        err(` Published ${result.reference} (${result.digest}, OCI ${result.ociVersion})\n`);
      } finally {
        client.close();
      }
    });
}
