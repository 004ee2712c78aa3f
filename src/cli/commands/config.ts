import { Option } from 'commander';
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { formatDiagnostics, suggestion } from '../../config/diagnostics.js';
import { formatDuration } from '../../config/values.js';
import { loadProject } from '../../config/load.js';
import type { LoadResult } from '../../config/load.js';
import { TsfigError } from '../../errors.js';
import type { Project, Service } from '../../model/project.js';
import { serviceConfigHash } from '../../planner/hash.js';
import { addProjectOptions } from '../global-options.js';

/** The global project options, as commander parses them (see `addProjectOptions`). */
export interface ProjectOptions {
  readonly file?: readonly string[];
  readonly projectName?: string;
  readonly projectDirectory?: string;
  readonly envFile?: readonly string[];
  readonly profile?: readonly string[];
}

export interface ProjectLoadExtras {
  /** Services named on the command line (enables their profiles and dependencies). */
  readonly services?: readonly string[];
  /** @default true */
  readonly interpolate?: boolean;
  readonly cwd?: string;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Where warnings go. @default stderr */
  readonly warn?: (text: string) => void;
  /** Missing env files are no error (a load that only reads the service names). */
  readonly lenientEnvFiles?: boolean;
}

export { addProjectOptions };

/** Loads the project the global options point at; prints warnings; throws ConfigError (exit 65) when invalid. */
export function loadProjectFromOptions(options: ProjectOptions, extras: ProjectLoadExtras = {}): LoadResult {
  const cwd = extras.cwd ?? process.cwd();
  const result = loadProject({
    files: options.file ?? [],
    projectName: options.projectName,
    projectDirectory: options.projectDirectory,
    envFiles: options.envFile ?? [],
    profiles: options.profile ?? [],
    services: extras.services ?? [],
    ...(extras.lenientEnvFiles === true ? { lenientEnvFiles: true } : {}),
    interpolate: extras.interpolate ?? true,
    cwd,
    env: extras.env ?? process.env,
  });
  if (result.warnings.length > 0) {
    const warn = extras.warn ?? ((text: string) => process.stderr.write(text));
    warn(`${formatDiagnostics(result.warnings, result.sources, cwd)}\n`);
  }
  return result;
}

interface ConfigOptions extends ProjectOptions {
  readonly format: 'yaml' | 'json';
  readonly services?: boolean;
  readonly volumes?: boolean;
  readonly profiles?: boolean;
  readonly images?: boolean;
  readonly quiet?: boolean;
  readonly interpolate: boolean;
  readonly hash?: string;
}

/** `tsfig config`: prints the normalised project (what the planner sees), or parts of it. */
export function registerConfigCommand(program: Command): void {
  const cmd = program
    .command('config')
    .description('validate the project files and print the normalised project')
    .argument('[service...]', 'print only these services (enables their profiles)')
    .addOption(new Option('--format <format>', 'output format').choices(['yaml', 'json']).default('yaml'))
    .option('--services', 'print the service names, one per line')
    .option('--volumes', 'print the volume names, one per line')
    .option('--profiles', 'print the profile names, one per line')
    .option('--images', 'print the image of each service, one per line')
    .option('-q, --quiet', 'only validate: print nothing, exit 65 when invalid')
    .option('--no-interpolate', 'do not substitute ${VARIABLES}')
    .option('--hash <service>', 'print the config hash of a service ("*" for all; comma-separated list)');
  addProjectOptions(cmd);
  cmd.action((serviceNames: string[], _options: ConfigOptions, command: Command) => {
    const options = command.optsWithGlobals<ConfigOptions>();
    const output = runConfig(serviceNames, options);
    if (output !== '') process.stdout.write(output);
  });
}

/** The text `tsfig config` prints, for the given options. Exported for tests. */
export function runConfig(
  serviceNames: readonly string[],
  options: ConfigOptions,
  extras: ProjectLoadExtras = {},
): string {
  const { project } = loadProjectFromOptions(options, {
    ...extras,
    services: serviceNames,
    interpolate: options.interpolate,
  });
  if (options.quiet) return '';
  const lines = (items: Iterable<string>) => [...items].map((item) => `${item}\n`).join('');
  if (options.services) return lines(Object.keys(project.services).sort());
  if (options.volumes) return lines(Object.keys(project.volumes).sort());
  if (options.profiles) return lines(allProfiles(project));
  if (options.images) {
    return lines(
      Object.values(project.services)
        .sort((a, b) => (a.name < b.name ? -1 : 1))
        .map((s) => `${s.name} ${imageOf(project, s)}`),
    );
  }
  if (options.hash !== undefined) return lines(hashes(project, options.hash));
  return configText(project, serviceNames, options.format === 'json' ? 'json' : 'yaml', options.interpolate);
}

/**
 * The project as `tsfig config` prints it (YAML or JSON), which loads back to the same project: interpolated values
 * have their `$` written `$$` (as compose v2 prints them), so that loading the output does not interpolate again.
 */
export function configText(
  project: Project,
  only: readonly string[],
  format: 'yaml' | 'json',
  interpolated = true,
): string {
  const rendered = renderProject(project, only);
  const view = interpolated ? (escapeDollars(rendered) as Record<string, unknown>) : rendered;
  return format === 'json'
    ? `${JSON.stringify(view, null, 2)}\n`
    : stringify(view, { sortMapEntries: true, lineWidth: 0, version: '1.1' });
}

function allProfiles(project: Project): string[] {
  const all = new Set<string>();
  for (const s of [...Object.values(project.services), ...Object.values(project.disabled_services)]) {
    for (const p of s.profiles) all.add(p);
  }
  return [...all].sort();
}

/** The image a service runs: its `image:`, else the name tsfig builds it as. */
export function imageOf(project: Project, service: Service): string {
  return service.image ?? `${project.name}-${service.name}`;
}

function hashes(project: Project, selector: string): string[] {
  const names = selector === '*' ? Object.keys(project.services).sort() : selector.split(',').map((n) => n.trim());
  return names.map((name) => {
    const service = project.services[name];
    if (service === undefined) {
      const names = Object.keys(project.services).sort();
      throw new TsfigError('usage', `no such service: "${name}"`, {
        hint: suggestion(name, names) ?? `services are: ${names.join(', ')}`,
      });
    }
    return `${name} ${serviceConfigHash(service)}`;
  });
}

/**
 * The printable form of a project: sorted keys, no undefined values, empty lists and maps left out, and each
 * service's `other` and `x-` keys shown at the service level, as they were written.
 */
export function renderProject(project: Project, only: readonly string[] = []): Record<string, unknown> {
  const services: Record<string, unknown> = {};
  for (const name of Object.keys(project.services).sort()) {
    if (only.length > 0 && !only.includes(name)) continue;
    const { other, extensions, name: _name, ...service } = project.services[name] as Service;
    // A dependency that is not required on a service disabled by its profiles is not printed (compose drops it).
    const dependsOn = Object.fromEntries(
      Object.entries(service.depends_on).filter(([dep, spec]) => spec.required || dep in project.services),
    );
    services[name] = clean({ ...withDurations({ ...service, depends_on: dependsOn }), ...other, ...extensions });
  }
  const resource = (map: Readonly<Record<string, unknown>>) => {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(map).sort()) {
      const { key: _key, extensions, ...rest } = map[key] as { key: string; extensions: Record<string, unknown> };
      out[key] = clean({ ...rest, ...extensions }) ?? {};
    }
    return out;
  };
  return (
    clean({
      name: project.name,
      services,
      networks: resource(project.networks),
      volumes: resource(project.volumes),
      secrets: resource(project.secrets),
      configs: resource(project.configs),
      models: project.models,
      ...project.extensions,
    }) ?? {}
  );
}

/** The service's durations (milliseconds in the model) as compose prints and reads them: `10s`, `1m30s`. */
function withDurations(service: Omit<Service, 'other' | 'extensions' | 'name'>): Record<string, unknown> {
  const duration = (ms: number | undefined) => (ms === undefined ? undefined : formatDuration(ms));
  const healthcheck = service.healthcheck;
  return {
    ...service,
    stop_grace_period: duration(service.stop_grace_period),
    healthcheck:
      healthcheck === undefined
        ? undefined
        : {
            ...healthcheck,
            interval: duration(healthcheck.interval),
            timeout: duration(healthcheck.timeout),
            start_period: duration(healthcheck.start_period),
            start_interval: duration(healthcheck.start_interval),
          },
    deploy: service.deploy === undefined ? undefined : deployView(service.deploy),
  };
}

/** Every string value (not the keys, which compose does not interpolate) with `$` written `$$`. */
/** deploy: durations as `5s`, memory as a string of bytes (the schema takes only a string there). */
function deployView(deploy: NonNullable<Service['deploy']>): Record<string, unknown> {
  const policy = deploy.restart_policy;
  const memory = <T extends { readonly memory: number | undefined }>(limits: T | undefined) =>
    limits === undefined
      ? undefined
      : { ...limits, memory: limits.memory === undefined ? undefined : String(limits.memory) };
  return {
    ...deploy,
    resources: { limits: memory(deploy.resources.limits), reservations: memory(deploy.resources.reservations) },
    restart_policy:
      policy === undefined
        ? undefined
        : {
            ...policy,
            delay: policy.delay === undefined ? undefined : formatDuration(policy.delay),
            window: policy.window === undefined ? undefined : formatDuration(policy.window),
          },
  };
}

function escapeDollars(value: unknown): unknown {
  if (typeof value === 'string') return value.replaceAll('$', '$$$$');
  if (Array.isArray(value)) return value.map(escapeDollars);
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, escapeDollars(item)]));
  return value;
}

function clean(value: unknown): Record<string, unknown> | undefined {
  const out = cleanValue(value);
  return out as Record<string, unknown> | undefined;
}

/** Maps whose entries are names: an entry with nothing set is still meaningful (`networks: {default: {}}`). */
const namedMaps = new Set(['services', 'networks', 'volumes', 'secrets', 'configs', 'depends_on', 'models']);

function cleanValue(value: unknown, ownKey = '', keepEmpty = false): unknown {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) {
    const items = value.map((v) => cleanValue(v, '', true)).filter((v) => v !== undefined);
    return items.length === 0 ? undefined : items;
  }
  if (value !== null && typeof value === 'object') {
    const childKeep = namedMaps.has(ownKey);
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = cleanValue((value as Record<string, unknown>)[key], key, childKeep);
      if (v !== undefined) out[key] = v;
    }
    return Object.keys(out).length === 0 && !keepEmpty ? undefined : out;
  }
  return value;
}
