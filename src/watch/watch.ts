/**
 * The watch loop: chokidar over every rule's path and the project files, a debounce per rule (a burst of saves is one
 * action), and the action: sync, restart, sync+restart, sync+exec or rebuild, each a plan run by the caller's
 * functions (src/watch/command.ts). Actions of one service run one at a time. Each action is reported with its
 * duration.
 */
import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { watch as chokidarWatch, type FSWatcher } from 'chokidar';
import { DockerIgnore, readDockerIgnore } from '../../engine/build/index.js';
import type { Project } from '../model/project.js';
import { formatDuration } from '../ui/tty/format.js';
import { Debouncer } from './debounce.js';
import { watchRules, type WatchRule } from './rules.js';
import { walk } from './sync.js';

/** Editor droppings and VCS metadata never trigger an action (compose ignores the same). */
const DEFAULT_IGNORES = ['.git', '**/.git', '**/*~', '**/.*.swp', '**/.*.swx', '**/4913', '**/*.tsfig-sync'];

export interface WatchOptions {
  /** The project as loaded; replaced after a project-file change re-plans. */
  readonly project: Project;
  /** The project files (a change re-plans and applies). */
  readonly projectFiles: readonly string[];
  /** Only these services' rules (all when empty). */
  readonly services: readonly string[];
  /** Where action reports go (stderr, or the TUI's status line). */
  readonly report: (message: string) => void;
  /**
   * The `up` code path: load the project again, plan, apply. `forceRecreate` recreates the named services (after a
   * rebuild). Returns the project it loaded.
   */
  readonly replan: (services: readonly string[], options: { forceRecreate: boolean }) => Promise<Project>;
  /** The `restart` code path (a plan of stops and starts) for one service's containers. */
  readonly restart: (service: string) => Promise<void>;
  /**
   * A sync action of the rule for the changed paths, as one plan (src/watch/actions.ts `runSyncAction`): the files
   * into the running containers, then the exec or the restart. Returns what it did, for the report.
   */
  readonly sync: (
    project: Project,
    rule: WatchRule,
    paths: readonly string[],
    action: 'sync' | 'sync+restart' | 'sync+exec',
  ) => Promise<string>;
  readonly signal: AbortSignal;
  /** Quiet period of the debounce. @default 300 */
  readonly quietMs?: number;
}

interface RuleMatcher {
  readonly rule: WatchRule;
  readonly ignore: DockerIgnore;
  readonly include: DockerIgnore | undefined;
  /** The build context's .dockerignore, applied to paths inside the context. */
  readonly context: { readonly dir: string; readonly ignore: DockerIgnore } | undefined;
}

const slash = (value: string) => value.split(path.sep).join('/');

/** True when the path is ignored: the default ignores, the rule's `ignore`, the build context's .dockerignore. */
function ignored(matcher: RuleMatcher, hostPath: string): boolean {
  const relative = path.relative(matcher.rule.path, hostPath);
  if (relative === '') return false;
  if (matcher.ignore.matches(slash(relative))) return true;
  if (matcher.context !== undefined) {
    const inContext = path.relative(matcher.context.dir, hostPath);
    if (!inContext.startsWith('..') && !path.isAbsolute(inContext) && inContext !== '') {
      if (matcher.context.ignore.matches(slash(inContext))) return true;
    }
  }
  return false;
}

/** True when the changed path counts for this rule (inside its path, not ignored, included). */
export function matches(matcher: RuleMatcher, hostPath: string): boolean {
  const { rule } = matcher;
  const relative = path.relative(rule.path, hostPath);
  if (relative.startsWith('..') || path.isAbsolute(relative)) return false;
  if (relative === '') return true;
  if (ignored(matcher, hostPath)) return false;
  return matcher.include === undefined || matcher.include.matches(slash(relative));
}

/** True when hostPath is (inside) a bind mount of the service: the container sees it already (compose skips it). */
function boundIntoService(project: Project, service: string, hostPath: string): boolean {
  return (project.services[service]?.volumes ?? []).some((volume) => {
    if (volume.type !== 'bind' || volume.source === undefined) return false;
    const relative = path.relative(volume.source, hostPath);
    return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
  });
}

async function matcherOf(rule: WatchRule, project: Project): Promise<RuleMatcher> {
  const build = project.services[rule.service]?.build;
  const contextDir = build !== undefined && !/^[a-z]+:\/\//.test(build.context) ? build.context : undefined;
  return {
    rule,
    ignore: new DockerIgnore([...DEFAULT_IGNORES, ...rule.ignore]),
    include: rule.include.length > 0 ? new DockerIgnore(rule.include) : undefined,
    context:
      contextDir === undefined
        ? undefined
        : {
            dir: contextDir,
            ignore: await readDockerIgnore(contextDir, path.resolve(contextDir, build?.dockerfile ?? 'Dockerfile')),
          },
  };
}

class Watcher {
  private project: Project;
  private readonly options: WatchOptions;
  private matchers: RuleMatcher[] = [];
  private readonly debouncers = new Map<WatchRule, Debouncer<string>>();
  private readonly queues = new Map<string, Promise<void>>();
  private projectDebounce: Debouncer<string>;
  private chokidar: FSWatcher | undefined;

  constructor(options: WatchOptions) {
    this.options = options;
    this.project = options.project;
    this.projectDebounce = new Debouncer(() => this.enqueue('<project>', () => this.onProjectChange()), 300);
  }

  private async setup(): Promise<void> {
    const rules = watchRules(this.project, this.options.services);
    for (const rule of rules)
      for (const message of rule.deprecations) this.options.report(`WARN ${rule.service}: ${message}`);
    this.matchers = await Promise.all(rules.map((rule) => matcherOf(rule, this.project)));
    for (const debouncer of this.debouncers.values()) debouncer.cancel();
    this.debouncers.clear();
    for (const matcher of this.matchers) {
      this.debouncers.set(
        matcher.rule,
        new Debouncer(
          (paths) => this.enqueue(matcher.rule.service, () => this.runAction(matcher.rule, paths)),
          this.options.quietMs ?? 300,
        ),
      );
    }
  }

  private enqueue(key: string, action: () => Promise<void>): void {
    const previous = this.queues.get(key) ?? Promise.resolve();
    const next = previous.then(action).catch((error: unknown) => {
      this.options.report(`watch: ${key}: ${error instanceof Error ? error.message : String(error)}`);
    });
    this.queues.set(key, next);
  }

  private onEvent(hostPath: string): void {
    const absolute = path.resolve(hostPath);
    if (this.options.projectFiles.includes(absolute)) {
      this.projectDebounce.add(absolute);
      return;
    }
    for (const matcher of this.matchers) {
      if (matches(matcher, absolute)) this.debouncers.get(matcher.rule)?.add(absolute);
    }
  }

  private async restart(service: string): Promise<void> {
    await this.options.restart(service);
  }

  /** The image phase of `up` builds it (a plan op), then the service is recreated from it. */
  private async rebuild(service: string): Promise<void> {
    if (this.project.services[service]?.build === undefined) {
      throw new Error(`cannot rebuild ${service}: it has no build section (use action: restart or sync)`);
    }
    this.project = await this.options.replan([service], { forceRecreate: true });
  }

  private async runAction(rule: WatchRule, paths: readonly string[]): Promise<void> {
    if (this.options.signal.aborted) return;
    const started = Date.now();
    const service = rule.service;
    let detail = '';
    switch (rule.action) {
      case 'sync':
      case 'sync+restart':
      case 'sync+exec':
        detail = await this.options.sync(this.project, rule, paths, rule.action);
        break;
      case 'restart':
        await this.restart(service);
        break;
      case 'rebuild':
        await this.rebuild(service);
        break;
    }
    const took = formatDuration(Date.now() - started);
    this.options.report(`watch: ${rule.action} ${service}${detail === '' ? '' : ` (${detail})`} in ${took}`);
  }

  private async onProjectChange(): Promise<void> {
    const started = Date.now();
    this.project = await this.options.replan(this.options.services, { forceRecreate: false });
    await this.setup();
    this.rewatch();
    this.options.report(
      `watch: project file changed: re-planned and applied in ${formatDuration(Date.now() - started)}`,
    );
  }

  private watchedPaths(): string[] {
    return [...new Set([...this.matchers.map((matcher) => matcher.rule.path), ...this.options.projectFiles])];
  }

  private rewatch(): void {
    const wanted = this.watchedPaths();
    const current = this.chokidar?.getWatched() ?? {};
    const watched = new Set(
      Object.entries(current).flatMap(([dir, names]) => names.map((name) => path.join(dir, name))),
    );
    const added = wanted.filter((candidate) => !watched.has(candidate));
    if (added.length > 0) this.chokidar?.add(added);
  }

  private async initialSync(): Promise<void> {
    for (const matcher of this.matchers) {
      if (!matcher.rule.initialSync || !matcher.rule.action.startsWith('sync')) continue;
      const { rule } = matcher;
      const bound = (hostPath: string) => boundIntoService(this.project, rule.service, hostPath);
      const paths = await walk(
        rule.path,
        (hostPath) => matches(matcher, hostPath) && !bound(hostPath),
        (dir) => !ignored(matcher, dir) && !bound(dir),
      );
      this.enqueue(matcher.rule.service, async () => {
        const started = Date.now();
        const detail = await this.options.sync(this.project, matcher.rule, paths, 'sync');
        this.options.report(
          `watch: initial sync ${matcher.rule.service} (${detail}) in ${formatDuration(Date.now() - started)}`,
        );
      });
    }
  }

  async run(): Promise<void> {
    await this.setup();
    if (this.matchers.length === 0) {
      throw new Error('no service has develop.watch rules');
    }
    const missing: string[] = [];
    for (const matcher of this.matchers)
      if ((await lstat(matcher.rule.path).catch(() => undefined)) === undefined) missing.push(matcher.rule.path);
    for (const hostPath of missing) this.options.report(`watch: ${hostPath} does not exist yet; watching for it`);
    this.chokidar = chokidarWatch(this.watchedPaths(), {
      ignoreInitial: true,
      followSymlinks: false,
      persistent: true,
    });
    this.chokidar.on('all', (_event, hostPath) => this.onEvent(hostPath));
    this.chokidar.on('error', (error) => this.options.report(`watch: ${String(error)}`));
    await new Promise<void>((resolve) => this.chokidar?.once('ready', () => resolve()));
    await this.initialSync();
    const services = [...new Set(this.matchers.map((matcher) => matcher.rule.service))].join(', ');
    this.options.report(`watch: watching ${services} (${this.matchers.length} rule(s)); edits are applied as you save`);
    await new Promise<void>((resolve) => {
      if (this.options.signal.aborted) resolve();
      else this.options.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    for (const debouncer of this.debouncers.values()) debouncer.cancel();
    this.projectDebounce.cancel();
    await this.chokidar.close();
    await Promise.all(this.queues.values());
  }
}

/** Watches until `signal` aborts. Throws (before watching) when no selected service has rules. */
export async function watchProject(options: WatchOptions): Promise<void> {
  await new Watcher(options).run();
}
