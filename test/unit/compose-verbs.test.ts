/**
 * Every compose verb's function (src/compose/<verb>.ts) against a recording engine port: the engine calls its plan
 * makes for a fresh project, a running one and a changed one, and the exit code it returns. No root, no engine.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as create from '../../src/compose/create.js';
import * as down from '../../src/compose/down.js';
import * as kill from '../../src/compose/kill.js';
import * as pause from '../../src/compose/pause.js';
import * as restart from '../../src/compose/restart.js';
import * as rm from '../../src/compose/rm.js';
import * as run from '../../src/compose/run.js';
import * as scale from '../../src/compose/scale.js';
import * as start from '../../src/compose/start.js';
import * as stop from '../../src/compose/stop.js';
import * as up from '../../src/compose/up.js';
import { TsfigError } from '../../src/errors.js';
import type { Project, Service } from '../../src/model/project.js';
import type { ObservedState } from '../../src/planner/observed.js';
import { LineRenderer } from '../../src/ui/progress.js';
import {
  dependentPair,
  observedEmpty,
  observedRunning,
  observedUp,
  project,
  runningContainer,
  service,
  stoppedContainer,
  defaultServiceNetwork,
  buildOf,
} from '../helpers/project.js';
import { Buffer, recordingContext } from '../helpers/recording-port.js';

const net = { default: defaultServiceNetwork() };

/** db, and app depending on it; both on the default network. */
const stack = dependentPair;
const fresh = (p: Project): ObservedState => observedEmpty(p);
const running = observedRunning;
/** Running as `stack()` left it, but the project now sets app's environment. */
function changed(): { project: Project; observed: ObservedState } {
  const before = stack();
  const after = stack({ environment: { VALUE: 'two' } });
  return { project: after, observed: running(before) };
}

test('up -d: fresh creates the network and both containers, dependencies first; exit 0', async () => {
  const p = stack();
  const { ctx, port } = recordingContext(fresh(p));
  assert.equal(await up.run(ctx, { project: p, services: [], plan: {}, detach: true }), 0);
  // creates overlap; app starts only after db did
  assert.deepEqual(port.calls, [
    'createNetwork tsfig_default',
    'createContainer tsfig-db-1',
    'createContainer tsfig-app-1',
    'startContainer tsfig-db-1',
    'startContainer tsfig-app-1',
  ]);
  assert.deepEqual(port.locks, ['tsfig']);
});

test('up -d: a running project is up to date (no engine call)', async () => {
  const p = stack();
  const { ctx, port, stderr } = recordingContext(running(p));
  assert.equal(await up.run(ctx, { project: p, services: [], plan: {}, detach: true }), 0);
  assert.deepEqual(port.calls, []);
  assert.match(stderr.text, /Project tsfig is up to date/);
});

test('up -d: a changed service is recreated, its dependency left alone', async () => {
  const { project: p, observed } = changed();
  const { ctx, port } = recordingContext(observed);
  assert.equal(await up.run(ctx, { project: p, services: [], plan: {}, detach: true }), 0);
  assert.deepEqual(port.calls, [
    'stopContainer id-tsfig-app-1',
    'removeContainer id-tsfig-app-1',
    'createContainer tsfig-app-1',
    'startContainer tsfig-app-1',
  ]);
});

test('up --dry-run: the build and the containers in one plan on stdout; nothing is called', async () => {
  const p = project([service('app', { image: undefined, networks: net, build: buildOf('/srv/app') })]);
  const observed = { ...fresh(p), images: {} };
  const { ctx, port, stdout } = recordingContext(observed);
  assert.equal(await up.run(ctx, { project: p, services: [], plan: {}, dryRun: true }), 0);
  assert.deepEqual(port.calls, []);
  assert.match(stdout.text, /\* build image tsfig-app \(build: \(image not built yet\)\)/);
  assert.match(stdout.text, /\+ create container tsfig-app-1/);
  assert.match(stdout.text, /the containers are compared with the image the build produces/);
});

test('up --dry-run --wait: the pull and the waits are in the plan it prints; nothing is called', async () => {
  const p = project([service('cache', { image: 'redis:7', networks: net })]);
  const { ctx, port, stdout } = recordingContext({ ...fresh(p), images: {} });
  assert.equal(await up.run(ctx, { project: p, services: [], plan: {}, wait: true, dryRun: true }), 0);
  assert.deepEqual(port.calls, []);
  assert.match(stdout.text, /pull image redis:7/);
  assert.match(stdout.text, /\+ create container tsfig-cache-1/);
  assert.match(stdout.text, /wait until tsfig-cache-1 is running \(up --wait\)/);
});

test('up -d: builds and pulls are plan operations before the containers', async () => {
  const p = project([
    service('app', { image: undefined, networks: net, build: buildOf('/srv/app') }),
    service('cache', { image: 'redis:7', networks: net }),
  ]);
  const { ctx, port } = recordingContext({ ...fresh(p), images: {} });
  // the images "appear" once pulled and built: the second observation sees them
  const observe = port.observe.bind(port);
  let calls = 0;
  port.observe = async (project) => {
    calls++;
    const state = await observe(project);
    return calls === 1
      ? state
      : { ...state, images: { 'tsfig-app': { id: 'sha256:a' }, 'redis:7': { id: 'sha256:b' } } };
  };
  assert.equal(await up.run(ctx, { project: p, services: [], plan: {}, detach: true }), 0);
  assert.deepEqual(port.calls.slice(0, 2), ['pullImage redis:7', 'buildImage tsfig-app']);
  assert.ok(port.calls.includes('createContainer tsfig-app-1'));
});

// compose v2 (e2e TestLocalComposeBuild "no rebuild when up again"): an up builds only the missing images
test('up: an image already built is not built again unless --build (or pull_policy: build)', async () => {
  const app = service('app', { image: undefined, networks: net, build: buildOf('/srv/app') });
  const p = project([app]);
  const present = { ...fresh(p), images: { 'tsfig-app': { id: 'sha256:a' } } };
  const plain = recordingContext(present);
  assert.equal(await up.run(plain.ctx, { project: p, services: [], plan: {}, detach: true }), 0);
  assert.ok(!plain.port.calls.some((call) => call.startsWith('buildImage')), plain.port.calls.join('\n'));
  const forced = recordingContext(present);
  assert.equal(await up.run(forced.ctx, { project: p, services: [], plan: {}, detach: true, build: true }), 0);
  assert.ok(forced.port.calls.includes('buildImage tsfig-app'));
  const always = project([{ ...app, pull_policy: 'build' }]);
  const policy = recordingContext({ ...present, images: { 'tsfig-app': { id: 'sha256:a' } } });
  assert.equal(await up.run(policy.ctx, { project: always, services: [], plan: {}, detach: true }), 0);
  assert.ok(policy.port.calls.includes('buildImage tsfig-app'));
});

test('up --wait: waits are plan operations (running, or healthy with a healthcheck)', async () => {
  const p = stack();
  const { ctx, port } = recordingContext(running(p));
  assert.equal(await up.run(ctx, { project: p, services: [], plan: {}, wait: true }), 0);
  assert.deepEqual(port.calls.sort(), ['waitRunning id-tsfig-app-1', 'waitRunning id-tsfig-db-1']);
});

test('up: an op failure is thrown (main.ts maps it to the exit code)', async () => {
  const p = stack();
  const { ctx, port } = recordingContext(fresh(p));
  port.createNetwork = () => Promise.reject(new TsfigError('runtime', 'no bridge today'));
  await assert.rejects(up.run(ctx, { project: p, services: [], plan: {}, detach: true }), /no bridge today/);
  assert.deepEqual(port.calls, []);
});

test('down: fresh does nothing; running stops dependents first, removes, then the network', async () => {
  const p = stack();
  const empty = recordingContext(fresh(p));
  assert.equal(await down.run(empty.ctx, { project: p }), 0);
  assert.deepEqual(empty.port.calls, []);
  const { ctx, port } = recordingContext(running(p));
  assert.equal(await down.run(ctx, { project: p }), 0);
  assert.deepEqual(port.calls, [
    'stopContainer id-tsfig-app-1',
    'removeContainer id-tsfig-app-1',
    'stopContainer id-tsfig-db-1',
    'removeContainer id-tsfig-db-1',
    'removeNetwork tsfig_default',
  ]);
});

test('down -v keeps an anonymous volume another container uses (a plan warning), removes one only its own use', async () => {
  const base = project([service('db', { networks: net }), service('web', { networks: net })]);
  const observed = running(base);
  const anon = (name: string) => [{ destination: '/x', volumeName: name, anonymous: true }];
  const state: ObservedState = {
    ...observed,
    containers: observed.containers.map((c) => ({ ...c, mounts: anon(c.service === 'db' ? 'shared' : 'own') })),
    volumes: [...observed.volumes, { name: 'shared', labels: {} }, { name: 'own', labels: {} }],
  };
  const { ctx, port, events } = recordingContext(state);
  // `shared` is also mounted by a container of another project (volumes_from); `own` by the project's web only
  port.users.shared = ['tsfig-db-1', 'other-backup-1'];
  port.users.own = ['tsfig-web-1'];
  await down.run(ctx, { project: base, volumes: true });
  assert.ok(port.calls.includes('removeVolume own'), port.calls.join('\n'));
  assert.ok(!port.calls.includes('removeVolume shared'), port.calls.join('\n'));
  assert.deepEqual(
    events.events.filter((event) => event.kind === 'warning').map((event) => event.message),
    ['volume shared is kept: it is in use by other-backup-1'],
  );
});

test('down -v --rmi local: volumes (named and anonymous) and the built image go in the plan', async () => {
  const base = project(
    [service('db', { networks: net }), service('app', { image: undefined, build: buildOf('/srv/app'), networks: net })],
    { volumes: ['data'] },
  );
  const observed = running(base);
  const withAnon: ObservedState = {
    ...observed,
    containers: observed.containers.map((c) =>
      c.service === 'db' ? { ...c, mounts: [{ destination: '/x', volumeName: 'anon1', anonymous: true }] } : c,
    ),
    volumes: [...observed.volumes, { name: 'anon1', labels: {} }],
  };
  const { ctx, port, stdout } = recordingContext(withAnon);
  assert.equal(await down.run(ctx, { project: base, volumes: true, rmi: 'local', dryRun: true }), 0);
  assert.deepEqual(port.calls, []);
  assert.match(stdout.text, /- remove volume tsfig_data/);
  assert.match(stdout.text, /- remove volume anon1/);
  assert.match(stdout.text, /- remove image tsfig-app \(down --rmi\)/);
  assert.doesNotMatch(stdout.text, /busybox/, '--rmi local keeps images named by image:');
  await down.run(ctx, { project: base, volumes: true, rmi: 'all' });
  assert.deepEqual(port.calls.slice(-4).sort(), [
    'removeImage busybox:latest',
    'removeImage tsfig-app',
    'removeVolume anon1',
    'removeVolume tsfig_data',
  ]);
});

test('run --rm: a never-up project gets its network, the dependency, then the one-off; exit code is the container’s', async () => {
  const p = stack();
  const { ctx, port } = recordingContext(fresh(p));
  port.exitCode = 3;
  const code = await run.run(ctx, { project: p, service: 'app', command: ['echo', 'hi'], rm: true, name: 'one' });
  assert.equal(code, 3);
  assert.deepEqual(port.calls, [
    'createNetwork tsfig_default',
    'createContainer tsfig-db-1',
    'startContainer tsfig-db-1',
    'createContainer one',
    'holdAutoRemove id-one',
    'startContainer id-one',
    'onSignals',
    'followLogs one',
    'waitExit id-one',
    'offSignals',
    'removeContainer id-one',
  ]);
});

test("run attached: the one-off's start and removal report to the context's sink with --progress json, not in line modes", async () => {
  const p = project([service('solo', { networks: net })]);
  const kinds = (events: readonly { kind: string; op?: { target: string } }[]) =>
    events.filter((e) => e.kind === 'op.done' && e.op?.target === 'one').length;
  const json = recordingContext(running(p));
  await run.run(
    { ...json.ctx, jsonProgress: true },
    { project: p, service: 'solo', command: [], rm: true, name: 'one' },
  );
  // create (the project's plan), then start and remove (the attached plans)
  assert.equal(kinds(json.events.events), 3, JSON.stringify(json.events.events));
  const plain = recordingContext(running(p));
  await run.run(plain.ctx, { project: p, service: 'solo', command: [], rm: true, name: 'one' });
  assert.equal(kinds(plain.events.events), 1, "only the create: no status line between the container's output");
});

test('run attached without a tty: a signal to the CLI is forwarded to the container (kill), whose exit code is kept', async () => {
  const p = stack();
  const { ctx, port } = recordingContext(running(p));
  port.waitExit = async (id: string) => {
    port.signalHandler?.('SIGTERM'); // as the CLI's SIGTERM handler would, while it waits for the exit
    await new Promise((resolve) => setTimeout(resolve, 20));
    port.calls.push(`waitExit ${id}`);
    return 3;
  };
  const code = await run.run(ctx, { project: p, service: 'app', command: [], deps: false, rm: true, name: 'sig' });
  assert.equal(code, 3);
  assert.deepEqual(port.calls.slice(port.calls.indexOf('onSignals')), [
    'onSignals',
    'followLogs sig',
    'killContainer id-sig SIGTERM',
    'waitExit id-sig',
    'offSignals',
    'removeContainer id-sig',
  ]);
  // a second signal is not forwarded: run stops following and returns 128+N, the container is left to its --rm
  const twice = recordingContext(running(p));
  twice.port.waitExit = (_id: string, signal?: AbortSignal) => {
    twice.port.signalHandler?.('SIGINT');
    twice.port.signalHandler?.('SIGTERM');
    return new Promise<number>((_resolve, reject) => {
      const fail = () => reject(new Error('aborted'));
      if (signal?.aborted === true) fail();
      signal?.addEventListener('abort', fail);
    });
  };
  const left = await run.run(twice.ctx, { project: p, service: 'app', command: [], deps: false, rm: true, name: 'x' });
  assert.equal(left, 143);
  assert.deepEqual(
    twice.port.calls.filter((call) => call.startsWith('killContainer')),
    ['killContainer id-x SIGINT'],
  );
  assert.ok(!twice.port.calls.includes('removeContainer id-x'), twice.port.calls.join('\n'));
  assert.match(twice.stderr.text, /x keeps running: .* second SIGTERM/);
  // with a tty the keys reach the container on its stdin: no signal handler is installed
  const tty = recordingContext(running(p));
  await run.run(tty.ctx, { project: p, service: 'app', command: [], deps: false, tty: true, name: 'tty' });
  assert.ok(!tty.port.calls.includes('onSignals'), tty.port.calls.join('\n'));
});

test('run: a service with no dependencies still gets its network; --no-deps skips them; -d starts in the plan', async () => {
  const p = project([service('solo', { networks: net })]);
  const { ctx, port, stdout } = recordingContext(fresh(p));
  assert.equal(await run.run(ctx, { project: p, service: 'solo', command: [], detach: true, name: 'x' }), 0);
  assert.deepEqual(port.calls, ['createNetwork tsfig_default', 'createContainer x', 'startContainer x']);
  assert.equal(stdout.text, 'x\n');
  const deps = recordingContext(running(stack()));
  await run.run(deps.ctx, { project: stack(), service: 'app', command: [], deps: false, detach: true, name: 'y' });
  assert.deepEqual(deps.port.calls, ['createContainer y', 'startContainer y']);
});

test('run (changed project): dependencies are not recreated (--no-recreate), the one-off is created', async () => {
  const before = stack();
  const after = stack();
  const { ctx, port } = recordingContext(observedUp(before, [stoppedContainer(before, before.services.db as Service)]));
  await run.run(ctx, { project: after, service: 'app', command: [], detach: true, name: 'z' });
  assert.deepEqual(port.calls, ['startContainer id-tsfig-db-1', 'createContainer z', 'startContainer z']);
});

test('create: containers without starting them; nothing on a running project', async () => {
  const p = stack();
  const { ctx, port } = recordingContext(fresh(p));
  assert.equal(await create.run(ctx, { project: p, services: [] }), 0);
  assert.deepEqual(port.calls, [
    'createNetwork tsfig_default',
    'createContainer tsfig-db-1',
    'createContainer tsfig-app-1',
  ]);
  const again = recordingContext(running(p));
  await create.run(again.ctx, { project: p, services: [] });
  assert.deepEqual(again.port.calls, []);
  const { project: c, observed } = changed();
  const recreate = recordingContext(observed);
  await create.run(recreate.ctx, { project: c, services: [] });
  assert.deepEqual(recreate.port.calls, [
    'stopContainer id-tsfig-app-1',
    'removeContainer id-tsfig-app-1',
    'createContainer tsfig-app-1',
  ]);
});

test('scale: web=3 adds two containers; fresh creates three', async () => {
  const p = project([service('web', { networks: net })]);
  const { ctx, port } = recordingContext(running(p));
  assert.equal(await scale.run(ctx, { project: p, scale: { web: 3 } }), 0);
  assert.deepEqual(port.calls.sort(), [
    'createContainer tsfig-web-2',
    'createContainer tsfig-web-3',
    'startContainer tsfig-web-2',
    'startContainer tsfig-web-3',
  ]);
  const empty = recordingContext(fresh(p));
  await scale.run(empty.ctx, { project: p, scale: { web: 3 } });
  assert.equal(empty.port.calls.filter((call) => call.startsWith('createContainer')).length, 3);
});

test('start: a fresh project has nothing to start (not-found); stopped ones start dependencies first', async () => {
  const p = stack();
  const { ctx } = recordingContext(fresh(p));
  await assert.rejects(start.run(ctx, { project: p, services: [] }), /no containers to start/);
  const stopped = observedUp(
    p,
    Object.values(p.services).map((s) => stoppedContainer(p, s)),
  );
  const again = recordingContext(stopped);
  assert.equal(await start.run(again.ctx, { project: p, services: [] }), 0);
  assert.deepEqual(again.port.calls, ['startContainer id-tsfig-db-1', 'startContainer id-tsfig-app-1']);
  const up2 = recordingContext(running(p));
  await start.run(up2.ctx, { project: p, services: [] });
  assert.deepEqual(up2.port.calls, [], 'running containers are not started again');
});

test('start --wait: the starts, then a wait for every selected container (healthy with a healthcheck)', async () => {
  const check = { test: ['CMD', 'true'], disable: false } as const;
  const none = { interval: undefined, timeout: undefined, retries: undefined, start_period: undefined };
  const p = stack({ healthcheck: { ...check, ...none, start_interval: undefined } });
  const stopped = observedUp(p, [
    runningContainer(p, p.services.db as Service),
    stoppedContainer(p, p.services.app as Service),
  ]);
  const { ctx, port } = recordingContext(stopped);
  assert.equal(await start.run(ctx, { project: p, services: [], wait: true, waitTimeoutSeconds: 5 }), 0);
  // db already runs: only waited for; app is started, then waited for until healthy
  assert.deepEqual(port.calls, [
    'startContainer id-tsfig-app-1',
    'waitRunning id-tsfig-db-1',
    'waitHealthy id-tsfig-app-1',
  ]);
  const plain = recordingContext(stopped);
  await start.run(plain.ctx, { project: p, services: [] });
  assert.deepEqual(plain.port.calls, ['startContainer id-tsfig-app-1'], 'without --wait nothing is waited for');
});

test('stop and restart: dependents stopped first, started last; a fresh project is a no-op', async () => {
  const p = stack();
  const none = recordingContext(fresh(p));
  assert.equal(await stop.run(none.ctx, { project: p, services: [] }), 0);
  assert.deepEqual(none.port.calls, []);
  const s = recordingContext(running(p));
  assert.equal(await stop.run(s.ctx, { project: p, services: [] }), 0);
  assert.deepEqual(s.port.calls, ['stopContainer id-tsfig-app-1', 'stopContainer id-tsfig-db-1']);
  const { project: c, observed } = changed();
  const r = recordingContext(observed);
  assert.equal(await restart.run(r.ctx, { project: c, services: [] }), 0);
  assert.deepEqual(r.port.calls, [
    'stopContainer id-tsfig-app-1',
    'stopContainer id-tsfig-db-1',
    'startContainer id-tsfig-db-1',
    'startContainer id-tsfig-app-1',
  ]);
});

// compose e2e TestRestartWithDependencies: restart NAME brings the dependents with depends_on.NAME.restart: true, which
// start again once NAME is healthy; a dependent without restart: true is left alone
test('restart of a dependency restarts the dependents that say restart: true, after it is healthy', async () => {
  const healthcheck = {
    test: ['CMD', 'true'],
    interval: 1000,
    timeout: undefined,
    retries: undefined,
    start_period: undefined,
    start_interval: undefined,
    disable: false,
  };
  const on = (restartToo: boolean) =>
    ({ web: { condition: 'service_healthy', required: true, restart: restartToo } }) as const;
  const p = project([
    service('web', { networks: net, healthcheck }),
    service('with', { networks: net, depends_on: on(true) }),
    service('without', { networks: net, depends_on: on(false) }),
    service('chained', {
      networks: net,
      depends_on: { with: { condition: 'service_started', required: true, restart: true } },
    }),
  ]);
  const r = recordingContext(running(p));
  assert.equal(await restart.run(r.ctx, { project: p, services: ['web'] }), 0);
  assert.deepEqual(r.port.calls, [
    'stopContainer id-tsfig-chained-1',
    'stopContainer id-tsfig-with-1',
    'stopContainer id-tsfig-web-1',
    'startContainer id-tsfig-web-1',
    'waitHealthy id-tsfig-web-1',
    'startContainer id-tsfig-with-1',
    'startContainer id-tsfig-chained-1',
  ]);
});

// compose v2 acts on project.ServiceNames(): a container of another file of the project (an orphan here) is left
// alone by a stop without service names (e2e TestStartStopMultipleFiles)
test('stop without services: the project file services only, not an orphan of another file', async () => {
  const p = stack();
  const other = project([service('other', { networks: net })]);
  const observed = observedUp(p, [
    ...Object.values(p.services).map((s) => runningContainer(p, s)),
    runningContainer(p, other.services.other as Service),
  ]);
  const s = recordingContext(observed);
  assert.equal(await stop.run(s.ctx, { project: p, services: [] }), 0);
  assert.deepEqual(s.port.calls, ['stopContainer id-tsfig-app-1', 'stopContainer id-tsfig-db-1']);
});

test('kill, pause, unpause: running containers only; nothing on a fresh project', async () => {
  const p = stack();
  const none = recordingContext(fresh(p));
  assert.equal(await kill.run(none.ctx, { project: p, services: [] }), 0);
  assert.deepEqual(none.port.calls, []);
  const k = recordingContext(running(p));
  assert.equal(await kill.run(k.ctx, { project: p, services: ['app'], signal: 'SIGHUP' }), 0);
  assert.deepEqual(k.port.calls, ['killContainer id-tsfig-app-1 SIGHUP']);
  const { project: c, observed } = changed();
  const pz = recordingContext(observed);
  assert.equal(await pause.run(pz.ctx, { project: c, services: [], paused: true }), 0);
  assert.deepEqual(pz.port.calls, ['pauseContainer id-tsfig-db-1', 'pauseContainer id-tsfig-app-1']);
  // unpause: only what is paused (db here); a running, not paused container is left alone
  const dbPaused = observedUp(p, [
    runningContainer(p, p.services.db as Service, 1, { paused: true }),
    runningContainer(p, p.services.app as Service),
  ]);
  const uz = recordingContext(dbPaused);
  assert.equal(await pause.run(uz.ctx, { project: p, services: [], paused: false }), 0);
  assert.deepEqual(uz.port.calls, ['unpauseContainer id-tsfig-db-1']);
});

test('pause: a service already paused refuses the whole plan before anything is paused (compose v2 fails too)', async () => {
  const p = stack();
  const dbPaused = observedUp(p, [
    runningContainer(p, p.services.db as Service, 1, { paused: true }),
    runningContainer(p, p.services.app as Service),
  ]);
  const { ctx, port } = recordingContext(dbPaused);
  await assert.rejects(
    pause.run(ctx, { project: p, services: [], paused: true }),
    (error: unknown) =>
      error instanceof TsfigError && error.kind === 'conflict' && /tsfig-db-1 is already paused/.test(error.message),
  );
  assert.deepEqual(port.calls, [], 'app is not paused either');
  const app = recordingContext(dbPaused);
  assert.equal(await pause.run(app.ctx, { project: p, services: ['app'], paused: true }), 0);
  assert.deepEqual(app.port.calls, ['pauseContainer id-tsfig-app-1']);
});

test('rm: stopped containers only, -f required, -s stops first, -v with volumes', async () => {
  const p = stack();
  const none = recordingContext(running(p));
  assert.equal(await rm.run(none.ctx, { project: p, services: [], force: true }), 0);
  assert.match(none.stderr.text, /No stopped containers/);
  const stopped = observedUp(p, [
    stoppedContainer(p, p.services.app as Service),
    runningContainer(p, p.services.db as Service),
  ]);
  const refused = recordingContext(stopped);
  await assert.rejects(rm.run(refused.ctx, { project: p, services: [] }), /without --force/);
  assert.deepEqual(refused.port.calls, []);
  const removed = recordingContext(stopped);
  assert.equal(await rm.run(removed.ctx, { project: p, services: [], force: true }), 0);
  assert.deepEqual(removed.port.calls, ['removeContainer id-tsfig-app-1']);
  const all = recordingContext(stopped);
  await rm.run(all.ctx, { project: p, services: [], force: true, stop: true, volumes: true });
  assert.deepEqual(all.port.calls, [
    'stopContainer id-tsfig-db-1',
    'removeContainer id-tsfig-app-1',
    'removeContainer id-tsfig-db-1',
  ]);
  const { project: c, observed } = changed();
  const ch = recordingContext(observed);
  await rm.run(ch.ctx, { project: c, services: [], force: true });
  assert.deepEqual(ch.port.calls, []);
});

test('--progress json: everything a verb reports on stderr is one JSON object per line', async () => {
  const p = stack();
  const { ctx } = recordingContext(running(p));
  const err = new Buffer();
  const sink = new LineRenderer('json', err as unknown as NodeJS.WritableStream);
  const json = {
    ...ctx,
    events: sink,
    stderr: { write: (text: string) => sink.emit({ kind: 'note', message: text.trimEnd() }) },
  };
  await up.run(json, { project: stack({ environment: { X: '1' } }), services: [], plan: {}, detach: true });
  await up.run(json, { project: p, services: [], plan: {}, detach: true });
  const lines = err.text.trimEnd().split('\n');
  assert.ok(lines.length > 4);
  for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), line);
  assert.ok(lines.some((line) => (JSON.parse(line) as { kind: string }).kind === 'note'));
});
