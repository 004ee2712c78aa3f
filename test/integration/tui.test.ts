import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
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
}

/** `tsfig --progress tty <args>` in a 120x30 tmux pane on a fresh engine; torn down (down, cleanup) after the test. */
async function tuiInTmux(t: TestContext, name: string, yaml: string, args: readonly string[]): Promise<TuiTerminal> {
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
  // the script runs the CLI, then reports its exit code and keeps the pane open for inspection
  const env = ['TSFIG_ROOT', 'TSFIG_RUN_ROOT', 'TSFIG_DNS_FORWARD', 'PATH']
    .map((variable) => `export ${variable}=${shellQuote(te.env[variable] ?? '')}`)
    .join('\n');
  const cli = [process.execPath, path.join(REPO, 'bin', 'tsfig.js'), '--progress', 'tty', ...args].map(shellQuote);
  const script = path.join(te.dir, `run-${name}.sh`);
  await writeFile(
    script,
    `${env}\nunset CI\ncd ${shellQuote(dir)}\n${cli.join(' ')}\necho "TUI-EXIT:$?"\nexec sleep 3600\n`,
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
  };
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
