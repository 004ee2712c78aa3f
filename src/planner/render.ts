/**
 * Plan renderers (pure): terraform-like text for people, JSON for `--format json`, and compose's debug lines for
 * tests. Only renderers read `reason` and `group`.
 */
import { OpKind, groupAction, type Operation, type Plan, type PlanAction } from './plan.js';

const SYMBOL: Readonly<Record<PlanAction, string>> = {
  create: '+',
  recreate: '~',
  start: '>',
  restart: '>',
  stop: '.',
  remove: '-',
  wait: '=',
  kill: '!',
  pause: '|',
  unpause: '>',
  pull: 'v',
  build: '*',
  sync: '^',
  exec: '$',
  push: '&',
  commit: '#',
};

/** What an op is about, as the user names it: `container tsfig-web-1`, `network tsfig_default`. */
function objectOf(op: Operation): string {
  switch (op.kind) {
    case OpKind.NetworkCreate:
    case OpKind.NetworkRemove:
      return `network ${op.spec.name}`;
    case OpKind.VolumeCreate:
    case OpKind.VolumeRemove:
      return `volume ${op.spec.name}`;
    case OpKind.ContainerCreate:
    case OpKind.ContainerStart:
    case OpKind.ContainerStop:
    case OpKind.ContainerRemove:
    case OpKind.ContainerWaitHealthy:
    case OpKind.ContainerWaitCompleted:
    case OpKind.ContainerWaitRunning:
    case OpKind.ContainerKill:
    case OpKind.ContainerPause:
    case OpKind.ContainerUnpause:
      return `container ${op.spec.name}`;
    case OpKind.ImagePull:
    case OpKind.ImageBuild:
    case OpKind.ImageRemove:
    case OpKind.ImagePush:
      return `image ${op.spec.image}`;
    case OpKind.ArtifactPush:
      return `artifact ${op.spec.reference}`;
    case OpKind.ImageCommit:
      return `container ${op.spec.name}`;
    case OpKind.ContainerHook:
    case OpKind.ContainerSync:
    case OpKind.ContainerExec:
      return `container ${op.spec.name}`;
    case OpKind.ContainerPreStart:
      return `container ${op.spec.create.name}`;
  }
}

function waitLine(op: Operation): string {
  const name = objectOf(op).replace(/^container /, '');
  const what =
    op.kind === OpKind.ContainerWaitHealthy
      ? 'is healthy'
      : op.kind === OpKind.ContainerWaitRunning
        ? 'is running'
        : 'has completed successfully';
  return `${SYMBOL.wait} wait until ${name} ${what} (${op.reason})`;
}

interface Line {
  readonly action: PlanAction | undefined;
  readonly text: string;
}

/**
 * One line per group and per ungrouped op. A group is shown where its last op is: a recreate appears with the
 * creates (dependencies first), not where its old container is stopped (dependents first).
 */
function lines(plan: Plan): Line[] {
  const last = new Map<string, number>();
  plan.operations.forEach((op, index) => {
    if (op.group !== undefined && groupAction(op) !== undefined) last.set(op.group, index);
  });
  // what a group does besides its own change, each on a line under it: hooks, pre_start containers and the removal
  // of one a killed command left
  const details = new Map<string, Line[]>();
  for (const op of plan.operations) {
    if (op.group === undefined || !isDetail(op, plan.operations[last.get(op.group) ?? -1])) continue;
    const list = details.get(op.group) ?? [];
    list.push({ action: undefined, text: `    ${op.kind} ${objectOf(op)} (${op.reason})` });
    details.set(op.group, list);
  }
  const out: Line[] = [];
  plan.operations.forEach((op, index) => {
    const action = groupAction(op);
    if (op.group === undefined || action === undefined) {
      const isWait = isWaitOp(op);
      out.push({ action: isWait ? 'wait' : undefined, text: isWait ? waitLine(op) : `  ${op.kind} ${objectOf(op)}` });
      return;
    }
    if (last.get(op.group) !== index) return;
    out.push({ action, text: `${SYMBOL[action]} ${action} ${objectOf(op)} (${op.reason})` });
    out.push(...(details.get(op.group) ?? []));
  });
  return out;
}

/** An op of a group that its group line does not tell: a hook, a pre_start container, another container's removal. */
function isDetail(op: Operation, shown: Operation | undefined): boolean {
  if (op.kind === OpKind.ContainerHook || op.kind === OpKind.ContainerPreStart) return true;
  return op.kind === OpKind.ContainerRemove && shown !== undefined && objectOf(op) !== objectOf(shown);
}

function count(all: readonly Line[], action: PlanAction): number {
  return all.filter((line) => line.action === action).length;
}

const NO_CHANGES = 'No changes. The project is up to date.';

/** Whether the plan changes anything (terraform's `PlanEmpty`, inverted); waits alone change nothing. */
export function planHasChanges(plan: Plan): boolean {
  return plan.operations.some((op) => !isWaitOp(op));
}

function isWaitOp(op: Operation): boolean {
  return (
    op.kind === OpKind.ContainerWaitHealthy ||
    op.kind === OpKind.ContainerWaitCompleted ||
    op.kind === OpKind.ContainerWaitRunning
  );
}

/** The text `up --dry-run` prints: warnings, one line per change, a summary line. */
export function renderPlanText(plan: Plan): string {
  const warnings = plan.warnings.map((warning) => `warning: ${warning}`);
  const gap = warnings.length > 0 ? [''] : [];
  const all = lines(plan);
  if (!planHasChanges(plan)) {
    const waits = all.map((line) => line.text);
    return [...warnings, ...gap, ...waits, ...(waits.length > 0 ? [''] : []), NO_CHANGES, ''].join('\n');
  }
  const optional = (
    ['start', 'restart', 'stop', 'kill', 'pause', 'unpause', 'pull', 'build', 'sync', 'exec', 'push', 'commit'] as const
  )
    .map((action) => [count(all, action), action] as const)
    .filter(([n]) => n > 0)
    .map(([n, action]) => `, ${n} to ${action}`)
    .join('');
  const summary =
    `Plan: ${count(all, 'create')} to create, ${count(all, 'recreate')} to recreate, ` +
    `${count(all, 'remove')} to remove${optional}.`;
  return [...warnings, ...gap, ...all.map((line) => line.text), '', summary, ''].join('\n');
}

/** `--format json`: the plan itself, versioned. */
export function renderPlanJson(plan: Plan): string {
  return `${JSON.stringify(plan, null, 2)}\n`;
}

/** compose's `Plan.String()`: `[deps] -> #id resource, kind, reason`, one line per op (for tests and --debug). */
export function planToDebugString(plan: Plan): string {
  return plan.operations
    .map((op) => {
      const flags = op.bestEffort === true ? ' (best effort)' : '';
      return `[${op.dependsOn.join(',')}] -> #${op.id} ${op.resource}, ${op.kind}, ${op.reason}${flags}`;
    })
    .join('\n');
}
