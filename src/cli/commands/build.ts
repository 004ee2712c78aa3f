import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { Builder, type BuildEvent, type BuildOptions, type NamedContext } from '../../../engine/build/index.js';
import { chainIds } from '../../../engine/images/index.js';
import { FileContent } from '../../../engine/volumes/index.js';
import type { Engine } from '../../../engine/index.js';
import { TsfigError } from '../../errors.js';
import { openEngine } from '../engine.js';
import { interruptible } from '../interrupt.js';
import { humanDuration, humanSize } from '../table.js';

/** Where the build commands read and write; tests pass their own. */
export interface BuildCommandIo {
  /** @default openEngine() */
  readonly engine?: () => Promise<Engine>;
  /** @default process.stdout */
  readonly stdout?: { write(text: string): unknown };
  /** @default process.stderr */
  readonly stderr?: { write(text: string): unknown };
  /** @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** @default process.cwd() */
  readonly cwd?: string;
  /** Reads `-f -`. @default fd 0 */
  readonly readStdin?: () => string;
  /** @default Date.now */
  readonly now?: () => number;
}

/** `docker build`'s flags as commander gives them. */
export interface BuildFlags {
  readonly tag?: string[];
  readonly file?: string;
  readonly buildArg?: string[];
  readonly target?: string;
  readonly cache: boolean;
  readonly label?: string[];
  readonly quiet?: boolean;
  readonly pull?: boolean;
  readonly allow?: string[];
  readonly secret?: string[];
  readonly buildContext?: string[];
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function keyValues(
  flag: string,
  values: readonly string[],
  env: NodeJS.ProcessEnv | undefined,
): Record<string, string> {
  const result: Record<string, string> = {};
  for (const value of values) {
    const eq = value.indexOf('=');
    const key = eq < 0 ? value : value.slice(0, eq);
    if (key === '')
      throw new TsfigError('usage', `invalid ${flag} "${value}": the name is empty`, { hint: `use ${flag} KEY=VALUE` });
    if (eq >= 0) result[key] = value.slice(eq + 1);
    else if (env !== undefined && env[key] !== undefined) result[key] = env[key] ?? '';
    else if (env === undefined) result[key] = '';
  }
  return result;
}

/**
 * `--secret id=ID[,src=PATH|,env=VARIABLE][,type=file|env]` (docker buildx): the file (relative to the working
 * directory, read when a RUN mounts it) or the variable's value; with neither, the variable named ID if it is set,
 * else the file named ID. The value is never printed.
 */
export function parseSecretFlag(
  value: string,
  io: { cwd: string; env: NodeJS.ProcessEnv },
): { id: string; content: FileContent } {
  const fields: Record<string, string> = {};
  for (const field of value.split(',')) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).trim().toLowerCase();
    if (eq < 0 || !['type', 'id', 'src', 'source', 'env'].includes(key)) {
      throw new TsfigError('usage', `--secret: unexpected key '${key}' in '${field}'`, {
        hint: 'use --secret id=ID,src=FILE or --secret id=ID,env=VARIABLE',
      });
    }
    fields[key === 'source' ? 'src' : key] = field.slice(eq + 1);
  }
  const type = fields.type;
  if (type !== undefined && type !== 'file' && type !== 'env') {
    throw new TsfigError('usage', `--secret: unsupported secret type "${type}"`, { hint: 'use type=file or type=env' });
  }
  let src = fields.src;
  let env = fields.env;
  if (type === 'env' && env === undefined) [env, src] = [src, undefined];
  const id = fields.id ?? (src !== undefined ? path.basename(src) : env);
  if (id === undefined || id === '') {
    throw new TsfigError('usage', `--secret ${value}: no id`, { hint: 'use --secret id=ID,src=FILE' });
  }
  if (src !== undefined && env !== undefined) {
    throw new TsfigError('usage', `--secret ${value}: give src or env, not both`);
  }
  const fromEnv = (name: string): FileContent | undefined =>
    io.env[name] !== undefined ? FileContent.of(io.env[name] ?? '') : undefined;
  if (env !== undefined) {
    const content = fromEnv(env);
    if (content === undefined) {
      throw new TsfigError('usage', `--secret id=${id}: environment variable "${env}" is not set`);
    }
    return { id, content };
  }
  if (src === undefined && type !== 'file') {
    const content = fromEnv(id);
    if (content !== undefined) return { id, content };
  }
  const file = path.resolve(io.cwd, src ?? id);
  let stat;
  try {
    stat = statSync(file);
  } catch {
    throw new TsfigError('usage', `--secret id=${id}: file ${file} does not exist`, {
      hint: src === undefined ? `no environment variable ${id} either; give src=FILE or env=VARIABLE` : undefined,
    });
  }
  if (!stat.isFile()) throw new TsfigError('usage', `--secret id=${id}: ${file} is not a file`);
  return { id, content: FileContent.fromFile(file) };
}

/**
 * `--build-context NAME=VALUE` (docker buildx): `docker-image://REF` is an image, anything else a directory relative to
 * the working directory; git and HTTP contexts are refused.
 */
export function parseBuildContextFlag(value: string, cwd: string): [string, NamedContext] {
  const eq = value.indexOf('=');
  const name = eq < 0 ? '' : value.slice(0, eq);
  const source = eq < 0 ? '' : value.slice(eq + 1);
  if (name === '' || source === '') {
    throw new TsfigError('usage', `invalid --build-context "${value}"`, {
      hint: 'use --build-context NAME=DIR or --build-context NAME=docker-image://REF',
    });
  }
  if (source.startsWith('docker-image://')) return [name, { image: source.slice('docker-image://'.length) }];
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source) || source.startsWith('git@')) {
    throw new TsfigError('usage', `--build-context ${name}: "${source}" is not supported`, {
      hint: 'use a local directory or docker-image://REF',
    });
  }
  return [name, { dir: path.resolve(cwd, source) }];
}

/**
 * docker build's flags → BuildOptions (pure): `-f` is relative to the working directory (`-` reads stdin),
 * `--build-arg KEY` takes KEY from the environment (dropped when unset), `--label KEY` is an empty label.
 */
export function buildOptionsFromFlags(
  contextArg: string,
  flags: BuildFlags,
  io: { cwd: string; env: NodeJS.ProcessEnv; readStdin: () => string },
): BuildOptions {
  const contextDir = path.resolve(io.cwd, contextArg);
  const file = flags.file;
  return {
    contextDir,
    ...(file === '-'
      ? { dockerfileInline: io.readStdin() }
      : file !== undefined
        ? { dockerfile: path.resolve(io.cwd, file) }
        : {}),
    buildArgs: keyValues('--build-arg', flags.buildArg ?? [], io.env),
    ...(flags.target !== undefined ? { target: flags.target } : {}),
    tags: flags.tag ?? [],
    labels: keyValues('--label', flags.label ?? [], undefined),
    noCache: !flags.cache,
    pull: flags.pull === true,
    ...(flags.secret !== undefined
      ? {
          secrets: Object.fromEntries(
            flags.secret.map((value) => {
              const { id, content } = parseSecretFlag(value, io);
              return [id, content];
            }),
          ),
        }
      : {}),
    ...(flags.buildContext !== undefined
      ? { contexts: Object.fromEntries(flags.buildContext.map((value) => parseBuildContextFlag(value, io.cwd))) }
      : {}),
    ...(flags.allow !== undefined
      ? {
          allow: flags.allow.map((entitlement) => {
            if (entitlement !== 'network.host') {
              throw new TsfigError('usage', `--allow: unknown entitlement "${entitlement}"`, {
                hint: 'use --allow network.host',
              });
            }
            return entitlement;
          }),
        }
      : {}),
  };
}

function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

/** One build event as the classic docker builder prints it (stderr). */
export function renderBuildEvent(event: BuildEvent): string {
  switch (event.kind) {
    case 'step':
      return `Step ${event.step}/${event.total} : ${event.text}\n`;
    case 'cache-hit':
      return ' ---> Using cache\n';
    case 'output':
      return event.text.endsWith('\n') ? event.text : `${event.text}\n`;
    case 'step-done':
      return ` ---> ${event.id} (${seconds(event.durationMs)})\n`;
    case 'warning':
      return `[Warning] ${event.message}\n`;
  }
}

export interface HistoryRow {
  readonly image: string;
  readonly created: string;
  readonly createdBy: string;
  readonly size: string;
  readonly comment: string;
}

function truncate(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}

/** `docker history` rows, newest first: the image id on the top row, `<missing>` below; layer sizes from the store. */
export async function historyRows(
  engine: Engine,
  reference: string,
  options: { noTrunc: boolean; now: number },
): Promise<HistoryRow[]> {
  const image = await engine.images.resolve(reference);
  const chains = chainIds(image.diffIds);
  let layer = 0;
  const rows: HistoryRow[] = [];
  for (const entry of image.config.history ?? []) {
    let size = 0;
    if (entry.empty_layer !== true) {
      const chainId = chains[layer++];
      if (chainId !== undefined) size = (await engine.images.layer(chainId))?.size ?? 0;
    }
    const created = entry.created !== undefined ? Date.parse(entry.created) : NaN;
    const createdBy = entry.created_by ?? '';
    rows.push({
      image: '<missing>',
      created: Number.isNaN(created) ? 'N/A' : `${humanDuration(options.now - created)} ago`,
      createdBy: options.noTrunc ? createdBy : truncate(createdBy, 45),
      size: humanSize(size),
      comment: entry.comment ?? '',
    });
  }
  rows.reverse();
  const top = rows[0];
  if (top !== undefined) rows[0] = { ...top, image: options.noTrunc ? image.id : shortId(image.id) };
  return rows;
}

export function renderHistory(rows: readonly HistoryRow[]): string {
  const header = ['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'];
  const cells = rows.map((row) => [row.image, row.created, row.createdBy, row.size, row.comment]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...cells.map((row) => (row[column] ?? '').length)),
  );
  return [header, ...cells]
    .map((row) =>
      row
        .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
        .join('   ')
        .trimEnd(),
    )
    .map((line) => `${line}\n`)
    .join('');
}

/**
 * `tsfig image build` (docker build's flags; steps on stderr, the image id on stdout) and `tsfig image history`.
 * Adds to the `image` command group when it exists.
 */
export function registerBuildCommand(program: Command, io: BuildCommandIo = {}): void {
  const out = (text: string): unknown => (io.stdout ?? process.stdout).write(text);
  const err = (text: string): unknown => (io.stderr ?? process.stderr).write(text);
  const engine = io.engine ?? openEngine;
  const image =
    program.commands.find((command) => command.name() === 'image') ??
    program.command('image').description('manage images');

  image
    .command('build')
    .description('build an image from a Dockerfile')
    .argument('<path>', 'build context directory')
    .option('-t, --tag <name:tag>', 'name and optionally a tag (repeatable)', collect)
    .option('-f, --file <path>', 'Dockerfile (default: PATH/Dockerfile; - reads stdin)')
    .option('--build-arg <key=value>', 'set a build-time variable (repeatable)', collect)
    .option('--target <stage>', 'build this stage and what it needs')
    .option('--no-cache', 'do not use the layer cache')
    .option('--label <key=value>', 'set a label on the image (repeatable)', collect)
    .option('--pull', 'accepted; base images come from the local store')
    .option('--allow <entitlement>', 'grant an entitlement to the build: network.host (RUN --network=host)', collect)
    .option(
      '--secret <id=ID,src=FILE|env=VAR>',
      'a secret for RUN --mount=type=secret (repeatable; never stored in the image)',
      collect,
    )
    .option(
      '--build-context <name=DIR|docker-image://REF>',
      'a named context for FROM and COPY --from (repeatable)',
      collect,
    )
    .option('-q, --quiet', 'print only the image id')
    .action(async (contextArg: string, flags: BuildFlags) => {
      const options = buildOptionsFromFlags(contextArg, flags, {
        cwd: io.cwd ?? process.cwd(),
        env: io.env ?? process.env,
        readStdin: io.readStdin ?? (() => readFileSync(0, 'utf8')),
      });
      const builder = new Builder(await engine());
      // Ctrl-C / SIGTERM: the RUN step's container is killed and removed, then the command ends with 130 / 143
      const result = await interruptible(
        { what: 'the build', hint: 'build again to finish it: the steps that completed are cached' },
        (signal) =>
          builder.build({ ...options, signal }, (event) => {
            if (flags.quiet !== true || event.kind === 'warning') err(renderBuildEvent(event));
          }),
      );
      if (flags.quiet !== true) {
        err(`Successfully built ${shortId(result.imageId)}\n`);
        for (const tag of result.tags) err(`Successfully tagged ${tag}\n`);
      }
      out(`${result.imageId}\n`);
    });

  image
    .command('history')
    .description('show the history of an image')
    .argument('<image>', 'image reference or id')
    .option('--no-trunc', 'do not truncate output')
    .option('-q, --quiet', 'only show image ids')
    .action(async (reference: string, flags: { trunc: boolean; quiet?: boolean }) => {
      const rows = await historyRows(await engine(), reference, {
        noTrunc: !flags.trunc,
        now: (io.now ?? Date.now)(),
      });
      out(flags.quiet === true ? rows.map((row) => `${row.image}\n`).join('') : renderHistory(rows));
    });
}
