/**
 * Issue #20's last leftover: a pull or build killed -9 after a layer (and config blob) was in the store but before
 * the image that uses it left both for ever (the check spared them for 60 s, and whenever any pull or build ran).
 * Pulls, imports, loads, builds and commits now claim what they write (engine/images/claims.ts): the next one, and
 * `system check --repair`, remove what a dead operation's claim left, and never what a live one claims. The kills land
 * exactly between the writes through the TSFIG_TEST_STOP_AT hook (engine/state/stop-point.ts). Pulls come from a
 * docker-registry on 127.0.0.1 that the test starts.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cleanupAndCheck, makeTestEngine, NEEDS_ROOT, REPO, type TestEngine } from '../helpers/engine.js';
import { startLocalRegistry, type LocalRegistry } from '../helpers/registry.js';

/** The process state letter of pid (R, S, T...), undefined when it is gone. */
function stateOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}

interface Stopped {
  readonly pid: number;
  readonly child: ChildProcess;
  readonly exit: Promise<number | null>;
  output(): string;
}

/**
 * Runs the CLI in its own process group with TSFIG_TEST_STOP_AT=point and resolves once it has stopped itself there.
 */
async function stoppedAt(t: TestEngine, args: readonly string[], point: string, cwd?: string): Promise<Stopped> {
  const child = spawn(process.execPath, [path.join(REPO, 'bin', 'tsfig.js'), ...args], {
    env: { ...t.env, TSFIG_TEST_STOP_AT: point },
    ...(cwd !== undefined ? { cwd } : {}),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let text = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const pid = child.pid ?? 0;
  const deadline = Date.now() + 60_000;
  while (stateOf(pid) !== 'T') {
    if (child.exitCode !== null || Date.now() > deadline) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // gone
      }
      await exit;
      throw new Error(`tsfig ${args.join(' ')} never stopped at ${point}: ${text}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return { pid, child, exit, output: () => text };
}

/** Kills a stopped CLI's whole process group with SIGKILL and waits for its exit. */
async function killGroup(stopped: Stopped): Promise<void> {
  process.kill(-stopped.pid, 'SIGKILL');
  await stopped.exit;
}

/** The entries of the store's layers/ and blobs/ dirs. */
function storeEntries(t: TestEngine): Set<string> {
  const { layers, blobs } = t.engine.paths;
  const list = (dir: string): string[] => {
    try {
      return readdirSync(dir);
    } catch {
      return [];
    }
  };
  return new Set([...list(layers).map((name) => `layer ${name}`), ...list(blobs).map((name) => `blob ${name}`)]);
}

function added(now: Set<string>, before: Set<string>): string[] {
  return [...now].filter((entry) => !before.has(entry)).sort();
}

describe(
  'image claims: what a killed pull or build wrote is removed, a live one is left alone (root)',
  {
    skip: NEEDS_ROOT,
  },
  () => {
    let t: TestEngine;
    let registry: LocalRegistry;
    /** Images in the registry, none in the store: each FROM scratch with one COPY layer of its own content. */
    const remote: Record<'a' | 'b' | 'c', string> = { a: '', b: '', c: '' };

    const context = async (name: string): Promise<string> => {
      const dir = path.join(t.dir, 'ctx', name);
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, 'data'), randomBytes(200_000));
      await writeFile(path.join(dir, 'Dockerfile'), 'FROM scratch\nCOPY data /data\n');
      return dir;
    };

    const ok = async (args: readonly string[], cwd?: string): Promise<string> => {
      const result = await t.cli(args, cwd !== undefined ? { cwd } : {});
      assert.equal(result.code, 0, `tsfig ${args.join(' ')}: ${result.stderr}`);
      return result.stdout;
    };

    before(async () => {
      t = await makeTestEngine();
      registry = await startLocalRegistry(path.join(t.dir, 'registry'));
      for (const name of ['a', 'b', 'c'] as const) {
        remote[name] = `${registry.domain}/claims/${name}:1`;
        await ok(['image', 'build', '-t', remote[name], await context(name)]);
        await ok(['image', 'push', remote[name]]);
        await ok(['image', 'rm', remote[name]]);
      }
      assert.equal((await t.cli(['system', 'check'])).code, 0, 'a clean store to start from');
    });

    after(async () => {
      await registry?.stop();
      await cleanupAndCheck(t, 'root');
    });

    test('a pull killed -9 between its layer and its image: the next pull removes both, system check finds nothing', async () => {
      const base = storeEntries(t);
      await killGroup(await stoppedAt(t, ['image', 'pull', remote.a], 'image-after-blob'));
      const left = added(storeEntries(t), base);
      assert.equal(left.filter((entry) => entry.startsWith('layer ')).length, 1, `left: ${left.join(', ')}`);
      assert.equal(left.filter((entry) => entry.startsWith('blob ')).length, 1, `left: ${left.join(', ')}`);
      assert.equal((await t.cli(['image', 'ls', '-q'])).stdout.trim().split('\n').length, 1, 'no image a was written');

      const check = await t.cli(['system', 'check']);
      assert.equal(check.code, 1, check.stdout);
      for (const entry of left)
        assert.ok(check.stdout.includes(entry.split(' ')[1] ?? '?'), `${entry} in ${check.stdout}`);

      // the next command that writes images removes them before it starts
      const before = storeEntries(t);
      await ok(['image', 'pull', remote.b]);
      const now = storeEntries(t);
      for (const entry of left) assert.ok(!now.has(entry), `${entry} is still in the store`);
      assert.equal(added(now, before).length, 2, 'image b: its layer and its config');
      assert.equal((await t.cli(['system', 'check'])).code, 0);
      await ok(['image', 'rm', remote.b]);
      assert.deepEqual(added(storeEntries(t), base), []);
    });

    test('a build killed -9 between its layer and its image: system check --repair removes both and leaves a live pull alone', async () => {
      const base = storeEntries(t);
      // a pull that has its layer in the store and is about to write its image, alive (stopped) meanwhile
      const live = await stoppedAt(t, ['image', 'pull', remote.c], 'image-before-record');
      const pulling = added(storeEntries(t), base);
      assert.equal(pulling.length, 1, `the live pull's layer: ${pulling.join(', ')}`);
      try {
        const building = storeEntries(t);
        await killGroup(
          await stoppedAt(t, ['image', 'build', '-t', 'claims-d', await context('d')], 'image-after-blob'),
        );
        const left = added(storeEntries(t), building);
        assert.equal(left.length, 2, `the killed build's layer and config: ${left.join(', ')}`);

        const check = await t.cli(['system', 'check']);
        assert.equal(check.code, 1, check.stdout);
        for (const entry of left) assert.ok(check.stdout.includes(entry.split(' ')[1] ?? '?'), check.stdout);
        for (const entry of pulling) assert.ok(!check.stdout.includes(entry.split(' ')[1] ?? '?'), check.stdout);

        const repair = await t.cli(['system', 'check', '--repair']);
        assert.equal(repair.code, 1, `it lists what it repaired: ${repair.stdout}${repair.stderr}`);
        for (const entry of left) assert.ok(repair.stdout.includes(entry.split(' ')[1] ?? '?'), repair.stdout);
        const now = storeEntries(t);
        for (const entry of left) assert.ok(!now.has(entry), `${entry} is still in the store`);
        for (const entry of pulling) assert.ok(now.has(entry), `the live pull's ${entry} was removed`);
      } finally {
        process.kill(live.pid, 'SIGCONT');
      }
      assert.equal(await live.exit, 0, live.output());
      await ok(['image', 'inspect', remote.c]);
      assert.equal((await t.cli(['system', 'check'])).code, 0);
      await ok(['image', 'rm', remote.c]);
      assert.deepEqual(added(storeEntries(t), base), []);
    });
  },
);
