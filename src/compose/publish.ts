/**
 * `publish REPO[:TAG]` (compose 2.34): the project's files pushed as an OCI artifact in docker compose's format
 * (src/config/oci.ts), loadable with `-f oci://REPO[:TAG]` by tsfig and docker compose. As compose does: each project
 * file is a layer as written, with its `env_file:` entries renamed `<sha256 of the path>.env` (so no local path is
 * published) and local `extends.file` parents added as layers named `<sha256>.yaml`; env files themselves go only
 * with `--with-env`; a project with local `include:`s, or a service with `build:` and no `image:`, is refused; bind
 * mounts and env files are published only when confirmed (`-y`). The push is a plan of one `artifact.push`
 * (`planPublish`, planner/publish.ts): `--dry-run` prints it, with the files, and pushes nothing.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { isMap, isScalar, isSeq, parseDocument, type Document } from 'yaml';
import { FileContent } from '../../engine/volumes/index.js';
import {
  COMPOSE_EMPTY_CONFIG_MEDIA_TYPE,
  COMPOSE_ENVFILE_MEDIA_TYPE,
  COMPOSE_FILE_MEDIA_TYPE,
  COMPOSE_PROJECT_ARTIFACT_TYPE,
  COMPOSE_VERSION,
  OCI_PREFIX,
} from '../config/oci.js';
import { TsfigError } from '../errors.js';
import { ExitCode } from '../exit-code.js';
import type { Project } from '../model/project.js';
import { planPublish } from '../planner/publish.js';
import { applyPlan, printPlan } from './apply.js';
import type { ComposeContext } from './context.js';
import { compareText } from '../../engine/index.js';

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
  const services = Object.values(project.services).sort((a, b) => compareText(a.name, b.name));
  return {
    layers,
    envFileServices: services.filter((s) => s.env_file.length > 0).map((s) => s.name),
    bindMounts: services.flatMap((s) =>
      s.volumes.filter((v) => v.type === 'bind').map((v) => `${s.name}: ${v.source ?? ''}:${v.target}`),
    ),
  };
}

export interface PublishOptions {
  readonly project: Project;
  /** REPOSITORY[:TAG] (an `oci://` prefix is taken off). */
  readonly repository: string;
  /** `--with-env`. */
  readonly withEnv?: boolean;
  /** `-y`: no questions. */
  readonly yes?: boolean;
  /** `--oci-version`. */
  readonly ociVersion?: '1.0' | '1.1' | undefined;
  readonly dryRun?: boolean;
  readonly format?: 'text' | 'json';
  /** Asks the user a yes/no question (the CLI's stdin prompt); without it, and without `yes`, the answer is no. */
  readonly confirm?: (question: string) => Promise<boolean>;
}

async function confirmed(options: PublishOptions, question: string, hint: string): Promise<void> {
  if (options.yes === true) return;
  if ((await options.confirm?.(`${question} [y/N] `)) === true) return;
  throw new TsfigError('usage', 'publish cancelled: nothing was pushed', { hint });
}

export async function run(ctx: ComposeContext, options: PublishOptions): Promise<ExitCode> {
  const { project } = options;
  const reference = options.repository.startsWith(OCI_PREFIX)
    ? options.repository.slice(OCI_PREFIX.length)
    : options.repository;
  const content = publishContent(project, { withEnv: options.withEnv === true });
  if (content.bindMounts.length > 0) {
    await confirmed(
      options,
      `you are about to publish bind mount declarations (not their content):\n  ${content.bindMounts.join('\n  ')}\nare you ok to publish them?`,
      'check the bind mounts, then run again with -y',
    );
  }
  if (content.envFileServices.length > 0 && options.withEnv !== true) {
    await confirmed(
      options,
      `services ${content.envFileServices.join(', ')} declare env_file: their entries are published without the files\nare you ok to publish them?`,
      'add --with-env to publish the env files too, or -y to publish without them',
    );
  }
  const plan = planPublish(project.name, {
    reference,
    layers: content.layers.map((layer) => ({
      mediaType: layer.mediaType,
      data: FileContent.of(layer.data),
      size: layer.data.length,
      annotations: layer.annotations,
    })),
    artifactType: COMPOSE_PROJECT_ARTIFACT_TYPE,
    legacyConfigMediaType: COMPOSE_EMPTY_CONFIG_MEDIA_TYPE,
    ociVersion: options.ociVersion,
    created: new Date(ctx.clock()).toISOString().replace(/\.\d+Z$/, 'Z'),
  });
  if (options.dryRun === true) {
    printPlan(ctx, plan, options.format);
    return ExitCode.ok;
  }
  await applyPlan(ctx, plan);
  return ExitCode.ok;
}
