/**
 * The sync actions of `develop.watch` (`sync`, `sync+exec`, `sync+restart`) as plans: the changed host files are read
 * here (`syncOps`, lstat only) and made into sh scripts (`syncScripts`), `planWatchSync` (src/planner/watch.ts) makes
 * the plan from one observation and `planAndApply` runs it through the context's port, as every verb does. The
 * `restart` and `rebuild` actions are the `restart` and `up` verbs (src/watch/command.ts).
 */
import { planAndApply } from '../compose/apply.js';
import type { ComposeContext } from '../compose/context.js';
import type { Project } from '../model/project.js';
import { OpKind } from '../planner/plan.js';
import { planWatchSync, type WatchSyncRequest } from '../planner/watch.js';
import type { WatchRule } from './rules.js';
import { syncOps, syncScripts } from './sync.js';

export interface SyncActionOptions {
  /** The action to run; @default the rule's (initial_sync runs `sync` alone). */
  readonly action?: WatchSyncRequest['action'];
  /** Where a path that is not synced is reported (a symlink out of the watched tree). */
  readonly report: (message: string) => void;
  /** Print the plan instead of applying it. */
  readonly dryRun?: boolean;
}

/** Runs a sync action of `rule` for the changed `paths`; returns what it did, for the action's report line. */
export async function runSyncAction(
  ctx: ComposeContext,
  project: Project,
  rule: WatchRule,
  paths: readonly string[],
  options: SyncActionOptions,
): Promise<string> {
  const action = options.action ?? rule.action;
  if (action !== 'sync' && action !== 'sync+exec' && action !== 'sync+restart') {
    throw new Error(`${action} is not a sync action`);
  }
  const { ops, skipped } = await syncOps(rule, paths);
  for (const hostPath of skipped) {
    options.report(`watch: ${rule.service}: not syncing ${hostPath}: a symlink out of the watched tree`);
  }
  const request: WatchSyncRequest = {
    service: rule.service,
    action,
    target: rule.target ?? '',
    paths: ops.map((op) => op.dest),
    scripts: syncScripts(ops),
    exec: rule.exec,
  };
  // sync+restart takes the project lock as `restart` does; a sync or an exec changes no container (as kill, no lock)
  const plan = await planAndApply(
    ctx,
    project,
    { lock: action === 'sync+restart', ...(options.dryRun === true ? { dryRun: true } : {}) },
    (observed) => planWatchSync(project, observed, request),
  );
  const synced = plan.operations.filter((op) => op.kind === OpKind.ContainerSync).length;
  return `${ops.length} path(s) to ${synced} container(s)`;
}
