/** `develop.watch` rules of the project's services, checked and resolved against the project directory. */
import path from 'node:path';
import { TsfigError } from '../errors.js';
import type { Project } from '../model/project.js';
import type { WatchExec } from '../planner/watch.js';

export type WatchAction = 'sync' | 'rebuild' | 'restart' | 'sync+restart' | 'sync+exec';

const ACTIONS: readonly WatchAction[] = ['sync', 'rebuild', 'restart', 'sync+restart', 'sync+exec'];

/** One `develop.watch` entry of a service. */
export interface WatchRule {
  readonly service: string;
  /** Absolute host path (a directory or a file). */
  readonly path: string;
  readonly action: WatchAction;
  /** Absolute path in the container; required for the sync actions. */
  readonly target: string | undefined;
  /** .dockerignore-style patterns relative to `path`. */
  readonly ignore: readonly string[];
  /** When set, only paths matching one of these (relative to `path`) count. */
  readonly include: readonly string[];
  /** Sync the whole path once when watching starts (sync actions). @default false */
  readonly initialSync: boolean;
  /** What the rule uses that compose deprecated (printed once when watching starts). */
  readonly deprecations: readonly string[];
  /** `sync+exec`: the command run in the container after a sync. */
  readonly exec: WatchExec | undefined;
}

function stringList(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.map(String);
  return [];
}

function commandList(value: unknown): string[] {
  if (typeof value === 'string') return ['/bin/sh', '-c', value];
  return stringList(value);
}

function envList(value: unknown): string[] {
  if (Array.isArray(value)) return value.map(String);
  if (value !== null && typeof value === 'object') {
    return Object.entries(value as Record<string, unknown>).map(
      ([key, item]) =>
        `${key}=${item === null || item === undefined ? '' : typeof item === 'object' ? JSON.stringify(item) : String(item as string | number | boolean)}`,
    );
  }
  return [];
}

function ruleError(service: string, index: number, message: string): TsfigError {
  return new TsfigError('config', `services.${service}.develop.watch[${index}]: ${message}`, {
    hint: 'see https://docs.docker.com/compose/how-tos/file-watch/ for the rule format',
  });
}

function parseRule(service: string, index: number, raw: unknown, projectDir: string): WatchRule {
  if (raw === null || typeof raw !== 'object') throw ruleError(service, index, 'must be a mapping');
  const entry = raw as Record<string, unknown>;
  if (typeof entry.path !== 'string' || entry.path === '') throw ruleError(service, index, 'path is required');
  const action = entry.action;
  if (typeof action !== 'string' || !ACTIONS.includes(action as WatchAction)) {
    throw ruleError(service, index, `action must be one of ${ACTIONS.join(', ')}`);
  }
  const target = typeof entry.target === 'string' ? entry.target : undefined;
  if (action.startsWith('sync') && (target === undefined || !target.startsWith('/'))) {
    throw ruleError(service, index, `action ${action} needs an absolute target (the path in the container)`);
  }
  let exec: WatchRule['exec'];
  if (action === 'sync+exec') {
    const hook = (entry.exec ?? {}) as Record<string, unknown>;
    const command = commandList(hook.command);
    if (command.length === 0) throw ruleError(service, index, 'action sync+exec needs exec.command');
    exec = {
      command,
      user: typeof hook.user === 'string' ? hook.user : undefined,
      workingDir: typeof hook.working_dir === 'string' ? hook.working_dir : undefined,
      environment: envList(hook.environment),
    };
  }
  return {
    service,
    path: path.resolve(projectDir, entry.path),
    action: action as WatchAction,
    target: target === undefined ? undefined : path.posix.normalize(target).replace(/(.)\/+$/, '$1'),
    ignore: stringList(entry.ignore),
    include: stringList(entry.include),
    // compose's older extension key, still honoured by compose with a deprecation warning
    initialSync: [entry.initial_sync, entry['x-initialSync']].some((value) => value === true || value === 'true'),
    deprecations:
      entry['x-initialSync'] === undefined
        ? []
        : ['x-initialSync is DEPRECATED, please use the official `initial_sync` attribute'],
    exec,
  };
}

/** The watch rules of the named services (all when empty), in service order. */
export function watchRules(project: Project, services: readonly string[] = []): WatchRule[] {
  const rules: WatchRule[] = [];
  for (const name of Object.keys(project.services).sort()) {
    if (services.length > 0 && !services.includes(name)) continue;
    const develop = project.services[name]?.other.develop as { watch?: unknown } | null | undefined;
    const watch = develop?.watch;
    if (watch === undefined || watch === null) continue;
    if (!Array.isArray(watch)) throw ruleError(name, 0, 'develop.watch must be a list');
    watch.forEach((raw, index) => rules.push(parseRule(name, index, raw, project.project_directory)));
  }
  return rules;
}

/** Where a changed host file goes in the container: `target` + its path below the rule's path. */
export function containerPath(rule: WatchRule, hostPath: string, ruleIsFile: boolean): string | undefined {
  if (rule.target === undefined) return undefined;
  if (ruleIsFile) return rule.target;
  const relative = path.relative(rule.path, hostPath);
  if (relative.startsWith('..') || path.isAbsolute(relative)) return undefined;
  return relative === '' ? rule.target : path.posix.join(rule.target, relative.split(path.sep).join('/'));
}
