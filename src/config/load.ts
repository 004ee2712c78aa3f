import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { TsfigError } from '../errors.js';
import type { Project } from '../model/project.js';
import { ConfigError, DiagnosticBag, suggestion } from './diagnostics.js';
import type { Diagnostic, Position } from './diagnostics.js';
import { parseDotenv } from './dotenv.js';
import { interpolateTree } from './interpolate.js';
import type { Lookup } from './interpolate.js';
import { mergeFiles, stripTags } from './merge.js';
import { normalizeProject, resolveHostPath } from './normalize.js';
import { OCI_PREFIX, remoteProjectFiles } from './oci.js';
import { isRawMap, locationOf, maxFileBytes, setLocation } from './parse.js';
import { parseYamlCached } from './parse-cache.js';
import type { RawMap } from './parse.js';
import { topLevelKeys, validateSchema } from './schema.js';
import { normalizeProjectName, projectNamePattern } from './values.js';

/** What the global project flags and the environment say about where the project is. */
export interface LoadOptions {
  /** `-f` files, in order; relative to `cwd`. Empty: COMPOSE_FILE/TSFIG_FILE, then a search from `cwd` upwards. */
  readonly files?: readonly string[];
  readonly projectDirectory?: string;
  /** `-p`. */
  readonly projectName?: string;
  /** `--env-file`, replacing `.env` when given. */
  readonly envFiles?: readonly string[];
  /** `--profile`; when empty, COMPOSE_PROFILES. */
  readonly profiles?: readonly string[];
  /** Services named on the command line: they and their dependencies are enabled whatever their profiles. */
  readonly services?: readonly string[];
  /** A missing env file is no error for any service (only the names are read). @default false: an error for the
   * services in play (those named and their dependencies, or all when none is named). */
  readonly lenientEnvFiles?: boolean;
  /** @default true */
  readonly interpolate?: boolean;
  /** @default process.cwd() */
  readonly cwd?: string;
  /** The shell environment. @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** What `-f -` reads. @default the process's standard input */
  readonly stdin?: () => string;
}

/** The name `-f -` gets in messages; relative paths in it resolve against the working directory. */
export const stdinName = '<stdin>';

export interface LoadResult {
  readonly project: Project;
  /** Warnings (unset variables, obsolete `version`, ...) to print on stderr. */
  readonly warnings: readonly Diagnostic[];
  /** File texts by absolute path, for printing diagnostics with excerpts. */
  readonly sources: ReadonlyMap<string, string>;
  /**
   * The project's environment: the shell's variables over those of the .env (or --env-file) files. `run -e NAME`
   * takes NAME's value from it, as compose v2 does (e2e TestEnvPriority).
   */
  readonly environment: Readonly<Record<string, string | undefined>>;
}

/** File names searched in each directory, in order of preference. */
export const projectFileNames = [
  'tsfig.yml',
  'tsfig.yaml',
  'compose.yaml',
  'compose.yml',
  'docker-compose.yml',
  'docker-compose.yaml',
  'fig.yml',
] as const;

/**
 * Loads, interpolates, merges, validates and normalises a project. Throws `ConfigError` (exit 65) holding every
 * problem found, or a `TsfigError` when no project file can be found.
 */
export function loadProject(options: LoadOptions = {}): LoadResult {
  const { merged, bag, cwd, files, projectDirectory, fromEnv, lookup, shell, dotenv, fallback } = readFiles(options);
  const projectName = resolveProjectName(options.projectName, fromEnv, merged, projectDirectory, bag);
  const profiles =
    options.profiles && options.profiles.length > 0
      ? options.profiles
      : (lookup('COMPOSE_PROFILES') ?? lookup('TSFIG_PROFILES') ?? '').split(',').filter((p) => p.trim() !== '');
  const project = normalizeProject(merged, {
    projectName,
    projectDirectory,
    configFiles: files,
    lookup: options.interpolate === false ? undefined : lookup,
    readEnvFile: (file) => readTextFile(file),
    home: shell.HOME,
    activeProfiles: profiles.map((p) => p.trim()),
    requestedServices: options.services ?? [],
    lenientEnvFiles: options.lenientEnvFiles === true,
    bag,
    fallback,
  });
  if (bag.hasErrors()) throw new ConfigError(bag.items, bag.sources, cwd);
  return {
    project,
    warnings: bag.warnings,
    sources: bag.sources,
    environment: { ...Object.fromEntries(dotenv), ...shell },
  };
}

/**
 * The model `config --no-interpolate` prints (compose-go's ToModel): the merged files with includes and extends
 * applied, validated against the schema, not interpolated (so not converted to tsfig's project, whose values must be
 * known), with compose's map normalisation: the project name, the implicit `default` network, build defaults, the
 * resources' names, the depends_on implied by links and service: references, and relative paths made absolute.
 * Every service, whatever its profiles.
 */
export function loadModel(options: LoadOptions = {}): {
  readonly model: RawMap;
  readonly warnings: readonly Diagnostic[];
  readonly sources: ReadonlyMap<string, string>;
} {
  const { merged, bag, projectDirectory, fromEnv } = readFiles({ ...options, interpolate: false });
  const name = resolveProjectName(options.projectName, fromEnv, merged, projectDirectory, bag);
  const model = stripTags(merged) as RawMap;
  delete model.version;
  absolutizeTree(model, projectDirectory);
  normalizeModel(model, name, projectDirectory);
  return { model: sortedKeys(model) as RawMap, warnings: bag.warnings, sources: bag.sources };
}

/** compose-go loader/normalize.go Normalize, on the raw model. */
function normalizeModel(model: RawMap, name: string, projectDirectory: string): void {
  model.name = name;
  const services = isRawMap(model.services) ? model.services : {};
  const networks: RawMap = isRawMap(model.networks) ? model.networks : {};
  let usesDefault = false;
  const started = (restart: boolean) => ({ condition: 'service_started', restart, required: true });
  for (const service of Object.values(services)) {
    if (!isRawMap(service)) continue;
    if (service.provider === undefined && service.network_mode === undefined) {
      // compose-go's canonical form of a list of networks: a map of entries with nothing set
      if (Array.isArray(service.networks))
        service.networks = Object.fromEntries((service.networks as unknown[]).map((n) => [String(n), null]));
      const nets = service.networks;
      if (nets === undefined || nets === null || (typeof nets === 'object' && Object.keys(nets).length === 0)) {
        service.networks = { default: null };
        usesDefault = true;
      } else if (isRawMap(nets) && 'default' in nets) {
        usesDefault = true;
      }
    }
    if (service.pull_policy === 'if_not_present') service.pull_policy = 'missing';
    if (typeof service.build === 'string') service.build = { context: service.build };
    if (isRawMap(service.build)) {
      service.build.context ??= projectDirectory;
      if (service.build.dockerfile === undefined && service.build.dockerfile_inline === undefined)
        service.build.dockerfile = 'Dockerfile';
    }
    // compose-go transformDependsOn: a list becomes a map, each entry gets condition and required
    const dependsOn: RawMap = isRawMap(service.depends_on)
      ? service.depends_on
      : Object.fromEntries(
          (Array.isArray(service.depends_on) ? (service.depends_on as unknown[]) : []).map((d) => [String(d), {}]),
        );
    for (const entry of Object.values(dependsOn)) {
      if (!isRawMap(entry)) continue;
      entry.condition ??= 'service_started';
      entry.required ??= true;
    }
    for (const link of Array.isArray(service.links) ? service.links : []) {
      const target = String(link).split(':')[0] ?? '';
      dependsOn[target] ??= started(true);
    }
    for (const key of ['network_mode', 'ipc', 'pid', 'uts', 'cgroup']) {
      const ref = service[key];
      if (typeof ref === 'string' && ref.startsWith('service:'))
        dependsOn[ref.slice('service:'.length)] ??= started(true);
    }
    for (const from of Array.isArray(service.volumes_from) ? service.volumes_from : []) {
      const ref = String(from);
      if (!ref.startsWith('container:')) dependsOn[ref.split(':')[0] ?? ''] ??= started(false);
    }
    if (Object.keys(dependsOn).length > 0) service.depends_on = dependsOn;
  }
  if (usesDefault && !('default' in networks)) networks.default = null;
  if (Object.keys(networks).length > 0) model.networks = networks;
  for (const section of ['networks', 'volumes', 'configs', 'secrets']) {
    const resources = model[section];
    if (!isRawMap(resources)) continue;
    for (const [key, value] of Object.entries(resources)) {
      const resource: RawMap = isRawMap(value) ? value : {};
      if (resource.name === undefined || resource.name === null) {
        const external = resource.external === true || String(resource.external) === 'true';
        resource.name = external ? key : `${name}_${key}`;
      }
      resources[key] = resource;
    }
  }
}

/** Maps with their keys sorted at every level, as Go marshals a map[string]any. */
function sortedKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortedKeys);
  if (!isRawMap(value)) return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((key) => [key, sortedKeys(value[key])]),
  );
}

/** The files of a project read, interpolated (unless told not to), merged and validated against the schema. */
function readFiles(options: LoadOptions) {
  const cwd = path.resolve(options.cwd ?? process.cwd());
  const shell = options.env ?? process.env;
  const bag = new DiagnosticBag();
  const explicitDir = options.projectDirectory === undefined ? undefined : path.resolve(cwd, options.projectDirectory);

  // --env-file, else COMPOSE_ENV_FILES (comma-separated, compose 2.24+), else .env in the project directory.
  const envFiles =
    options.envFiles && options.envFiles.length > 0
      ? options.envFiles
      : (shell.TSFIG_ENV_FILES ?? shell.COMPOSE_ENV_FILES ?? '').split(',').filter((f) => f.trim() !== '');
  let dotenv = readEnvironmentFiles(envFiles, explicitDir ?? cwd, cwd, shell, bag);
  const fromEnv = (name: string): string | undefined => shell[name] ?? dotenv.get(name);
  // without -f or COMPOSE_FILE the file is searched from the project directory when one is given (compose v2:
  // `--project-directory DIR config` reads DIR's compose file)
  const files = findProjectFiles(options.files ?? [], cwd, fromEnv, bag, explicitDir);
  // A project read from a registry (-f oci://...) has its directory where the command runs, as in compose.
  const remoteFirst = options.files?.[0]?.startsWith(OCI_PREFIX) === true;
  const projectDirectory = explicitDir ?? (remoteFirst ? cwd : path.dirname(files[0] ?? path.join(cwd, 'x')));
  if (envFiles.length === 0 && projectDirectory !== (explicitDir ?? cwd)) {
    // compose v2 reads the working directory's .env first (it may choose the files: COMPOSE_FILE), then the project
    // directory's, which adds what is not set yet (compose-go's second WithDotEnv; e2e TestComposeFileSetByDotEnv,
    // TestNestedDotEnv)
    const first = dotenv;
    const more = readEnvironmentFiles(undefined, projectDirectory, cwd, shell, bag, first);
    dotenv = new Map([...more, ...first]);
  }
  // The spec exposes the project name to interpolation as COMPOSE_PROJECT_NAME; computed only when a file asks.
  let nameForInterpolation: string | undefined;
  const projectNameVariable = (): string => {
    nameForInterpolation ??=
      options.projectName ??
      fromEnv('TSFIG_PROJECT_NAME') ??
      fromEnv('COMPOSE_PROJECT_NAME') ??
      scanNameKey(files) ??
      normalizeProjectName(path.basename(projectDirectory));
    return nameForInterpolation;
  };
  const lookup: Lookup = (name) =>
    shell[name] ?? dotenv.get(name) ?? (name === 'COMPOSE_PROJECT_NAME' ? projectNameVariable() : undefined);
  const loader = new FileLoader(bag, options.interpolate === false ? undefined : lookup, shell);
  loader.readStdin = options.stdin ?? (() => readFileSync(0, 'utf8'));

  let merged: RawMap | undefined;
  for (const file of files) {
    const tree = loader.load(file, []);
    if (tree === undefined) continue;
    merged = merged === undefined ? (stripTags(tree) as RawMap) : mergeFiles(merged, tree);
  }
  const fallback: Position = { file: files[0] ?? cwd, line: 1, column: 1 };
  if (merged === undefined || bag.hasErrors()) throw new ConfigError(bag.items, bag.sources, cwd);

  validateSchema(merged, bag, fallback);
  if (bag.hasErrors()) throw new ConfigError(bag.items, bag.sources, cwd);
  return { merged, bag, cwd, files, projectDirectory, fromEnv, lookup, shell, dotenv, fallback };
}

/** The literal top-level `name:` of the last file that has one (before interpolation, which may need it). */
function scanNameKey(files: readonly string[]): string | undefined {
  let found: string | undefined;
  for (const file of files) {
    const match = /^name:[ \t]*(["']?)([a-z0-9][a-z0-9_-]*)\1[ \t]*(#.*)?$/m.exec(readTextFile(file) ?? '');
    if (match?.[2] !== undefined) found = match[2];
  }
  return found;
}

function readTextFile(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * `.env` in `directory`, or the `--env-file` files (relative to cwd) in order, later ones winning. `inherited`: what
 * an earlier .env set, seen by this file's `${VAR}`s right after the shell's.
 */
function readEnvironmentFiles(
  envFiles: readonly string[] | undefined,
  directory: string,
  cwd: string,
  shell: Readonly<Record<string, string | undefined>>,
  bag: DiagnosticBag,
  inherited: ReadonlyMap<string, string> = new Map(),
): Map<string, string> {
  const values = new Map<string, string>();
  const explicit = envFiles !== undefined && envFiles.length > 0;
  const list = explicit ? envFiles.map((f) => path.resolve(cwd, f)) : [path.join(directory, '.env')];
  for (const file of list) {
    const text = readTextFile(file);
    if (text === undefined) {
      if (explicit) bag.error(`env file ${file} does not exist`, undefined, 'check the --env-file path');
      continue;
    }
    bag.sources.set(file, text);
    // a variable inside a value: the shell's first, then this file's earlier lines, then earlier files' (compose v2)
    const parsed = parseDotenv(text, (name) => values.get(name), {
      first: (name) => shell[name] ?? inherited.get(name),
    });
    for (const problem of parsed.problems) {
      bag.error(problem.message, { file, line: problem.line, column: problem.column });
    }
    for (const [k, v] of parsed.values) values.set(k, v);
  }
  return values;
}

/** The local copies of a published project (fetched by the CLI before loading: see oci.ts). */
function remoteFiles(reference: string): readonly string[] {
  const files = remoteProjectFiles(reference);
  if (files === undefined) {
    throw new TsfigError('usage', `${reference}: the project was not fetched from its registry`, {
      hint: 'give oci:// files with -f on the command line',
    });
  }
  return files;
}

function findProjectFiles(
  flags: readonly string[],
  cwd: string,
  fromEnv: Lookup,
  bag: DiagnosticBag,
  searchFrom = cwd,
): string[] {
  if (flags.length > 0)
    return flags.flatMap((f) =>
      f.startsWith(OCI_PREFIX) ? remoteFiles(f) : [path.resolve(cwd, f === '-' ? stdinName : f)],
    );
  const variable = fromEnv('TSFIG_FILE') ?? fromEnv('COMPOSE_FILE');
  if (variable !== undefined && variable !== '') {
    const separator = fromEnv('COMPOSE_PATH_SEPARATOR') ?? path.delimiter;
    return variable
      .split(separator)
      .filter((f) => f !== '')
      .map((f) => path.resolve(cwd, f));
  }
  for (let dir = searchFrom; ; dir = path.dirname(dir)) {
    const found = projectFileNames.filter((name) => existsSync(path.join(dir, name)));
    const first = found[0];
    if (first !== undefined) {
      if (found.length > 1) {
        bag.warn(`found several project files in ${dir}: ${found.join(', ')}; using ${first}`);
      }
      const base = path.join(dir, first);
      const ext = path.extname(first);
      const stem = first.slice(0, -ext.length);
      const override = ['.yml', '.yaml'].map((e) => path.join(dir, `${stem}.override${e}`)).find((f) => existsSync(f));
      return override === undefined ? [base] : [base, override];
    }
    if (path.dirname(dir) === dir) break;
  }
  throw new TsfigError('not-found', `no project file found in ${searchFrom} or its parent directories`, {
    hint: `create compose.yaml (or ${projectFileNames.join(', ')}), or pass -f FILE`,
  });
}

function resolveProjectName(
  flag: string | undefined,
  fromEnv: Lookup,
  merged: RawMap,
  projectDirectory: string,
  bag: DiagnosticBag,
): string {
  const position = locationOf(merged)?.values.get('name');
  const candidates: [string | undefined, string, Position | undefined][] = [
    [flag, '-p/--project-name', undefined],
    [fromEnv('TSFIG_PROJECT_NAME') ?? fromEnv('COMPOSE_PROJECT_NAME'), 'COMPOSE_PROJECT_NAME', undefined],
    [typeof merged.name === 'string' ? merged.name : undefined, 'name', position],
  ];
  for (const [value, source, where] of candidates) {
    if (value === undefined || value === '') continue;
    if (!projectNamePattern.test(value)) {
      const fixed = normalizeProjectName(value);
      bag.error(
        `invalid project name "${value}" (from ${source}): it must contain only lowercase letters, digits, "-" and "_", and start with a letter or digit`,
        where,
        fixed === '' ? undefined : `use "${fixed}"`,
      );
      return fixed || 'invalid';
    }
    return value;
  }
  const derived = normalizeProjectName(path.basename(projectDirectory));
  if (derived === '') {
    bag.error(
      `cannot derive a project name from the directory ${projectDirectory}`,
      undefined,
      'set one with -p NAME or a top-level name: key',
    );
    return 'invalid';
  }
  return derived;
}

const fileSections = ['services', 'networks', 'volumes', 'secrets', 'configs', 'models'] as const;

/** Reads one file with its includes and extends resolved; caches by path (one interpolation per file). */
class FileLoader {
  private readonly cache = new Map<string, RawMap | undefined>();
  private readonly bag: DiagnosticBag;
  private readonly lookup: Lookup | undefined;
  private readonly shell: Readonly<Record<string, string | undefined>>;

  /** Reads `-f -`. */
  readStdin: () => string = () => '';

  constructor(bag: DiagnosticBag, lookup: Lookup | undefined, shell: Readonly<Record<string, string | undefined>>) {
    this.bag = bag;
    this.lookup = lookup;
    this.shell = shell;
  }

  /** A parsed, interpolated file in Compose Specification shape, includes merged in, extends resolved. */
  load(
    file: string,
    chain: readonly string[],
    lookup: Lookup | undefined = this.lookup,
    includedAt?: Position,
  ): RawMap | undefined {
    if (chain.includes(file)) {
      this.bag.error(
        `include cycle: ${[...chain, file].join(' -> ')}`,
        includedAt,
        'a file cannot include itself, directly or through other files',
      );
      return undefined;
    }
    if (this.cache.has(file)) return this.cache.get(file);
    this.cache.set(file, undefined);
    const tree = this.parse(file, lookup);
    if (tree !== undefined) {
      this.processIncludes(tree, file, chain);
      this.processExtends(tree, file);
    }
    this.cache.set(file, tree);
    return tree;
  }

  private parse(file: string, lookup: Lookup | undefined): RawMap | undefined {
    if (path.basename(file) === stdinName) {
      let text: string;
      try {
        text = this.readStdin();
      } catch {
        this.bag.error(
          'cannot read the project from standard input',
          undefined,
          'pipe a file into tsfig, or use -f FILE',
        );
        return undefined;
      }
      return this.parseText(file, text, lookup);
    }
    let size: number;
    try {
      const stat = statSync(file);
      if (!stat.isFile()) {
        this.bag.error(`${file} is not a file`, undefined, 'name a YAML file, not a directory');
        return undefined;
      }
      size = stat.size;
    } catch {
      this.bag.error(`file not found: ${file}`, undefined, 'check the -f option or COMPOSE_FILE');
      return undefined;
    }
    const start: Position = { file, line: 1, column: 1 };
    if (size > maxFileBytes) {
      this.bag.error(
        `file is too large (${size} bytes; the limit is ${maxFileBytes})`,
        start,
        'split it into several files with include:, or check that this is the right file',
      );
      return undefined;
    }
    const text = readTextFile(file);
    if (text === undefined) {
      this.bag.error(`cannot read ${file}`, undefined, 'check its permissions');
      return undefined;
    }
    return this.parseText(file, text, lookup);
  }

  private parseText(file: string, text: string, lookup: Lookup | undefined): RawMap | undefined {
    const start: Position = { file, line: 1, column: 1 };
    const value = parseYamlCached(file, text, this.bag);
    if (value === undefined) return undefined;
    if (value === null) {
      this.bag.error('the file is empty', start, 'a project file needs at least a services: section');
      return undefined;
    }
    if (!isRawMap(value)) {
      this.bag.error('the top level must be a mapping (services:, networks:, ...)', start);
      return undefined;
    }
    const tree = lookup === undefined ? value : (interpolateTree(value, lookup, this.bag, start) as RawMap);
    return this.convertFormat(tree, file);
  }

  /** Fig and compose v1 files have services at the top level; their `net`, `log_driver`, ... become spec keys. */
  private convertFormat(tree: RawMap, file: string): RawMap {
    const location = locationOf(tree);
    if (tree.version !== undefined) {
      this.bag.warn(
        'the "version" key is obsolete and ignored',
        location?.keys.get('version'),
        'remove it; tsfig reads every compose file format',
      );
    }
    const unknownTop = Object.keys(tree).filter((k) => !topLevelKeys.includes(k) && !k.startsWith('x-'));
    const looksLikeFig =
      tree.services === undefined &&
      tree.version === undefined &&
      unknownTop.length > 0 &&
      unknownTop.every((k) => isRawMap(tree[k]));
    if (!looksLikeFig) {
      if (isRawMap(tree.services)) for (const s of Object.values(tree.services)) if (isRawMap(s)) convertV1Keys(s);
      return tree;
    }
    const services: RawMap = {};
    const servicesLocation = {
      self: location?.self ?? { file, line: 1, column: 1 },
      keys: new Map(),
      values: new Map(),
    };
    const out: RawMap = {};
    const outLocation = { self: servicesLocation.self, keys: new Map(), values: new Map() };
    for (const key of Object.keys(tree)) {
      if (unknownTop.includes(key)) {
        services[key] = tree[key];
        const k = location?.keys.get(key);
        const v = location?.values.get(key);
        if (k) servicesLocation.keys.set(key, k);
        if (v) servicesLocation.values.set(key, v);
        convertV1Keys(tree[key] as RawMap);
      } else {
        out[key] = tree[key];
        const k = location?.keys.get(key);
        if (k) outLocation.keys.set(key, k);
      }
    }
    setLocation(services, servicesLocation);
    out.services = services;
    outLocation.keys.set('services', servicesLocation.self);
    setLocation(out, outLocation);
    return out;
  }

  private processIncludes(tree: RawMap, file: string, chain: readonly string[]): void {
    const includes = tree.include;
    if (includes === undefined) return;
    delete tree.include;
    if (!Array.isArray(includes)) return; // the schema reports it
    const baseDir = path.dirname(file);
    const treeLocation = locationOf(tree);
    includes.forEach((entry, index) => {
      const position = locationOf(includes)?.values.get(index);
      const spec: RawMap = isRawMap(entry) ? entry : { path: entry };
      const paths = (Array.isArray(spec.path) ? spec.path : [spec.path]).filter((p) => typeof p === 'string');
      if (paths.length === 0) return;
      const files = paths.map((p) => path.resolve(baseDir, p));
      const projectDir =
        typeof spec.project_directory === 'string'
          ? path.resolve(baseDir, spec.project_directory)
          : path.dirname(files[0] ?? file);
      const envFiles = (
        Array.isArray(spec.env_file) ? spec.env_file : spec.env_file === undefined ? [] : [spec.env_file]
      )
        .filter((f): f is string => typeof f === 'string')
        .map((f) => path.resolve(baseDir, f));
      const localEnv = readEnvironmentFiles(
        envFiles.length > 0 ? envFiles : undefined,
        projectDir,
        baseDir,
        this.shell,
        this.bag,
      );
      const parentLookup = this.lookup;
      const lookup: Lookup | undefined =
        parentLookup === undefined ? undefined : (name) => parentLookup(name) ?? localEnv.get(name);
      let included: RawMap | undefined;
      for (const f of files) {
        if (!existsSync(f)) {
          this.bag.error(`included file not found: ${f}`, position, 'check the path under include:');
          continue;
        }
        const loaded = this.load(f, [...chain, file], lookup, position);
        if (loaded === undefined) continue;
        included = included === undefined ? (stripTags(loaded) as RawMap) : mergeFiles(included, loaded);
      }
      if (included === undefined) return;
      absolutizeTree(included, projectDir);
      for (const section of fileSections) {
        const from = included[section];
        if (!isRawMap(from)) continue;
        const target: RawMap = isRawMap(tree[section]) ? tree[section] : {};
        if (!isRawMap(tree[section])) {
          tree[section] = target;
          setLocation(target, { self: position ?? { file, line: 1, column: 1 }, keys: new Map(), values: new Map() });
          if (treeLocation && position) treeLocation.keys.set(section, position);
        }
        const targetLocation = locationOf(target);
        const fromLocation = locationOf(from);
        for (const [name, value] of Object.entries(from)) {
          if (Object.hasOwn(target, name)) {
            this.bag.error(
              `${section}.${name} is defined both here and in the included file ${files.join(', ')}`,
              targetLocation?.keys.get(name) ?? position,
              `rename one of them, or extend the included one with extends: {file: ..., service: ${name}}`,
            );
            continue;
          }
          target[name] = value;
          const k = fromLocation?.keys.get(name);
          if (k) targetLocation?.keys.set(name, k);
        }
      }
    });
  }

  private processExtends(tree: RawMap, file: string): void {
    const services = tree.services;
    if (!isRawMap(services)) return;
    for (const name of Object.keys(services)) this.resolveExtends(services, name, file, []);
  }

  /** Resolves `services[name].extends` in place (recursively), returning the resolved service. */
  private resolveExtends(services: RawMap, name: string, file: string, chain: readonly string[]): RawMap | undefined {
    const service = services[name];
    if (!isRawMap(service) || service.extends === undefined) return isRawMap(service) ? service : undefined;
    const spec = service.extends;
    const position = locationOf(service)?.values.get('extends');
    const baseName =
      typeof spec === 'string' ? spec : isRawMap(spec) && typeof spec.service === 'string' ? spec.service : undefined;
    if (baseName === undefined) return service; // the schema reports it
    const otherFile =
      isRawMap(spec) && typeof spec.file === 'string' ? path.resolve(path.dirname(file), spec.file) : file;
    const id = `${otherFile}#${baseName}`;
    const here = `${file}#${name}`;
    if (chain.includes(id) || id === here) {
      const names = [...chain, here, id].map((c) => c.split('#')[1]);
      this.bag.error(
        `extends cycle: ${names.join(' -> ')}`,
        position,
        'a service cannot extend itself, directly or not',
      );
      delete service.extends;
      return service;
    }
    let baseServices: RawMap | undefined = services;
    if (otherFile !== file) {
      if (!existsSync(otherFile)) {
        this.bag.error(`services.${name}.extends: file not found: ${otherFile}`, position);
        delete service.extends;
        return service;
      }
      const other = this.load(otherFile, []);
      baseServices = other && isRawMap(other.services) ? other.services : undefined;
    }
    const baseRaw = baseServices?.[baseName];
    if (!isRawMap(baseRaw)) {
      const candidates = Object.keys(baseServices ?? {});
      this.bag.error(
        `services.${name}.extends: no service "${baseName}"${otherFile === file ? '' : ` in ${otherFile}`}`,
        position,
        suggestion(baseName, candidates),
      );
      delete service.extends;
      return service;
    }
    const resolvedBase = this.resolveExtends(baseServices as RawMap, baseName, otherFile, [...chain, here]) ?? baseRaw;
    const base = structuredCloneWithLocations(resolvedBase) as RawMap;
    if (otherFile !== file) absolutizeService(base, path.dirname(otherFile));
    const own = { ...service };
    setLocation(
      own,
      locationOf(service) ?? { self: position ?? { file, line: 1, column: 1 }, keys: new Map(), values: new Map() },
    );
    delete own.extends;
    const merged = mergeFiles({ services: { [name]: stripTags(base) } }, { services: { [name]: own } });
    const result = (merged.services as RawMap)[name] as RawMap;
    services[name] = result;
    return result;
  }
}

/** Copies a tree, keeping recorded positions (an extended service is reused by several services). */
function structuredCloneWithLocations(value: unknown): unknown {
  if (Array.isArray(value)) {
    const out = value.map(structuredCloneWithLocations);
    const location = locationOf(value);
    if (location) setLocation(out, location);
    return out;
  }
  if (isRawMap(value)) {
    const out: RawMap = {};
    for (const [k, v] of Object.entries(value)) out[k] = structuredCloneWithLocations(v);
    const location = locationOf(value);
    if (location) setLocation(out, location);
    return out;
  }
  return value;
}

function convertV1Keys(service: RawMap): void {
  if (service.net !== undefined && service.network_mode === undefined) {
    service.network_mode = service.net;
    delete service.net;
    moveLocation(service, 'net', 'network_mode');
  }
  if (service.log_driver !== undefined || service.log_opt !== undefined) {
    service.logging = { driver: service.log_driver, options: service.log_opt ?? undefined };
    if (service.log_driver === undefined) delete (service.logging as RawMap).driver;
    if (service.log_opt === undefined) delete (service.logging as RawMap).options;
    moveLocation(service, service.log_driver === undefined ? 'log_opt' : 'log_driver', 'logging');
    delete service.log_driver;
    delete service.log_opt;
  }
  if (typeof service.dockerfile === 'string' && typeof service.build === 'string') {
    service.build = { context: service.build, dockerfile: service.dockerfile };
    delete service.dockerfile;
  }
}

function moveLocation(map: RawMap, from: string, to: string): void {
  const location = locationOf(map);
  if (!location) return;
  const k = location.keys.get(from);
  const v = location.values.get(from);
  if (k) location.keys.set(to, k);
  if (v) location.values.set(to, v);
}

function isRelativeHostPath(p: string): boolean {
  return !path.isAbsolute(p) && !p.startsWith('~') && !/^[a-z][a-z0-9+.-]*:\/\//i.test(p) && !p.startsWith('git@');
}

/** Makes the relative paths of a service absolute against `baseDir` (extends from, or include of, another dir). */
export function absolutizeService(service: RawMap, baseDir: string): void {
  const abs = (p: unknown): unknown => (typeof p === 'string' && isRelativeHostPath(p) ? path.resolve(baseDir, p) : p);
  if (typeof service.build === 'string') service.build = abs(service.build);
  else if (isRawMap(service.build)) service.build.context = abs(service.build.context ?? '.');
  if (typeof service.env_file === 'string') service.env_file = abs(service.env_file);
  else if (Array.isArray(service.env_file)) {
    service.env_file.forEach((entry, i, list) => {
      if (isRawMap(entry)) entry.path = abs(entry.path);
      else list[i] = abs(entry);
    });
  }
  if (typeof service.label_file === 'string') service.label_file = abs(service.label_file);
  if (Array.isArray(service.volumes)) {
    service.volumes.forEach((entry, i, list) => {
      if (typeof entry === 'string') {
        const [source, ...rest] = entry.split(':');
        if (rest.length > 0 && source !== undefined && source.startsWith('.')) {
          list[i] = [path.resolve(baseDir, source), ...rest].join(':');
        }
      } else if (isRawMap(entry) && entry.type === 'bind') entry.source = abs(entry.source);
    });
  }
}

function absolutizeTree(tree: RawMap, baseDir: string): void {
  if (isRawMap(tree.services))
    for (const s of Object.values(tree.services)) if (isRawMap(s)) absolutizeService(s, baseDir);
  for (const section of ['secrets', 'configs'] as const) {
    const map = tree[section];
    if (!isRawMap(map)) continue;
    for (const entry of Object.values(map)) {
      if (isRawMap(entry) && typeof entry.file === 'string')
        entry.file = resolveHostPath(entry.file, baseDir, undefined);
    }
  }
}
