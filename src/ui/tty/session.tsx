/**
 * The TUI controller: owns the terminal (alternate screen, raw mode), polls the engine for container state and
 * cgroup stats, follows every container's log (across restarts and recreates), batches what it learns into the pure
 * reducer and redraws at a bounded rate. Every exit path (keys, signals, a crash) restores the terminal.
 *
 * A session has two phases. `open` takes the terminal and shows what `up` reports while it prepares the stack
 * (pulls, builds, the plan: events fed through `feed`); `attach` then follows the stack until detach, a stop or the
 * end. While preparing, Ctrl-C, q and SIGINT/SIGTERM/SIGHUP restore the terminal and end the process by that signal,
 * as `up` without the TUI does; d detaches as soon as the stack is up. While the session is open, lines written to
 * stderr (warnings, notes) go to the log pane instead of over the screen.
 */
import { writeSync } from 'node:fs';
import { constants } from 'node:os';
import { render, type Instance } from 'ink';
import type { Engine } from '../../../engine/index.js';
import type { TsfigEvent } from '../../events/events.js';
import type { Project } from '../../model/project.js';
import { observe } from '../../planner/observe.js';
import type { ObservedContainer } from '../../planner/observed.js';
import { App } from './app.js';
import { cleanInterrupts, tuiStatus } from './index.js';
import { readCgroupStats } from './cgroup.js';
import { formatDuration, supportsHyperlinks } from './format.js';
import { keyActions, type KeyInfo, type TuiCommand } from './keys.js';
import {
  initialState,
  reduce,
  rowLabel,
  type ContainerObservation,
  type LogLine,
  type TuiEvent,
  type TuiState,
} from './state.js';

/** Redraws at most this often (ms): ~20 fps. */
const FRAME_MS = 50;
const POLL_MS = 1000;
const ENTER_ALT = '\u001b[?1049h\u001b[H\u001b[2J';
const LEAVE_ALT = '\u001b[?25h\u001b[?1049l';

/** The terminal a session takes and how keys behave. */
export interface TuiScreenOptions {
  /** Shown in the footer until a plan names the project. */
  readonly projectName: string;
  /** `up`: q and Ctrl-C stop the stack; `logs`: they only leave. */
  readonly mode: 'up' | 'logs';
  readonly stdout?: NodeJS.WriteStream | undefined;
  readonly stdin?: NodeJS.ReadStream | undefined;
}

/**
 * How the TUI changes the stack: the compose verbs' plans (src/compose/attach.ts `stackControl`), so that a key or a
 * Ctrl-C stops, kills or restarts as `tsfig stop`, `kill` and `restart` do. The TUI itself only reads the engine.
 */
export interface StackControl {
  /** Every followed container: stopped (dependents first), or killed with SIGKILL. Failures are left to the view. */
  stopAll(kill: boolean): Promise<void>;
  stopService(service: string): Promise<void>;
  restartService(service: string): Promise<void>;
}

/** The stack the TUI follows once attached. */
export interface TuiTarget {
  readonly engine: Engine;
  readonly control: StackControl;
  readonly project: Project;
  /** Only these services (all when empty). */
  readonly services: readonly string[];
  /** Lines of history per container when following starts (all when undefined). */
  readonly tail?: number | undefined;
}

/** What the TUI shows and controls. */
export interface TuiOptions extends TuiTarget {
  /** `up`: q and Ctrl-C stop the stack; `logs`: they only leave. */
  readonly mode: 'up' | 'logs';
  readonly stdout?: NodeJS.WriteStream;
  readonly stdin?: NodeJS.ReadStream;
  /** Events that arrived before the TUI started (the plan that `up` applied). */
  readonly initialEvents?: readonly TsfigEvent[];
}

/** An open session: the terminal is taken; `attach` follows the stack, `close` gives the terminal back. */
export interface TuiHandle {
  feed(event: TsfigEvent): void;
  attach(target: TuiTarget): Promise<TuiResult>;
  close(): void;
}

/** How the TUI ended: `detached` leaves the stack running; the exit code is the CLI's. */
export interface TuiResult {
  readonly exitCode: number;
  readonly reason: 'detached' | 'stopped' | 'exited' | 'quit';
}

interface Follower {
  readonly controller: AbortController;
  lastTime: string;
  done: boolean;
}

class TuiSession {
  private state: TuiState;
  private readonly options: TuiScreenOptions;
  private target: TuiTarget | undefined;
  private readonly stdout: NodeJS.WriteStream;
  private readonly stdin: NodeJS.ReadStream;
  private instance: Instance | undefined;
  private renderTimer: NodeJS.Timeout | undefined;
  private lastRender = 0;
  private pendingLines: Omit<LogLine, 'seq'>[] = [];
  private readonly followers = new Map<string, Follower>();
  private readonly stoppedServices = new Set<string>();
  private finished: ((result: TuiResult) => void) | undefined;
  private interrupts = 0;
  private restored = false;
  private seenContainers = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly links: boolean;
  private polling = false;
  /** d pressed while preparing: detach as soon as `attach` is called. */
  private detachRequested = false;
  private releaseStderr: (() => void) | undefined;
  private readonly cleanups: (() => void)[] = [];

  constructor(options: TuiScreenOptions) {
    this.options = options;
    this.stdout = options.stdout ?? process.stdout;
    this.stdin = options.stdin ?? process.stdin;
    this.links = supportsHyperlinks(process.env);
    this.state = initialState(options.projectName, {
      columns: this.stdout.columns ?? 80,
      rows: this.stdout.rows ?? 24,
    });
  }

  private get stack(): TuiTarget {
    if (this.target === undefined) throw new Error('the TUI is not attached to a stack yet');
    return this.target;
  }

  dispatch = (event: TuiEvent): void => {
    this.state = reduce(this.state, event);
    this.scheduleRender();
  };

  private scheduleRender(): void {
    if (this.renderTimer !== undefined || this.restored) return;
    const wait = Math.max(0, FRAME_MS - (Date.now() - this.lastRender));
    this.renderTimer = setTimeout(() => {
      this.renderTimer = undefined;
      this.flush();
    }, wait);
  }

  private flush(): void {
    // a frame due after the terminal was given back would mount ink again (raw mode on, stdin held)
    if (this.restored) return;
    if (this.pendingLines.length > 0) {
      const lines = this.pendingLines;
      this.pendingLines = [];
      this.state = reduce(this.state, { kind: 'logs', lines });
    }
    this.lastRender = Date.now();
    this.instance?.rerender(this.element());
  }

  private element() {
    return (
      <App
        state={this.state}
        env={{ nowMs: Date.now(), links: this.links, mode: this.options.mode }}
        onKey={this.onKey}
        interactive={this.stdin.isTTY === true}
      />
    );
  }

  private onKey = (input: string, key: KeyInfo): void => {
    // keys typed faster than a read arrive as one chunk ("?j"): each character is a key press
    const chars = [...input];
    if (chars.length > 1 && key.ctrl !== true && !input.startsWith('\u001b')) {
      for (const char of chars) this.onKey(char, {});
      return;
    }
    for (const action of keyActions(this.state, input, key)) {
      if (action.kind === 'command') void this.command(action.command);
      else this.dispatch(action);
    }
  };

  private async command(command: TuiCommand): Promise<void> {
    if (this.target === undefined) {
      this.commandWhilePreparing(command);
      return;
    }
    switch (command) {
      case 'detach':
        this.finish({ exitCode: 0, reason: 'detached' });
        return;
      case 'quit':
        if (this.options.mode === 'logs') this.finish({ exitCode: 0, reason: 'quit' });
        else await this.stopStack(false, 0);
        return;
      case 'interrupt':
        if (this.options.mode === 'logs') this.finish({ exitCode: 130, reason: 'quit' });
        else await this.stopStack(this.interrupts > 0, 130);
        return;
      case 'restart':
      case 'stop':
        await this.serviceAction(command);
        return;
    }
  }

  /** Before the stack is up there is nothing to stop: leaving ends `up` as a Ctrl-C without the TUI would. */
  private commandWhilePreparing(command: TuiCommand): void {
    switch (command) {
      case 'detach':
        this.detachRequested = true;
        this.dispatch({ kind: 'status', message: 'Detaching once the stack is up...' });
        return;
      case 'quit':
      case 'interrupt':
        this.abortPreparing('SIGINT', true);
        return;
      case 'restart':
      case 'stop':
        this.dispatch({ kind: 'status', message: `the stack is not up yet: ${command} works once it is` });
        return;
    }
  }

  /** Gives the terminal back and ends the process by `signal`, as it would end without the TUI. */
  private abortPreparing(signal: NodeJS.Signals, fromKey = false): void {
    this.restore();
    this.uninstall();
    if (cleanInterrupts.owners > 0) {
      // pulls or builds stop themselves (their listener got the signal), say what they removed and what to do next,
      // and end the process once cleaned up
      if (fromKey) process.kill(process.pid, signal);
      return;
    }
    process.stderr.write(
      `${this.state.project === '' ? 'tsfig' : this.state.project}: up interrupted before the stack was up; ` +
        'what was already created is kept. ' +
        'Run tsfig up again to finish, or tsfig down to remove it.\n',
    );
    process.kill(process.pid, signal);
    // another listener of the signal would keep the process alive: end it with the code the signal gives
    setTimeout(() => process.exit(128 + (constants.signals[signal] ?? 2)), 200).unref();
  }

  private exitCode = 0;

  /** First call: graceful stop of every container; a second call kills them. The TUI ends when all have exited. */
  private async stopStack(kill: boolean, exitCode: number): Promise<void> {
    this.interrupts++;
    this.exitCode = exitCode;
    this.dispatch({ kind: 'stopping', force: kill });
    await this.stack.control.stopAll(kill).catch(() => undefined);
    await this.poll();
  }

  private async serviceAction(action: 'restart' | 'stop'): Promise<void> {
    const service = this.state.rows[this.state.selected]?.service;
    if (service === undefined) return;
    const { control } = this.stack;
    const started = Date.now();
    this.dispatch({ kind: 'status', message: `${action === 'stop' ? 'Stopping' : 'Restarting'} ${service}...` });
    if (action === 'stop') this.stoppedServices.add(service);
    else this.stoppedServices.delete(service);
    try {
      await (action === 'stop' ? control.stopService(service) : control.restartService(service));
      const verb = action === 'stop' ? 'Stopped' : 'Restarted';
      this.dispatch({ kind: 'status', message: `${verb} ${service} in ${formatDuration(Date.now() - started)}` });
    } catch (error) {
      this.dispatch({ kind: 'status', message: `${action} ${service} failed: ${(error as Error).message}` });
    }
    await this.poll();
  }

  private async containers(): Promise<ObservedContainer[]> {
    const { engine, project, services } = this.stack;
    const observed = await observe(engine, project.name, project);
    return observed.containers
      .filter((container) => !container.oneoff)
      .filter((container) => services.length === 0 || services.includes(container.service));
  }

  private readonly portCache = new Map<string, number[]>();

  private async observeOne(container: ObservedContainer): Promise<ContainerObservation> {
    const { engine } = this.stack;
    const state = await engine.containers.state(await engine.containers.get(container.id));
    let ports = this.portCache.get(container.id);
    if (ports === undefined) {
      ports = (await engine.containers.ports(container.id).catch(() => []))
        .filter((port) => port.proto === 'tcp')
        .map((port) => port.hostPort);
      this.portCache.set(container.id, ports);
    }
    const stats = state.running ? await readCgroupStats(engine.paths.cgroupParent, container.id) : undefined;
    return {
      id: container.id,
      name: container.name,
      service: container.service,
      replica: container.number,
      status: state.status,
      running: state.running,
      health: state.health?.status,
      restarts: state.restartCount,
      exitCode: state.exitCode,
      ports,
      startedAt: state.startedAt,
      cpuUsageNs: stats?.cpuUsageNs,
      memoryBytes: stats?.memoryBytes,
    };
  }

  /** One observation: rows, new log followers, and the end of an attached `up` when everything has exited. */
  private async poll(): Promise<void> {
    if (this.polling || this.restored || this.target === undefined) return;
    this.polling = true;
    try {
      const containers = await this.containers();
      const observations = await Promise.all(
        containers.map((container) => this.observeOne(container).catch(() => undefined)),
      );
      const present = observations.filter((o): o is ContainerObservation => o !== undefined);
      this.dispatch({ kind: 'observe', atMs: Date.now(), containers: present });
      for (const observation of present) this.follow(observation);
      if (present.length > 0) this.seenContainers = true;
      this.checkEnd(present);
    } catch (error) {
      this.dispatch({ kind: 'status', message: `cannot read the containers: ${(error as Error).message}` });
    } finally {
      this.polling = false;
    }
  }

  private checkEnd(present: readonly ContainerObservation[]): void {
    if (!this.seenContainers) return;
    const allExited = present.every((observation) => !observation.running);
    if (!allExited) return;
    const followersDone = [...this.followers.values()].every((follower) => follower.done);
    if (!followersDone) return;
    if (this.interrupts > 0) {
      this.finish({ exitCode: this.exitCode, reason: 'stopped' });
      return;
    }
    // everything exited on its own (not because `s` stopped it): attached `up` and `logs -f` end, as in plain mode
    const userStopped = present.some((observation) => this.stoppedServices.has(observation.service));
    if (!userStopped) this.finish({ exitCode: 0, reason: 'exited' });
  }

  /** Follows a container's log unless already followed; a restarted container resumes after its last line. */
  private follow(observation: ContainerObservation): void {
    const existing = this.followers.get(observation.id);
    if (existing !== undefined && !existing.done) return;
    if (existing !== undefined && !observation.running) return;
    const follower: Follower = { controller: new AbortController(), lastTime: existing?.lastTime ?? '', done: false };
    this.followers.set(observation.id, follower);
    const source = rowLabel({ service: observation.service, replica: observation.replica, name: observation.name });
    void (async () => {
      try {
        const { engine, tail } = this.stack;
        for await (const entry of engine.containers.logs(observation.id, {
          follow: true,
          ...(follower.lastTime !== '' ? { since: follower.lastTime } : {}),
          ...(existing === undefined && tail !== undefined ? { tail } : {}),
          signal: follower.controller.signal,
        })) {
          if (follower.lastTime !== '' && entry.time <= follower.lastTime && existing !== undefined) continue;
          follower.lastTime = entry.time;
          this.addLog(source, observation.service, entry.stream, entry.text);
        }
      } catch {
        // the container was removed (recreated): its successor gets its own follower
      } finally {
        follower.done = true;
      }
    })();
  }

  private addLog(source: string, service: string, stream: LogLine['stream'], text: string): void {
    const body = text.endsWith('\n') ? text.slice(0, -1) : text;
    for (const line of body.split('\n')) this.pendingLines.push({ source, service, stream, text: line });
    // beyond what the pane keeps, older pending lines could never be shown
    if (this.pendingLines.length > this.state.logLimit * 2) {
      this.pendingLines = this.pendingLines.slice(-this.state.logLimit);
    }
    this.scheduleRender();
  }

  private finish(result: TuiResult): void {
    const finished = this.finished;
    this.finished = undefined;
    finished?.(result);
  }

  /** Leaves the alternate screen, shows the cursor, leaves raw mode. Idempotent; safe in an `exit` handler. */
  restore = (): void => {
    if (this.restored) return;
    this.restored = true;
    this.releaseStderr?.();
    this.releaseStderr = undefined;
    try {
      this.instance?.unmount();
    } catch {
      // a crash inside ink must not keep the terminal broken
    }
    try {
      if (this.stdin.isTTY === true) this.stdin.setRawMode(false);
    } catch {
      // stdin already closed
    }
    try {
      writeSync((this.stdout as unknown as { fd?: number }).fd ?? 1, LEAVE_ALT);
    } catch {
      this.stdout.write(LEAVE_ALT);
    }
  };

  /** Lines written to stderr while the screen is ours go to the log pane (they would be drawn over it). */
  private captureStderr(): void {
    const stderr = process.stderr;
    // eslint-disable-next-line @typescript-eslint/unbound-method -- put back as it was, on the same object
    const original = stderr.write;
    let partial = '';
    const write = (chunk: unknown, encoding?: unknown, callback?: unknown): boolean => {
      const text =
        typeof chunk === 'string'
          ? chunk
          : Buffer.from(chunk as Uint8Array).toString(
              typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8',
            );
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) this.addLog('tsfig', '', 'system', line);
      const done = typeof encoding === 'function' ? encoding : callback;
      if (typeof done === 'function') process.nextTick(() => (done as () => void)());
      return true;
    };
    stderr.write = write;
    this.releaseStderr = () => {
      stderr.write = original;
      if (partial !== '') stderr.write(`${partial}\n`);
    };
  }

  /** Takes the terminal: alternate screen, raw mode, the first frame; signals and crashes restore it. */
  open(): void {
    const onSignal = (signal: NodeJS.Signals) => {
      if (this.target === undefined) this.abortPreparing(signal);
      else if (this.options.mode === 'logs') this.finish({ exitCode: 130, reason: 'quit' });
      else void this.stopStack(signal === 'SIGINT' && this.interrupts > 0, 130);
    };
    const onCrash = (error: unknown) => {
      this.restore();
      process.stderr.write(
        `internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
      process.exit(1);
    };
    const onResize = () => this.dispatch({ kind: 'resize', columns: this.stdout.columns, rows: this.stdout.rows });
    const handlers: [string, (value: NodeJS.Signals) => void][] = [
      ['SIGINT', onSignal],
      ['SIGTERM', onSignal],
      ['SIGHUP', onSignal],
      ['exit', this.restore],
      ['uncaughtException', onCrash],
      ['unhandledRejection', onCrash],
    ];
    for (const [event, handler] of handlers) process.on(event, handler);
    this.stdout.on('resize', onResize);
    this.cleanups.push(() => {
      for (const [event, handler] of handlers) process.off(event, handler);
      this.stdout.off('resize', onResize);
    });
    tuiStatus.connect((message) => this.dispatch({ kind: 'status', message }));
    this.cleanups.push(() => tuiStatus.connect(undefined));
    this.stdout.write(ENTER_ALT);
    this.captureStderr();
    this.instance = render(this.element(), {
      stdout: this.stdout,
      stdin: this.stdin,
      exitOnCtrlC: false,
      patchConsole: false,
      maxFps: 20,
      // only the lines that changed are rewritten (the status panel is mostly still while logs scroll)
      incrementalRendering: true,
    });
    this.timers.push(
      setInterval(() => {
        const { rows, pulls, builds, plan } = this.state;
        const busy =
          rows.some((row) => ['creating', 'starting', 'waiting', 'stopping'].includes(row.state)) ||
          pulls.some((pull) => pull.status === 'pulling') ||
          builds.some((build) => build.status === 'building') ||
          plan?.finished === false;
        if (busy) this.dispatch({ kind: 'tick' });
      }, 100),
    );
  }

  feed = (event: TsfigEvent): void => this.dispatch(event);

  /** Follows the stack until detach, a stop, or every container has exited; gives the terminal back. */
  async attach(target: TuiTarget): Promise<TuiResult> {
    this.target = target;
    this.state = { ...this.state, project: target.project.name };
    const done = new Promise<TuiResult>((resolve) => (this.finished = resolve));
    try {
      this.dispatch({ kind: 'attached' });
      if (this.detachRequested) return { exitCode: 0, reason: 'detached' };
      this.timers.push(setInterval(() => void this.poll(), POLL_MS));
      // uptime changes every second even when nothing else does
      this.timers.push(setInterval(() => this.scheduleRender(), 1000));
      await this.poll();
      return await done;
    } finally {
      this.close();
    }
  }

  /** Stops every timer and follower, gives the terminal back and removes the handlers. Idempotent. */
  close(): void {
    for (const timer of this.timers) clearInterval(timer);
    this.timers.length = 0;
    if (this.renderTimer !== undefined) clearTimeout(this.renderTimer);
    for (const follower of this.followers.values()) follower.controller.abort();
    this.restore();
    this.uninstall();
  }

  private uninstall(): void {
    for (const cleanup of this.cleanups.splice(0)) cleanup();
  }
}

/** Takes the terminal for `up` (pulls, builds and the plan show as they happen); `attach` follows the stack after. */
export function openTuiSession(options: TuiScreenOptions): TuiHandle {
  const session = new TuiSession(options);
  session.open();
  return {
    feed: session.feed,
    attach: async (target) => {
      const result = await session.attach(target);
      if (result.reason === 'detached') printDetached(target.project.name);
      return result;
    },
    close: () => session.close(),
  };
}

function printDetached(name: string): void {
  process.stderr.write(
    `Detached from ${name}; it keeps running. Follow it with: tsfig logs -f · stop it with: tsfig down\n`,
  );
}

/** Runs the TUI until detach, a stop, or every container has exited. Prints a one-line summary after leaving. */
export async function runTuiSession(options: TuiOptions): Promise<TuiResult> {
  const handle = openTuiSession({
    projectName: options.project.name,
    mode: options.mode,
    stdout: options.stdout,
    stdin: options.stdin,
  });
  for (const event of options.initialEvents ?? []) handle.feed(event);
  return handle.attach(options);
}
