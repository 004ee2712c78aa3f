/**
 * Runs a plan: each op starts once all of its dependencies have finished, with bounded concurrency, and the first
 * failure aborts the rest (unless the op is bestEffort). No decisions are made here: every choice is in the plan,
 * and `reason`/`group` are never read.
 */
import PQueue from 'p-queue';
import { TsfigError } from '../errors.js';
import type { EventSink, OpEventRef } from '../events/events.js';
import { OpKind, type Operation, type Plan } from '../planner/plan.js';
import type { ExecutorPort } from './port.js';

/** Engine calls in flight at once when the caller does not say (`--parallel`). */
export const DEFAULT_PARALLEL = 16;

export interface ExecuteOptions {
  /** Maximum ops running at once. @default DEFAULT_PARALLEL */
  readonly parallel?: number;
  /** Aborts the run (Ctrl-C): nothing new starts and running engine calls receive the signal. */
  readonly signal?: AbortSignal;
}

export interface OpFailure {
  readonly id: number;
  readonly kind: Operation['kind'];
  readonly resource: string;
  readonly error: unknown;
  readonly bestEffort: boolean;
}

export interface ExecuteResult {
  /** Every op that was not bestEffort succeeded and nothing was interrupted. */
  readonly ok: boolean;
  /** Ids of the ops that succeeded, in completion order. */
  readonly done: readonly number[];
  /** Failures in the order they happened, bestEffort ones included. */
  readonly failed: readonly OpFailure[];
  /** Ids of the ops that never started, in plan order. */
  readonly skipped: readonly number[];
  /** The first failure that aborted the plan (or the abort reason after an interrupt); rethrow it to report it. */
  readonly error: unknown;
  /** True when `options.signal` aborted the run. */
  readonly interrupted: boolean;
  /** Ids of the containers created, by name. */
  readonly containerIds: Readonly<Record<string, string>>;
  /** Ids of the images committed (`image.commit`), by container name. */
  readonly imageIds: Readonly<Record<string, string>>;
}

/** A bug: a plan with an op kind this executor does not know. */
function assertNever(value: never): never {
  throw new TsfigError('internal', `unknown operation kind ${JSON.stringify((value as { kind?: unknown }).kind)}`);
}

function targetOf(op: Operation): string {
  if ('name' in op.spec) return op.spec.name;
  if (op.kind === OpKind.ArtifactPush) return op.spec.reference;
  return 'image' in op.spec ? op.spec.image : op.resource;
}

function refOf(op: Operation): OpEventRef {
  return { id: op.id, kind: op.kind, resource: op.resource, target: targetOf(op), reason: op.reason };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

interface OpOutcome {
  readonly containerId?: string;
  readonly exitCode?: number;
  readonly digest?: string;
  readonly imageId?: string;
}

/** A hook's non-zero exit, named with its exit code and the end of its output (stderr first), as compose says it. */
function hookFailure(what: string, service: string, index: number, exitCode: number, output: string): TsfigError {
  const tail = output.trim().split('\n').slice(-10).join('\n').slice(-2048);
  const message = `service "${service}" ${what} #${index + 1} exited with status ${exitCode}`;
  return new TsfigError('runtime', tail === '' ? message : `${message}: ${tail}`);
}

/** The one engine call an op stands for. */
async function runOp(op: Operation, port: ExecutorPort, signal: AbortSignal): Promise<OpOutcome> {
  switch (op.kind) {
    case OpKind.NetworkCreate:
      await port.createNetwork(op.spec, signal);
      return {};
    case OpKind.NetworkRemove:
      await port.removeNetwork(op.spec, signal);
      return {};
    case OpKind.VolumeCreate:
      await port.createVolume(op.spec, signal);
      return {};
    case OpKind.VolumeRemove:
      await port.removeVolume(op.spec, signal);
      return {};
    case OpKind.ContainerCreate:
      return { containerId: await port.createContainer(op.spec, signal) };
    case OpKind.ContainerStart:
      await port.startContainer(op.spec, signal);
      return {};
    case OpKind.ContainerStop:
      await port.stopContainer(op.spec, signal);
      return {};
    case OpKind.ContainerRemove:
      await port.removeContainer(op.spec, signal);
      return {};
    case OpKind.ContainerWaitHealthy:
      await port.waitHealthy(op.spec, signal);
      return {};
    case OpKind.ContainerWaitCompleted: {
      const exitCode = await port.waitCompleted(op.spec, signal);
      if (exitCode !== 0) {
        throw new TsfigError('runtime', `container ${op.spec.name} didn't complete successfully: exit ${exitCode}`);
      }
      return { exitCode };
    }
    case OpKind.ContainerWaitRunning:
      await port.waitRunning(op.spec, signal);
      return {};
    case OpKind.ContainerKill:
      await port.killContainer(op.spec, signal);
      return {};
    case OpKind.ContainerPause:
      await port.pauseContainer(op.spec, true, signal);
      return {};
    case OpKind.ContainerUnpause:
      await port.pauseContainer(op.spec, false, signal);
      return {};
    case OpKind.ImagePull:
      await port.pullImage(op.spec, signal);
      return {};
    case OpKind.ImageBuild:
      await port.buildImage(op.spec, signal);
      return {};
    case OpKind.ImageRemove:
      await port.removeImage(op.spec, signal);
      return {};
    case OpKind.ImagePush:
      return { digest: (await port.pushImage(op.spec, signal)).digest };
    case OpKind.ArtifactPush:
      return { digest: (await port.pushArtifact(op.spec, signal)).digest };
    case OpKind.ImageCommit:
      return { imageId: await port.commitContainer(op.spec, signal) };
    case OpKind.ContainerHook: {
      const { exitCode, output } = await port.runHook(op.spec, signal);
      if (exitCode !== 0) throw hookFailure(`${op.spec.phase} hook`, op.spec.service, op.spec.index, exitCode, output);
      return { exitCode };
    }
    case OpKind.ContainerPreStart: {
      const { exitCode, output } = await port.runPreStart(op.spec, signal);
      if (exitCode !== 0) throw hookFailure('pre_start hook', op.spec.service, op.spec.index, exitCode, output);
      return { exitCode };
    }
    case OpKind.ContainerSync: {
      const { exitCode, output } = await port.syncFiles(op.spec, signal);
      if (exitCode !== 0) {
        const detail = output.trim();
        throw new TsfigError(
          'runtime',
          `sync into ${op.spec.name} failed (exit ${exitCode})${detail === '' ? '' : `: ${detail}`}`,
          { hint: 'a sync needs sh, printf, mkdir, mv, chmod, rm and ln in the image (busybox or coreutils)' },
        );
      }
      return { exitCode };
    }
    case OpKind.ContainerExec: {
      const { exitCode } = await port.execInContainer(op.spec, signal);
      if (exitCode !== 0) throw new TsfigError('runtime', `exec in ${op.spec.name} exited with ${exitCode}`);
      return { exitCode };
    }
    default:
      return assertNever(op);
  }
}

/** Refuses plans this executor cannot run safely: wrong version, duplicate ids, forward or unknown dependencies. */
function checkPlan(plan: Plan): void {
  if (plan.version !== 1) {
    throw new TsfigError('internal', `unsupported plan version ${String(plan.version)}`, {
      hint: 'make the plan again with this version of tsfig',
    });
  }
  const seen = new Set<number>();
  for (const op of plan.operations) {
    if (seen.has(op.id)) throw new TsfigError('internal', `plan has two operations #${op.id}`);
    for (const dep of op.dependsOn) {
      if (!seen.has(dep))
        throw new TsfigError('internal', `operation #${op.id} depends on #${dep}, which is not before it`);
    }
    seen.add(op.id);
  }
}

/**
 * Executes `plan` through `port`, reporting progress to `sink`. Never throws for op failures: see the result.
 * `plan.warnings` are the caller's to show (they matter for dry runs and empty plans too); they are not re-emitted.
 */
export async function executePlan(
  plan: Plan,
  port: ExecutorPort,
  sink: EventSink,
  options: ExecuteOptions = {},
): Promise<ExecuteResult> {
  checkPlan(plan);
  const controller = new AbortController();
  const external = options.signal;
  let interrupted = false;
  const onExternalAbort = (): void => {
    interrupted = true;
    controller.abort(external?.reason);
  };
  if (external?.aborted === true) onExternalAbort();
  else external?.addEventListener('abort', onExternalAbort, { once: true });

  const byId = new Map(plan.operations.map((op) => [op.id, op]));
  const waitingOn = new Map(plan.operations.map((op) => [op.id, op.dependsOn.length]));
  const dependents = new Map<number, number[]>();
  for (const op of plan.operations) {
    for (const dep of op.dependsOn) dependents.set(dep, [...(dependents.get(dep) ?? []), op.id]);
  }
  const started = new Set<number>();
  const done: number[] = [];
  const failed: OpFailure[] = [];
  const containerIds: Record<string, string> = {};
  const imageIds: Record<string, string> = {};
  let firstError: unknown;
  let flushFailed = false;
  const queue = new PQueue({ concurrency: Math.max(1, options.parallel ?? DEFAULT_PARALLEL) });

  const release = (op: Operation): void => {
    for (const id of dependents.get(op.id) ?? []) {
      const left = (waitingOn.get(id) ?? 0) - 1;
      waitingOn.set(id, left);
      if (left === 0) schedule(id);
    }
  };

  const abortPlan = (error: unknown): void => {
    if (firstError === undefined) firstError = error;
    controller.abort(error);
    queue.clear();
  };

  const run = async (op: Operation): Promise<void> => {
    if (controller.signal.aborted) return;
    started.add(op.id);
    sink.emit({ kind: 'op.start', op: refOf(op) });
    try {
      const outcome = await runOp(op, port, controller.signal);
      if (outcome.containerId !== undefined && op.kind === OpKind.ContainerCreate) {
        containerIds[op.spec.name] = outcome.containerId;
      }
      if (outcome.imageId !== undefined && op.kind === OpKind.ImageCommit) imageIds[op.spec.name] = outcome.imageId;
      done.push(op.id);
      sink.emit({ kind: 'op.done', op: refOf(op), ...outcome });
      release(op);
    } catch (error) {
      const bestEffort = op.bestEffort === true;
      failed.push({ id: op.id, kind: op.kind, resource: op.resource, error, bestEffort });
      sink.emit({ kind: 'op.error', op: refOf(op), message: messageOf(error), error, bestEffort });
      if (bestEffort && !controller.signal.aborted) release(op);
      else abortPlan(error);
    }
  };

  function schedule(id: number): void {
    const op = byId.get(id);
    if (op === undefined || controller.signal.aborted) return;
    void queue.add(() => run(op));
  }

  sink.emit({ kind: 'plan.start', project: plan.project, total: plan.operations.length });
  for (const op of plan.operations) if (op.dependsOn.length === 0) schedule(op.id);
  await queue.onIdle();
  external?.removeEventListener('abort', onExternalAbort);
  if (port.flush !== undefined) {
    try {
      await port.flush();
    } catch (error) {
      if (firstError === undefined) firstError = error;
      flushFailed = true;
    }
  }

  const skipped = plan.operations.filter((op) => !started.has(op.id)).map((op) => op.id);
  for (const id of skipped) {
    const op = byId.get(id);
    if (op !== undefined) sink.emit({ kind: 'op.skipped', op: refOf(op) });
  }
  if (interrupted && firstError === undefined) firstError = external?.reason;
  const ok = !interrupted && !flushFailed && failed.every((failure) => failure.bestEffort) && skipped.length === 0;
  sink.emit({
    kind: 'plan.done',
    project: plan.project,
    ok,
    done: done.length,
    failed: failed.length,
    skipped: skipped.length,
  });
  return { ok, done, failed, skipped, error: firstError, interrupted, containerIds, imageIds };
}
