import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { acquireLock, lockDirectory, withLock } from '../../engine/state/lock.js';
import { readJson, removeStaleTemps, writeJsonAtomic } from '../../engine/state/atomic.js';
import { writeRootEntry } from '../../engine/network/registry.js';
import { enginePaths, rootIdOf } from '../../engine/state/paths.js';

describe('engine state', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  test('two roots get different ids and host prefixes that fit interface names', () => {
    const a = enginePaths('/var/lib/tsfig', {});
    const b = enginePaths('/tmp/other-root', {});
    assert.notEqual(a.rootId, b.rootId);
    assert.match(a.hostPrefix, /^tsf[0-9a-f]{4}$/);
    assert.equal(a.runRoot, `/run/tsfig/${rootIdOf('/var/lib/tsfig')}`);
    assert.equal(enginePaths(undefined, { TSFIG_ROOT: '/x/y' }).root, '/x/y');
  });

  test("a writer killed mid-write leaves a temp file; the registry's next writer (under the host lock) removes it", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tsfig-state-'));
    dirs.push(dir);
    // what writeFileAtomic makes before its rename, and a look-alike of another file that must stay
    await writeFile(path.join(dir, '.net-registry.json.355c72e8303c.tmp'), '');
    await writeFile(path.join(dir, '.net-registry.json.bak'), 'kept');
    await writeFile(path.join(dir, '.other.json.355c72e8303c.tmp'), 'kept');
    const root = path.join(dir, 'root');
    await mkdir(path.join(root, 'networks'), { recursive: true });
    await writeRootEntry(dir, 'deadbeef', { root, networks: [], ports: [] });
    assert.deepEqual((await readdir(dir)).sort(), ['.net-registry.json.bak', '.other.json.355c72e8303c.tmp', 'root']);
    // the helper alone, for another file: only that file's temporary files go
    await removeStaleTemps(path.join(dir, 'other.json'));
    assert.deepEqual((await readdir(dir)).sort(), ['.net-registry.json.bak', 'root']);
  });

  test('atomic JSON writes leave no temp files and read back', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tsfig-state-'));
    dirs.push(dir);
    const file = path.join(dir, 'a.json');
    await writeJsonAtomic(file, { x: 1 });
    await writeJsonAtomic(file, { x: 2 });
    assert.deepEqual(await readJson(file), { x: 2 });
    assert.deepEqual(await readdir(dir), ['a.json']);
    assert.equal(await readJson(path.join(dir, 'missing.json')), undefined);
    assert.match(await readFile(file, 'utf8'), /\n$/);
  });

  test('a lock is exclusive until released', async () => {
    const name = `test-${process.pid}-${Date.now()}`;
    const order: string[] = [];
    const first = await acquireLock(name);
    const second = withLock(name, () => {
      order.push('second');
      return Promise.resolve();
    });
    await new Promise((resolve) => setTimeout(resolve, 30));
    order.push('first-release');
    await first.release();
    await second;
    assert.deepEqual(order, ['first-release', 'second']);
  });

  test('a lock times out with a conflict error', async () => {
    const name = `test-timeout-${process.pid}`;
    const held = await acquireLock(name);
    try {
      await assert.rejects(acquireLock(name, { timeoutMs: 20 }), /timed out waiting for lock/);
    } finally {
      await held.release();
    }
  });

  test('waiters of one process get the lock in turn, at once, and one that gives up keeps the queue going', async () => {
    const name = `test-fifo-${process.pid}-${Date.now()}`;
    const order: number[] = [];
    let inside = 0;
    const held = await acquireLock(name);
    const gaveUp = acquireLock(name, { timeoutMs: 10 });
    const waiters = Array.from({ length: 20 }, (_, index) =>
      withLock(name, async () => {
        inside++;
        assert.equal(inside, 1);
        order.push(index);
        await new Promise((resolve) => setTimeout(resolve, 1));
        inside--;
      }),
    );
    await assert.rejects(gaveUp, /timed out waiting for lock/);
    const started = Date.now();
    await held.release();
    await Promise.all(waiters);
    assert.deepEqual(
      order,
      Array.from({ length: 20 }, (_, index) => index),
    );
    // Handed over without the cross-process back-off (up to 100 ms per waiter).
    assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
  });

  /** A child process (tsx) running script with the lock module imported as `lock`; resolves with its stdout. */
  function child(script: string): { done: Promise<string>; kill: () => void; line: Promise<string> } {
    const module = new URL('../../engine/state/lock.ts', import.meta.url).href;
    const proc = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `const lock = await import(${JSON.stringify(module)});\n${script}`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    let firstLine!: (line: string) => void;
    const line = new Promise<string>((resolve) => (firstLine = resolve));
    proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      if (out.includes('\n')) firstLine(out.split('\n')[0] ?? '');
    });
    const done = new Promise<string>((resolve) => proc.on('close', () => resolve(out)));
    return { done, kill: () => proc.kill('SIGKILL'), line };
  }

  test('a lock held by a process killed with -9 is free at once, and its socket file goes', async () => {
    const name = `test-kill-${process.pid}-${Date.now()}`;
    const prefix = `${createHash('sha256').update(name).digest('hex').slice(0, 32)}.`;
    const holder = child(
      `await lock.acquireLock(${JSON.stringify(name)}); console.log('held'); setInterval(() => {}, 1000);`,
    );
    assert.equal(await holder.line, 'held');
    await assert.rejects(acquireLock(name, { timeoutMs: 50 }), /timed out waiting for lock/);
    holder.kill();
    await holder.done;
    const mine = (await readdir(lockDirectory())).filter((entry) => entry.startsWith(prefix));
    assert.equal(mine.length, 1, 'the dead holder left its socket file');
    const lock = await acquireLock(name, { timeoutMs: 2000 });
    await lock.release();
    assert.deepEqual(
      (await readdir(lockDirectory())).filter((entry) => entry.startsWith(prefix)),
      [],
      'the dead entry was removed, the released one too',
    );
  });

  test('a process that exits holding a lock leaves nothing: its entry and socket go, and the directory when empty', async () => {
    const name = `test-exit-${process.pid}-${Date.now()}`;
    const prefix = `${createHash('sha256').update(name).digest('hex').slice(0, 32)}.`;
    const exiting = child(`await lock.acquireLock(${JSON.stringify(name)}); console.log('held'); process.exit(0);`);
    assert.equal(await exiting.line, 'held');
    await exiting.done;
    const left = await readdir(lockDirectory()).catch(() => [] as string[]);
    assert.deepEqual(
      left.filter((entry) => entry.startsWith(prefix)),
      [],
      'the entry of the lock it held at exit is gone',
    );
  });

  test('a process that exits while it starts listening leaves no temporary socket', async () => {
    // exit (EPIPE, a second Ctrl-C) as soon as its `.t.` socket exists, before the rename to `.p.`
    for (let attempt = 0; attempt < 20; attempt++) {
      const exiting = child(`
        const { readdirSync } = await import('node:fs');
        const dir = lock.lockDirectory();
        const own = process.pid.toString(36) + '-';
        void lock.acquireLock('test-early-exit-${process.pid}');
        const poll = () => {
          let entries = [];
          try { entries = readdirSync(dir); } catch {}
          if (entries.some((e) => e.startsWith('.t.' + own))) { console.log('t ' + own); process.exit(0); }
          if (entries.some((e) => e.startsWith('.p.' + own))) { console.log('missed ' + own); process.exit(0); }
          setImmediate(poll);
        };
        poll();`);
      const [seen, own] = (await exiting.line).split(' ');
      await exiting.done;
      if (seen !== 't') continue;
      const left = await readdir(lockDirectory()).catch(() => [] as string[]);
      assert.deepEqual(
        left.filter((entry) => entry.includes(`.${own ?? ''}`)),
        [],
      );
      return;
    }
    assert.fail('the child never exited while its temporary socket existed');
  });

  test('the temporary socket of a process killed before its rename is swept by the next process', async () => {
    // a `.t.` socket whose maker is dead: a child listens on it under its own pid, then is killed with -9
    await mkdir(lockDirectory(), { recursive: true, mode: 0o700 });
    const maker = child(`
      const net = await import('node:net');
      const path = await import('node:path');
      const file = path.join(lock.lockDirectory(), '.t.' + process.pid.toString(36) + '-0123456789ab');
      net.createServer().listen(file, () => console.log(path.basename(file)));
      setInterval(() => {}, 1000);`);
    const name = await maker.line;
    maker.kill();
    await maker.done;
    assert.ok((await readdir(lockDirectory())).includes(name), 'kill -9 left it');
    // a live process's temporary socket that does not listen (between bind and listen) is never taken for dead
    const live = path.join(lockDirectory(), `.t.${process.pid.toString(36)}-ba9876543210`);
    await writeFile(live, '');
    try {
      const sweeper = child(`await lock.withLock('test-t-sweep-${process.pid}', async () => {}); console.log('done');`);
      assert.equal(await sweeper.line, 'done');
      await sweeper.done;
      const left = await readdir(lockDirectory()).catch(() => [] as string[]);
      assert.ok(!left.includes(name), `the dead maker's ${name} is gone`);
      assert.ok(left.includes(path.basename(live)), "this live process's is kept");
    } finally {
      await rm(live, { force: true });
    }
  });

  test('a new process sweeps what a process killed with -9 left: its socket and the entries of every lock it held', async () => {
    const names = [1, 2, 3].map((n) => `test-sweep-${process.pid}-${Date.now()}-${n}`);
    const prefixes = names.map((name) => `${createHash('sha256').update(name).digest('hex').slice(0, 32)}.`);
    const holder = child(
      `for (const n of ${JSON.stringify(names)}) await lock.acquireLock(n); console.log('held'); setInterval(() => {}, 1000);`,
    );
    assert.equal(await holder.line, 'held');
    holder.kill();
    await holder.done;
    const dead = (await readdir(lockDirectory())).filter((entry) => prefixes.some((p) => entry.startsWith(p)));
    assert.equal(dead.length, 3, 'kill -9 skipped its exit: its entries are still there');
    // another process's first lock sweeps them, whatever lock it takes
    const sweeper = child(`await lock.withLock('test-other-${process.pid}', async () => {}); console.log('done');`);
    assert.equal(await sweeper.line, 'done');
    await sweeper.done;
    assert.deepEqual(
      (await readdir(lockDirectory()).catch(() => [] as string[])).filter((entry) =>
        prefixes.some((p) => entry.startsWith(p)),
      ),
      [],
    );
  });

  test('processes taking one lock at the same time are never inside together', async () => {
    const name = `test-mutex-${process.pid}-${Date.now()}`;
    const script = `
      const { appendFileSync } = await import('node:fs');
      for (let i = 0; i < 15; i++) {
        await lock.withLock(${JSON.stringify(name)}, async () => {
          process.stdout.write('in\\n');
          await new Promise((r) => setTimeout(r, 2));
          process.stdout.write('out\\n');
        });
      }`;
    const dir = await mkdtemp(path.join(tmpdir(), 'tsfig-lock-'));
    dirs.push(dir);
    const log = path.join(dir, 'log');
    const shared = script.replaceAll('process.stdout.write(', `appendFileSync(${JSON.stringify(log)}, `);
    const children = Array.from({ length: 3 }, () => child(shared));
    await Promise.all(children.map((c) => c.done));
    const lines = (await readFile(log, 'utf8')).trim().split('\n');
    assert.equal(lines.length, 90);
    for (let i = 0; i < lines.length; i += 2) assert.deepEqual(lines.slice(i, i + 2), ['in', 'out'], `line ${i}`);
  });

  test("a lock is still taken after this process's socket file was removed from outside", async () => {
    await withLock(`test-warm-${process.pid}`, () => Promise.resolve());
    const own = `.p.${process.pid.toString(36)}-`;
    for (const entry of await readdir(lockDirectory())) {
      if (entry.startsWith(own)) await rm(path.join(lockDirectory(), entry));
    }
    const lock = await acquireLock(`test-relisten-${process.pid}`, { timeoutMs: 2000 });
    await lock.release();
  });
});
