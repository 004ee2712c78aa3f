/**
 * `develop.watch` sync actions are plans (issue #19): `sync`, `sync+exec` and `sync+restart` become `container.sync`,
 * `container.exec` and restart operations made by `planWatchSync` and run through the port, so the recording port
 * sees every engine call and `--dry-run`'s text shows them. No root, no engine: the host files are real (a temporary
 * directory), the containers are the recording port's.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import type { Project } from '../../src/model/project.js';
import { planWatchSync } from '../../src/planner/watch.js';
import { renderPlanText } from '../../src/planner/render.js';
import { runSyncAction } from '../../src/watch/actions.js';
import * as watch from '../../src/watch/command.js';
import { watchRules, type WatchRule } from '../../src/watch/rules.js';
import { dependentPair, observedEmpty, observedRunning } from '../helpers/project.js';
import { recordingContext } from '../helpers/recording-port.js';

/** A temporary project directory with src/hello.txt and conf/app.conf, removed after the test. */
async function tree(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tsfig-watch-unit-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(path.join(dir, 'src'));
  await mkdir(path.join(dir, 'conf'));
  await writeFile(path.join(dir, 'src', 'hello.txt'), 'hello\n');
  await writeFile(path.join(dir, 'conf', 'app.conf'), 'level=1\n');
  return dir;
}

/** db, and app (depending on it) with a sync rule on src/, a sync+exec rule on conf/ and a sync+restart on etc/. */
function watched(dir: string, initialSync = false, key: 'initial_sync' | 'x-initialSync' = 'initial_sync'): Project {
  const p = dependentPair({
    other: {
      develop: {
        watch: [
          { path: path.join(dir, 'src'), action: 'sync', target: '/app', [key]: initialSync },
          {
            path: path.join(dir, 'conf'),
            action: 'sync+exec',
            target: '/etc/app',
            exec: { command: ['kill', '-HUP', '1'], user: 'root' },
          },
          { path: path.join(dir, 'etc'), action: 'sync+restart', target: '/etc/more' },
        ],
      },
    },
  });
  return { ...p, project_directory: dir };
}

function rule(p: Project, action: WatchRule['action']): WatchRule {
  const found = watchRules(p).find((candidate) => candidate.action === action);
  assert.ok(found !== undefined, action);
  return found;
}

test('watch sync: a container.sync per running container of the service, through the port; none when none runs', async (t) => {
  const dir = await tree(t);
  const p = watched(dir);
  const { ctx, port, events } = recordingContext(observedRunning(p));
  const detail = await runSyncAction(ctx, p, rule(p, 'sync'), [path.join(dir, 'src', 'hello.txt')], {
    report: assert.fail,
  });
  assert.equal(detail, '1 path(s) to 1 container(s)');
  assert.deepEqual(port.calls, ['syncFiles id-tsfig-app-1']);
  // the file's bytes are written to a temporary name and renamed over the target, in the container
  assert.equal(port.syncScripts.length, 1);
  assert.match(port.syncScripts[0] ?? '', /printf 'hello\n' > '\/app\/hello\.txt\.tsfig-sync'/);
  assert.match(port.syncScripts[0] ?? '', /mv -f '\/app\/hello\.txt\.tsfig-sync' '\/app\/hello\.txt'/);
  // a plan like any other: its op events went to the progress renderer; a sync takes no project lock
  assert.deepEqual(
    events.events.filter((event) => event.kind === 'op.done').map((event) => `${event.op.kind} ${event.op.target}`),
    ['container.sync tsfig-app-1'],
  );
  assert.deepEqual(port.locks, []);

  const fresh = recordingContext(observedEmpty(p));
  const none = await runSyncAction(fresh.ctx, p, rule(p, 'sync'), [path.join(dir, 'src', 'hello.txt')], {
    report: assert.fail,
  });
  assert.equal(none, '1 path(s) to 0 container(s)');
  assert.deepEqual(fresh.port.calls, []);
});

test('watch sync+exec: the exec runs after the sync, in the same container; a failed sync fails the action, no exec', async (t) => {
  const dir = await tree(t);
  const p = watched(dir);
  const { ctx, port } = recordingContext(observedRunning(p));
  const conf = [path.join(dir, 'conf', 'app.conf')];
  assert.equal(
    await runSyncAction(ctx, p, rule(p, 'sync+exec'), conf, { report: assert.fail }),
    '1 path(s) to 1 container(s)',
  );
  assert.deepEqual(port.calls, ['syncFiles id-tsfig-app-1', 'execInContainer id-tsfig-app-1 kill -HUP 1']);

  const failing = recordingContext(observedRunning(p));
  failing.port.syncExitCodes.set('id-tsfig-app-1', 1);
  await assert.rejects(
    runSyncAction(failing.ctx, p, rule(p, 'sync+exec'), conf, { report: assert.fail }),
    /sync into tsfig-app-1 failed \(exit 1\): sync stderr/,
  );
  assert.deepEqual(failing.port.calls, ['syncFiles id-tsfig-app-1']);

  const exits = recordingContext(observedRunning(p));
  exits.port.hookExitCodes.set('id-tsfig-app-1', 3);
  await assert.rejects(
    runSyncAction(exits.ctx, p, rule(p, 'sync+exec'), conf, { report: assert.fail }),
    /exec in tsfig-app-1 exited with 3/,
  );
});

test('watch sync+restart: the sync, then the restart of the service, in one plan under the project lock', async (t) => {
  const dir = await tree(t);
  await mkdir(path.join(dir, 'etc'));
  await writeFile(path.join(dir, 'etc', 'more.conf'), 'x\n');
  const p = watched(dir);
  const { ctx, port } = recordingContext(observedRunning(p));
  await runSyncAction(ctx, p, rule(p, 'sync+restart'), [path.join(dir, 'etc', 'more.conf')], { report: assert.fail });
  assert.deepEqual(port.calls, [
    'syncFiles id-tsfig-app-1',
    'stopContainer id-tsfig-app-1',
    'startContainer id-tsfig-app-1',
  ]);
  assert.deepEqual(port.locks, ['tsfig']);
});

test('watch sync actions in the plan text: a line per sync and exec, in the summary; a dry run calls nothing', async (t) => {
  const dir = await tree(t);
  const p = watched(dir);
  const plan = planWatchSync(p, observedRunning(p), {
    service: 'app',
    action: 'sync+exec',
    target: '/etc/app',
    paths: ['/etc/app/app.conf'],
    scripts: ['set -e\n: > /etc/app/app.conf'],
    exec: rule(p, 'sync+exec').exec,
  });
  const text = renderPlanText(plan);
  assert.match(text, /\^ sync container tsfig-app-1 \(develop\.watch: 1 path\(s\) to \/etc\/app\)/);
  assert.match(text, /\$ exec container tsfig-app-1 \(develop\.watch exec: kill -HUP 1\)/);
  assert.match(text, /Plan: 0 to create, 0 to recreate, 0 to remove, 1 to sync, 1 to exec\./);

  const { ctx, port, stdout } = recordingContext(observedRunning(p));
  await runSyncAction(ctx, p, rule(p, 'sync+exec'), [path.join(dir, 'conf', 'app.conf')], {
    report: assert.fail,
    dryRun: true,
  });
  assert.deepEqual(port.calls, []);
  assert.match(stdout.text, /\^ sync container tsfig-app-1/);
});

/** `tsfig watch` of p over the recording port; until(re) waits for its stderr to match, stop() ends it (its code). */
function startWatch(dir: string, p: Project) {
  const { ctx, port, stderr } = recordingContext(observedRunning(p));
  const controller = new AbortController();
  const running = watch.run(ctx, {
    project: p,
    services: [],
    up: false,
    projectFiles: [path.join(dir, 'tsfig.yml')],
    reload: () => p,
    signal: controller.signal,
  });
  const until = async (what: RegExp): Promise<void> => {
    for (let waited = 0; !what.test(stderr.text); waited += 20) {
      if (waited > 15_000) assert.fail(`no ${String(what)} in:\n${stderr.text}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  const stop = (): Promise<number> => {
    controller.abort();
    return running;
  };
  return { port, stderr, until, stop };
}

test('tsfig watch over the recording port: the initial sync and a saved file of a sync+exec rule are plans', async (t) => {
  const dir = await tree(t);
  const { port, until, stop } = startWatch(dir, watched(dir, true));
  try {
    await until(/watch: watching app/);
    await until(/watch: initial sync app \(1 path\(s\) to 1 container\(s\)\)/);
    assert.deepEqual(port.calls, ['syncFiles id-tsfig-app-1']);
    await writeFile(path.join(dir, 'conf', 'app.conf'), 'level=2\n');
    await until(/watch: sync\+exec app \(1 path\(s\) to 1 container\(s\)\)/);
    assert.deepEqual(port.calls, [
      'syncFiles id-tsfig-app-1',
      'syncFiles id-tsfig-app-1',
      'execInContainer id-tsfig-app-1 kill -HUP 1',
    ]);
    assert.match(port.syncScripts[1] ?? '', /printf 'level=2\n' > '\/etc\/app\/app\.conf\.tsfig-sync'/);
  } finally {
    assert.equal(await stop(), 0);
  }
});

test("tsfig watch: compose's older x-initialSync syncs first too, with compose's deprecation warning", async (t) => {
  const dir = await tree(t);
  const { port, stderr, until, stop } = startWatch(dir, watched(dir, true, 'x-initialSync'));
  try {
    await until(/watch: initial sync app/);
    assert.match(
      stderr.text,
      /WARN app: x-initialSync is DEPRECATED, please use the official `initial_sync` attribute/,
    );
    assert.deepEqual(port.calls, ['syncFiles id-tsfig-app-1']);
  } finally {
    assert.equal(await stop(), 0);
  }
});
