import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { eventually, makeTestEngine, REPO, skipUnlessRoot } from '../helpers/engine.js';

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

/** A tmux server of its own (`-L`), so the test never touches the user's sessions. */
function tmux(socket: string, ...args: string[]): string {
  return execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
}

const shellQuote = (value: string) => `'${value.replace(/'/g, `'\\''`)}'`;

test('tsfig up in a terminal shows the TUI; d detaches, restores the terminal and leaves the stack running', async (t) => {
  if (skipUnlessRoot(t)) return;
  const te = await makeTestEngine();
  const socket = `tsfig-tui-${process.pid}`;
  const dir = path.join(te.dir, 'tuiapp');
  t.after(async () => {
    try {
      tmux(socket, 'kill-server');
    } catch {
      // the server was not started or is gone
    }
    await te.cli(['down', '-t', '1'], { cwd: dir }).catch(() => undefined);
    await te.cleanup();
  });
  const port = await freePort();
  await mkdir(dir, { recursive: true });
  await writeFile(
    path.join(dir, 'tsfig.yml'),
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
  );
  // the script runs the CLI, then reports its exit code and keeps the pane open for inspection
  const env = ['TSFIG_ROOT', 'TSFIG_RUN_ROOT', 'TSFIG_DNS_FORWARD', 'PATH']
    .map((name) => `export ${name}=${shellQuote(te.env[name] ?? '')}`)
    .join('\n');
  const script = path.join(te.dir, 'run-tui.sh');
  await writeFile(
    script,
    `${env}\nunset CI\ncd ${shellQuote(dir)}\n${shellQuote(process.execPath)} ${shellQuote(path.join(REPO, 'bin', 'tsfig.js'))} --progress tty up\necho "TUI-EXIT:$?"\nexec sleep 3600\n`,
  );
  tmux(socket, 'new-session', '-d', '-s', 'tui', '-x', '120', '-y', '30', `sh ${shellQuote(script)}`);
  const capture = () => tmux(socket, 'capture-pane', '-p', '-t', 'tui');
  const screen = await eventually(() => {
    const text = capture();
    const rows = text.split('\n');
    const web = rows.find((row) => row.includes('web-1') && row.includes('running'));
    const worker = rows.find((row) => row.includes('worker-1') && row.includes('running'));
    return web !== undefined && worker !== undefined && text.includes('worker says hello') && /web tick \d/.test(text)
      ? text
      : undefined;
  }, 90_000).catch((error: unknown) => {
    throw new Error(`the TUI never showed both running rows and their logs; screen:\n${capture()}`, { cause: error });
  });
  t.diagnostic(`screen:\n${screen}`);
  assert.match(screen, /SERVICE\s+STATE/);
  assert.match(screen, new RegExp(`http://127\\.0\\.0\\.1:${port}`));
  assert.equal(tmux(socket, 'display-message', '-p', '-t', 'tui', '#{alternate_on}').trim(), '1');

  tmux(socket, 'send-keys', '-t', 'tui', 'd');
  const after = await eventually(() => {
    const text = capture();
    return text.includes('TUI-EXIT:') ? text : undefined;
  }, 30_000).catch((error: unknown) => {
    throw new Error(`d did not detach; screen:\n${capture()}`, { cause: error });
  });
  t.diagnostic(`after detach:\n${after}`);
  assert.match(after, /TUI-EXIT:0/);
  assert.match(after, /Detached from tuiapp/);
  assert.equal(
    tmux(socket, 'display-message', '-p', '-t', 'tui', '#{alternate_on} #{cursor_flag}').trim(),
    '0 1',
    'the terminal is back on the main screen with a visible cursor',
  );
  const ps = await te.cli(['ps', '--format', 'json'], { cwd: dir });
  assert.equal(ps.code, 0, ps.stderr);
  const states = ps.stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { Service: string; State: string })
    .map((row) => `${row.Service}:${row.State}`)
    .sort();
  assert.deepEqual(states, ['web:running', 'worker:running']);
});
