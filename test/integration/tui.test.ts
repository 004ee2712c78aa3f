import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { eventually, makeTestEngine, REPO, skipUnlessRoot, type TestEngine } from '../helpers/engine.js';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}

/** A tmux server of its own (`-S`, a socket in the test's temp dir), so the test never touches the user's sessions. */
function tmux(socket: string, ...args: string[]): string {
  return execFileSync('tmux', ['-S', socket, ...args], { encoding: 'utf8' });
}

const shellQuote = (value: string) => `'${value.replace(/'/g, `'\\''`)}'`;

interface TuiTerminal {
  readonly te: TestEngine;
  readonly dir: string;
  /** The visible screen as text. */
  capture(): string;
  keys(...keys: string[]): void;
  resize(columns: number, rows: number): void;
  /** tmux's `#{alternate_on} #{cursor_flag}`: `0 1` is the main screen with a visible cursor. */
  modes(): string;
  /** Polls the screen until `check` returns a value; the error shows the screen. */
  waitFor<T>(what: string, check: (screen: string) => T | undefined, timeoutMs?: number): Promise<T>;
  /** Sends a signal to the CLI (the child of the pane's shell). */
  signal(signal: NodeJS.Signals): void;
}

interface TuiTerminalOptions {
  /** Files written into the project directory before the CLI starts (`app/Dockerfile`). */
  readonly files?: Readonly<Record<string, string>>;
  /** node options before the CLI's script (`--import hook.mjs`). */
  readonly nodeArgs?: readonly string[];
}

/** The terminal modes `stty -a` reports in the pane after the CLI ended: `icanon echo isig` when cooked. */
const STTY_LINE = /STTY:((?:-?(?:icanon|echo|isig) ?)+)/;

/**
 * `tsfig --progress tty <args>` in a 120x30 tmux pane on a fresh engine; torn down (down, cleanup) after the test.
 * After the CLI ends the pane shows `TUI-EXIT:<code>` and `STTY:<modes>` (what the terminal was left in).
 */
async function tuiInTmux(
  t: TestContext,
  name: string,
  yaml: string,
  args: readonly string[],
  options: TuiTerminalOptions = {},
): Promise<TuiTerminal> {
  const te = await makeTestEngine();
  const socket = path.join(te.dir, `tmux-${name}.sock`);
  const dir = path.join(te.dir, name);
  t.after(async () => {
    try {
      tmux(socket, 'kill-server');
    } catch {
      // the server was not started or is gone
    }
    await te.cli(['down', '-t', '1'], { cwd: dir }).catch(() => undefined);
    await te.cleanup();
  });
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'tsfig.yml'), yaml);
  for (const [file, content] of Object.entries(options.files ?? {})) {
    await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await writeFile(path.join(dir, file), content);
  }
  // the script runs the CLI, then reports its exit code and keeps the pane open for inspection
  const env = ['TSFIG_ROOT', 'TSFIG_RUN_ROOT', 'TSFIG_DNS_FORWARD', 'PATH']
    .map((variable) => `export ${variable}=${shellQuote(te.env[variable] ?? '')}`)
    .join('\n');
  const cli = [
    process.execPath,
    ...(options.nodeArgs ?? []),
    path.join(REPO, 'bin', 'tsfig.js'),
    '--progress',
    'tty',
    ...args,
  ].map(shellQuote);
  const script = path.join(te.dir, `run-${name}.sh`);
  const stty = `echo "STTY:$(stty -a | tr ' ;' '\\n\\n' | grep -Ex -- '-?(icanon|echo|isig)' | tr '\\n' ' ')"`;
  await writeFile(
    script,
    `${env}\nunset CI\ncd ${shellQuote(dir)}\n${cli.join(' ')}\necho "TUI-EXIT:$?"\n${stty}\nexec sleep 3600\n`,
  );
  tmux(socket, 'new-session', '-d', '-s', 'tui', '-x', '120', '-y', '30', `sh ${shellQuote(script)}`);
  const capture = () => tmux(socket, 'capture-pane', '-p', '-t', 'tui');
  return {
    te,
    dir,
    capture,
    keys: (...keys) => void tmux(socket, 'send-keys', '-t', 'tui', ...keys),
    resize: (columns, rows) =>
      void tmux(socket, 'resize-window', '-t', 'tui', '-x', String(columns), '-y', String(rows)),
    modes: () => tmux(socket, 'display-message', '-p', '-t', 'tui', '#{alternate_on} #{cursor_flag}').trim(),
    waitFor: (what, check, timeoutMs = 60_000) =>
      eventually(() => check(capture()), timeoutMs).catch((error: unknown) => {
        throw new Error(`${what}; screen:\n${capture()}`, { cause: error });
      }),
    signal: (signal) => {
      const shell = tmux(socket, 'display-message', '-p', '-t', 'tui', '#{pane_pid}').trim();
      const children = readFileSync(`/proc/${shell}/task/${shell}/children`, 'utf8').trim().split(/\s+/);
      const cli = children.find((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('tsfig.js'));
      assert.ok(cli !== undefined, `the CLI is not a child of the pane's shell ${shell}`);
      process.kill(Number(cli), signal);
    },
  };
}

/** After the CLI ended: its exit code, and the terminal on the main screen, cursor shown, not in raw mode. */
async function assertRestored(term: TuiTerminal, exitCode: number): Promise<string> {
  const after = await term.waitFor('the CLI did not end', (text) => (STTY_LINE.test(text) ? text : undefined), 60_000);
  assert.match(after, new RegExp(`TUI-EXIT:${exitCode}\\b`));
  assert.equal(term.modes(), '0 1', 'the terminal is back on the main screen with a visible cursor');
  const modes = (STTY_LINE.exec(after)?.[1] ?? '').trim().split(' ').sort();
  assert.deepEqual(modes, ['echo', 'icanon', 'isig'], 'the terminal is out of raw mode');
  return after;
}

async function psStates(term: TuiTerminal): Promise<string[]> {
  const ps = await term.te.cli(['ps', '-a', '--format', 'json'], { cwd: term.dir });
  assert.equal(ps.code, 0, ps.stderr);
  return ps.stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { Service: string; State: string })
    .map((row) => `${row.Service}:${row.State}`)
    .sort();
}

test('tsfig up in a terminal shows the TUI; d detaches, restores the terminal and leaves the stack running', async (t) => {
  if (skipUnlessRoot(t)) return;
  const port = await freePort();
  const term = await tuiInTmux(
    t,
    'tuiapp',
    `services:
  web:
    image: tsfig/busybox:latest
    command: ["sh", "-c", "i=0; while true; do echo web tick $$i; i=$$((i+1)); sleep 1; done"]
    init: true
    ports: ["127.0.0.1:${port}:80"]
  worker:
    image: tsfig/busybox:latest
    command: ["sh", "-c", "echo worker says hello; exec sleep 600"]
    init: true
`,
    ['up'],
  );
  const screen = await term.waitFor(
    'the TUI never showed both running rows and their logs',
    (text) => {
      const rows = text.split('\n');
      const web = rows.some((row) => row.includes('web-1') && row.includes('running'));
      const worker = rows.some((row) => row.includes('worker-1') && row.includes('running'));
      return web && worker && text.includes('worker says hello') && /web tick \d/.test(text) ? text : undefined;
    },
    90_000,
  );
  t.diagnostic(`screen:\n${screen}`);
  assert.match(screen, /SERVICE\s+STATE/);
  assert.match(screen, new RegExp(`http://127\\.0\\.0\\.1:${port}`));
  assert.equal(term.modes().split(' ')[0], '1', 'the TUI runs on the alternate screen');

  // ? shows the help, j moves the selection
  term.keys('?');
  await term.waitFor('? did not show the help', (text) =>
    text.includes('detach: leave the stack running') ? true : undefined,
  );
  term.keys('?', 'j');
  await term.waitFor('j did not select worker-1', (text) => (/›worker-1/.test(text) ? true : undefined));

  // r restarts the selected service; its log keeps being followed across the restart
  term.keys('r');
  await term.waitFor('r did not restart worker', (text) =>
    text.includes('Restarted worker in') && text.split('worker says hello').length - 1 >= 2 ? true : undefined,
  );

  // the layout follows the terminal's size
  term.resize(90, 24);
  await term.waitFor('the TUI did not follow the resize', (text) => {
    const separator = text.split('\n').find((line) => line.startsWith('─'));
    return separator?.length === 90 ? true : undefined;
  });

  term.keys('d');
  const after = await term.waitFor(
    'd did not detach',
    (text) => (text.includes('TUI-EXIT:') ? text : undefined),
    30_000,
  );
  t.diagnostic(`after detach:\n${after}`);
  assert.match(after, /TUI-EXIT:0/);
  assert.match(after, /Detached from tuiapp/);
  assert.equal(term.modes(), '0 1', 'the terminal is back on the main screen with a visible cursor');
  assert.deepEqual(await psStates(term), ['web:running', 'worker:running']);
});

test('Ctrl-C in the TUI stops the stack gracefully; a second Ctrl-C kills what ignores SIGTERM', async (t) => {
  if (skipUnlessRoot(t)) return;
  const term = await tuiInTmux(
    t,
    'stubborn',
    `services:
  stubborn:
    image: tsfig/busybox:latest
    command: ["sh", "-c", "trap '' TERM; while true; do echo still here; sleep 1; done"]
    stop_grace_period: 5m
`,
    ['up'],
  );
  await term.waitFor(
    'the TUI never showed the running row',
    (text) => (/stubborn-1.*running/.test(text) && text.includes('still here') ? true : undefined),
    90_000,
  );
  term.keys('C-c');
  await term.waitFor('the first Ctrl-C did not start a graceful stop', (text) =>
    text.includes('Gracefully stopping') ? true : undefined,
  );
  assert.deepEqual(await psStates(term), ['stubborn:running'], 'SIGTERM is ignored: still running');
  term.keys('C-c');
  const after = await term.waitFor('the second Ctrl-C did not end the TUI', (text) =>
    text.includes('TUI-EXIT:') ? text : undefined,
  );
  assert.match(after, /TUI-EXIT:130/);
  assert.equal(term.modes(), '0 1', 'the terminal is back on the main screen with a visible cursor');
  assert.deepEqual(await psStates(term), ['stubborn:exited']);
});

const BUILT = `services:
  app:
    build: ./app
    command: ["sh", "-c", "echo app is up; exec sleep 600"]
    init: true
`;

test('attached up with a build: service shows the build steps and their output in the TUI while they run', async (t) => {
  if (skipUnlessRoot(t)) return;
  const term = await tuiInTmux(t, 'tuibuild', BUILT, ['up'], {
    files: {
      'app/Dockerfile': [
        'FROM tsfig/busybox:latest',
        'ENV GREETING=hello',
        'RUN for i in 1 2 3 4 5 6; do echo compiling part $i; sleep 0.4; done',
        'RUN echo second run step',
        '',
      ].join('\n'),
    },
  });
  const building = await term.waitFor(
    'the TUI never showed the RUN step with its output while it ran',
    (text) => (/\[3\/4\] RUN for i in/.test(text) && /│ compiling part [2-6]/.test(text) ? text : undefined),
    60_000,
  );
  t.diagnostic(`while building:\n${building}`);
  assert.match(building, /Building app \[3\/4\] RUN for i in 1 2 3 4 5 6/);
  assert.match(building, /█+░+ 2\/4 steps/);
  assert.match(building, /preparing\.\.\./, 'no container yet');
  assert.equal(term.modes().split(' ')[0], '1', 'the TUI runs on the alternate screen from the build on');
  const running = await term.waitFor(
    'the TUI never showed the built service running',
    (text) => (/app-1\s+running/.test(text) && text.includes('app is up') ? text : undefined),
    60_000,
  );
  assert.doesNotMatch(running, /Building app/, 'the finished build leaves the screen once the stack runs');
  term.keys('d');
  await assertRestored(term, 0);
});

/** A preload (`node --import`) that throws from a timer once the TUI shows a running row: a crash the CLI never saw. */
const CRASH_HOOK = `
const write = process.stdout.write.bind(process.stdout);
let armed = false;
process.stdout.write = (chunk, ...rest) => {
  if (!armed && String(chunk).includes('running')) {
    armed = true;
    setTimeout(() => { throw new Error('crash injected by the test'); }, 300);
  }
  return write(chunk, ...rest);
};
`;

const SLEEPER = `services:
  sleeper:
    image: tsfig/busybox:latest
    command: ["sh", "-c", "echo sleeper ready; exec sleep 600"]
    init: true
`;

test('an uncaught exception inside the TUI session leaves the terminal clean and says it is a bug', async (t) => {
  if (skipUnlessRoot(t)) return;
  const term = await tuiInTmux(t, 'tuicrash', SLEEPER, ['up'], {
    files: { 'crash-hook.mjs': CRASH_HOOK },
    nodeArgs: ['--import', './crash-hook.mjs'],
  });
  const after = await assertRestored(term, 1);
  t.diagnostic(`after the crash:\n${after}`);
  assert.match(after, /internal error: Error: crash injected by the test/);
});

test('SIGTERM to an attached up in the TUI stops the stack and leaves the terminal clean', async (t) => {
  if (skipUnlessRoot(t)) return;
  const term = await tuiInTmux(t, 'tuiterm', SLEEPER, ['up']);
  await term.waitFor(
    'the TUI never showed the running row',
    (text) => (/sleeper-1\s+running/.test(text) && text.includes('sleeper ready') ? text : undefined),
    60_000,
  );
  term.signal('SIGTERM');
  await assertRestored(term, 130);
  assert.deepEqual(await psStates(term), ['sleeper:exited']);
});

test('SIGTERM while up builds in the TUI ends it by that signal and leaves the terminal clean', async (t) => {
  if (skipUnlessRoot(t)) return;
  const term = await tuiInTmux(t, 'tuitermbuild', BUILT, ['up'], {
    files: { 'app/Dockerfile': 'FROM tsfig/busybox:latest\nRUN echo waiting; sleep 20\n' },
  });
  await term.waitFor('the TUI never showed the build', (text) =>
    /Building app \[2\/2\] RUN echo waiting/.test(text) ? true : undefined,
  );
  term.signal('SIGTERM');
  const after = await assertRestored(term, 143);
  // One account of what happened, from the interrupted build (the TUI adds none of its own: it said "kept" before)
  assert.match(after, /error: up was interrupted \(SIGTERM\); what it had started was removed/);
  assert.match(after, /hint: run tsfig up again to continue/);
  assert.doesNotMatch(after, /is kept/);
});
