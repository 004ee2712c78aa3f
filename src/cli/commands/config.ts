import { Option } from 'commander';
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { formatDiagnostics, suggestion } from '../../config/diagnostics.js';
import { extractVariables } from '../../config/interpolate.js';
import { formatDuration } from '../../config/values.js';
import { canonicalProject } from './config-canonical.js';
import { loadModel, loadProject } from '../../config/load.js';
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
  /** Unset: YAML, or a table for --variables (compose's default). */
  readonly format?: 'yaml' | 'json';
  readonly services?: boolean;
  readonly volumes?: boolean;
  readonly profiles?: boolean;
  readonly images?: boolean;
  readonly quiet?: boolean;
  readonly interpolate: boolean;
  readonly hash?: string;
  readonly variables?: boolean;
}

/** `tsfig config`: prints the normalised project (what the planner sees), or parts of it. */
export function registerConfigCommand(program: Command): void {
  const cmd = program
    .command('config')
    .description('validate the project files and print the normalised project')
    .argument('[service...]', 'print only these services (enables their profiles)')
    .addOption(new Option('--format <format>', 'output format (default: yaml)').choices(['yaml', 'json']))
    .option('--services', 'print the service names, one per line')
    .option('--volumes', 'print the volume names, one per line')
    .option('--profiles', 'print the profile names, one per line')
    .option('--images', 'print the image of each service, one per line')
    .option('-q, --quiet', 'only validate: print nothing, exit 65 when invalid')
    .option('--no-interpolate', 'do not substitute ${VARIABLES}')
    .option('--variables', 'print the variables the files use, with their defaults (a table, or --format)')
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
  if (options.variables) return variablesText(serviceNames, options, extras);
  const listing = options.volumes || options.profiles || options.images || options.hash !== undefined;
  if (!options.interpolate && !listing) return modelText(serviceNames, options, extras);
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
 * `config --no-interpolate` (and `--services` with it): the model as written, with compose's map normalisation
 * (loadModel), keys sorted at every level as compose prints its map; all services, as in compose, which warns when
 * services are named.
 */
function modelText(serviceNames: readonly string[], options: ConfigOptions, extras: ProjectLoadExtras): string {
  const warn = extras.warn ?? ((text: string) => process.stderr.write(text));
  const model = modelOf(options, extras);
  if (options.quiet) return '';
  const services = isRecord(model.services) ? Object.keys(model.services) : [];
  if (options.services) return services.map((name) => `${name}\n`).join('');
  if (serviceNames.length > 0) {
    warn('warning: service filtering is not applied when --no-interpolate is set, the full model will be rendered\n');
  }
  return options.format === 'json'
    ? `${JSON.stringify(model, null, 2)}\n`
    : stringify(model, { lineWidth: 0, version: '1.1' });
}

function modelOf(options: ConfigOptions, extras: ProjectLoadExtras): Record<string, unknown> {
  const cwd = extras.cwd ?? process.cwd();
  const { model, warnings, sources } = loadModel({
    files: options.file ?? [],
    projectName: options.projectName,
    projectDirectory: options.projectDirectory,
    envFiles: options.envFile ?? [],
    cwd,
    env: extras.env ?? process.env,
  });
  if (warnings.length > 0) {
    const warn = extras.warn ?? ((text: string) => process.stderr.write(text));
    warn(`${formatDiagnostics(warnings, sources, cwd)}\n`);
  }
  return model;
}

/**
 * `config --variables`: the variables of the uninterpolated model (compose v2's format: JSON with Go's field names
 * and 4-space indent, YAML with lowercased names, else a table); all services, with a warning when some are named.
 */
function variablesText(serviceNames: readonly string[], options: ConfigOptions, extras: ProjectLoadExtras): string {
  const model = modelOf(options, extras);
  if (serviceNames.length > 0) {
    const warn = extras.warn ?? ((text: string) => process.stderr.write(text));
    warn(
      'warning: service filtering is not applied when --variables is set, variables from the full model will be rendered\n',
    );
  }
  if (options.quiet) return '';
  const variables = [...extractVariables(model).values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  if (options.format === 'json') {
    const out = Object.fromEntries(
      variables.map((v) => [
        v.name,
        { Name: v.name, DefaultValue: v.defaultValue, PresenceValue: v.presenceValue, Required: v.required },
      ]),
    );
    return `${JSON.stringify(out, null, 4)}\n`;
  }
  if (options.format === 'yaml') {
    const out = Object.fromEntries(
      variables.map((v) => [
        v.name,
        { name: v.name, defaultvalue: v.defaultValue, presencevalue: v.presenceValue, required: v.required },
      ]),
    );
    return variables.length === 0 ? '{}\n' : stringify(out, { indent: 4, lineWidth: 0, version: '1.1' });
  }
  // Go's tabwriter as compose sets it up: cells padded by 3, columns at least 20 wide, the last one not padded
  const rows = [
    ['NAME', 'REQUIRED', 'DEFAULT VALUE', 'ALTERNATE VALUE'],
    ...variables.map((v) => [v.name, String(v.required), v.defaultValue, v.presenceValue]),
  ];
  const widths = [0, 1, 2].map((column) => Math.max(20, ...rows.map((row) => (row[column] ?? '').length + 3)));
  return rows
    .map((row) => row.map((cell, column) => (column < 3 ? cell.padEnd(widths[column] ?? 0) : cell)).join(''))
    .map((line) => `${line}\n`)
    .join('');
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === 'object' && !Array.isArray(value);

/**
 * The project as `tsfig config` prints it (YAML or JSON), in compose v2's canonical form (config-canonical.ts), which
 * loads back to the same project: interpolated values have their `$` written `$$` (as compose v2 prints them), so that
 * loading the output does not interpolate again.
 */
export function configText(
  project: Project,
  only: readonly string[],
  format: 'yaml' | 'json',
  interpolated = true,
): string {
  const implicit = Object.fromEntries(Object.values(project.services).map((s) => [s.name, s.implicit]));
  const rendered = canonicalProject(renderProject(project, only), implicit, format);
  const view = interpolated ? (escapeDollars(rendered) as Record<string, unknown>) : rendered;
  return format === 'json' ? `${JSON.stringify(view, null, 2)}\n` : stringify(view, { lineWidth: 0, version: '1.1' });
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
    const { other, extensions, name: _name, implicit: _implicit, ...service } = project.services[name] as Service;
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
