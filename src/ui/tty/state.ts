/**
 * The TUI's view model and the pure reducer that builds it from the orchestrator's events, container observations,
 * log batches and key-driven UI actions. Components render a `TuiState` and nothing else.
 */
import type { ImageEvent, LayerState, OpEventRef, TsfigEvent } from '../../events/events.js';
import { compareText } from '../../../engine/state/index.js';

/** Lifecycle of a row, as shown: creating/starting/waiting spin; the rest are the engine's states. */
export type RowState =
  | 'pending'
  | 'creating'
  | 'starting'
  | 'waiting'
  | 'created'
  | 'running'
  | 'restarting'
  | 'paused'
  | 'stopping'
  | 'exited'
  | 'removing'
  | 'error';

/** One container of the project, as the status panel shows it. */
export interface ContainerRow {
  /** Container name: `proj-web-1`. */
  readonly name: string;
  readonly id: string;
  readonly service: string;
  /** Replica number (`io.tsfig.container-number`). */
  readonly replica: number;
  readonly state: RowState;
  readonly health: string | undefined;
  readonly restarts: number;
  readonly exitCode: number | undefined;
  /** Published host ports (tcp), sorted. */
  readonly ports: readonly number[];
  /** ISO start time of the current run; '' when not running. */
  readonly startedAt: string;
  /** CPU use of the last sample, percent of one core; undefined before two samples. */
  readonly cpuPercent: number | undefined;
  readonly memoryBytes: number | undefined;
  /** The last cumulative CPU time sample (ns) and when it was taken (ms), for the next percent. */
  readonly cpuSample: { readonly usageNs: number; readonly atMs: number } | undefined;
  /** The last op message about this container (an error). */
  readonly message: string | undefined;
}

/** A log line as kept in the pane's ring buffer. */
export interface LogLine {
  readonly seq: number;
  /** Row label (`web-1`); the colour follows it. */
  readonly source: string;
  readonly service: string;
  readonly stream: 'stdout' | 'stderr' | 'system';
  readonly text: string;
}

/** What one observation of a container says (from the engine's state, ports and cgroup). */
export interface ContainerObservation {
  readonly id: string;
  readonly name: string;
  readonly service: string;
  readonly replica: number;
  readonly status: string;
  readonly running: boolean;
  readonly health?: string | undefined;
  readonly restarts: number;
  readonly exitCode: number;
  readonly ports: readonly number[];
  readonly startedAt: string;
  /** Cumulative CPU time (ns) and memory in use, when the cgroup could be read. */
  readonly cpuUsageNs?: number | undefined;
  readonly memoryBytes?: number | undefined;
}

/** One layer of an image being pulled. */
export interface LayerView {
  readonly id: string;
  readonly state: LayerState;
  readonly current: number;
  readonly total: number;
}

/** An image being pulled (or pulled) before the plan runs. */
export interface PullView {
  readonly image: string;
  readonly services: readonly string[];
  readonly status: 'pulling' | 'downloaded' | 'up-to-date' | 'error';
  /** In the registry's order, bottom layer first. */
  readonly layers: readonly LayerView[];
  readonly message: string | undefined;
}

/** A service's image being built (or built) before the plan runs. */
export interface BuildView {
  readonly service: string;
  readonly image: string;
  readonly status: 'building' | 'done';
  /** The current (or last) step: `[step/total] text`; 0 before the first. */
  readonly step: number;
  readonly total: number;
  readonly text: string;
  readonly stepsDone: number;
  readonly cachedSteps: number;
  /** The last lines of the current step's RUN output, at most BUILD_OUTPUT_LINES. */
  readonly output: readonly string[];
  readonly durationMs: number | undefined;
}

/** The plan being applied: counts and the ops in flight. */
export interface PlanView {
  readonly total: number;
  readonly done: number;
  readonly failed: number;
  readonly skipped: number;
  readonly running: readonly OpEventRef[];
  readonly finished: boolean;
}

/** RUN output lines kept per build. */
export const BUILD_OUTPUT_LINES = 3;

/** Everything that changes the view: orchestrator events plus the TUI's own inputs. */
export type TuiEvent =
  | TsfigEvent
  | { readonly kind: 'observe'; readonly atMs: number; readonly containers: readonly ContainerObservation[] }
  | {
      readonly kind: 'logs';
      readonly lines: readonly Omit<LogLine, 'seq'>[];
    }
  | { readonly kind: 'tick' }
  | { readonly kind: 'resize'; readonly columns: number; readonly rows: number }
  | { readonly kind: 'select'; readonly delta: number }
  | { readonly kind: 'solo' }
  | { readonly kind: 'all' }
  | { readonly kind: 'filter.edit'; readonly text: string | undefined }
  | { readonly kind: 'filter.commit' }
  | { readonly kind: 'help' }
  | { readonly kind: 'status'; readonly message: string }
  | { readonly kind: 'stopping'; readonly force: boolean }
  /** Images and plan are done: the TUI follows the running stack (finished pulls and builds leave the screen). */
  | { readonly kind: 'attached' };

export interface TuiState {
  readonly project: string;
  readonly rows: readonly ContainerRow[];
  /** Index into `rows` of the selected row. */
  readonly selected: number;
  /** Only this service's logs (enter); undefined shows all (a). */
  readonly solo: string | undefined;
  /** Committed text filter; '' shows every line. */
  readonly filter: string;
  /** The filter being typed after `/`; undefined when not editing. */
  readonly filterDraft: string | undefined;
  readonly logs: readonly LogLine[];
  readonly nextSeq: number;
  /** Lines kept in the ring buffer. */
  readonly logLimit: number;
  readonly help: boolean;
  /** Spinner frame counter. */
  readonly tick: number;
  readonly columns: number;
  readonly terminalRows: number;
  /** The last one-line status message (plan progress, an action's result). */
  readonly status: string;
  readonly stopping: 'no' | 'graceful' | 'kill';
  /** `preparing` while `up` pulls, builds and applies its plan; `attached` once it follows the stack. */
  readonly phase: 'preparing' | 'attached';
  readonly pulls: readonly PullView[];
  readonly builds: readonly BuildView[];
  /** The plan being applied; undefined before one starts and once it is done and the TUI is attached. */
  readonly plan: PlanView | undefined;
}

export function initialState(project: string, options: { columns?: number; rows?: number; logLimit?: number } = {}) {
  const state: TuiState = {
    project,
    rows: [],
    selected: 0,
    solo: undefined,
    filter: '',
    filterDraft: undefined,
    logs: [],
    nextSeq: 0,
    logLimit: options.logLimit ?? 2000,
    help: false,
    tick: 0,
    columns: options.columns ?? 80,
    terminalRows: options.rows ?? 24,
    status: '',
    stopping: 'no',
    phase: 'preparing',
    pulls: [],
    builds: [],
    plan: undefined,
  };
  return state;
}

const OP_STATE: Record<string, RowState> = {
  'container.create': 'creating',
  'container.start': 'starting',
  'container.wait-healthy': 'waiting',
  'container.stop': 'stopping',
  'container.remove': 'removing',
};

/** `service:web:1` → web, 1. */
function parseResource(resource: string): { service: string; replica: number } | undefined {
  const match = /^service:([^:]+):(\d+)$/.exec(resource);
  if (match === null || match[1] === undefined || match[2] === undefined) return undefined;
  return { service: match[1], replica: Number(match[2]) };
}

function emptyRow(name: string, service: string, replica: number): ContainerRow {
  return {
    name,
    id: '',
    service,
    replica,
    state: 'pending',
    health: undefined,
    restarts: 0,
    exitCode: undefined,
    ports: [],
    startedAt: '',
    cpuPercent: undefined,
    memoryBytes: undefined,
    cpuSample: undefined,
    message: undefined,
  };
}

function compareRows(a: ContainerRow, b: ContainerRow): number {
  return compareText(a.service, b.service) || a.replica - b.replica || compareText(a.name, b.name);
}

/** Replaces (or adds) the row of `name`, keeping rows sorted and the selection on the same row. */
function upsertRow(state: TuiState, name: string, update: (row: ContainerRow | undefined) => ContainerRow): TuiState {
  const selectedName = state.rows[state.selected]?.name;
  const index = state.rows.findIndex((row) => row.name === name);
  const rows =
    index === -1
      ? [...state.rows, update(undefined)].sort(compareRows)
      : state.rows.map((row, at) => (at === index ? update(row) : row));
  return { ...state, rows, selected: reselect(rows, selectedName, state.selected) };
}

function reselect(rows: readonly ContainerRow[], name: string | undefined, fallback: number): number {
  const index = name === undefined ? -1 : rows.findIndex((row) => row.name === name);
  if (index !== -1) return index;
  return Math.max(0, Math.min(fallback, rows.length - 1));
}

function onOp(state: TuiState, event: Extract<TsfigEvent, { kind: 'op.start' | 'op.done' | 'op.error' }>): TuiState {
  const where = parseResource(event.op.resource);
  if (where === undefined || !event.op.kind.startsWith('container.')) return state;
  const name = event.op.target;
  return upsertRow(state, name, (row) => {
    const base = row ?? emptyRow(name, where.service, where.replica);
    if (event.kind === 'op.start') return { ...base, state: OP_STATE[event.op.kind] ?? base.state };
    if (event.kind === 'op.error')
      return { ...base, state: event.bestEffort ? base.state : 'error', message: event.message };
    switch (event.op.kind) {
      case 'container.create':
        return { ...base, state: 'created', id: event.containerId ?? base.id };
      case 'container.start':
        return { ...base, state: 'running' };
      case 'container.wait-healthy':
        return { ...base, state: 'running', health: 'healthy' };
      case 'container.stop':
        return { ...base, state: 'exited' };
      case 'container.wait-completed':
        return { ...base, state: 'exited', exitCode: event.exitCode };
      default:
        return base;
    }
  });
}

function rowState(observation: ContainerObservation, previous: ContainerRow | undefined): RowState {
  const status = observation.status;
  // an op in flight keeps its spinner until the engine shows it has happened
  if (previous !== undefined) {
    if ((previous.state === 'creating' || previous.state === 'starting') && status === 'created') return previous.state;
    if (previous.state === 'stopping' && status === 'running') return 'stopping';
    if (previous.state === 'removing') return 'removing';
  }
  if (status === 'running' && observation.health === 'starting') return 'waiting';
  if (
    status === 'running' ||
    status === 'restarting' ||
    status === 'paused' ||
    status === 'created' ||
    status === 'exited'
  )
    return status;
  return observation.running ? 'running' : 'exited';
}

function onObserve(state: TuiState, event: Extract<TuiEvent, { kind: 'observe' }>): TuiState {
  const selectedName = state.rows[state.selected]?.name;
  const seen = new Map(event.containers.map((container) => [container.name, container]));
  const previous = new Map(state.rows.map((row) => [row.name, row]));
  const rows: ContainerRow[] = [];
  for (const observation of event.containers) {
    const before = previous.get(observation.name);
    const base = before ?? emptyRow(observation.name, observation.service, observation.replica);
    const sameRun = before !== undefined && before.id === observation.id && before.startedAt === observation.startedAt;
    let cpuPercent: number | undefined = sameRun ? base.cpuPercent : undefined;
    let cpuSample: ContainerRow['cpuSample'] = undefined;
    if (observation.cpuUsageNs !== undefined) {
      cpuSample = { usageNs: observation.cpuUsageNs, atMs: event.atMs };
      const last = sameRun ? base.cpuSample : undefined;
      if (last !== undefined && event.atMs > last.atMs && observation.cpuUsageNs >= last.usageNs) {
        cpuPercent = ((observation.cpuUsageNs - last.usageNs) / 1e6 / (event.atMs - last.atMs)) * 100;
      }
    }
    rows.push({
      ...base,
      id: observation.id,
      service: observation.service,
      replica: observation.replica,
      state: rowState(observation, before),
      health: observation.health,
      restarts: observation.restarts,
      exitCode: observation.running ? undefined : observation.exitCode,
      ports: [...observation.ports].sort((a, b) => a - b),
      startedAt: observation.running ? observation.startedAt : '',
      cpuPercent: observation.running ? cpuPercent : undefined,
      memoryBytes: observation.running ? observation.memoryBytes : undefined,
      cpuSample: observation.running ? cpuSample : undefined,
    });
  }
  // rows the plan announced but the engine does not have yet stay (creating); removed containers go
  for (const row of state.rows) {
    if (seen.has(row.name)) continue;
    if (row.id === '' && row.state !== 'pending') rows.push(row);
  }
  rows.sort(compareRows);
  return { ...state, rows, selected: reselect(rows, selectedName, state.selected) };
}

function onLogs(state: TuiState, lines: Extract<TuiEvent, { kind: 'logs' }>['lines']): TuiState {
  if (lines.length === 0) return state;
  let seq = state.nextSeq;
  const added = lines.map((line) => ({ ...line, seq: seq++ }));
  const all = state.logs.length + added.length;
  const logs =
    all <= state.logLimit
      ? [...state.logs, ...added]
      : [...state.logs.slice(Math.max(0, all - state.logLimit)), ...added.slice(-state.logLimit)];
  return { ...state, logs, nextSeq: seq };
}

function onPull(state: TuiState, event: Extract<ImageEvent, { kind: `pull.${string}` }>): TuiState {
  const index = state.pulls.findIndex((pull) => pull.image === event.image);
  const before: PullView = state.pulls[index] ?? {
    image: event.image,
    services: 'services' in event ? event.services : [],
    status: 'pulling',
    layers: [],
    message: undefined,
  };
  let after: PullView;
  switch (event.kind) {
    case 'pull.start':
      after = { ...before, services: event.services, status: 'pulling', message: undefined };
      break;
    case 'pull.progress': {
      const layer: LayerView = { id: event.layer, state: event.state, current: event.current, total: event.total };
      const at = before.layers.findIndex((existing) => existing.id === event.layer);
      const layers = at === -1 ? [...before.layers, layer] : before.layers.map((old, i) => (i === at ? layer : old));
      after = { ...before, layers };
      break;
    }
    case 'pull.done':
      after = {
        ...before,
        status: event.status,
        layers: before.layers.map((layer) =>
          layer.state === 'exists' ? layer : { ...layer, state: 'done', current: layer.total },
        ),
      };
      break;
    case 'pull.error':
      after = { ...before, status: 'error', message: event.message };
      break;
  }
  const pulls = index === -1 ? [...state.pulls, after] : state.pulls.map((pull, i) => (i === index ? after : pull));
  const next = { ...state, pulls };
  if (event.kind !== 'pull.error') return next;
  const text = `pull of ${event.image} (${event.services.join(', ')}) failed: ${event.message}`;
  return onLogs(next, [{ source: 'tsfig', service: '', stream: 'system', text }]);
}

function onBuild(state: TuiState, event: Extract<ImageEvent, { kind: `build.${string}` }>): TuiState {
  const index = state.builds.findIndex((build) => build.service === event.service);
  const before: BuildView = state.builds[index] ?? {
    service: event.service,
    image: 'image' in event ? event.image : '',
    status: 'building',
    step: 0,
    total: 0,
    text: '',
    stepsDone: 0,
    cachedSteps: 0,
    output: [],
    durationMs: undefined,
  };
  let after: BuildView;
  switch (event.kind) {
    case 'build.start':
      after = { ...before, image: event.image, status: 'building', step: 0, stepsDone: 0, cachedSteps: 0, output: [] };
      break;
    case 'build.step':
      // the output shown is the current step's
      after = { ...before, step: event.step, total: event.total, text: event.text, output: [] };
      break;
    case 'build.step-done':
      after = {
        ...before,
        stepsDone: Math.max(before.stepsDone, event.step),
        cachedSteps: before.cachedSteps + (event.cached ? 1 : 0),
      };
      break;
    case 'build.output': {
      const body = event.text.endsWith('\n') ? event.text.slice(0, -1) : event.text;
      const lines = body.split('\n').filter((line) => line.trim() !== '');
      after = { ...before, output: [...before.output, ...lines].slice(-BUILD_OUTPUT_LINES) };
      break;
    }
    case 'build.done':
      after = {
        ...before,
        status: 'done',
        stepsDone: event.steps,
        total: event.steps,
        cachedSteps: event.cachedSteps,
        durationMs: event.durationMs,
      };
      break;
  }
  const builds =
    index === -1 ? [...state.builds, after] : state.builds.map((build, i) => (i === index ? after : build));
  return { ...state, builds };
}

/** The plan's counts and ops in flight, from the op events. */
function onPlanOp(plan: PlanView | undefined, event: TsfigEvent): PlanView | undefined {
  if (plan === undefined) return undefined;
  switch (event.kind) {
    case 'op.start':
      return { ...plan, running: [...plan.running.filter((op) => op.id !== event.op.id), event.op] };
    case 'op.done':
    case 'op.error':
    case 'op.skipped': {
      const running = plan.running.filter((op) => op.id !== event.op.id);
      if (event.kind === 'op.done') return { ...plan, running, done: plan.done + 1 };
      if (event.kind === 'op.skipped') return { ...plan, running, skipped: plan.skipped + 1 };
      return event.bestEffort
        ? { ...plan, running, done: plan.done + 1 }
        : { ...plan, running, failed: plan.failed + 1 };
    }
    case 'plan.start':
    case 'plan.done':
    case 'warning':
    case 'note':
    case 'pull.start':
    case 'pull.progress':
    case 'pull.done':
    case 'pull.error':
    case 'build.start':
    case 'build.step':
    case 'build.step-done':
    case 'build.output':
    case 'build.done':
      return plan;
  }
}

/** The pure reducer: same state and event, same result; never does I/O. */
export function reduce(state: TuiState, event: TuiEvent): TuiState {
  switch (event.kind) {
    case 'pull.start':
    case 'pull.progress':
    case 'pull.done':
    case 'pull.error':
      return onPull(state, event);
    case 'build.start':
    case 'build.step':
    case 'build.step-done':
    case 'build.output':
    case 'build.done':
      return onBuild(state, event);
    case 'plan.start':
      return {
        ...state,
        project: event.project,
        // the stop or kill plan of a Ctrl-C (stackControl): the status keeps saying what Ctrl-C did and what the
        // next one does; the plan's own progress has its line
        status: state.stopping === undefined ? `Applying ${event.total} change(s)...` : state.status,
        plan: { total: event.total, done: 0, failed: 0, skipped: 0, running: [], finished: false },
      };
    case 'plan.done': {
      const counts = { done: event.done, failed: event.failed, skipped: event.skipped };
      const plan = state.plan === undefined ? undefined : { ...state.plan, ...counts, running: [], finished: true };
      return {
        ...state,
        plan: state.phase === 'attached' ? undefined : plan,
        status:
          state.stopping !== undefined
            ? state.status
            : event.ok
              ? `Applied ${event.done} change(s)`
              : `Failed: ${event.failed} error(s), ${event.skipped} skipped`,
      };
    }
    case 'op.start':
    case 'op.done':
    case 'op.error':
      return onOp({ ...state, plan: onPlanOp(state.plan, event) }, event);
    case 'op.skipped':
      return { ...state, plan: onPlanOp(state.plan, event) };
    case 'attached':
      return {
        ...state,
        phase: 'attached',
        pulls: state.pulls.filter((pull) => pull.status === 'pulling'),
        builds: state.builds.filter((build) => build.status === 'building'),
        plan: state.plan?.finished === false ? state.plan : undefined,
      };
    case 'warning':
      return onLogs({ ...state, status: `WARN ${event.message}` }, [
        { source: 'tsfig', service: '', stream: 'system', text: `WARN ${event.message}` },
      ]);
    case 'note':
      return onLogs(state, [{ source: 'tsfig', service: '', stream: 'system', text: `note: ${event.message}` }]);
    case 'observe':
      return onObserve(state, event);
    case 'logs':
      return onLogs(state, event.lines);
    case 'tick':
      return { ...state, tick: state.tick + 1 };
    case 'resize':
      return { ...state, columns: event.columns, terminalRows: event.rows };
    case 'select': {
      if (state.rows.length === 0) return state;
      const selected = Math.max(0, Math.min(state.rows.length - 1, state.selected + event.delta));
      return { ...state, selected };
    }
    case 'solo':
      return { ...state, solo: state.rows[state.selected]?.service };
    case 'all':
      return { ...state, solo: undefined, filter: '' };
    case 'filter.edit':
      return { ...state, filterDraft: event.text };
    case 'filter.commit':
      return { ...state, filter: state.filterDraft ?? state.filter, filterDraft: undefined };
    case 'help':
      return { ...state, help: !state.help };
    case 'status':
      return onLogs({ ...state, status: event.message }, [
        { source: 'tsfig', service: '', stream: 'system', text: event.message },
      ]);
    case 'stopping':
      return {
        ...state,
        stopping: event.force ? 'kill' : 'graceful',
        status: event.force ? 'Killing...' : 'Gracefully stopping... (press Ctrl+C again to force)',
      };
  }
}

/** The lines the log pane shows: solo and filter applied, the last `height` of them. */
export function visibleLogs(state: TuiState, height: number): LogLine[] {
  const filter = (state.filterDraft ?? state.filter).toLowerCase();
  const result: LogLine[] = [];
  for (let index = state.logs.length - 1; index >= 0 && result.length < height; index--) {
    const line = state.logs[index];
    if (line === undefined) continue;
    if (state.solo !== undefined && line.stream !== 'system' && line.service !== state.solo) continue;
    if (filter !== '' && !line.text.toLowerCase().includes(filter)) continue;
    result.push(line);
  }
  return result.reverse();
}

/** The row label used in log prefixes: `web-1`. */
export function rowLabel(row: { service: string; replica: number; name: string }): string {
  return row.replica > 0 ? `${row.service}-${row.replica}` : row.name;
}
