/**
 * A ComposePort (src/compose/context.ts) that records every engine call instead of making it, over a fixed observed
 * state: what the compose verbs' unit tests run against (no root, no engine).
 */
import type { ComposeContext, ComposePort, ComposeTerminal } from '../../src/compose/context.js';
import { RecordingSink } from '../../src/events/events.js';
import type { Project } from '../../src/model/project.js';
import type { ObservedContainer, ObservedState } from '../../src/planner/observed.js';
import { TsfigError } from '../../src/errors.js';
import type { ArtifactPushSpec, ImageBuildSpec, ImageCommitSpec, Plan } from '../../src/planner/plan.js';

/** Also the context's terminal: followLogs and attachStdin are recorded in the same call list. */
export class RecordingPort implements ComposePort, ComposeTerminal {
  readonly engine = undefined;
  /** `method target`, in call order. */
  readonly calls: string[] = [];
  /** The exit code waitExit returns. */
  exitCode = 0;
  /** Locks taken, by project. */
  readonly locks: string[] = [];
  observed: ObservedState;

  constructor(observed: ObservedState) {
    this.observed = observed;
  }

  private record(method: string, target: string): Promise<void> {
    this.calls.push(`${method} ${target}`);
    return Promise.resolve();
  }

  observe(_project: Project): Promise<ObservedState> {
    return Promise.resolve(this.observed);
  }
  async lockProject<T>(project: string, fn: () => Promise<T>): Promise<T> {
    this.locks.push(project);
    return fn();
  }
  repair = () => Promise.resolve();
  preflight = (_plan: Plan) => Promise.resolve();
  holdAutoRemove<T>(id: string, fn: () => Promise<T>): Promise<T> {
    this.calls.push(`holdAutoRemove ${id}`);
    return fn();
  }
  waitExit = async (id: string) => {
    await this.record('waitExit', id);
    return this.exitCode;
  };
  /** What lastPulled answers: when each image was pulled (ms; never by default); the images asked, in order. */
  readonly pulled: Record<string, number> = {};
  readonly pulledAsked: string[] = [];
  lastPulled = (images: readonly string[]) => {
    this.pulledAsked.push(...images);
    return Promise.resolve(Object.fromEntries(images.map((image) => [image, this.pulled[image]])));
  };
  /** What volumeUsers answers: the containers using each volume (none by default). */
  readonly users: Record<string, string[]> = {};
  volumeUsers = (names: readonly string[]) =>
    Promise.resolve(Object.fromEntries(names.map((name) => [name, this.users[name] ?? []])));
  followLogs = (containers: readonly ObservedContainer[]) =>
    this.record('followLogs', containers.map((c) => c.name).join(','));
  attachStdin = (id: string) => {
    this.calls.push(`attachStdin ${id}`);
    return () => undefined;
  };
  /** The handler of onSignals while one is installed (a test calls it as a signal would). */
  signalHandler: ((signal: string) => void) | undefined;
  onSignals = (forward: (signal: string) => void) => {
    this.calls.push('onSignals');
    this.signalHandler = forward;
    return () => {
      this.calls.push('offSignals');
      this.signalHandler = undefined;
    };
  };

  createNetwork = (spec: { name: string }) => this.record('createNetwork', spec.name);
  removeNetwork = (spec: { name: string }) => this.record('removeNetwork', spec.name);
  createVolume = (spec: { name: string }) => this.record('createVolume', spec.name);
  removeVolume = (spec: { name: string }) => this.record('removeVolume', spec.name);
  createContainer = async (spec: { name: string }) => {
    await this.record('createContainer', spec.name);
    const id = `id-${spec.name}`;
    // the one-off is observed once created (attached run reads its logs)
    this.observed = {
      ...this.observed,
      containers: [...this.observed.containers, { ...placeholder, id, name: spec.name }],
    };
    return id;
  };
  startContainer = (spec: { container: string }) => this.record('startContainer', spec.container);
  stopContainer = (spec: { container: string }) => this.record('stopContainer', spec.container);
  removeContainer = (spec: { container: string }) => this.record('removeContainer', spec.container);
  waitHealthy = (spec: { container: string }) => this.record('waitHealthy', spec.container);
  waitCompleted = async (spec: { container: string }) => {
    await this.record('waitCompleted', spec.container);
    return 0;
  };
  waitRunning = (spec: { container: string }) => this.record('waitRunning', spec.container);
  killContainer = (spec: { container: string; signal: string }) =>
    this.record('killContainer', `${spec.container} ${spec.signal}`);
  pauseContainer = (spec: { container: string }, paused: boolean) =>
    this.record(paused ? 'pauseContainer' : 'unpauseContainer', spec.container);
  pullImage = (spec: { image: string }) => this.record('pullImage', spec.image);
  /** The specs of the builds, in order. */
  readonly builds: ImageBuildSpec[] = [];
  buildImage = (spec: ImageBuildSpec) => {
    this.builds.push(spec);
    return this.record('buildImage', spec.image);
  };
  removeImage = (spec: { image: string }) => this.record('removeImage', spec.image);
  /** References whose push fails (with an HTTP 401, as a registry that refuses). */
  readonly pushFailures = new Set<string>();
  pushImage = async (spec: { image: string }) => {
    await this.record('pushImage', spec.image);
    if (this.pushFailures.has(spec.image)) throw new TsfigError('runtime', `HTTP 401 pushing ${spec.image}`);
    return { digest: `sha256:${'1'.repeat(64)}` };
  };
  /** The artifacts pushed, in order. */
  readonly artifacts: ArtifactPushSpec[] = [];
  pushArtifact = async (spec: ArtifactPushSpec) => {
    this.artifacts.push(spec);
    await this.record('pushArtifact', spec.reference);
    if (this.pushFailures.has(spec.reference)) throw new TsfigError('runtime', `HTTP 401 pushing ${spec.reference}`);
    return { digest: `sha256:${'2'.repeat(64)}` };
  };
  /** The commits made, in order. */
  readonly commits: ImageCommitSpec[] = [];
  commitContainer = async (spec: ImageCommitSpec) => {
    this.commits.push(spec);
    await this.record('commitContainer', spec.container);
    return `sha256:${'3'.repeat(64)}`;
  };
  /** Exit codes of hooks, by container (post_start/pre_stop) or one-off name (pre_start); default 0. */
  readonly hookExitCodes = new Map<string, number>();
  runHook = async (spec: { container: string; phase: string }) => {
    await this.record(`runHook ${spec.phase}`, spec.container);
    return { exitCode: this.hookExitCodes.get(spec.container) ?? 0, output: 'hook output' };
  };
  /** The scripts each sync ran (in order), and the exit codes of syncs and execs by container; default 0. */
  readonly syncScripts: string[] = [];
  readonly syncExitCodes = new Map<string, number>();
  syncFiles = async (spec: { container: string; scripts: readonly string[] }) => {
    await this.record('syncFiles', spec.container);
    this.syncScripts.push(...spec.scripts);
    return { exitCode: this.syncExitCodes.get(spec.container) ?? 0, output: 'sync stderr' };
  };
  execInContainer = async (spec: { container: string; command: readonly string[] }) => {
    await this.record('execInContainer', `${spec.container} ${spec.command.join(' ')}`);
    return { exitCode: this.hookExitCodes.get(spec.container) ?? 0, output: 'exec output' };
  };
  runPreStart = async (spec: { create: { name: string } }) => {
    await this.record('runPreStart', spec.create.name);
    return { exitCode: this.hookExitCodes.get(spec.create.name) ?? 0, output: 'pre_start output' };
  };
}

const placeholder: ObservedContainer = {
  id: '',
  name: '',
  project: '',
  service: '',
  number: 1,
  oneoff: true,
  configHash: undefined,
  running: false,
  paused: false,
  status: 'created',
  exitCode: 0,
  imageId: '',
  labels: {},
  created: '2026-01-01T00:00:00.000Z',
  mounts: [],
};

/** Text written to a fake stream. */
export class Buffer {
  text = '';
  write(chunk: string): boolean {
    this.text += chunk;
    return true;
  }
}

/** A verb context over a recording port: events recorded, streams buffered, a fixed clock, an empty environment. */
export function recordingContext(observed: ObservedState): {
  ctx: ComposeContext;
  port: RecordingPort;
  events: RecordingSink;
  stdout: Buffer;
  stderr: Buffer;
} {
  const port = new RecordingPort(observed);
  const events = new RecordingSink();
  const stdout = new Buffer();
  const stderr = new Buffer();
  const ctx: ComposeContext = {
    port,
    terminal: port,
    events,
    stdout,
    stderr,
    clock: () => Date.parse('2026-12-07T00:00:00Z'),
    env: {},
    parallel: 1,
    interruptible: (_what, _hint, work) => work(new AbortController().signal),
  };
  return { ctx, port, events, stdout, stderr };
}
