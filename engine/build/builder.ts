/**
 * The image builder: a Dockerfile (parsed and checked before anything runs) built stage by stage with a layer
 * cache. RUN executes in a real container of the engine (network none unless `--network=host`), its overlay upper
 * dir becomes the layer; COPY/ADD write their files into a tar layer directly; metadata instructions change the
 * config only. Each step's result is cached under `<root>/build-cache/<key>.json`, key = sha256 of the parent key,
 * the instruction after substitution with the env/workdir/user/shell it runs with, the build args in scope (RUN),
 * and for COPY/ADD the sources' (path, mode, uid, gid, size, link, sha256).
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { EngineError, isEngineError, isErrno } from '../errors.js';
import type { Engine } from '../index.js';
import { chainIds, containerImageUsers, type ContainerConfig, type HistoryEntry } from '../images/index.js';
import { readJson, writeJsonAtomic } from '../state/atomic.js';
import { entriesLayer, upperDirLayer } from '../layers/capture.js';
import { BUILD_CREATOR_LABEL, BUILD_LABEL, creatorLabel, sweepBuildDebris } from './debris.js';
import { abortable, ownedTmpDir } from '../layers/tmpdir.js';
import { contentSummary, planCopy, type CopySourceRoot, type PlannedEntry } from './copy.js';
import {
  parseDockerfile,
  parseDockerfileOrThrow,
  type CommandForm,
  type CopyInstruction,
  type Dockerfile,
  type FromInstruction,
  type Instruction,
  type RunInstruction,
  parseDuration,
} from './dockerfile.js';
import { DockerIgnore, readDockerIgnore } from './dockerignore.js';
import { LayerView, resolveInRoot, withMergedRootfs } from '../layers/rootfs.js';
import { expandWord, expandWords, ShellLexError } from './shell-lex.js';
import type { TarEntry } from '../layers/tar.js';
import { MAX_ID, userSpecProblem } from '../containers/user-spec.js';
import type { ContainerFile, FileContent } from '../volumes/files.js';

export interface BuildOptions {
  /** The build context directory. */
  readonly contextDir: string;
  /** Path of the Dockerfile. @default <contextDir>/Dockerfile */
  readonly dockerfile?: string | undefined;
  /** The Dockerfile's text (compose `dockerfile_inline`); wins over dockerfile. */
  readonly dockerfileInline?: string | undefined;
  readonly buildArgs?: Readonly<Record<string, string>> | undefined;
  /** Stage to build. @default the last stage */
  readonly target?: string | undefined;
  /** NAME[:TAG] references for the result. */
  readonly tags?: readonly string[] | undefined;
  /** Labels added to the result's config. */
  readonly labels?: Readonly<Record<string, string>> | undefined;
  /** Run every step, ignore the cache (results are still stored). @default false */
  readonly noCache?: boolean | undefined;
  /** Accepted for compatibility; there is no registry client yet, base images are local. @default false */
  readonly pull?: boolean | undefined;
  /**
   * The most bytes one `ADD <url>` may download, and one local archive that ADD extracts may expand to (its
   * decompressed tar stream); both are streamed to files of the build, never held in memory.
   * @default TSFIG_BUILD_ADD_MAX_BYTES, else 8 GiB
   */
  readonly maxAddBytes?: number | undefined;
  /** Entitlements granted (BuildKit's `--allow`): `network.host` lets `RUN --network=host` run. @default none */
  readonly allow?: readonly string[] | undefined;
  /**
   * Build secrets by id, for `RUN --mount=type=secret`: each is put, for the RUN that mounts it only, in a root-only
   * file of the RUN's container (removed with it), never in a layer, the config, the cache key or the output.
   */
  readonly secrets?: Readonly<Record<string, FileContent>> | undefined;
  /**
   * Named contexts (compose's `build.additional_contexts`, buildx's `--build-context`): `FROM name` and
   * `COPY --from=name` use them before a stage or an image of that name, as BuildKit does. An image serves as a base
   * or a copy source; a directory as a copy source.
   */
  readonly contexts?: Readonly<Record<string, NamedContext>> | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** A named build context: an image reference, or a host directory. */
export type NamedContext = { readonly image: string } | { readonly dir: string };

/** What a build reports as it goes, for the CLI and the orchestrator to render. */
export type BuildEvent =
  | { readonly kind: 'step'; readonly step: number; readonly total: number; readonly text: string }
  | { readonly kind: 'cache-hit'; readonly step: number }
  | { readonly kind: 'output'; readonly step: number; readonly stream: 'stdout' | 'stderr'; readonly text: string }
  | { readonly kind: 'step-done'; readonly step: number; readonly durationMs: number; readonly id: string }
  | { readonly kind: 'warning'; readonly message: string };

export interface BuildResult {
  /** `sha256:...` of the image config. */
  readonly imageId: string;
  readonly tags: readonly string[];
  readonly steps: number;
  readonly cachedSteps: number;
  readonly warnings: readonly string[];
}

/** docker's HealthConfig as stored in image configs (durations in nanoseconds). */
export interface HealthConfig {
  Test: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

/** The `config` object of a built image: Docker's fields beyond the store's ContainerConfig. */
export interface BuildContainerConfig extends ContainerConfig {
  Healthcheck?: HealthConfig;
  OnBuild?: string[] | null;
  Shell?: string[];
}

/** An image config as the builder writes it (OCI/Docker image config JSON). */
export interface BuildImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  config: BuildContainerConfig;
  rootfs: { type: 'layers'; diff_ids: string[] };
  history: HistoryEntry[];
}

/** A RUN that exited non-zero: names the step and carries the exit code and the last lines of its output. */
export class BuildStepError extends EngineError {
  readonly stepText: string;
  readonly output: readonly string[];

  constructor(stepText: string, exitCode: number, output: readonly string[]) {
    super(
      'runtime',
      `${stepText}: the command returned a non-zero code: ${exitCode}${output.length > 0 ? `\n${output.map((line) => `  ${line}`).join('\n')}` : ''}`,
      { exitCode, hint: 'fix the command (its last output is above) and build again; finished steps are cached' },
    );
    this.stepText = stepText;
    this.output = output;
  }
}

const DEFAULT_SHELL = ['/bin/sh', '-c'];
const STUB_FILES = ['etc/hosts', 'etc/resolv.conf', 'etc/hostname'];
const OUTPUT_TAIL = 10;

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function goArch(): string {
  const map: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le' };
  return map[process.arch] ?? process.arch;
}

function envKey(entry: string): string {
  const eq = entry.indexOf('=');
  return eq < 0 ? entry : entry.slice(0, eq);
}

function setEnv(list: readonly string[], key: string, value: string): string[] {
  const entry = `${key}=${value}`;
  const index = list.findIndex((item) => envKey(item) === key);
  if (index < 0) return [...list, entry];
  return list.map((item, i) => (i === index ? entry : item));
}

/** A `RUN --mount=type=bind` source from the context: its planned files and where they are mounted. */
interface ContextBind {
  readonly target: string;
  readonly isDir: boolean;
  readonly entries: readonly PlannedEntry[];
  readonly writable: boolean;
}

/** One stage: its FROM and the instructions after it. */
interface Stage {
  readonly index: number;
  readonly name: string | undefined;
  readonly from: FromInstruction;
  readonly instructions: readonly Instruction[];
}

/** Where a stage is while it builds. */
interface StageState {
  config: BuildImageConfig;
  key: string;
  /** ARGs declared in the stage: name → value (undefined: declared without a value). */
  args: Map<string, string | undefined>;
  cmdSet: boolean;
  /** A step ran (was not a cache hit) in this stage. */
  dirty?: boolean;
}

interface BuildContext {
  readonly options: BuildOptions;
  readonly dockerfile: Dockerfile;
  readonly ignore: DockerIgnore;
  readonly metaArgs: Map<string, string | undefined>;
  readonly buildArgs: Readonly<Record<string, string>>;
  readonly consumed: Set<string>;
  readonly stages: readonly Stage[];
  readonly built: Map<number, StageState>;
  readonly onEvent: (event: BuildEvent) => void;
  readonly warnings: string[];
  step: number;
  total: number;
  cached: number;
  /** Images made for RUN containers, removed at the end of the build. */
  readonly runImages: { id: string; made: boolean }[];
  /** Images that hold a stage's layers: never removed with the RUN images. */
  readonly anchors: Set<string>;
  /** Where ADD keeps downloads and extracted archive members (made on first use, removed at the end of the build). */
  scratch: string | undefined;
  /** The most bytes one ADD download, or one archive's decompressed stream, may have. */
  readonly maxAddBytes: number;
}

/** `TSFIG_BUILD_ADD_MAX_BYTES` (bytes, or with a k/m/g suffix), else 8 GiB. */
function maxAddBytesFromEnv(): number {
  const text = process.env.TSFIG_BUILD_ADD_MAX_BYTES;
  if (text === undefined || text === '') return 8 * 1024 ** 3;
  const match = /^(\d+)([kmg]?)$/i.exec(text.trim());
  if (match === null) {
    throw new EngineError('invalid', `TSFIG_BUILD_ADD_MAX_BYTES: invalid size ${JSON.stringify(text)}`, {
      hint: 'give a number of bytes, or with a k, m or g suffix (e.g. 512m)',
    });
  }
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(match[2] ?? '').toLowerCase()] ?? 1;
  return Number(match[1]) * unit;
}

function splitStages(dockerfile: Dockerfile): { metaArgs: Instruction[]; stages: Stage[] } {
  const metaArgs: Instruction[] = [];
  const stages: Stage[] = [];
  let current: { from: FromInstruction; instructions: Instruction[] } | undefined;
  for (const instruction of dockerfile.instructions) {
    if (instruction.kind === 'from') {
      current = { from: instruction, instructions: [] };
      stages.push({ index: stages.length, name: instruction.stageName, ...current });
      continue;
    }
    if (current === undefined) metaArgs.push(instruction);
    else current.instructions.push(instruction);
  }
  return { metaArgs, stages };
}

function commandArgv(command: CommandForm, shell: readonly string[]): string[] {
  return command.form === 'exec' ? [...command.args] : [...shell, command.script];
}

/** Builds images from Dockerfiles with the engine's store and containers. */
export class Builder {
  private readonly engine: Engine;
  private readonly cacheDir: string;
  private readonly tmpDir: string;

  constructor(engine: Engine) {
    this.engine = engine;
    this.cacheDir = path.join(engine.paths.root, 'build-cache');
    this.tmpDir = path.join(engine.paths.root, 'tmp');
  }

  /** Builds and tags the image; every Dockerfile error is reported before any step runs. */
  async build(options: BuildOptions, onEvent: (event: BuildEvent) => void = () => undefined): Promise<BuildResult> {
    const contextDir = path.resolve(options.contextDir);
    const stat = await fs.stat(contextDir).catch(() => undefined);
    if (stat?.isDirectory() !== true) {
      throw new EngineError('not-found', `build context ${options.contextDir} is not a directory`, {
        hint: 'give the directory holding the files the Dockerfile copies (often .)',
      });
    }
    const dockerfilePath = path.resolve(contextDir, options.dockerfile ?? 'Dockerfile');
    const { text, name } = await this.readDockerfile(options, dockerfilePath);
    const dockerfile = parseDockerfileOrThrow(text, name);
    const { metaArgs, stages } = splitStages(dockerfile);
    const buildArgs = options.buildArgs ?? {};
    const ctx: BuildContext = {
      options: { ...options, contextDir },
      dockerfile,
      ignore: await readDockerIgnore(contextDir, options.dockerfileInline === undefined ? dockerfilePath : undefined),
      metaArgs: new Map(Object.entries(predefinedArgs())),
      buildArgs,
      consumed: new Set(),
      stages,
      built: new Map(),
      onEvent,
      warnings: [],
      step: 0,
      total: 0,
      cached: 0,
      runImages: [],
      anchors: new Set(),
      scratch: undefined,
      maxAddBytes: options.maxAddBytes ?? maxAddBytesFromEnv(),
    };
    if (options.pull === true)
      this.warn(ctx, 'pull: no registry client yet, base images are taken from the local store');
    for (const instruction of metaArgs) {
      if (instruction.kind !== 'arg') continue;
      for (const arg of instruction.args) {
        ctx.consumed.add(arg.name);
        const value =
          buildArgs[arg.name] ??
          (arg.value !== undefined
            ? this.expand(ctx, arg.value, (key) => ctx.metaArgs.get(key), instruction)
            : undefined);
        ctx.metaArgs.set(arg.name, value);
      }
    }
    const target = this.targetStage(ctx, options.target);
    this.preflight(ctx, name);
    const needed = this.neededStages(ctx, target);
    this.checkSecrets(ctx, name, needed);
    ctx.total = stages.filter((stage) => needed.has(stage.index)).reduce((n, s) => n + 1 + s.instructions.length, 0);
    // debris of builds killed outright (their RUN containers, temp dirs) goes before this one starts
    await sweepBuildDebris(this.engine).catch((error: unknown) =>
      this.warn(ctx, `cannot remove what an interrupted build left: ${(error as Error).message}`),
    );
    // under a claim: the layers and configs it adds before their images are never swept while it runs, and are once
    // it is killed (withClaim first removes what builds and pulls killed earlier left in the store)
    const imageId = await this.engine.images.withClaim('build', () => this.buildStages(ctx, stages, needed, target));
    return {
      imageId,
      tags: [...(options.tags ?? [])],
      steps: ctx.total,
      cachedSteps: ctx.cached,
      warnings: ctx.warnings,
    };
  }

  /** The needed stages, then the final image (tagged); RUN images no stage kept are dropped. Returns its id. */
  private async buildStages(
    ctx: BuildContext,
    stages: readonly Stage[],
    needed: ReadonlySet<number>,
    target: Stage,
  ): Promise<string> {
    try {
      for (const stage of stages) {
        if (!needed.has(stage.index)) continue;
        ctx.built.set(stage.index, await this.buildStage(ctx, stage));
      }
      const final = ctx.built.get(target.index);
      if (final === undefined) throw new EngineError('internal', 'the target stage was not built');
      const buildArgs = ctx.buildArgs;
      const unused = Object.keys(buildArgs).filter((key) => !ctx.consumed.has(key));
      if (unused.length > 0) this.warn(ctx, `one or more build-args [${unused.sort().join(' ')}] were not consumed`);
      ctx.options.signal?.throwIfAborted(); // an interrupted build tags nothing
      return await this.commitFinal(ctx, final);
    } finally {
      for (const image of ctx.runImages) if (!ctx.anchors.has(image.id)) await this.dropRunImage(image);
      if (ctx.scratch !== undefined) await fs.rm(ctx.scratch, { recursive: true, force: true });
    }
  }

  /**
   * What can be checked before any step runs, collected into one error: unsupported RUN mounts and COPY --parents,
   * --from naming no earlier stage when it is not an image reference, literal --chmod and --checksum values.
   */
  private preflight(ctx: BuildContext, file: string): void {
    const problems: string[] = [];
    const report = (instruction: Instruction, message: string): void => {
      problems.push(`${file}:${instruction.line}:${instruction.column}: ${message}`);
    };
    for (const stage of ctx.stages) {
      for (const instruction of stage.instructions) {
        if (instruction.kind === 'run') {
          for (const mount of instruction.mounts) {
            if (mount.type === 'ssh') {
              report(instruction, 'RUN --mount=type=ssh is not supported yet (bind, cache, tmpfs and secret are)');
            } else if (mount.type === 'bind' && mount.options.from !== undefined) {
              report(
                instruction,
                'RUN --mount=type=bind,from=... is not supported yet (binds from the build context are)',
              );
            }
          }
        }
        if (instruction.kind !== 'copy' && instruction.kind !== 'add') continue;
        if (instruction.parents === true) report(instruction, 'COPY --parents is not supported yet');
        if (
          instruction.chmod !== undefined &&
          !instruction.chmod.includes('$') &&
          !/^[0-7]{3,4}$/.test(instruction.chmod)
        ) {
          report(instruction, `invalid --chmod "${instruction.chmod}": use an octal mode such as 0644`);
        }
        const checksum = instruction.checksum;
        if (checksum !== undefined && !checksum.includes('$') && !/^sha256:[0-9a-f]{64}$/.test(checksum)) {
          report(instruction, `invalid --checksum "${checksum}": use sha256:<64 hex digits>`);
        }
        if (instruction.checksum !== undefined && !instruction.sources.some((source) => /^https?:\/\//i.test(source))) {
          report(instruction, '--checksum is only supported for http(s) sources');
        }
        const from = instruction.from;
        if (from === undefined || from.includes('$')) continue;
        if (from.toLowerCase() === stage.name || from === String(stage.index)) {
          report(instruction, `--from=${from} names the stage it is in`);
        } else if (/^\d+$/.test(from) && Number(from) >= stage.index) {
          report(instruction, `--from=${from}: only earlier stages can be copied from`);
        }
      }
    }
    if (problems.length > 0) {
      throw new EngineError('invalid', problems.join('\n'), {
        hint: 'fix the Dockerfile lines above; nothing was built',
      });
    }
  }

  /**
   * The secrets the RUNs of the stages to build mount: a required one not given fails the build before anything runs
   * (BuildKit fails at that step); one not required and not given is not mounted (BuildKit), with a warning.
   */
  private checkSecrets(ctx: BuildContext, file: string, needed: ReadonlySet<number>): void {
    const problems: string[] = [];
    const given = ctx.options.secrets ?? {};
    for (const stage of ctx.stages) {
      if (!needed.has(stage.index)) continue;
      for (const instruction of stage.instructions) {
        if (instruction.kind !== 'run') continue;
        for (const mount of instruction.mounts) {
          const secret = mount.secret;
          if (secret === undefined || Object.hasOwn(given, secret.id)) continue;
          const where = `${file}:${instruction.line}:${instruction.column}`;
          if (secret.required) problems.push(`${where}: secret ${secret.id}: not found`);
          else this.warn(ctx, `${where}: secret ${secret.id} not given: nothing is mounted for it (required=false)`);
        }
      }
    }
    if (problems.length > 0) {
      const ids = [...new Set(problems.map((problem) => /secret (\S+): not found$/.exec(problem)?.[1] ?? ''))];
      throw new EngineError('not-found', problems.join('\n'), {
        hint: `give ${ids.map((id) => `--secret id=${id},src=FILE (or env=VARIABLE)`).join(', ')}, or in compose build.secrets; nothing was built`,
      });
    }
  }

  private async readDockerfile(options: BuildOptions, file: string): Promise<{ text: string; name: string }> {
    if (options.dockerfileInline !== undefined) return { text: options.dockerfileInline, name: 'Dockerfile' };
    try {
      return { text: await fs.readFile(file, 'utf8'), name: path.basename(file) };
    } catch (error) {
      if (isErrno(error, 'ENOENT')) {
        throw new EngineError('not-found', `cannot read the Dockerfile ${file}: no such file`, {
          hint: 'give its path with -f, or add a Dockerfile to the build context',
        });
      }
      throw error;
    }
  }

  private warn(ctx: BuildContext, message: string): void {
    ctx.warnings.push(message);
    ctx.onEvent({ kind: 'warning', message });
  }

  private fail(instruction: Instruction, message: string, hint?: string): EngineError {
    return new EngineError('invalid', `Dockerfile:${instruction.line}:${instruction.column}: ${message}`, { hint });
  }

  private expand(
    ctx: BuildContext,
    word: string,
    lookup: (name: string) => string | undefined,
    instruction: Instruction,
  ): string {
    try {
      const result = expandWord(word, lookup, ctx.dockerfile.escape);
      return result.value;
    } catch (error) {
      if (error instanceof ShellLexError) throw this.fail(instruction, error.message);
      throw error;
    }
  }

  private targetStage(ctx: BuildContext, target: string | undefined): Stage {
    if (target === undefined) {
      const last = ctx.stages.at(-1);
      if (last === undefined) throw new EngineError('invalid', 'the Dockerfile has no stage');
      return last;
    }
    const stage = ctx.stages.find((candidate) => candidate.name === target.toLowerCase());
    if (stage === undefined) {
      const names = ctx.stages.flatMap((candidate) => (candidate.name !== undefined ? [candidate.name] : []));
      throw new EngineError('not-found', `target stage "${target}" could not be found`, {
        hint: names.length > 0 ? `stages are: ${names.join(', ')}` : 'name a stage with FROM image AS name',
      });
    }
    return stage;
  }

  /** The named context a FROM or --from names, if any: it wins over a stage of that name. */
  private namedContext(ctx: BuildContext, ref: string): NamedContext | undefined {
    const contexts = ctx.options.contexts ?? {};
    return contexts[ref] ?? contexts[ref.toLowerCase()];
  }

  /** The stage a FROM or --from names (by name or index), if any. */
  private stageRef(ctx: BuildContext, ref: string, before: number): Stage | undefined {
    if (this.namedContext(ctx, ref) !== undefined) return undefined;
    const lower = ref.toLowerCase();
    const byName = ctx.stages.find((stage) => stage.name === lower && stage.index < before);
    if (byName !== undefined) return byName;
    if (/^\d+$/.test(ref)) {
      const stage = ctx.stages[Number(ref)];
      if (stage !== undefined && stage.index < before) return stage;
    }
    return undefined;
  }

  private neededStages(ctx: BuildContext, target: Stage): Set<number> {
    const needed = new Set<number>();
    const visit = (stage: Stage): void => {
      if (needed.has(stage.index)) return;
      needed.add(stage.index);
      const refs = [this.expandMeta(ctx, stage.from.image, stage.from)];
      for (const instruction of stage.instructions) {
        if ((instruction.kind === 'copy' || instruction.kind === 'add') && instruction.from !== undefined) {
          refs.push(this.expandMeta(ctx, instruction.from, instruction));
        }
      }
      for (const ref of refs) {
        const dependency = this.stageRef(ctx, ref, stage.index);
        if (dependency !== undefined) visit(dependency);
      }
    };
    visit(target);
    return needed;
  }

  private expandMeta(ctx: BuildContext, word: string, instruction: Instruction): string {
    return this.expand(ctx, word, (name) => ctx.metaArgs.get(name), instruction);
  }

  // ---- stages ------------------------------------------------------------------------------------------------

  private async buildStage(ctx: BuildContext, stage: Stage): Promise<StageState> {
    const started = Date.now();
    ctx.step++;
    ctx.onEvent({ kind: 'step', step: ctx.step, total: ctx.total, text: stage.from.original });
    const state = await this.baseState(ctx, stage);
    ctx.onEvent({ kind: 'step-done', step: ctx.step, durationMs: Date.now() - started, id: state.key.slice(0, 12) });
    const triggers = state.config.config.OnBuild ?? [];
    if (triggers.length > 0) {
      state.config = { ...state.config, config: { ...state.config.config, OnBuild: null } };
      for (const trigger of triggers) {
        const parsed = parseDockerfile(`FROM scratch\n${trigger}`);
        const instruction = parsed.dockerfile.instructions[1];
        if (parsed.errors.length > 0 || instruction === undefined) {
          throw this.fail(stage.from, `invalid ONBUILD trigger in the base image: ${trigger}`);
        }
        await this.runStep(ctx, stage, state, { ...instruction, line: stage.from.line, column: stage.from.column });
      }
    }
    try {
      for (const instruction of stage.instructions) {
        ctx.options.signal?.throwIfAborted();
        const begin = Date.now();
        ctx.step++;
        ctx.onEvent({ kind: 'step', step: ctx.step, total: ctx.total, text: instruction.original });
        await this.runStep(ctx, stage, state, instruction);
        ctx.onEvent({ kind: 'step-done', step: ctx.step, durationMs: Date.now() - begin, id: state.key.slice(0, 12) });
      }
    } catch (error) {
      // the finished steps stay cached: an untagged image holds their layers
      if (state.dirty === true && state.config.rootfs.diff_ids.length > 0) {
        await this.imageFor(state.config).then(
          (id) => ctx.anchors.add(id),
          () => undefined,
        );
      }
      throw error;
    }
    // An untagged image holds the stage's layers, so `image prune` (not an unlucky orphan sweep) decides their fate.
    if (state.dirty === true && state.config.rootfs.diff_ids.length > 0) {
      ctx.anchors.add(await this.imageFor(state.config));
    }
    return state;
  }

  private async baseState(ctx: BuildContext, stage: Stage): Promise<StageState> {
    const ref = this.expandMeta(ctx, stage.from.image, stage.from);
    if (stage.from.platform !== undefined) {
      const platform = this.expandMeta(ctx, stage.from.platform, stage.from);
      const host = `linux/${goArch()}`;
      if (platform !== '' && platform !== host) {
        this.warn(
          ctx,
          `FROM --platform=${platform} (Dockerfile:${stage.from.line}): building for ${host}, the only platform`,
        );
      }
    }
    const emptyConfig = (): BuildImageConfig => ({
      architecture: goArch(),
      os: 'linux',
      config: { Env: [`PATH=${DEFAULT_PATH}`] },
      rootfs: { type: 'layers', diff_ids: [] },
      history: [],
    });
    const fromStage = this.stageRef(ctx, ref, stage.index);
    if (fromStage !== undefined) {
      const built = ctx.built.get(fromStage.index);
      if (built === undefined) throw this.fail(stage.from, `stage ${ref} was not built`);
      return { config: structuredClone(built.config), key: built.key, args: new Map(), cmdSet: false };
    }
    if (ref.toLowerCase() === 'scratch') {
      return { config: emptyConfig(), key: sha256('FROM scratch'), args: new Map(), cmdSet: false };
    }
    if (ref === '') throw this.fail(stage.from, 'base name (FROM) must not be empty');
    const named = this.namedContext(ctx, ref);
    if (named !== undefined && 'dir' in named) {
      throw this.fail(
        stage.from,
        `FROM ${ref}: the named context "${ref}" is a directory (${named.dir}); tsfig builds FROM images and stages only`,
        `copy from it instead: COPY --from=${ref} SRC DEST`,
      );
    }
    const imageRef = named?.image ?? ref;
    let image;
    try {
      image = await this.engine.images.resolve(imageRef);
    } catch (error) {
      if (error instanceof EngineError && error.kind === 'not-found') {
        const what = named === undefined ? '' : ` (the named context "${ref}")`;
        throw new EngineError(
          'not-found',
          `base image "${imageRef}"${what} not found (Dockerfile:${stage.from.line})`,
          {
            hint: `add it first: tsfig image import FILE|DIR ${imageRef} (or pull it), then build again`,
          },
        );
      }
      throw error;
    }
    const base = image.config as unknown as Partial<BuildImageConfig>;
    const config: BuildImageConfig = {
      architecture: image.config.architecture,
      os: image.config.os,
      config: structuredClone(base.config ?? {}),
      rootfs: { type: 'layers', diff_ids: [...image.diffIds] },
      history: structuredClone(base.history ?? []),
    };
    if (config.config.Env === undefined) config.config.Env = [`PATH=${DEFAULT_PATH}`];
    return { config, key: sha256(`FROM ${image.id}`), args: new Map(), cmdSet: false };
  }

  /** ENV wins over ARG, as Docker's substitution does. */
  private lookup(ctx: BuildContext, state: StageState): (name: string) => string | undefined {
    const env = new Map(
      (state.config.config.Env ?? []).map((entry) => [envKey(entry), entry.slice(envKey(entry).length + 1)]),
    );
    return (name) => env.get(name) ?? state.args.get(name);
  }

  // ---- steps -------------------------------------------------------------------------------------------------

  /** Runs one instruction through the cache. */
  private async runStep(ctx: BuildContext, stage: Stage, state: StageState, instruction: Instruction): Promise<void> {
    if (instruction.kind === 'arg') {
      this.declareArgs(ctx, state, instruction);
      const names = instruction.args.map((arg) => arg.name);
      const key = sha256(JSON.stringify([state.key, 'ARG', names]));
      // An ARG changes no config; its value reaches the key of each later step that sees it.
      if (ctx.options.noCache !== true && (await this.readCache(key)) !== undefined) {
        ctx.cached++;
        ctx.onEvent({ kind: 'cache-hit', step: ctx.step });
      } else await this.writeCache(key, state.config);
      state.key = key;
      return;
    }
    const prepared = await this.prepare(ctx, stage, state, instruction);
    const key = sha256(
      JSON.stringify({
        parent: state.key,
        step: prepared.canonical,
        env: state.config.config.Env ?? [],
        workdir: state.config.config.WorkingDir ?? '',
        user: state.config.config.User ?? '',
        shell: state.config.config.Shell ?? DEFAULT_SHELL,
      }),
    );
    if (ctx.options.noCache !== true) {
      const cached = await this.readCache(key);
      if (cached !== undefined) {
        ctx.cached++;
        ctx.onEvent({ kind: 'cache-hit', step: ctx.step });
        state.config = cached;
        state.key = key;
        if (instruction.kind === 'cmd') state.cmdSet = true;
        return;
      }
    }
    state.config = await prepared.execute();
    state.key = key;
    state.dirty = true;
    await this.writeCache(key, state.config);
  }

  private declareArgs(ctx: BuildContext, state: StageState, instruction: Instruction & { kind: 'arg' }): void {
    for (const arg of instruction.args) {
      ctx.consumed.add(arg.name);
      const given = ctx.buildArgs[arg.name];
      const value =
        given ??
        (arg.value !== undefined
          ? this.expand(ctx, arg.value, this.lookup(ctx, state), instruction)
          : ctx.metaArgs.get(arg.name));
      state.args.set(arg.name, value);
    }
  }

  private async readCache(key: string): Promise<BuildImageConfig | undefined> {
    const entry = await readJson<{ v: number; config: BuildImageConfig }>(path.join(this.cacheDir, `${key}.json`));
    if (entry?.v !== 1) return undefined;
    for (const chainId of chainIds(entry.config.rootfs.diff_ids)) {
      if ((await this.engine.images.layer(chainId)) === undefined) return undefined;
    }
    return entry.config;
  }

  private async writeCache(key: string, config: BuildImageConfig): Promise<void> {
    await fs.mkdir(this.cacheDir, { recursive: true, mode: 0o700 });
    await writeJsonAtomic(path.join(this.cacheDir, `${key}.json`), { v: 1, config });
  }

  private metadata(
    state: StageState,
    instruction: Instruction,
    change: (config: BuildContainerConfig) => void,
    canonical: unknown,
    author?: string,
  ): { canonical: unknown; execute: () => Promise<BuildImageConfig> } {
    return {
      canonical,
      execute: () => {
        const config = structuredClone(state.config);
        change(config.config);
        if (author !== undefined) config.author = author;
        const created = new Date().toISOString();
        config.created = created;
        const createdBy = historyText(canonical) ?? instruction.original;
        config.history = [...config.history, { created, created_by: createdBy, empty_layer: true }];
        return Promise.resolve(config);
      },
    };
  }

  private async prepare(
    ctx: BuildContext,
    stage: Stage,
    state: StageState,
    instruction: Exclude<Instruction, { kind: 'arg' }>,
  ): Promise<{ canonical: unknown; execute: () => Promise<BuildImageConfig> }> {
    const lookup = this.lookup(ctx, state);
    const word = (text: string): string => this.expand(ctx, text, lookup, instruction);
    const shell = state.config.config.Shell ?? DEFAULT_SHELL;
    switch (instruction.kind) {
      case 'env': {
        const pairs = instruction.pairs.map((pair) => [word(pair.key), word(pair.value)] as const);
        return this.metadata(
          state,
          instruction,
          (c) => {
            for (const [key, value] of pairs) c.Env = setEnv(c.Env ?? [], key, value);
          },
          ['ENV', pairs],
        );
      }
      case 'label': {
        const pairs = instruction.pairs.map((pair) => [word(pair.key), word(pair.value)] as const);
        return this.metadata(
          state,
          instruction,
          (c) => {
            c.Labels = { ...(c.Labels ?? {}) };
            for (const [key, value] of pairs) c.Labels[key] = value;
          },
          ['LABEL', pairs],
        );
      }
      case 'maintainer':
        return this.metadata(state, instruction, () => undefined, ['MAINTAINER', instruction.value], instruction.value);
      case 'workdir': {
        const value = word(instruction.value);
        const dir = path.posix.resolve(state.config.config.WorkingDir || '/', value);
        const made = await this.prepareWorkdir(state, instruction, dir);
        return made ?? this.metadata(state, instruction, (c) => (c.WorkingDir = dir), ['WORKDIR', dir]);
      }
      case 'user': {
        const value = word(instruction.value);
        const problem = userSpecProblem(value);
        if (problem !== undefined) throw this.fail(instruction, `USER: ${problem}`);
        return this.metadata(state, instruction, (c) => (c.User = value), ['USER', value]);
      }
      case 'stopsignal': {
        const value = word(instruction.value);
        return this.metadata(state, instruction, (c) => (c.StopSignal = value), ['STOPSIGNAL', value]);
      }
      case 'expose': {
        const ports = this.ports(ctx, instruction, instruction.values, lookup);
        return this.metadata(
          state,
          instruction,
          (c) => {
            c.ExposedPorts = { ...(c.ExposedPorts ?? {}) };
            for (const port of ports) c.ExposedPorts[port] = {};
          },
          ['EXPOSE', ports],
        );
      }
      case 'volume': {
        const volumes = instruction.values.map(word);
        if (volumes.some((volume) => volume.trim() === ''))
          throw this.fail(instruction, 'VOLUME specified can not be an empty string');
        return this.metadata(
          state,
          instruction,
          (c) => {
            c.Volumes = { ...(c.Volumes ?? {}) };
            for (const volume of volumes) c.Volumes[volume] = {};
          },
          ['VOLUME', volumes],
        );
      }
      case 'cmd': {
        const argv = commandArgv(instruction.command, shell);
        state.cmdSet = true;
        return this.metadata(state, instruction, (c) => (c.Cmd = argv), ['CMD', argv]);
      }
      case 'entrypoint': {
        const argv = commandArgv(instruction.command, shell);
        const resetCmd = !state.cmdSet;
        return this.metadata(
          state,
          instruction,
          (c) => {
            c.Entrypoint = argv;
            if (resetCmd) delete c.Cmd; // Docker: an ENTRYPOINT drops the Cmd inherited from the base
          },
          ['ENTRYPOINT', argv, resetCmd],
        );
      }
      case 'shell':
        return this.metadata(state, instruction, (c) => (c.Shell = [...instruction.shell]), [
          'SHELL',
          instruction.shell,
        ]);
      case 'healthcheck': {
        const health = this.healthConfig(instruction, shell);
        return this.metadata(state, instruction, (c) => (c.Healthcheck = health), ['HEALTHCHECK', health]);
      }
      case 'onbuild':
        return this.metadata(
          state,
          instruction,
          (c) => {
            c.OnBuild = [...(c.OnBuild ?? []), instruction.expression];
          },
          ['ONBUILD', instruction.expression],
        );
      case 'from':
        throw this.fail(instruction, 'FROM inside a stage');
      case 'run':
        return this.prepareRun(ctx, state, instruction, shell);
      case 'copy':
      case 'add':
        return this.prepareCopy(ctx, stage, state, instruction, word);
    }
  }

  /**
   * A WORKDIR that does not exist yet is created as a layer (mkdir -p, 0755, owned by the current USER), as BuildKit
   * does; undefined when it exists (the step is then metadata only).
   */
  private async prepareWorkdir(
    state: StageState,
    instruction: Instruction,
    dir: string,
  ): Promise<{ canonical: unknown; execute: () => Promise<BuildImageConfig> } | undefined> {
    if (dir === '/') return undefined;
    const view = new LayerView(this.layerDirs(state.config.rootfs.diff_ids));
    if ((await view.lookup(dir, true)) !== undefined) return undefined;
    const user = state.config.config.User ?? '';
    const owner =
      user === '' ? { uid: 0, gid: 0 } : await this.owner(view, user, instruction).catch(() => ({ uid: 0, gid: 0 }));
    return {
      canonical: ['WORKDIR', dir, 'mkdir', owner],
      execute: async () => {
        const elements = dir.split('/').filter((part) => part !== '');
        const entries: TarEntry[] = [];
        for (let i = 1; i <= elements.length; i++) {
          const name = elements.slice(0, i).join('/');
          const existing = await view.lookup(`/${name}`, true);
          if (existing !== undefined && existing.stat.isDirectory()) {
            const stat = existing.stat;
            entries.push({
              name,
              type: 'dir',
              mode: stat.mode & 0o7777,
              uid: stat.uid,
              gid: stat.gid,
              mtime: Math.floor(stat.mtimeMs / 1000),
            });
          } else entries.push({ name, type: 'dir', mode: 0o755, ...owner, mtime: 0 });
        }
        const parent = chainIds(state.config.rootfs.diff_ids).at(-1) ?? null;
        const layer = await this.engine.images.addLayer(entriesLayer(entries), parent);
        const next = this.withLayer(state.config, layer.diffId, `WORKDIR ${dir}`);
        next.config.WorkingDir = dir;
        return next;
      },
    };
  }

  private ports(
    ctx: BuildContext,
    instruction: Instruction,
    values: readonly string[],
    lookup: (name: string) => string | undefined,
  ): string[] {
    const ports: string[] = [];
    for (const value of values) {
      let words: string[];
      try {
        words = expandWords(value, lookup, ctx.dockerfile.escape).words;
      } catch (error) {
        if (error instanceof ShellLexError) throw this.fail(instruction, error.message);
        throw error;
      }
      for (const spec of words) {
        const match = /^(?:[^:]*:)?(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(spec);
        if (match === null)
          throw this.fail(instruction, `invalid port "${spec}" in EXPOSE`, 'use PORT[/PROTO] or START-END[/PROTO]');
        const start = Number(match[1]);
        const end = match[2] !== undefined ? Number(match[2]) : start;
        const proto = (match[3] ?? 'tcp').toLowerCase();
        if (start < 1 || end > 65535 || end < start)
          throw this.fail(instruction, `invalid port range "${spec}" in EXPOSE`);
        for (let port = start; port <= end; port++) ports.push(`${port}/${proto}`);
      }
    }
    return ports;
  }

  private healthConfig(instruction: Instruction & { kind: 'healthcheck' }, shell: readonly string[]): HealthConfig {
    if (instruction.command === null) return { Test: ['NONE'] };
    const test =
      instruction.command.form === 'exec'
        ? ['CMD', ...instruction.command.args]
        : ['CMD-SHELL', instruction.command.script];
    void shell;
    const health: HealthConfig = { Test: test };
    const ns = (value: string | undefined): number | undefined =>
      value !== undefined ? parseDuration(value) : undefined;
    const interval = ns(instruction.interval);
    const timeout = ns(instruction.timeout);
    const startPeriod = ns(instruction.startPeriod);
    const startInterval = ns(instruction.startInterval);
    if (interval !== undefined) health.Interval = interval;
    if (timeout !== undefined) health.Timeout = timeout;
    if (startPeriod !== undefined) health.StartPeriod = startPeriod;
    if (startInterval !== undefined) health.StartInterval = startInterval;
    if (instruction.retries !== undefined) health.Retries = instruction.retries;
    return health;
  }

  // ---- RUN ---------------------------------------------------------------------------------------------------

  private async prepareRun(
    ctx: BuildContext,
    state: StageState,
    instruction: RunInstruction,
    shell: readonly string[],
  ): Promise<{ canonical: unknown; execute: () => Promise<BuildImageConfig> }> {
    const argv = commandArgv(this.heredocScript(instruction), shell);
    const envKeys = new Set((state.config.config.Env ?? []).map(envKey));
    const argEnv = [...state.args]
      .filter((entry): entry is [string, string] => entry[1] !== undefined && !envKeys.has(entry[0]))
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([key, value]) => `${key}=${value}`);
    const binds = await this.contextBinds(ctx, state, instruction);
    const createdBy =
      argEnv.length > 0 ? `RUN |${argEnv.length} ${argEnv.join(' ')} ${argv.join(' ')}` : `RUN ${argv.join(' ')}`;
    return {
      canonical: [
        'RUN',
        argv,
        argEnv,
        instruction.mounts,
        instruction.network ?? 'default',
        binds.map((bind) => contentSummary(bind.entries)),
      ],
      execute: () => this.executeRun(ctx, state, instruction, argv, argEnv, createdBy, binds),
    };
  }

  /** `RUN --mount=type=bind` sources in the build context (after .dockerignore), planned like a COPY. */
  private async contextBinds(
    ctx: BuildContext,
    state: StageState,
    instruction: RunInstruction,
  ): Promise<ContextBind[]> {
    const binds: ContextBind[] = [];
    for (const mount of instruction.mounts) {
      if (mount.type !== 'bind') continue;
      const source = mount.options.source ?? mount.options.src ?? '.';
      const rel = path.posix.normalize(`/${source}`).slice(1);
      const host = await resolveInRoot(ctx.options.contextDir, rel, true);
      const stat = await fs.lstat(host).catch(() => undefined);
      if (stat === undefined || (rel !== '' && ctx.ignore.matches(rel))) {
        throw this.fail(instruction, `RUN --mount=type=bind: "${source}" not found in the build context`);
      }
      const entries = await planCopy({
        keyword: 'COPY',
        sources: [rel === '' ? '.' : rel],
        dest: '/',
        heredocs: new Map(),
        owner: undefined,
        chmod: undefined,
        checksum: undefined,
        exclude: undefined,
        from: { root: ctx.options.contextDir, ignore: ctx.ignore, keepOwners: false },
        view: new LayerView([]),
        signal: ctx.options.signal,
      });
      const writable = ['rw', 'readwrite'].some((key) => mount.options[key] === 'true');
      const target = path.posix.resolve(state.config.config.WorkingDir || '/', mount.target);
      binds.push({ target, isDir: stat.isDirectory(), entries, writable });
    }
    return binds;
  }

  /** Writes planned entries under dir (a private copy: a bind never exposes ignored files, writes are discarded). */
  private async materialize(entries: readonly PlannedEntry[], dir: string): Promise<void> {
    for (const entry of entries) {
      const target = path.join(dir, entry.target);
      if (entry.type === 'dir') await fs.mkdir(target, { recursive: true });
      else {
        await fs.mkdir(path.dirname(target), { recursive: true });
        if (entry.type === 'symlink') await fs.symlink(entry.linkname ?? '', target);
        else if (entry.type === 'file' && entry.source !== undefined) {
          if ('data' in entry.source) await fs.writeFile(target, entry.source.data);
          else await fs.copyFile(entry.source.file, target);
        } else continue;
      }
      if (entry.type !== 'symlink') await fs.chmod(target, entry.mode);
    }
  }

  /**
   * `RUN <<EOF` whose body starts with `#!` runs the body as an executable script (BuildKit does); it is written to
   * a temporary file in the container and removed after, so it never reaches the layer.
   */
  private heredocScript(instruction: RunInstruction): CommandForm {
    const [only] = instruction.heredocs;
    const command = instruction.command;
    if (command.form !== 'shell' || instruction.heredocs.length !== 1 || only === undefined) return command;
    if (command.script !== only.content || !only.content.startsWith('#!')) return command;
    const end = `TSFIG_HEREDOC_${sha256(only.content).slice(0, 12)}`;
    return {
      form: 'shell',
      script: `f=$(mktemp) && cat > "$f" <<'${end}'\n${only.content}${end}\nchmod 700 "$f" && "$f"; s=$?; rm -f "$f"; exit $s`,
    };
  }

  private async imageFor(config: BuildImageConfig): Promise<string> {
    const record = await this.engine.images.addImage(Buffer.from(JSON.stringify(config)));
    return record.id;
  }

  /** An image for a RUN container: existing, or made now (then `made`, and removed after the step). */
  private async runImage(config: BuildImageConfig): Promise<{ id: string; made: boolean }> {
    const bytes = Buffer.from(JSON.stringify(config));
    const id = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const existed = await this.engine.images.resolve(id).then(
      () => true,
      () => false,
    );
    await this.engine.images.addImage(bytes);
    return { id, made: !existed };
  }

  /** Removes a RUN's image when the builder made it and nothing tags or uses it (its layers stay, held by others). */
  private async dropRunImage(image: { id: string; made: boolean }): Promise<void> {
    if (!image.made) return;
    const record = await this.engine.images.resolve(image.id).catch(() => undefined);
    if (record === undefined || record.repoTags.length > 0) return;
    await this.engine.images
      .remove(image.id, { isInUse: containerImageUsers(this.engine.paths) })
      .catch(() => undefined);
  }

  private layerDirs(diffIds: readonly string[]): string[] {
    return chainIds(diffIds)
      .reverse()
      .map((chainId) => path.join(this.engine.paths.layers, chainId.replace(/^sha256:/, ''), 'diff'));
  }

  /**
   * Runs a RUN step in a container and makes its upper dir a layer. The signal is honoured throughout: before the
   * container starts, while it runs (it is killed and no longer followed) and while its layer is packed; whatever
   * ends the step, the container (monitor, cgroup, mounts, upper dir) and the private copies of bind mounts go.
   */
  private async executeRun(
    ctx: BuildContext,
    state: StageState,
    instruction: RunInstruction,
    argv: string[],
    argEnv: string[],
    createdBy: string,
    binds: readonly ContextBind[],
  ): Promise<BuildImageConfig> {
    const signal = ctx.options.signal;
    signal?.throwIfAborted();
    if (instruction.network === 'host' && !(ctx.options.allow ?? []).includes('network.host')) {
      // a Dockerfile from someone else must not reach the host's network unless the operator says so (BuildKit)
      throw this.fail(
        instruction,
        'RUN --network=host needs the network.host entitlement',
        'pass --allow network.host to grant it',
      );
    }
    const runImage = await this.runImage(state.config);
    ctx.runImages.push(runImage);
    const imageId = runImage.id;
    const containers = this.engine.containers;
    let bindDir: string | undefined;
    let containerId: string | undefined;
    try {
      const mounts = [];
      if (binds.length > 0) bindDir = await ownedTmpDir(this.tmpDir, 'bind');
      for (const [index, bind] of binds.entries()) {
        const dir = path.join(bindDir ?? '', String(index));
        await this.materialize(bind.entries, dir);
        const source = bind.isDir ? dir : path.join(dir, bind.entries[0]?.target ?? '');
        const options = bind.writable ? ['rbind', 'rprivate'] : ['rbind', 'rprivate', 'ro'];
        mounts.push({ destination: bind.target, type: 'bind' as const, source, options });
      }
      const files = this.secretFiles(ctx, state, instruction);
      for (const mount of instruction.mounts) {
        const target = path.posix.resolve(state.config.config.WorkingDir || '/', mount.target);
        if (mount.type === 'bind' || mount.type === 'secret') continue;
        if (mount.type === 'tmpfs') {
          mounts.push({ destination: target, type: 'tmpfs' as const, source: 'tmpfs', options: ['nosuid', 'nodev'] });
          continue;
        }
        const id = mount.options.id ?? target;
        const source = path.join(this.cacheDir, 'mounts', sha256(id).slice(0, 32));
        await fs.mkdir(source, { recursive: true, mode: 0o755 });
        mounts.push({ destination: target, type: 'bind' as const, source, options: ['rbind', 'rprivate'] });
      }
      signal?.throwIfAborted();
      const record = await containers.create({
        image: imageId,
        cmd: argv,
        entrypoint: [],
        env: argEnv,
        user: state.config.config.User ?? '',
        workingDir: state.config.config.WorkingDir || '/',
        network: instruction.network === 'host' ? 'host' : 'none',
        mounts,
        ...(files.length > 0 ? { files } : {}),
        // the creator lets a later build remove this container if this process is killed outright (debris.ts)
        labels: { [BUILD_LABEL]: 'true', [BUILD_CREATOR_LABEL]: await creatorLabel() },
      });
      containerId = record.id;
      const stepText = `step ${ctx.step}/${ctx.total} (${instruction.original})`;
      const tail: string[] = [];
      let exitCode: number;
      const onAbort = (): void => void containers.kill(record.id).catch(() => undefined);
      try {
        signal?.throwIfAborted();
        await containers.start(record.id);
        signal?.addEventListener('abort', onAbort, { once: true });
        if (signal?.aborted === true) onAbort();
        // on abort the log stops being followed at once; the container is killed and removed below
        for await (const entry of containers.logs(record.id, { follow: true, ...(signal ? { signal } : {}) })) {
          for (const line of entry.text.replace(/\n$/, '').split('\n')) {
            tail.push(line);
            if (tail.length > OUTPUT_TAIL) tail.shift();
          }
          ctx.onEvent({ kind: 'output', step: ctx.step, stream: entry.stream, text: entry.text });
        }
        signal?.throwIfAborted();
        exitCode = await containers.wait(record.id, signal ? { signal } : {});
      } catch (error) {
        if (error instanceof EngineError && error.exitCode !== undefined && signal?.aborted !== true) {
          throw new BuildStepError(stepText, error.exitCode, [...tail, error.message]);
        }
        throw error;
      } finally {
        signal?.removeEventListener('abort', onAbort);
      }
      signal?.throwIfAborted();
      if (exitCode !== 0) throw new BuildStepError(stepText, exitCode, tail);
      const upper = path.join(this.engine.paths.containers, record.id, 'upper');
      const stubs = await this.mountStubs(upper, state.config.rootfs.diff_ids, [
        ...mounts.map((m) => m.destination),
        ...files.flatMap((file) => (file.destination === '' ? [] : [file.destination])),
      ]);
      const parent = chainIds(state.config.rootfs.diff_ids).at(-1) ?? null;
      const layer = await this.engine.images.addLayer(
        abortable(
          upperDirLayer(upper, (entry: TarEntry) => stubs.has(entry.name)),
          signal,
        ),
        parent,
      );
      return this.withLayer(state.config, layer.diffId, createdBy);
    } finally {
      if (containerId !== undefined) await this.removeRunContainer(containerId);
      if (bindDir !== undefined) await fs.rm(bindDir, { recursive: true, force: true });
    }
  }

  /**
   * The RUN's secret mounts as files of its container (written root-only into the container's dir, bound read-only,
   * removed with the container; `env=` read by the native helper from that file): only the secrets given.
   */
  private secretFiles(ctx: BuildContext, state: StageState, instruction: RunInstruction): ContainerFile[] {
    const files: ContainerFile[] = [];
    for (const mount of instruction.mounts) {
      const secret = mount.secret;
      const content = secret !== undefined ? ctx.options.secrets?.[secret.id] : undefined;
      if (secret === undefined || content === undefined) continue;
      files.push({
        destination:
          secret.target !== undefined ? path.posix.resolve(state.config.config.WorkingDir || '/', secret.target) : '',
        ...(secret.env !== undefined ? { env: secret.env } : {}),
        uid: secret.uid,
        gid: secret.gid,
        mode: secret.mode,
        content,
        origin: `Dockerfile:${instruction.line}:${instruction.column}: secret ${secret.id}`,
      });
    }
    return files;
  }

  /**
   * Removes a RUN container, killing it first if it runs (its monitor then removes its cgroup; the removal takes the
   * mounts and the upper dir). A removal that fails is tried again once: a left-over container would be swept only
   * when this process is gone.
   */
  private async removeRunContainer(id: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.engine.containers.remove(id, { force: true });
        return;
      } catch (error) {
        if (isEngineError(error, 'not-found') || attempt >= 1) return;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  }

  /**
   * Mount points the runtime created in the upper dir (absent from the image: empty files, and directories holding
   * nothing but such stubs, the parents made for a mount's target included, as BuildKit's mount stub cleaner):
   * left out of the layer.
   */
  private async mountStubs(
    upper: string,
    diffIds: readonly string[],
    targets: readonly string[],
  ): Promise<Set<string>> {
    const view = new LayerView(this.layerDirs(diffIds));
    const stubs = new Set<string>();
    const candidates = new Set<string>(STUB_FILES);
    for (const target of targets) {
      for (let rel = target.replace(/^\/+/, ''); rel !== '.' && rel !== ''; rel = path.posix.dirname(rel)) {
        candidates.add(rel);
      }
    }
    // deepest first: a parent is a stub when everything in it is
    const ordered = [...candidates].sort((a, b) => b.split('/').length - a.split('/').length);
    for (const candidate of ordered) {
      const stat = await fs.lstat(path.join(upper, candidate)).catch(() => undefined);
      if (stat === undefined) continue;
      const empty = stat.isFile()
        ? stat.size === 0
        : stat.isDirectory() &&
          (await fs.readdir(path.join(upper, candidate))).every((child) => stubs.has(`${candidate}/${child}`));
      if (empty && (await view.lookup(`/${candidate}`)) === undefined) stubs.add(candidate);
    }
    return stubs;
  }

  /** The config with one more layer. */
  private withLayer(config: BuildImageConfig, diffId: string, createdBy: string): BuildImageConfig {
    const created = new Date().toISOString();
    return {
      ...structuredClone(config),
      created,
      rootfs: { type: 'layers', diff_ids: [...config.rootfs.diff_ids, diffId] },
      history: [...config.history, { created, created_by: createdBy }],
    };
  }

  // ---- COPY / ADD --------------------------------------------------------------------------------------------

  private async prepareCopy(
    ctx: BuildContext,
    stage: Stage,
    state: StageState,
    instruction: CopyInstruction,
    word: (text: string) => string,
  ): Promise<{ canonical: unknown; execute: () => Promise<BuildImageConfig> }> {
    const keyword = instruction.kind === 'copy' ? 'COPY' : 'ADD';
    const workdir = state.config.config.WorkingDir || '/';
    const rawDest = word(instruction.dest);
    // `dir/`, `dir/.` and `.` name a directory (the file goes inside it), as in Docker.
    const resolvedDest = path.posix.resolve(workdir, rawDest);
    const dest = resolvedDest + (/(^|\/)\.?$/.test(rawDest) && resolvedDest !== '/' ? '/' : '');
    const sources = instruction.sources.map((source) => (source.startsWith('<<') ? source : word(source)));
    const heredocs = new Map(
      instruction.heredocs.map((doc) => [
        doc.name,
        Buffer.from(doc.expand ? this.expandHeredoc(ctx, doc.content, state, instruction) : doc.content),
      ]),
    );
    const view = new LayerView(this.layerDirs(state.config.rootfs.diff_ids));
    const owner =
      instruction.chown !== undefined ? await this.owner(view, word(instruction.chown), instruction) : undefined;
    const chmod = instruction.chmod !== undefined ? this.chmod(word(instruction.chmod), instruction) : undefined;
    const checksum = instruction.checksum !== undefined ? word(instruction.checksum) : undefined;
    if (checksum !== undefined && !/^sha256:[0-9a-f]{64}$/.test(checksum)) {
      throw this.fail(instruction, `invalid checksum "${checksum}"`, 'use --checksum=sha256:<64 hex digits>');
    }
    const exclude = instruction.exclude.length > 0 ? new DockerIgnore(instruction.exclude.map(word)) : undefined;
    const plan = async (from: CopySourceRoot): Promise<PlannedEntry[]> => {
      try {
        return await planCopy({
          keyword,
          sources,
          dest,
          heredocs,
          owner,
          chmod,
          checksum,
          exclude,
          from,
          view,
          signal: ctx.options.signal,
          scratch: async () => (ctx.scratch ??= await ownedTmpDir(this.tmpDir, 'add')),
          maxAddBytes: ctx.maxAddBytes,
        });
      } catch (error) {
        // a source that is missing, too large or unsafe: named with the step's line
        if (!(error instanceof EngineError) || error.kind === 'internal') throw error;
        throw new EngineError(error.kind, `Dockerfile:${instruction.line}:${instruction.column}: ${error.message}`, {
          hint: error.hint,
          cause: error.cause,
        });
      }
    };
    const createdBy = `${keyword} ${instruction.from !== undefined ? `--from=${instruction.from} ` : ''}${sources.join(' ')} ${dest}`;

    if (instruction.from !== undefined) {
      const fromRef = word(instruction.from);
      const named = this.namedContext(ctx, fromRef);
      if (named !== undefined && 'dir' in named) {
        // a directory context is read like the build context (files are root's), without its .dockerignore
        const entries = await plan({ root: named.dir, ignore: undefined, keepOwners: false });
        return {
          canonical: [keyword, 'context', fromRef, sources, dest, owner, chmod, checksum, contentSummary(entries)],
          execute: () => this.commitCopy(state, view, entries, owner, createdBy, ctx.options.signal),
        };
      }
      const source = await this.copySource(ctx, stage, fromRef, instruction);
      const urls = sources.filter((s) => /^https?:\/\//i.test(s));
      return {
        canonical: [keyword, 'from', source.key, sources, dest, owner, chmod, instruction.exclude, urls],
        execute: () =>
          withMergedRootfs(this.layerDirs(source.diffIds), this.tmpDir, async (root) => {
            const entries = await plan({ root, ignore: undefined, keepOwners: true });
            return this.commitCopy(state, view, entries, owner, createdBy, ctx.options.signal);
          }),
      };
    }
    const entries = await plan({ root: ctx.options.contextDir, ignore: ctx.ignore, keepOwners: false });
    return {
      canonical: [keyword, sources, dest, owner, chmod, checksum, contentSummary(entries)],
      execute: () => this.commitCopy(state, view, entries, owner, createdBy, ctx.options.signal),
    };
  }

  private expandHeredoc(ctx: BuildContext, content: string, state: StageState, instruction: Instruction): string {
    // Only `$` expansions: quotes and backslashes in a heredoc body are text.
    const lookup = this.lookup(ctx, state);
    return content.replace(/\$(\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)/g, (match) =>
      this.expand(ctx, match, lookup, instruction),
    );
  }

  private async copySource(
    ctx: BuildContext,
    stage: Stage,
    ref: string,
    instruction: Instruction,
  ): Promise<{ key: string; diffIds: string[] }> {
    const fromStage = this.stageRef(ctx, ref, stage.index);
    if (fromStage !== undefined) {
      const built = ctx.built.get(fromStage.index);
      if (built === undefined) throw this.fail(instruction, `stage ${ref} was not built`);
      return { key: chainIds(built.config.rootfs.diff_ids).at(-1) ?? 'empty', diffIds: built.config.rootfs.diff_ids };
    }
    if (/^\d+$/.test(ref))
      throw this.fail(instruction, `invalid stage index ${ref}: only earlier stages can be copied from`);
    const named = this.namedContext(ctx, ref);
    const imageRef = named !== undefined && 'image' in named ? named.image : ref;
    try {
      const image = await this.engine.images.resolve(imageRef);
      return { key: image.id, diffIds: [...image.diffIds] };
    } catch (error) {
      if (error instanceof EngineError && error.kind === 'not-found') {
        throw this.fail(
          instruction,
          named === undefined
            ? `--from=${ref}: no stage or image by that name`
            : `--from=${ref}: the image "${imageRef}" of the named context "${ref}" is not there`,
          `import it first: tsfig image import FILE ${imageRef}`,
        );
      }
      throw error;
    }
  }

  /** --chown USER[:GROUP], names looked up in the image's /etc/passwd and /etc/group. */
  private async owner(view: LayerView, spec: string, instruction: Instruction): Promise<{ uid: number; gid: number }> {
    const [user = '', group] = spec.split(':');
    const table = async (file: string): Promise<string[][]> =>
      ((await view.readFile(file))?.toString('utf8') ?? '').split('\n').map((line) => line.split(':'));
    let uid: number;
    let gid: number | undefined;
    if (/^\d+$/.test(user)) uid = Number(user);
    else {
      const entry = (await table('/etc/passwd')).find((fields) => fields[0] === user);
      if (entry === undefined)
        throw this.fail(instruction, `--chown: unknown user "${user}" in the image's /etc/passwd`);
      uid = Number(entry[2]);
      gid = Number(entry[3]);
    }
    if (group !== undefined && group !== '') {
      if (/^\d+$/.test(group)) gid = Number(group);
      else {
        const entry = (await table('/etc/group')).find((fields) => fields[0] === group);
        if (entry === undefined)
          throw this.fail(instruction, `--chown: unknown group "${group}" in the image's /etc/group`);
        gid = Number(entry[2]);
      }
    }
    for (const [kind, id] of [
      ['user', uid],
      ['group', gid ?? uid],
    ] as const) {
      if (!Number.isInteger(id) || id < 0 || id > MAX_ID)
        throw this.fail(instruction, `--chown: ${kind} id ${String(id)} is out of range (0 to ${MAX_ID})`);
    }
    return { uid, gid: gid ?? uid };
  }

  private chmod(spec: string, instruction: Instruction): number {
    if (!/^[0-7]{3,4}$/.test(spec))
      throw this.fail(instruction, `invalid --chmod "${spec}"`, 'use an octal mode, e.g. --chmod=0644');
    return parseInt(spec, 8);
  }

  /** Writes planned entries (with the parent dirs they need) as a layer. */
  private async commitCopy(
    state: StageState,
    view: LayerView,
    entries: readonly PlannedEntry[],
    owner: { uid: number; gid: number } | undefined,
    createdBy: string,
    signal: AbortSignal | undefined,
  ): Promise<BuildImageConfig> {
    const written = new Set(entries.map((entry) => entry.target));
    const parents = new Map<string, TarEntry>();
    for (const entry of entries) {
      const elements = entry.target.split('/');
      for (let i = 1; i < elements.length; i++) {
        const dir = elements.slice(0, i).join('/');
        if (written.has(dir) || parents.has(dir)) continue;
        const existing = await view.lookup(`/${dir}`, true);
        parents.set(
          dir,
          existing !== undefined && existing.stat.isDirectory()
            ? {
                name: dir,
                type: 'dir',
                mode: existing.stat.mode & 0o7777,
                uid: existing.stat.uid,
                gid: existing.stat.gid,
                mtime: Math.floor(existing.stat.mtimeMs / 1000),
              }
            : { name: dir, type: 'dir', mode: 0o755, uid: owner?.uid ?? 0, gid: owner?.gid ?? 0, mtime: 0 },
        );
      }
    }
    function* all(): Generator<TarEntry> {
      for (const parent of [...parents.values()].sort((a, b) => a.name.localeCompare(b.name))) yield parent;
      for (const entry of entries) {
        // a host file (the context's, a download) is streamed into the layer, never read whole
        const content =
          entry.source === undefined
            ? {}
            : 'data' in entry.source
              ? { data: entry.source.data }
              : { file: { path: entry.source.file, size: entry.size } };
        yield {
          name: entry.target,
          type: entry.type,
          mode: entry.mode,
          uid: entry.uid,
          gid: entry.gid,
          mtime: entry.mtime,
          ...(entry.linkname !== undefined ? { linkname: entry.linkname } : {}),
          ...content,
        };
      }
    }
    const parent = chainIds(state.config.rootfs.diff_ids).at(-1) ?? null;
    const layer = await this.engine.images.addLayer(abortable(entriesLayer(all()), signal), parent);
    return this.withLayer(state.config, layer.diffId, createdBy);
  }

  // ---- result ------------------------------------------------------------------------------------------------

  private async commitFinal(ctx: BuildContext, state: StageState): Promise<string> {
    const config = structuredClone(state.config);
    const labels = ctx.options.labels ?? {};
    if (Object.keys(labels).length > 0) config.config.Labels = { ...(config.config.Labels ?? {}), ...labels };
    const [first, ...rest] = ctx.options.tags ?? [];
    const record = await this.engine.images.addImage(Buffer.from(JSON.stringify(config)), { reference: first });
    for (const tag of rest) await this.engine.images.tag(record.id, tag);
    return record.id;
  }
}

/** A metadata step's history text with its values substituted (`WORKDIR /srv/app`), as BuildKit records it. */
function historyText(canonical: unknown): string | undefined {
  if (!Array.isArray(canonical)) return undefined;
  const [keyword, value] = canonical as [unknown, unknown];
  if (typeof keyword !== 'string') return undefined;
  switch (keyword) {
    case 'ENV':
    case 'LABEL':
      return `${keyword} ${(value as [string, string][]).map(([k, v]) => `${k}=${v}`).join(' ')}`;
    case 'WORKDIR':
    case 'USER':
    case 'STOPSIGNAL':
    case 'MAINTAINER':
    case 'ONBUILD':
      return `${keyword} ${String(value)}`;
    case 'EXPOSE':
    case 'VOLUME':
      return `${keyword} ${(value as string[]).join(' ')}`;
    case 'CMD':
    case 'ENTRYPOINT':
    case 'SHELL':
      return `${keyword} ${JSON.stringify(value)}`;
    default:
      return undefined;
  }
}

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** BuildKit's automatic platform args, available to FROM lines and to `ARG NAME` in stages. */
function predefinedArgs(): Record<string, string> {
  const arch = goArch();
  return {
    TARGETPLATFORM: `linux/${arch}`,
    TARGETOS: 'linux',
    TARGETARCH: arch,
    TARGETVARIANT: '',
    BUILDPLATFORM: `linux/${arch}`,
    BUILDOS: 'linux',
    BUILDARCH: arch,
    BUILDVARIANT: '',
  };
}
