import { parseUsernsMode, USERNS_HINT } from '../userns.js';
import path from 'node:path';
import type {
  Build,
  DependsOn,
  Deploy,
  EnvFile,
  Healthcheck,
  Logging,
  Network,
  PortMapping,
  Project,
  ResourceLimits,
  SecretOrConfig,
  Service,
  ServiceNetwork,
  ServiceSecret,
  ServiceVolume,
  StringMap,
  Ulimit,
  Volume,
} from '../model/project.js';
import { userSpecProblem } from '../../engine/containers/index.js';
import { FileContent } from '../../engine/volumes/index.js';
import { volumeNameProblem } from '../../engine/volumes/index.js';
import { suggestion } from './diagnostics.js';
import type { DiagnosticBag, Position } from './diagnostics.js';
import { parseDotenv } from './dotenv.js';
import type { Lookup } from './interpolate.js';
import { asMapping } from './merge.js';
import { isRawMap, locationOf } from './parse.js';
import type { RawMap } from './parse.js';
import {
  parseBoolean,
  parseBytes,
  parseDuration,
  parseInteger,
  parseNumber,
  parsePortSpec,
  parseVolumeSpec,
  shellSplit,
  scalarText,
  ValueError,
} from './values.js';

export interface NormalizeOptions {
  readonly projectName: string;
  readonly projectDirectory: string;
  readonly configFiles: readonly string[];
  /** Variables for bare `environment: [KEY]` entries and env files; undefined with --no-interpolate. */
  readonly lookup: Lookup | undefined;
  /** Reads an env_file (absolute path); undefined when it does not exist. Injected: this module does no I/O. */
  readonly readEnvFile: (file: string) => string | undefined;
  readonly home: string | undefined;
  readonly activeProfiles: readonly string[];
  /** Services named on the command line: enabled whatever their profiles, with their dependencies. */
  readonly requestedServices: readonly string[];
  /** Missing env files are not errors, whatever service they belong to (a load that only reads the names). */
  readonly lenientEnvFiles?: boolean;
  readonly bag: DiagnosticBag;
  readonly fallback: Position;
}

interface Ctx extends NormalizeOptions {
  readonly raw: RawMap;
  /** A missing env file is an error only for a service in play: the reports wait here, by `services.<name>`. */
  readonly missingEnvFiles: Map<string, (() => void)[]>;
}

/** Turns a validated, merged compose tree into the typed, frozen `Project`; semantic problems go into the bag. */
export function normalizeProject(raw: RawMap, options: NormalizeOptions): Project {
  const ctx: Ctx = { ...options, raw, missingEnvFiles: new Map() };
  const rawServices = isRawMap(raw.services) ? raw.services : {};
  const all: Record<string, Service> = {};
  for (const name of Object.keys(rawServices).sort()) {
    const value = rawServices[name];
    if (isRawMap(value)) all[name] = normalizeService(name, value, ctx);
  }
  const volumes = normalizeVolumes(raw.volumes, ctx);
  const secrets = normalizeSecrets(raw.secrets, ctx, 'secrets');
  const configs = normalizeSecrets(raw.configs, ctx, 'configs');
  checkServices(all, raw, ctx, { volumes, secrets, configs });
  const { enabled, disabled, profiles } = applyProfiles(all, ctx);
  if (ctx.lenientEnvFiles !== true)
    for (const name of inPlay(all, enabled, ctx))
      for (const report of ctx.missingEnvFiles.get(`services.${name}`) ?? []) report();
  const networks = normalizeNetworks(raw.networks, ctx, enabled);
  const project: Project = {
    name: ctx.projectName,
    project_directory: ctx.projectDirectory,
    config_files: [...ctx.configFiles],
    services: enabled,
    disabled_services: disabled,
    networks,
    volumes,
    secrets,
    configs,
    models: isRawMap(raw.models) ? raw.models : {},
    profiles,
    extensions: extensionsOf(raw),
  };
  // The bundled CLI (scripts/bundle.js defines TSFIG_BUNDLED_VERSION) skips the freeze, a few ms of every command on a
  // 50-service project (issue 18); the sources (unit tests, tsx) keep it, so a mutation of the model fails there.
  return typeof TSFIG_BUNDLED_VERSION === 'string' ? project : deepFreeze(project);
}

declare const TSFIG_BUNDLED_VERSION: string | undefined;

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

// ---------- positions and safe conversion ----------

function at(ctx: Ctx, container: unknown, key: string | number): Position {
  if (typeof container === 'object' && container !== null) {
    const location = locationOf(container);
    const found = location?.values.get(key) ?? location?.keys.get(key) ?? location?.self;
    if (found) return found;
  }
  return ctx.fallback;
}

function keyAt(ctx: Ctx, container: unknown, key: string | number): Position {
  if (typeof container === 'object' && container !== null) {
    const location = locationOf(container);
    const found = location?.keys.get(key) ?? location?.self;
    if (found) return found;
  }
  return ctx.fallback;
}

/** Runs a parser; a ValueError becomes a diagnostic at `container[key]` and the result is `fallback`. */
function safe<T>(ctx: Ctx, where: string, container: unknown, key: string | number, parse: () => T, fallback: T): T {
  try {
    return parse();
  } catch (error) {
    if (!(error instanceof ValueError)) throw error;
    ctx.bag.error(`${where}: ${error.message}`, at(ctx, container, key), error.hint);
    return fallback;
  }
}

function optional<T>(ctx: Ctx, where: string, map: RawMap, key: string, parse: (v: unknown) => T): T | undefined {
  const value = map[key];
  if (value === undefined || value === null) return undefined;
  return safe(ctx, `${where}.${key}`, map, key, () => parse(value), undefined);
}

function str(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  return scalarText(value);
}

function strList(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  return (Array.isArray(value) ? value : [value]).map((v) => String(v as string));
}

function stringMap(value: unknown, key: string): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  const map = asMapping(value, key);
  for (const name of Object.keys(map).sort()) {
    const v = map[name];
    out[name] = v === null || v === undefined ? null : scalarText(v);
  }
  return out;
}

function labelMap(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(stringMap(value, 'labels'))) out[k] = v ?? '';
  return out;
}

/** `label_file:` (compose 2.32): KEY=VALUE lines, no interpolation; later files win, `labels:` wins over all. */
function labelFiles(service: RawMap, ctx: Ctx, where: string): Record<string, string> {
  const value = service.label_file;
  const out: Record<string, string> = {};
  const list = Array.isArray(value) ? value : value === undefined || value === null ? [] : [value];
  list.forEach((entry, index) => {
    const file = hostPath(ctx, scalarText(entry));
    const text = ctx.readEnvFile(file);
    if (text === undefined) {
      const position = Array.isArray(value) ? at(ctx, value, index) : at(ctx, service, 'label_file');
      ctx.bag.error(`${where}.label_file: file ${file} does not exist`, position);
      return;
    }
    for (const [key, label] of parseDotenv(text, () => undefined).values) out[key] = label;
  });
  return out;
}

function plainStringMap(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isRawMap(value)) return out;
  for (const k of Object.keys(value).sort()) out[k] = String(value[k]);
  return out;
}

function extensionsOf(map: RawMap): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(map).sort()) if (key.startsWith('x-')) out[key] = map[key];
  return out;
}

function isUrl(context: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(context) || context.startsWith('git@') || context.startsWith('github.com/');
}

/** Resolves a host path against the project directory; `~` is the user's home. */
export function resolveHostPath(file: string, projectDirectory: string, home: string | undefined): string {
  if (file === '~' || file.startsWith('~/')) return path.join(home ?? '/root', file.slice(1));
  return path.resolve(projectDirectory, file);
}

function hostPath(ctx: Ctx, file: string): string {
  return resolveHostPath(file, ctx.projectDirectory, ctx.home);
}

// ---------- services ----------

const handledKeys = new Set([
  'label_file',
  'image',
  'build',
  'command',
  'entrypoint',
  'environment',
  'env_file',
  'ports',
  'expose',
  'volumes',
  'volumes_from',
  'depends_on',
  'links',
  'external_links',
  'healthcheck',
  'restart',
  'container_name',
  'hostname',
  'domainname',
  'working_dir',
  'user',
  'labels',
  'annotations',
  'profiles',
  'scale',
  'stop_grace_period',
  'stop_signal',
  'tty',
  'stdin_open',
  'privileged',
  'read_only',
  'userns_mode',
  'init',
  'cap_add',
  'cap_drop',
  'dns',
  'dns_search',
  'dns_opt',
  'extra_hosts',
  'tmpfs',
  'ulimits',
  'sysctls',
  'networks',
  'network_mode',
  'logging',
  'mem_limit',
  'mem_reservation',
  'memswap_limit',
  'shm_size',
  'cpus',
  'pids_limit',
  'pull_policy',
  'platform',
  'secrets',
  'configs',
  'deploy',
  'devices',
  'extends',
]);
const booleanKeys = new Set(['oom_kill_disable', 'use_api_socket', 'attach']);
const numberKeys = new Set([
  'cpu_shares',
  'cpu_quota',
  'cpu_period',
  'cpu_count',
  'cpu_percent',
  'oom_score_adj',
  'mem_swappiness',
  'cpu_rt_period',
  'cpu_rt_runtime',
]);

function normalizeService(name: string, s: RawMap, ctx: Ctx): Service {
  const where = `services.${name}`;
  const boolOf = (key: string, fallback: boolean): boolean => optional(ctx, where, s, key, parseBoolean) ?? fallback;
  const bytesOf = (key: string): number | undefined => optional(ctx, where, s, key, parseBytes);
  const deploy = normalizeDeploy(s.deploy, ctx, where);
  const scaleValue = optional(ctx, where, s, 'scale', (v) => parseInteger(v, 'a number of containers'));
  if (scaleValue !== undefined && deploy?.replicas !== undefined && scaleValue !== deploy.replicas) {
    ctx.bag.error(
      `${where}: scale (${scaleValue}) and deploy.replicas (${deploy.replicas}) disagree`,
      at(ctx, s, 'scale'),
      'keep only one of them',
    );
  }
  const other: Record<string, unknown> = {};
  for (const key of Object.keys(s).sort()) {
    if (handledKeys.has(key) || key.startsWith('x-')) continue;
    if (booleanKeys.has(key)) other[key] = optional(ctx, where, s, key, parseBoolean);
    else if (numberKeys.has(key)) other[key] = optional(ctx, where, s, key, parseNumber);
    else other[key] = s[key];
  }
  const envFiles = normalizeEnvFiles(s.env_file, ctx, where);
  const restart = str(s.restart) ?? 'no';
  if (!/^(no|always|unless-stopped|on-failure(:\d+)?)$/.test(restart)) {
    ctx.bag.error(
      `${where}.restart: "${restart}" is not a restart policy`,
      at(ctx, s, 'restart'),
      suggestion(restart, ['no', 'always', 'unless-stopped', 'on-failure']) ??
        'use no, always, unless-stopped, on-failure or on-failure:N',
    );
  }
  const pullPolicy = str(s.pull_policy) ?? 'missing';
  const implicit = (['restart', 'scale', 'stop_grace_period', 'pull_policy'] as const).filter((key) =>
    key === 'scale'
      ? scaleValue === undefined && deploy?.replicas === undefined
      : s[key] === undefined || s[key] === null,
  );
  return {
    name,
    image: str(s.image),
    build: s.build === undefined || s.build === null ? undefined : normalizeBuild(s.build, ctx, where),
    command: commandOf(s, 'command', ctx, where),
    entrypoint: commandOf(s, 'entrypoint', ctx, where),
    environment: environmentOf(s, envFiles, ctx, where),
    env_file: envFiles.map((e) => e.file),
    ports: normalizePorts(s.ports, ctx, where),
    expose: normalizeExpose(s.expose, ctx, where),
    volumes: normalizeServiceVolumes(s.volumes, ctx, where),
    volumes_from: strList(s.volumes_from),
    depends_on: normalizeDependsOn(s.depends_on, ctx, where),
    links: strList(s.links),
    external_links: strList(s.external_links),
    healthcheck: normalizeHealthcheck(s.healthcheck, ctx, where),
    restart,
    container_name: str(s.container_name),
    hostname: str(s.hostname),
    domainname: str(s.domainname),
    working_dir: str(s.working_dir),
    user: optional(ctx, where, s, 'user', (value) => {
      const user = str(value);
      const problem = user === undefined ? undefined : userSpecProblem(user);
      if (problem !== undefined) throw new ValueError(`user: ${problem}`, 'use a user name or a uid in 0..2147483647');
      return user;
    }),
    labels: { ...labelFiles(s, ctx, where), ...labelMap(s.labels) },
    annotations: labelMap(s.annotations),
    profiles: strList(s.profiles),
    scale: scaleValue ?? deploy?.replicas ?? 1,
    stop_grace_period: optional(ctx, where, s, 'stop_grace_period', parseDuration) ?? 10_000,
    stop_signal: str(s.stop_signal),
    tty: boolOf('tty', false),
    stdin_open: boolOf('stdin_open', false),
    privileged: boolOf('privileged', false),
    read_only: boolOf('read_only', false),
    userns_mode: optional(ctx, where, s, 'userns_mode', (value) => {
      const mode = parseUsernsMode(String(value));
      if (mode === undefined)
        throw new ValueError(`userns_mode: invalid user namespace mode "${String(value)}"`, USERNS_HINT);
      return mode;
    }),
    init: optional(ctx, where, s, 'init', parseBoolean),
    cap_add: strList(s.cap_add),
    cap_drop: strList(s.cap_drop),
    dns: strList(s.dns),
    dns_search: strList(s.dns_search),
    dns_opt: strList(s.dns_opt),
    extra_hosts: checkedExtraHosts(s.extra_hosts, ctx, where),
    tmpfs: strList(s.tmpfs),
    ulimits: normalizeUlimits(s.ulimits, ctx, `${where}.ulimits`),
    sysctls: labelMap(s.sysctls),
    networks: normalizeServiceNetworks(s, ctx, where),
    network_mode: str(s.network_mode),
    logging: normalizeLogging(s.logging),
    mem_limit: bytesOf('mem_limit'),
    mem_reservation: bytesOf('mem_reservation'),
    memswap_limit: s.memswap_limit === -1 || s.memswap_limit === '-1' ? -1 : bytesOf('memswap_limit'),
    shm_size: bytesOf('shm_size'),
    cpus: optional(ctx, where, s, 'cpus', parseNumber),
    pids_limit: optional(ctx, where, s, 'pids_limit', (v) => parseInteger(v)),
    pull_policy: pullPolicy === 'if_not_present' ? 'missing' : pullPolicy,
    platform: str(s.platform),
    secrets: normalizeServiceSecrets(s.secrets, ctx, `${where}.secrets`, 'secrets'),
    configs: normalizeServiceSecrets(s.configs, ctx, `${where}.configs`, 'configs'),
    deploy,
    devices: normalizeDevices(s.devices, ctx, where),
    other,
    extensions: extensionsOf(s),
    ...(implicit.length > 0 ? { implicit } : {}),
  };
}

function commandOf(s: RawMap, key: string, ctx: Ctx, where: string): readonly string[] | undefined {
  const value = s[key];
  if (value === undefined || value === null) return undefined;
  if (Array.isArray(value)) return value.map((v) => String(v as string));
  return safe(ctx, `${where}.${key}`, s, key, () => shellSplit(String(value as string)), []);
}

interface LoadedEnvFile {
  readonly file: EnvFile;
  readonly values: Map<string, string>;
}

function normalizeEnvFiles(value: unknown, ctx: Ctx, where: string): LoadedEnvFile[] {
  if (value === undefined || value === null) return [];
  const list = Array.isArray(value) ? value : [value];
  const out: LoadedEnvFile[] = [];
  list.forEach((entry, index) => {
    const container = Array.isArray(value) ? value : { 0: value };
    const raw: RawMap = isRawMap(entry) ? entry : { path: entry };
    const file: EnvFile = {
      path: hostPath(ctx, String(raw.path)),
      required:
        raw.required === undefined
          ? true
          : safe(ctx, `${where}.env_file`, container, index, () => parseBoolean(raw.required), true),
      format: str(raw.format),
    };
    const text = ctx.readEnvFile(file.path);
    if (text === undefined) {
      if (file.required) {
        const reports = ctx.missingEnvFiles.get(where) ?? [];
        reports.push(() =>
          ctx.bag.error(
            `${where}.env_file: file ${file.path} does not exist`,
            at(ctx, container, index),
            'create it, or mark it optional with {path: ..., required: false}',
          ),
        );
        ctx.missingEnvFiles.set(where, reports);
      }
      out.push({ file, values: new Map() });
      return;
    }
    const parsed = file.format === 'raw' ? parseRawEnv(text) : parseDotenv(text, ctx.lookup ?? (() => undefined));
    if (file.format !== undefined && file.format !== 'raw') {
      ctx.bag.error(
        `${where}.env_file: unknown format "${file.format}"`,
        at(ctx, container, index),
        'the formats are raw and the default (leave format out)',
      );
    }
    for (const problem of parsed.problems) {
      ctx.bag.error(`${file.path}:${problem.line}: ${problem.message}`, at(ctx, container, index));
    }
    out.push({ file, values: parsed.values });
  });
  return out;
}

/** `format: raw`: each `KEY=VALUE` line taken literally (no quotes, comments or interpolation). */
function parseRawEnv(text: string): { values: Map<string, string>; problems: { line: number; message: string }[] } {
  const values = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const eq = line.indexOf('=');
    if (line.trim() === '' || eq <= 0) continue;
    values.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return { values, problems: [] };
}

function environmentOf(s: RawMap, envFiles: readonly LoadedEnvFile[], ctx: Ctx, where: string): StringMap {
  void where;
  const merged: Record<string, string | null> = {};
  for (const { values } of envFiles) for (const [k, v] of values) merged[k] = v;
  const declared = asMapping(s.environment, 'environment');
  for (const [k, v] of Object.entries(declared)) {
    if (v === null || v === undefined) merged[k] = ctx.lookup?.(k) ?? null;
    else merged[k] = scalarText(v);
  }
  const out: Record<string, string | null> = {};
  for (const k of Object.keys(merged).sort()) out[k] = merged[k] ?? null;
  return out;
}

function normalizePorts(value: unknown, ctx: Ctx, where: string): PortMapping[] {
  if (!Array.isArray(value)) return [];
  const out: PortMapping[] = [];
  value.forEach((item, index) => {
    const here = `${where}.ports[${index}]`;
    if (isRawMap(item)) {
      if (item.target === undefined) {
        ctx.bag.error(`${here}: the container port (target) is missing`, at(ctx, value, index), 'add target: PORT');
        return;
      }
      const target = safe(ctx, here, value, index, () => parseInteger(item.target, 'a port number'), 0);
      out.push({
        target,
        published: str(item.published),
        host_ip: str(item.host_ip),
        protocol: str(item.protocol) ?? 'tcp',
        mode: str(item.mode) ?? 'ingress',
        name: str(item.name),
        app_protocol: str(item.app_protocol),
      });
      return;
    }
    const parsed = safe(ctx, here, value, index, () => parsePortSpec(item as string), []);
    for (const p of parsed) out.push({ ...p, mode: 'ingress', name: undefined, app_protocol: undefined });
  });
  return out;
}

function normalizeServiceVolumes(value: unknown, ctx: Ctx, where: string): ServiceVolume[] {
  if (!Array.isArray(value)) return [];
  const out: ServiceVolume[] = [];
  value.forEach((item, index) => {
    const here = `${where}.volumes[${index}]`;
    if (typeof item === 'string') {
      const parsed = safe(ctx, here, value, index, () => parseVolumeSpec(item), undefined);
      if (!parsed) return;
      out.push({
        type: parsed.type,
        source: parsed.type === 'bind' && parsed.source !== undefined ? hostPath(ctx, parsed.source) : parsed.source,
        target: parsed.target,
        read_only: parsed.read_only,
        consistency: undefined,
        bind:
          parsed.type === 'bind'
            ? { propagation: parsed.propagation, create_host_path: true, selinux: parsed.selinux, recursive: undefined }
            : undefined,
        volume: parsed.type === 'volume' && parsed.nocopy ? { nocopy: true, subpath: undefined } : undefined,
        tmpfs: undefined,
        image: undefined,
      });
      return;
    }
    if (!isRawMap(item)) return;
    const type = String(item.type) as ServiceVolume['type'];
    const source = str(item.source);
    const target = str(item.target);
    if (target === undefined && type !== 'npipe') {
      ctx.bag.error(`${here}: a ${type} mount needs a target (the path in the container)`, at(ctx, value, index));
      return;
    }
    if (source === undefined && (type === 'bind' || type === 'image')) {
      ctx.bag.error(`${here}: a ${type} mount needs a source`, at(ctx, value, index));
    }
    const bind = isRawMap(item.bind) ? item.bind : undefined;
    const volume = isRawMap(item.volume) ? item.volume : undefined;
    const tmpfs = isRawMap(item.tmpfs) ? item.tmpfs : undefined;
    const image = isRawMap(item.image) ? item.image : undefined;
    out.push({
      type,
      source: type === 'bind' && source !== undefined ? hostPath(ctx, source) : source,
      target: target ?? '',
      read_only: optional(ctx, here, item, 'read_only', parseBoolean) ?? false,
      consistency: str(item.consistency),
      bind:
        type === 'bind'
          ? {
              propagation: str(bind?.propagation),
              create_host_path: bind
                ? (optional(ctx, `${here}.bind`, bind, 'create_host_path', parseBoolean) ?? false)
                : false,
              selinux: str(bind?.selinux) as 'z' | 'Z' | undefined,
              recursive: str(bind?.recursive),
            }
          : undefined,
      volume: volume
        ? {
            nocopy: optional(ctx, `${here}.volume`, volume, 'nocopy', parseBoolean) ?? false,
            subpath: subpathOf(ctx, `${here}.volume`, volume, 'volume'),
          }
        : undefined,
      tmpfs: tmpfs
        ? {
            size: optional(ctx, `${here}.tmpfs`, tmpfs, 'size', parseBytes),
            mode: optional(ctx, `${here}.tmpfs`, tmpfs, 'mode', parseMode),
          }
        : undefined,
      image: image ? { subpath: subpathOf(ctx, `${here}.image`, image, 'image') } : undefined,
    });
  });
  return out;
}

/** `volume.subpath` / `image.subpath`: relative and inside the source (as moby refuses it otherwise), at its line. */
function subpathOf(ctx: Ctx, here: string, raw: RawMap, of: 'volume' | 'image'): string | undefined {
  const subpath = str(raw.subpath);
  if (subpath === undefined) return undefined;
  const clean = path.posix.normalize(subpath).replace(/\/+$/, '');
  if (subpath === '' || subpath.startsWith('/') || clean === '..' || clean.startsWith('../')) {
    ctx.bag.error(
      `${here}.subpath: ${JSON.stringify(subpath)}: subpath must be a relative path within the ${of}`,
      at(ctx, raw, 'subpath'),
    );
  }
  return subpath;
}

function parseMode(value: unknown): number {
  if (typeof value === 'number') return value;
  const text = String(value);
  if (!/^0?[0-7]{1,4}$/.test(text)) throw new ValueError(`${JSON.stringify(value)} is not an octal file mode`);
  return parseInt(text, 8);
}

function normalizeDependsOn(value: unknown, ctx: Ctx, where: string): Record<string, DependsOn> {
  const map = asMapping(value, 'services.*.depends_on');
  const out: Record<string, DependsOn> = {};
  for (const name of Object.keys(map).sort()) {
    const entry = isRawMap(map[name]) ? map[name] : {};
    const here = `${where}.depends_on.${name}`;
    out[name] = {
      condition: (str(entry.condition) ?? 'service_started') as DependsOn['condition'],
      required: optional(ctx, here, entry, 'required', parseBoolean) ?? true,
      restart: optional(ctx, here, entry, 'restart', parseBoolean) ?? false,
    };
  }
  return out;
}

function normalizeHealthcheck(value: unknown, ctx: Ctx, where: string): Healthcheck | undefined {
  if (!isRawMap(value)) return undefined;
  const here = `${where}.healthcheck`;
  let test: string[] | undefined;
  if (typeof value.test === 'string') test = ['CMD-SHELL', value.test];
  else if (Array.isArray(value.test)) {
    test = value.test.map((t) => String(t as string));
    const first = test[0];
    if (first !== undefined && !['NONE', 'CMD', 'CMD-SHELL'].includes(first)) {
      ctx.bag.error(
        `${here}.test: a list must start with "CMD", "CMD-SHELL" or "NONE", not ${JSON.stringify(first)}`,
        at(ctx, value, 'test'),
        `write [CMD, ${test.join(', ')}] or a string for the shell`,
      );
    }
  }
  const disable = optional(ctx, here, value, 'disable', parseBoolean) ?? false;
  return {
    test: disable ? ['NONE'] : test,
    interval: optional(ctx, here, value, 'interval', parseDuration),
    timeout: optional(ctx, here, value, 'timeout', parseDuration),
    retries: optional(ctx, here, value, 'retries', (v) => parseInteger(v, 'a number of retries')),
    start_period: optional(ctx, here, value, 'start_period', parseDuration),
    start_interval: optional(ctx, here, value, 'start_interval', parseDuration),
    disable: disable || test?.[0] === 'NONE',
  };
}

function normalizeExpose(value: unknown, ctx: Ctx, where: string): string[] {
  const out = strList(value);
  out.forEach((port, index) => {
    if (!/^\d{1,5}(-\d{1,5})?(\/(tcp|udp|sctp))?$/.test(port)) {
      ctx.bag.error(
        `${where}.expose[${index}]: "${port}" is not a port or range`,
        at(ctx, value, index),
        'write PORT, PORT/udp or START-END',
      );
    }
  });
  return out;
}

function checkedExtraHosts(value: unknown, ctx: Ctx, where: string): Record<string, string[]> {
  if (Array.isArray(value)) {
    value.forEach((item, index) => {
      if (!/^[^:=]+[:=].+$/.test(scalarText(item))) {
        ctx.bag.error(
          `${where}.extra_hosts[${index}]: "${scalarText(item)}" has no address`,
          at(ctx, value, index),
          'write HOST=ADDRESS (or HOST:ADDRESS), e.g. db.local=10.0.0.5 or host.docker.internal=host-gateway',
        );
      }
    });
  }
  return extraHostsOf(value);
}

function extraHostsOf(value: unknown): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  if (Array.isArray(value)) {
    for (const item of value) {
      const text = String(item as string);
      const match = /^([^:=]+)[:=](.*)$/.exec(text);
      if (!match) continue;
      (out[match[1] ?? ''] ??= []).push(match[2] ?? '');
    }
  } else if (isRawMap(value)) {
    for (const [host, ip] of Object.entries(value)) out[host] = strList(ip);
  }
  const sorted: Record<string, string[]> = {};
  for (const k of Object.keys(out).sort()) sorted[k] = out[k] ?? [];
  return sorted;
}

function normalizeUlimits(value: unknown, ctx: Ctx, where: string): Record<string, Ulimit> {
  const out: Record<string, Ulimit> = {};
  if (!isRawMap(value)) return out;
  for (const name of Object.keys(value).sort()) {
    const v = value[name];
    if (isRawMap(v)) {
      const soft = safe(ctx, `${where}.${name}.soft`, v, 'soft', () => parseInteger(v.soft), 0);
      const hard = safe(ctx, `${where}.${name}.hard`, v, 'hard', () => parseInteger(v.hard), 0);
      if (soft > hard && hard !== -1) {
        ctx.bag.error(`${where}.${name}: soft limit ${soft} is above hard limit ${hard}`, at(ctx, value, name));
      }
      out[name] = { soft, hard };
    } else {
      const n = safe(ctx, `${where}.${name}`, value, name, () => parseInteger(v), 0);
      out[name] = { soft: n, hard: n };
    }
  }
  return out;
}

const defaultServiceNetwork: ServiceNetwork = {
  aliases: [],
  ipv4_address: undefined,
  ipv6_address: undefined,
  link_local_ips: [],
  mac_address: undefined,
  driver_opts: {},
  priority: 0,
  gw_priority: undefined,
  interface_name: undefined,
};

function normalizeServiceNetworks(s: RawMap, ctx: Ctx, where: string): Record<string, ServiceNetwork> {
  if (s.networks === undefined || s.networks === null) {
    return s.network_mode === undefined ? { default: defaultServiceNetwork } : {};
  }
  if (s.network_mode !== undefined) {
    ctx.bag.error(
      `${where}: network_mode and networks cannot be used together`,
      keyAt(ctx, s, 'network_mode'),
      'remove one of them',
    );
  }
  const map = asMapping(s.networks, 'services.*.networks');
  const out: Record<string, ServiceNetwork> = {};
  for (const name of Object.keys(map).sort()) {
    const entry = map[name];
    if (!isRawMap(entry)) {
      out[name] = defaultServiceNetwork;
      continue;
    }
    out[name] = {
      aliases: strList(entry.aliases),
      ipv4_address: str(entry.ipv4_address),
      ipv6_address: str(entry.ipv6_address),
      link_local_ips: strList(entry.link_local_ips),
      mac_address: str(entry.mac_address),
      driver_opts: plainStringMap(entry.driver_opts),
      priority: typeof entry.priority === 'number' ? entry.priority : 0,
      gw_priority: typeof entry.gw_priority === 'number' ? entry.gw_priority : undefined,
      interface_name: str(entry.interface_name),
    };
  }
  return out;
}

function normalizeLogging(value: unknown): Logging | undefined {
  if (!isRawMap(value)) return undefined;
  return { driver: str(value.driver), options: plainStringMap(value.options) };
}

function normalizeServiceSecrets(
  value: unknown,
  ctx: Ctx,
  where: string,
  kind: 'secrets' | 'configs' | 'build',
): ServiceSecret[] {
  if (!Array.isArray(value)) return [];
  return value.map((item, index): ServiceSecret => {
    const raw: RawMap = isRawMap(item) ? item : { source: item };
    const here = `${where}[${index}]`;
    const source = str(raw.source) ?? '';
    // compose: secrets default to and resolve relative targets under /run/secrets, configs under /; a build
    // secret's target is the id its Dockerfile mounts it by.
    const base = kind === 'secrets' ? '/run/secrets' : '/';
    const written = str(raw.target) ?? source;
    const target =
      kind === 'build' ? written : path.posix.normalize(written.startsWith('/') ? written : `${base}/${written}`);
    if (kind !== 'build') checkFileTarget(ctx, here, raw, target);
    return {
      source,
      target,
      uid: isRawMap(item) ? optional(ctx, here, item, 'uid', parseNumericId) : undefined,
      gid: isRawMap(item) ? optional(ctx, here, item, 'gid', parseNumericId) : undefined,
      mode: isRawMap(item) ? optional(ctx, here, item, 'mode', parseMode) : undefined,
    };
  });
}

/** A secret's or config's container path: a file, not /, not under /proc (the runtime's). */
function checkFileTarget(ctx: Ctx, here: string, raw: RawMap, target: string): void {
  const clean = path.posix.normalize(target);
  if (clean !== '/' && clean !== '/proc' && !clean.startsWith('/proc/') && !clean.endsWith('/')) return;
  ctx.bag.error(
    `${here}.target: ${JSON.stringify(target)} cannot be a secret's or config's path`,
    at(ctx, raw, 'target'),
  );
}

/** A secret's or config's uid/gid: a number, as compose requires (it is set on the file, not looked up). */
function parseNumericId(value: unknown): string {
  const text = scalarText(value);
  if (!/^\d+$/.test(text) || Number(text) > 0xfffffffe) {
    throw new ValueError(`${JSON.stringify(value)} is not a numeric user or group id`);
  }
  return String(Number(text));
}

function normalizeDevices(value: unknown, ctx: Ctx, where: string): Service['devices'] {
  if (!Array.isArray(value)) return [];
  const out: { source: string; target: string; permissions: string }[] = [];
  value.forEach((item, index) => {
    if (isRawMap(item)) {
      const source = str(item.source) ?? '';
      out.push({ source, target: str(item.target) ?? source, permissions: str(item.permissions) ?? 'rwm' });
      return;
    }
    const parts = String(item as string).split(':');
    if (parts.length > 3 || parts[0] === '') {
      ctx.bag.error(
        `${where}.devices[${index}]: invalid device ${JSON.stringify(item)}`,
        at(ctx, value, index),
        'write HOST_PATH[:CONTAINER_PATH[:rwm]]',
      );
      return;
    }
    const [source = '', target = source, permissions = 'rwm'] = parts;
    out.push({ source, target, permissions });
  });
  return out;
}

function resourcesOf(value: unknown, ctx: Ctx, where: string): ResourceLimits | undefined {
  if (!isRawMap(value)) return undefined;
  return {
    cpus: optional(ctx, where, value, 'cpus', parseNumber),
    memory: optional(ctx, where, value, 'memory', parseBytes),
    pids: optional(ctx, where, value, 'pids', (v) => parseInteger(v)),
  };
}

function normalizeDeploy(value: unknown, ctx: Ctx, where: string): Deploy | undefined {
  if (!isRawMap(value)) return undefined;
  const here = `${where}.deploy`;
  const resources = isRawMap(value.resources) ? value.resources : {};
  const reservations = resourcesOf(resources.reservations, ctx, `${here}.resources.reservations`);
  const reservationsRaw = isRawMap(resources.reservations) ? resources.reservations : {};
  const restartPolicy = isRawMap(value.restart_policy) ? value.restart_policy : undefined;
  const other: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    if (!['mode', 'replicas', 'labels', 'resources', 'restart_policy'].includes(key)) other[key] = value[key];
  }
  return {
    mode: str(value.mode),
    replicas: optional(ctx, here, value, 'replicas', (v) => parseInteger(v, 'a number of replicas')),
    labels: stringMap(value.labels, 'labels'),
    resources: {
      limits: resourcesOf(resources.limits, ctx, `${here}.resources.limits`),
      reservations: reservations && {
        ...reservations,
        devices: Array.isArray(reservationsRaw.devices) ? reservationsRaw.devices : [],
      },
    },
    restart_policy: restartPolicy && {
      condition: str(restartPolicy.condition),
      delay: optional(ctx, `${here}.restart_policy`, restartPolicy, 'delay', parseDuration),
      max_attempts: optional(ctx, `${here}.restart_policy`, restartPolicy, 'max_attempts', (v) => parseInteger(v)),
      window: optional(ctx, `${here}.restart_policy`, restartPolicy, 'window', parseDuration),
    },
    other,
  };
}

function normalizeBuild(value: unknown, ctx: Ctx, where: string): Build {
  const raw: RawMap = isRawMap(value) ? value : { context: value };
  const here = `${where}.build`;
  const context = str(raw.context) ?? '.';
  return {
    context: isUrl(context) ? context : hostPath(ctx, context),
    dockerfile: str(raw.dockerfile) ?? 'Dockerfile',
    dockerfile_inline: str(raw.dockerfile_inline),
    args: resolveBare(stringMap(raw.args, 'args'), ctx.lookup),
    target: str(raw.target),
    labels: stringMap(raw.labels, 'labels'),
    cache_from: strList(raw.cache_from),
    cache_to: strList(raw.cache_to),
    no_cache: optional(ctx, here, raw, 'no_cache', parseBoolean) ?? false,
    pull: optional(ctx, here, raw, 'pull', parseBoolean) ?? false,
    network: str(raw.network),
    shm_size: optional(ctx, here, raw, 'shm_size', parseBytes),
    extra_hosts: extraHostsOf(raw.extra_hosts),
    ssh: isRawMap(raw.ssh)
      ? Object.entries(raw.ssh).map(([k, v]) => (v === null ? k : `${k}=${String(v as string)}`))
      : strList(raw.ssh),
    secrets: normalizeServiceSecrets(raw.secrets, ctx, `${here}.secrets`, 'build'),
    tags: strList(raw.tags),
    platforms: strList(raw.platforms),
    additional_contexts: additionalContexts(raw.additional_contexts, ctx, here),
    isolation: str(raw.isolation),
    privileged: optional(ctx, here, raw, 'privileged', parseBoolean) ?? false,
    ulimits: normalizeUlimits(raw.ulimits, ctx, `${here}.ulimits`),
    entitlements: strList(raw.entitlements),
    extensions: extensionsOf(raw),
  };
}

/**
 * `build.additional_contexts`: `service:NAME` (checked with the other service references), `docker-image://REF`, or
 * a directory, made absolute against the project directory as compose-go does. Git, HTTP, `oci-layout://` and
 * `target:` contexts are refused.
 */
function additionalContexts(raw: unknown, ctx: Ctx, here: string): StringMap {
  const map = stringMap(raw, 'additional_contexts');
  const out: Record<string, string | null> = {};
  Object.entries(map).forEach(([name, value], index) => {
    const position = at(ctx, raw, Array.isArray(raw) ? index : name);
    if (value === null || value === '') {
      ctx.bag.error(
        `${here}.additional_contexts.${name}: no value`,
        position,
        `write ${name}: ./DIR, ${name}: service:NAME or ${name}: docker-image://REF`,
      );
    } else if (value.startsWith('service:') || value.startsWith('docker-image://')) {
      out[name] = value;
    } else if (isUrl(value) || value.startsWith('target:')) {
      ctx.bag.error(
        `${here}.additional_contexts.${name}: "${value}" is not supported (tsfig builds from directories, images and services)`,
        position,
        'use a local directory, docker-image://REF or service:NAME',
      );
    } else {
      out[name] = hostPath(ctx, value);
    }
  });
  return out;
}

function resolveBare(map: Record<string, string | null>, lookup: Lookup | undefined): StringMap {
  const out: Record<string, string | null> = {};
  for (const [k, v] of Object.entries(map)) out[k] = v ?? lookup?.(k) ?? null;
  return out;
}

// ---------- top-level resources ----------

function externalOf(value: unknown): { external: boolean; name: string | undefined } {
  if (isRawMap(value)) return { external: true, name: str(value.name) };
  if (value === undefined || value === null) return { external: false, name: undefined };
  try {
    return { external: parseBoolean(value), name: undefined };
  } catch {
    return { external: false, name: undefined };
  }
}

function normalizeNetworks(
  value: unknown,
  ctx: Ctx,
  services: Readonly<Record<string, Service>>,
): Record<string, Network> {
  const raw = isRawMap(value) ? value : {};
  const keys = new Set(Object.keys(raw));
  if (Object.values(services).some((s) => 'default' in s.networks)) keys.add('default');
  const out: Record<string, Network> = {};
  for (const key of [...keys].sort()) {
    const n: RawMap = isRawMap(raw[key]) ? raw[key] : {};
    const ext = externalOf(n.external);
    const explicit = str(n.name) ?? ext.name;
    const ipam = isRawMap(n.ipam) ? n.ipam : undefined;
    const boolOf = (k: string) => optional(ctx, `networks.${key}`, n, k, parseBoolean);
    out[key] = {
      key,
      name: explicit ?? (ext.external ? key : `${ctx.projectName}_${key}`),
      driver: str(n.driver),
      driver_opts: plainStringMap(n.driver_opts),
      external: ext.external,
      internal: boolOf('internal') ?? false,
      attachable: boolOf('attachable') ?? false,
      enable_ipv4: boolOf('enable_ipv4'),
      enable_ipv6: boolOf('enable_ipv6'),
      ipam: ipam && {
        driver: str(ipam.driver),
        config: (Array.isArray(ipam.config) ? ipam.config : []).filter(isRawMap).map((c) => ({
          subnet: str(c.subnet),
          ip_range: str(c.ip_range),
          gateway: str(c.gateway),
          aux_addresses: plainStringMap(c.aux_addresses),
        })),
        options: plainStringMap(ipam.options),
      },
      labels: labelMap(n.labels),
      extensions: extensionsOf(n),
    };
  }
  return out;
}

function normalizeVolumes(value: unknown, ctx: Ctx): Record<string, Volume> {
  const raw = isRawMap(value) ? value : {};
  const out: Record<string, Volume> = {};
  for (const key of Object.keys(raw).sort()) {
    const v: RawMap = isRawMap(raw[key]) ? raw[key] : {};
    const ext = externalOf(v.external);
    const explicit = str(v.name) ?? ext.name;
    const problem = explicit !== undefined ? volumeNameProblem(explicit) : undefined;
    if (problem !== undefined) {
      const where = str(v.name) !== undefined ? v : isRawMap(v.external) ? v.external : v;
      ctx.bag.error(`volumes.${key}.name: ${problem}`, at(ctx, where, 'name'));
    }
    out[key] = {
      key,
      name: explicit ?? (ext.external ? key : `${ctx.projectName}_${key}`),
      driver: str(v.driver),
      driver_opts: plainStringMap(v.driver_opts),
      external: ext.external,
      labels: labelMap(v.labels),
      extensions: extensionsOf(v),
    };
  }
  return out;
}

function normalizeSecrets(value: unknown, ctx: Ctx, section: 'secrets' | 'configs'): Record<string, SecretOrConfig> {
  const raw = isRawMap(value) ? value : {};
  const out: Record<string, SecretOrConfig> = {};
  for (const key of Object.keys(raw).sort()) {
    const v: RawMap = isRawMap(raw[key]) ? raw[key] : {};
    const ext = externalOf(v.external);
    const sources = ['file', 'environment', 'content'].filter((k) => v[k] !== undefined);
    const file = v.file === undefined ? undefined : hostPath(ctx, scalarText(v.file));
    if (!ext.external && sources.length === 0) {
      ctx.bag.error(
        `${section}.${key}: needs one of file, environment${section === 'configs' ? ', content' : ''} or external`,
        keyAt(ctx, raw, key),
      );
    }
    out[key] = {
      key,
      name: str(v.name) ?? ext.name ?? (ext.external ? key : `${ctx.projectName}_${key}`),
      file,
      environment: str(v.environment),
      value: valueOf(ctx, v, file),
      content: str(v.content),
      external: ext.external,
      labels: labelMap(v.labels),
      driver: str(v.driver),
      template_driver: str(v.template_driver),
      extensions: extensionsOf(v),
    };
  }
  return out;
}

/**
 * What a container gets from an `environment:` source (the variable's value, from the shell or .env, as compose's
 * project environment), a `content:` one, or a `file:` (read when a container is created); never printed
 * (`FileContent` shows a digest or the path at most).
 */
function valueOf(ctx: Ctx, v: RawMap, file: string | undefined): FileContent | undefined {
  if (file !== undefined) return FileContent.fromFile(file);
  const content = str(v.content);
  if (content !== undefined) return FileContent.of(content);
  const variable = str(v.environment);
  const text = variable === undefined ? undefined : ctx.lookup?.(variable);
  return text === undefined ? undefined : FileContent.of(text);
}

// ---------- semantic checks ----------

interface Declared {
  readonly volumes: Readonly<Record<string, Volume>>;
  readonly secrets: Readonly<Record<string, SecretOrConfig>>;
  readonly configs: Readonly<Record<string, SecretOrConfig>>;
}

function checkServices(all: Record<string, Service>, raw: RawMap, ctx: Ctx, declared: Declared): void {
  const rawServices = isRawMap(raw.services) ? raw.services : {};
  const names = Object.keys(all);
  const networkNames = Object.keys(isRawMap(raw.networks) ? raw.networks : {});
  const edges = new Map<string, { to: string; position: Position }[]>();
  // build.additional_contexts service:NAME: an image built before another, a graph of its own (a container may
  // depend on a service whose build uses its image)
  const buildEdges = new Map<string, { to: string; position: Position }[]>();
  for (const service of Object.values(all)) {
    const s = rawServices[service.name] as RawMap;
    const where = `services.${service.name}`;
    const edgesOf: { to: string; position: Position }[] = [];
    edges.set(service.name, edgesOf);
    const reference = (target: string, position: Position, what: string, edge: boolean): void => {
      if (!(target in all)) {
        ctx.bag.error(
          `${where}.${what}: unknown service "${target}"`,
          position,
          suggestion(target, names) ?? `defined services are: ${names.join(', ')}`,
        );
        return;
      }
      if (edge) edgesOf.push({ to: target, position });
    };
    if (service.image === undefined && service.build === undefined && !isRawMap(s.provider)) {
      ctx.bag.error(
        `service "${service.name}" has neither an image nor a build context`,
        keyAt(ctx, rawServices, service.name),
        'add image: NAME, or build: DIRECTORY',
      );
    }
    const dependsRaw = asMapping(s.depends_on, 'services.*.depends_on');
    for (const target of Object.keys(service.depends_on)) {
      reference(target, keyAt(ctx, dependsRaw, target), 'depends_on', true);
    }
    (Array.isArray(s.links) ? s.links : []).forEach((link, index) => {
      reference(String(link as string).split(':')[0] ?? '', at(ctx, s.links, index), 'links', true);
    });
    (Array.isArray(s.volumes_from) ? s.volumes_from : []).forEach((entry, index) => {
      const text = String(entry as string);
      if (text.startsWith('container:')) return;
      reference(text.split(':')[0] ?? '', at(ctx, s.volumes_from, index), 'volumes_from', true);
    });
    for (const key of ['network_mode', 'ipc', 'pid'] as const) {
      const mode = str(s[key]);
      if (mode?.startsWith('service:')) reference(mode.slice('service:'.length), at(ctx, s, key), key, true);
    }
    const volumeNames = Object.keys(declared.volumes);
    service.volumes.forEach((volume, index) => {
      if (volume.type !== 'volume' || volume.source === undefined || volume.source in declared.volumes) return;
      ctx.bag.error(
        `${where}.volumes[${index}]: volume "${volume.source}" is not declared in the top-level volumes section`,
        at(ctx, s.volumes, index),
        suggestion(volume.source, volumeNames) ??
          `add it under volumes: at the top level, or write ./${volume.source} for a directory of the project`,
      );
    });
    const networksRaw = asMapping(s.networks, 'services.*.networks');
    for (const network of Object.keys(service.networks)) {
      if (network === 'default' || networkNames.includes(network)) continue;
      ctx.bag.error(
        `${where}.networks: network "${network}" is not declared in the top-level networks section`,
        keyAt(ctx, networksRaw, network),
        suggestion(network, networkNames) ?? 'add it under networks: at the top level',
      );
    }
    for (const kind of ['secrets', 'configs'] as const) {
      service[kind].forEach((ref, index) => {
        if (ref.source in declared[kind]) return;
        ctx.bag.error(
          `${where}.${kind}[${index}]: ${kind === 'secrets' ? 'secret' : 'config'} "${ref.source}" is not declared in the top-level ${kind} section`,
          at(ctx, s[kind], index),
          suggestion(ref.source, Object.keys(declared[kind])),
        );
      });
    }
    const rawBuild = isRawMap(s.build) ? s.build : {};
    const contextsEdges: { to: string; position: Position }[] = [];
    buildEdges.set(service.name, contextsEdges);
    Object.entries(service.build?.additional_contexts ?? {}).forEach(([name, value], index) => {
      if (value?.startsWith('service:') !== true) return;
      const target = value.slice('service:'.length);
      const raw = rawBuild.additional_contexts;
      const position = at(ctx, raw, Array.isArray(raw) ? index : name);
      if (target === service.name) {
        ctx.bag.error(
          `${where}.build.additional_contexts.${name}: a service cannot build from its own image`,
          position,
        );
      } else if (!(target in all)) {
        reference(target, position, `build.additional_contexts.${name}`, false);
      } else {
        contextsEdges.push({ to: target, position });
      }
    });
    (service.build?.secrets ?? []).forEach((ref, index) => {
      if (ref.source in declared.secrets) return;
      ctx.bag.error(
        `${where}.build.secrets[${index}]: secret "${ref.source}" is not declared in the top-level secrets section`,
        at(ctx, rawBuild.secrets, index),
        suggestion(ref.source, Object.keys(declared.secrets)),
      );
    });
    // Two services sharing a container_name are refused by the planner, only when one up/create/run selects both.
    if (service.container_name !== undefined && service.scale > 1) {
      ctx.bag.error(
        `${where}: container_name "${service.container_name}" cannot be used with scale ${service.scale}`,
        keyAt(ctx, s, 'container_name'),
        'container names are unique: remove container_name, or set the scale to 1',
      );
    }
    if (service.scale > 1) {
      service.ports.forEach((port, index) => {
        if (port.published === undefined || port.published.includes('-')) return;
        ctx.bag.error(
          `${where}.ports: host port ${port.published} can be bound by one container only, but scale is ${service.scale}`,
          at(ctx, s.ports, Math.min(index, Array.isArray(s.ports) ? s.ports.length - 1 : 0)),
          `publish a range instead ("${port.published}-${Number(port.published) + service.scale - 1}:${port.target}"), or leave the host port out`,
        );
      });
    }
  }
  reportCycles(edges, ctx);
  reportCycles(buildEdges, ctx, 'remove one of these build.additional_contexts service: references');
}

function reportCycles(
  edges: Map<string, { to: string; position: Position }[]>,
  ctx: Ctx,
  hint = 'remove one of these depends_on, links, volumes_from or network_mode references',
): void {
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const reported = new Set<string>();
  const visit = (name: string): void => {
    state.set(name, 'visiting');
    stack.push(name);
    for (const edge of edges.get(name) ?? []) {
      const s = state.get(edge.to);
      if (s === 'visiting') {
        const cycle = [...stack.slice(stack.indexOf(edge.to)), edge.to];
        const key = [...cycle.slice(0, -1)].sort().join(',');
        if (!reported.has(key)) {
          reported.add(key);
          ctx.bag.error(`dependency cycle: ${cycle.join(' -> ')}`, edge.position, hint);
        }
      } else if (s === undefined) visit(edge.to);
    }
    stack.pop();
    state.set(name, 'done');
  };
  for (const name of [...edges.keys()].sort()) if (!state.has(name)) visit(name);
}

// ---------- profiles ----------

function dependenciesOf(service: Service): string[] {
  const out = new Set(Object.keys(service.depends_on));
  for (const link of service.links) out.add(link.split(':')[0] ?? link);
  for (const entry of service.volumes_from) if (!entry.startsWith('container:')) out.add(entry.split(':')[0] ?? entry);
  for (const mode of [service.network_mode, str(service.other.ipc), str(service.other.pid)]) {
    if (mode?.startsWith('service:')) out.add(mode.slice('service:'.length));
  }
  return [...out];
}

/**
 * The services a command works on, whose env files must exist (compose v2): those named on the command line and
 * their dependencies, or every enabled service when none is named.
 */
function inPlay(all: Record<string, Service>, enabled: Record<string, Service>, ctx: Ctx): string[] {
  if (ctx.requestedServices.length === 0) return Object.keys(enabled);
  const seen = new Set<string>();
  const queue = ctx.requestedServices.filter((name) => name in all);
  while (queue.length > 0) {
    const name = queue.pop() as string;
    if (seen.has(name)) continue;
    seen.add(name);
    queue.push(...dependenciesOf(all[name] as Service).filter((dep) => dep in all));
  }
  return [...seen];
}

function applyProfiles(
  all: Record<string, Service>,
  ctx: Ctx,
): { enabled: Record<string, Service>; disabled: Record<string, Service>; profiles: string[] } {
  const active = new Set(ctx.activeProfiles);
  const names = Object.keys(all);
  for (const requested of ctx.requestedServices) {
    const service = all[requested];
    if (service === undefined) {
      ctx.bag.error(`no such service: "${requested}"`, undefined, suggestion(requested, names));
      continue;
    }
    for (const p of service.profiles) active.add(p);
  }
  const isOn = (s: Service) => s.profiles.length === 0 || active.has('*') || s.profiles.some((p) => active.has(p));
  const on = new Set(names.filter((n) => isOn(all[n] as Service)));
  // Dependencies of services named on the command line come along.
  const queue = ctx.requestedServices.filter((n) => n in all);
  while (queue.length > 0) {
    const name = queue.pop() as string;
    on.add(name);
    for (const dep of dependenciesOf(all[name] as Service)) if (dep in all && !on.has(dep)) queue.push(dep);
  }
  for (const name of [...on].sort()) {
    const service = all[name] as Service;
    for (const dep of dependenciesOf(service)) {
      const target = all[dep];
      if (target === undefined || on.has(dep)) continue;
      if (service.depends_on[dep]?.required === false) continue;
      const rawServices = isRawMap(ctx.raw.services) ? ctx.raw.services : {};
      const rawService = isRawMap(rawServices[name]) ? rawServices[name] : {};
      const dependsRaw = asMapping(rawService.depends_on, 'services.*.depends_on');
      ctx.bag.error(
        `service "${dep}" is needed by "${name}" but is disabled by its profiles (${target.profiles.join(', ')})`,
        dep in dependsRaw ? keyAt(ctx, dependsRaw, dep) : keyAt(ctx, rawServices, name),
        `enable it with --profile ${target.profiles[0] ?? ''}, or name it on the command line`,
      );
    }
  }
  const enabled: Record<string, Service> = {};
  const disabled: Record<string, Service> = {};
  for (const name of names) (on.has(name) ? enabled : disabled)[name] = all[name] as Service;
  return { enabled, disabled, profiles: [...active].sort() };
}
