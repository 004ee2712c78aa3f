/**
 * tsfig's meaning of a project against Debian's docker-compose 1.29 (`apt-get install docker-compose`; its `config`
 * needs no daemon). For every valid fixture that docker-compose accepts, both outputs are reduced to one shape
 * (`meaning` below: what the containers would get) and must agree, except for the differences listed in
 * `allowed`, each with its reason. Fixtures docker-compose rejects must be listed in `rejectedBy129`, so a change in
 * either tool shows up. Skipped when docker-compose is not installed.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { loadProject } from '../../src/config/load.js';
import type { LoadOptions } from '../../src/config/load.js';
import {
  parseBytes,
  parseDuration,
  parsePortSpec,
  parseVolumeSpec,
  scalarText,
  shellSplit,
} from '../../src/config/values.js';
import type { Project } from '../../src/model/project.js';

const validDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'config', 'valid');

/** Same reading of options.json as config-fixtures.test.ts. */
function fixtureOptions(dir: string): LoadOptions {
  const file = path.join(dir, 'options.json');
  const options = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as LoadOptions) : {};
  return { ...options, cwd: path.resolve(dir, options.cwd ?? '.'), env: { HOME: '/home/user', ...options.env } };
}

const available = spawnSync('docker-compose', ['version'], { encoding: 'utf8' }).status === 0;

/** Valid fixtures docker-compose 1.29 cannot read, and why (syntax newer than 1.29, or tsfig-only behaviour). */
const rejectedBy129: Record<string, string> = {
  'build-forms': 'the build path ./short does not exist (1.29 checks build contexts; tsfig leaves that to build)',
  'command-forms': '`command: null` is valid in the Compose Specification, not in 1.29',
  'depends-on-forms': 'depends_on.restart and required are newer than 1.29',
  'healthcheck-forms': 'healthcheck.start_interval is newer than 1.29',
  'include-subproject': 'include is newer than 1.29',
  'logging-and-labels': 'annotations are newer than 1.29',
  'ports-syntaxes': 'ports[].name and app_protocol are newer than 1.29',
  'project-name-flag': 'top-level name: is newer than 1.29',
  'project-name-env': 'top-level name: is newer than 1.29',
  'project-name-key': 'top-level name: is newer than 1.29',
  'project-name-variable': 'top-level name: is newer than 1.29',
  'reset-and-override-tags': '!reset and !override are newer than 1.29',
  'secrets-and-configs': 'configs.content and secrets.environment are newer than 1.29',
  'service-env-file': 'the long env_file syntax (required: false) is newer than 1.29',
  'volumes-syntaxes': 'bind.create_host_path, tmpfs.mode and volume.subpath are newer than 1.29',
  'env-file-flag': '1.29 takes one --env-file only',
  'depends-on-optional-disabled': 'depends_on.required is newer than 1.29',
  'develop-and-hooks': 'develop, post_start, pre_stop, attach and use_api_socket are newer than 1.29',
  'env-file-raw-format': 'the long env_file syntax (format: raw) is newer than 1.29',
  'gpus-and-devices': 'gpus is newer than 1.29',
  'include-long-form': 'include is newer than 1.29',
  'environment-forms': 'booleans as environment values are valid in the Compose Specification, not in 1.29',
  'interpolation-forms': '1.29 lacks the ${VAR:+alt} and ${VAR+alt} forms',
};

/** Known, accepted differences: fixture → dotted path → reason. */
const allowed: Record<string, Record<string, string>> = {
  'fig-format': {
    'services.web.networks':
      'v1 files put containers on the legacy bridge (network_mode: bridge); tsfig gives every v1 service the project network so links resolve by name',
    'services.web.network_mode': 'same difference as services.web.networks',
  },
  'compose-v1-keys': {
    'services.app.networks': 'as fig-format: legacy bridge in 1.29, project network in tsfig',
    'services.app.network_mode': 'as fig-format',
    'services.web.networks': 'as fig-format: legacy bridge in 1.29, project network in tsfig',
    'services.web.network_mode': 'as fig-format',
  },
  'profiles-default-off': {
    'services.debug': '1.29 config prints services whatever their profiles; tsfig prints the enabled ones',
    'services.docs': 'as services.debug',
  },
  'profiles-env': { 'services.debug': '1.29 config prints services whatever their profiles' },
  'profiles-flag': {},
  'env-files-variable': {
    'services.app.image': 'COMPOSE_ENV_FILES is newer than 1.29, which reads .env instead',
    'services.app.environment.REGION': 'as services.app.image',
  },
  'interpolation-special-defaults': {
    'services.app.environment.DOLLAR_IN_DEFAULT':
      '1.29 keeps $$ inside a ${VAR:-default} as written; the Compose Specification (compose-go) unescapes it, as tsfig does',
  },
};

type Meaning = Record<string, unknown>;

function sortedObject(map: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(map).sort()) out[key] = map[key];
  return out;
}

function asMap(value: unknown, separator = '='): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  if (Array.isArray(value)) {
    for (const item of value as string[]) {
      const at = item.indexOf(separator);
      if (at < 0) out[item] = null;
      else out[item.slice(0, at)] = item.slice(at + 1);
    }
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) out[k] = v === null ? null : scalarText(v);
  }
  return sortedObject(out) as Record<string, string | null>;
}

function commandOf(value: unknown): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  return Array.isArray(value) ? value.map(String) : shellSplit(scalarText(value));
}

function portsOf(value: unknown): string[] {
  const out: string[] = [];
  for (const item of (value as unknown[] | undefined) ?? []) {
    if (item && typeof item === 'object') {
      const p = item as Record<string, unknown>;
      out.push(
        `${scalarText(p.host_ip ?? '')}|${scalarText(p.published ?? '')}|${scalarText(p.target)}|${scalarText(p.protocol ?? 'tcp')}`,
      );
    } else {
      for (const p of parsePortSpec(scalarText(item)))
        out.push(`${p.host_ip ?? ''}|${p.published ?? ''}|${p.target}|${p.protocol}`);
    }
  }
  return out.sort();
}

function volumesOf(value: unknown): string[] {
  const out: string[] = [];
  for (const item of (value as unknown[] | undefined) ?? []) {
    if (item && typeof item === 'object') {
      const v = item as Record<string, unknown>;
      out.push(`${scalarText(v.type)}|${scalarText(v.source ?? '')}|${scalarText(v.target)}|${v.read_only === true}`);
    } else {
      const v = parseVolumeSpec(scalarText(item));
      out.push(`${v.type}|${v.source ?? ''}|${v.target}|${v.read_only}`);
    }
  }
  return out.sort();
}

function hostsOf(value: unknown): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  if (Array.isArray(value)) {
    for (const item of value as string[]) {
      const m = /^([^:=]+)[:=](.*)$/.exec(item);
      if (m) (out[m[1] ?? ''] ??= []).push(m[2] ?? '');
    }
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) out[k] = ([] as string[]).concat(v as string | string[]);
  }
  return sortedObject(out) as Record<string, string[]>;
}

function ulimitsOf(value: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries((value as Record<string, unknown>) ?? {})) {
    out[k] =
      typeof v === 'object'
        ? { soft: Number((v as { soft: number }).soft), hard: Number((v as { hard: number }).hard) }
        : { soft: Number(v), hard: Number(v) };
  }
  return sortedObject(out);
}

/** The shape both tools are reduced to; `s` is one service in compose-file form (docker-compose's output). */
function meaningOfComposeService(s: Record<string, unknown>): Meaning {
  const health = s.healthcheck as Record<string, unknown> | undefined;
  const deploy = s.deploy as Record<string, unknown> | undefined;
  const build = typeof s.build === 'string' ? { context: s.build } : (s.build as Record<string, unknown> | undefined);
  const dependsOn = Array.isArray(s.depends_on)
    ? Object.fromEntries((s.depends_on as string[]).map((d) => [d, 'service_started']))
    : Object.fromEntries(
        Object.entries((s.depends_on as Record<string, { condition?: string }>) ?? {}).map(([k, v]) => [
          k,
          v.condition ?? 'service_started',
        ]),
      );
  const networks = Array.isArray(s.networks) ? (s.networks as string[]) : Object.keys((s.networks as object) ?? {});
  return {
    image: s.image,
    build: build && { context: build.context, dockerfile: build.dockerfile ?? 'Dockerfile' },
    command: commandOf(s.command),
    entrypoint: commandOf(s.entrypoint),
    environment: asMap(s.environment),
    labels: asMap(s.labels),
    ports: portsOf(s.ports),
    volumes: volumesOf(s.volumes),
    depends_on: sortedObject(dependsOn),
    links: ((s.links as string[]) ?? []).slice().sort(),
    networks: s.network_mode === undefined && networks.length === 0 ? ['default'] : networks.sort(),
    network_mode: s.network_mode,
    healthcheck: health && {
      test:
        typeof health.test === 'string' ? ['CMD-SHELL', health.test] : health.disable === true ? ['NONE'] : health.test,
      interval: health.interval === undefined ? undefined : parseDuration(health.interval),
      timeout: health.timeout === undefined ? undefined : parseDuration(health.timeout),
      retries: health.retries === undefined ? undefined : Number(health.retries),
    },
    restart: s.restart ?? 'no',
    cap_add: ((s.cap_add as string[]) ?? []).slice().sort(),
    cap_drop: ((s.cap_drop as string[]) ?? []).slice().sort(),
    dns: ([] as string[]).concat((s.dns as string[]) ?? []),
    extra_hosts: hostsOf(s.extra_hosts),
    sysctls: asMap(s.sysctls),
    ulimits: ulimitsOf(s.ulimits),
    mem_limit: s.mem_limit === undefined ? undefined : parseBytes(s.mem_limit),
    user: s.user === undefined ? undefined : scalarText(s.user),
    working_dir: s.working_dir,
    hostname: s.hostname,
    privileged: s.privileged === true || s.privileged === 'true',
    read_only: s.read_only === true || s.read_only === 'true',
    tty: s.tty === true,
    stdin_open: s.stdin_open === true,
    expose: ((s.expose as unknown[]) ?? []).map(String),
    stop_grace_period: s.stop_grace_period === undefined ? 10_000 : parseDuration(s.stop_grace_period),
    scale: Number(s.scale ?? deploy?.replicas ?? 1),
    logging: s.logging,
  };
}

function meaningOfTsfig(project: Project): Meaning {
  const services: Record<string, Meaning> = {};
  for (const [name, s] of Object.entries(project.services)) {
    services[name] = {
      image: s.image,
      build: s.build && { context: s.build.context, dockerfile: s.build.dockerfile },
      command: s.command && [...s.command],
      entrypoint: s.entrypoint && [...s.entrypoint],
      environment: sortedObject({ ...s.environment }),
      labels: sortedObject({ ...s.labels }),
      ports: s.ports.map((p) => `${p.host_ip ?? ''}|${p.published ?? ''}|${p.target}|${p.protocol}`).sort(),
      volumes: s.volumes.map((v) => `${v.type}|${v.source ?? ''}|${v.target}|${v.read_only}`).sort(),
      depends_on: sortedObject(Object.fromEntries(Object.entries(s.depends_on).map(([k, v]) => [k, v.condition]))),
      links: [...s.links].sort(),
      networks: Object.keys(s.networks).sort(),
      network_mode: s.network_mode,
      healthcheck: s.healthcheck && {
        test: s.healthcheck.test && [...s.healthcheck.test],
        interval: s.healthcheck.interval,
        timeout: s.healthcheck.timeout,
        retries: s.healthcheck.retries,
      },
      restart: s.restart,
      cap_add: [...s.cap_add].sort(),
      cap_drop: [...s.cap_drop].sort(),
      dns: [...s.dns],
      extra_hosts: sortedObject(Object.fromEntries(Object.entries(s.extra_hosts).map(([k, v]) => [k, [...v]]))),
      sysctls: sortedObject({ ...s.sysctls }),
      ulimits: sortedObject({ ...s.ulimits }),
      mem_limit: s.mem_limit,
      user: s.user,
      working_dir: s.working_dir,
      hostname: s.hostname,
      privileged: s.privileged,
      read_only: s.read_only,
      tty: s.tty,
      stdin_open: s.stdin_open,
      expose: [...s.expose],
      stop_grace_period: s.stop_grace_period,
      scale: s.scale,
      logging:
        s.logging && (s.logging.driver !== undefined || Object.keys(s.logging.options).length > 0)
          ? JSON.parse(
              JSON.stringify({
                driver: s.logging.driver,
                options: Object.keys(s.logging.options).length > 0 ? s.logging.options : undefined,
              }),
            )
          : undefined,
    };
  }
  return {
    services: sortedObject(services),
    volumes: Object.keys(project.volumes).sort(),
    networks: Object.keys(project.networks)
      .filter((n) => n !== 'default')
      .sort(),
  };
}

function meaningOfCompose(output: Record<string, unknown>): Meaning {
  const services: Record<string, Meaning> = {};
  for (const [name, s] of Object.entries((output.services as Record<string, Record<string, unknown>>) ?? {})) {
    const meaning = meaningOfComposeService(s);
    if (meaning.logging && typeof meaning.logging === 'object') {
      const l = meaning.logging as { driver?: string; options?: Record<string, unknown> };
      meaning.logging = JSON.parse(
        JSON.stringify({
          driver: l.driver,
          options: l.options && Object.fromEntries(Object.entries(l.options).map(([k, v]) => [k, scalarText(v)])),
        }),
      ) as unknown;
    }
    services[name] = meaning;
  }
  return {
    services: sortedObject(services),
    volumes: Object.keys((output.volumes as object) ?? {}).sort(),
    networks: Object.keys((output.networks as object) ?? {})
      .filter((n) => n !== 'default')
      .sort(),
  };
}

/** docker-compose's config escapes a literal `$` as `$$` so its output can be read again; undo that. */
function unescapeDollars(value: unknown): unknown {
  if (typeof value === 'string') return value.replaceAll('$$', '$');
  if (Array.isArray(value)) return value.map(unescapeDollars);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k.replaceAll('$$', '$'), unescapeDollars(v)]));
  }
  return value;
}

/** Lists differing leaf paths of two JSON-like values. */
function differences(a: unknown, b: unknown, path = ''): string[] {
  const ja = JSON.stringify(a);
  const jb = JSON.stringify(b);
  if (ja === jb) return [];
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].flatMap((k) =>
      differences(
        (a as Record<string, unknown>)[k],
        (b as Record<string, unknown>)[k],
        path === '' ? k : `${path}.${k}`,
      ),
    );
  }
  return [`${path}: tsfig ${ja} vs docker-compose ${jb}`];
}

interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs docker-compose config for one fixture (asynchronously: 1.29 takes about a second to start). */
function runCompose(project: Project, options: LoadOptions): Promise<Run> {
  const args = project.config_files.flatMap((f) => ['-f', f]);
  args.push('--project-directory', project.project_directory);
  for (const file of options.envFiles ?? []) args.push('--env-file', file);
  for (const profile of options.profiles ?? []) args.push('--profile', profile);
  args.push('config');
  if (options.interpolate === false) args.push('--no-interpolate');
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
  for (const [k, v] of Object.entries(options.env ?? {})) if (v !== undefined) env[k] = v;
  return new Promise((resolve) => {
    execFile(
      'docker-compose',
      args,
      { cwd: options.cwd, env, encoding: 'utf8', timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ status: code, stdout, stderr });
      },
    );
  });
}

async function inPool<T, R>(items: readonly T[], width: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: width }, worker));
  return results;
}

describe('docker-compose 1.29 compatibility', { skip: available ? false : 'docker-compose is not installed' }, () => {
  const names = readdirSync(validDir).sort();
  const loaded = new Map<string, { project: Project; options: LoadOptions; run: Run }>();

  before(async () => {
    const inputs = names.map((name) => {
      const options = fixtureOptions(path.join(validDir, name));
      return { name, options, project: loadProject(options).project };
    });
    const runs = await inPool(inputs, 8, (input) => runCompose(input.project, input.options));
    inputs.forEach((input, i) => loaded.set(input.name, { ...input, run: runs[i] as Run }));
  });

  for (const name of names) {
    test(name, () => {
      const entry = loaded.get(name);
      assert.ok(entry);
      const { project, options, run } = entry;
      const reason = rejectedBy129[name];
      if (reason !== undefined) {
        assert.notEqual(run.status, 0, `docker-compose now accepts ${name}; remove it from rejectedBy129 (${reason})`);
        return;
      }
      assert.equal(run.status, 0, `docker-compose rejected ${name}:\n${run.stderr}`);
      const printed = parse(run.stdout, { version: '1.1' }) as unknown;
      const theirs = meaningOfCompose(
        (options.interpolate === false ? printed : unescapeDollars(printed)) as Record<string, unknown>,
      );
      const ours = meaningOfTsfig(project);
      const known = allowed[name] ?? {};
      const unexpected = differences(ours, theirs).filter(
        (d) => !Object.keys(known).some((p) => d.startsWith(`${p}:`)),
      );
      assert.deepEqual(unexpected, []);
    });
  }
});
