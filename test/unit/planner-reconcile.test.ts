import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { TsfigError } from '../../src/errors.js';
import type { ServiceVolume } from '../../src/model/project.js';
import type { ObservedState } from '../../src/planner/observed.js';
import { OpKind, type Plan } from '../../src/planner/plan.js';
import { plan, planDown, type PlanOptions } from '../../src/planner/reconcile.js';
import { planHasChanges, planToDebugString, renderPlanJson, renderPlanText } from '../../src/planner/render.js';
import {
  DEFAULT_IMAGE,
  DEFAULT_IMAGE_ID,
  defaultServiceNetwork,
  observedEmpty,
  observedUp,
  project,
  runningContainer,
  service,
  stoppedContainer,
} from '../helpers/project.js';

const GOLDEN_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'golden', 'planner');

/** Compares the rendered plan and its debug lines with test/golden/planner/<name>.txt (UPDATE_GOLDEN=1 rewrites). */
function assertGolden(name: string, result: Plan): void {
  assertGoldenText(`${name}.txt`, `${renderPlanText(result)}\n--- operations\n${planToDebugString(result)}\n`);
}

function assertGoldenText(fileName: string, actual: string): void {
  const name = fileName;
  const file = path.join(GOLDEN_DIR, fileName);
  if (process.env.UPDATE_GOLDEN === '1') {
    mkdirSync(GOLDEN_DIR, { recursive: true });
    writeFileSync(file, actual);
    return;
  }
  assert.equal(actual, readFileSync(file, 'utf8'), `golden ${name} differs (UPDATE_GOLDEN=1 to regenerate)`);
}

/** The classic Fig stack: web depends on db, db keeps its data in a named volume. */
/** A service's `volumes:` entry of type volume: the named volume source (or an anonymous one) at target. */
function volumeEntry(source: string | undefined, target: string): ServiceVolume {
  return {
    type: 'volume',
    source,
    target,
    read_only: false,
    consistency: undefined,
    bind: undefined,
    volume: { nocopy: false, subpath: undefined },
    tmpfs: undefined,
    image: undefined,
  };
}

function webAndDb(web: Partial<Parameters<typeof service>[1]> = {}, db: Partial<Parameters<typeof service>[1]> = {}) {
  const dbService = service('db', {
    image: 'postgres:16',
    environment: { POSTGRES_PASSWORD: 'secret' },
    volumes: [volumeEntry('data', '/var/lib/postgresql/data')],
    ...db,
  });
  const webService = service('web', {
    environment: { DATABASE_URL: 'postgres://db/app' },
    depends_on: { db: { condition: 'service_started', required: true, restart: false } },
    ports: [
      {
        target: 8000,
        published: '8000',
        host_ip: '127.0.0.1',
        protocol: 'tcp',
        mode: 'ingress',
        name: undefined,
        app_protocol: undefined,
      },
    ],
    ...web,
  });
  return { web: webService, db: dbService };
}

function withImages(observed: ObservedState, images: Record<string, string>): ObservedState {
  const extra = Object.fromEntries(Object.entries(images).map(([ref, id]) => [ref, { id }]));
  return { ...observed, images: { ...observed.images, ...extra } };
}

/** web and db (webAndDb) running as created, then db's environment changed: the plan must recreate db. */
function dbRecreated(web: Partial<Parameters<typeof service>[1]> = {}) {
  const services = webAndDb(web);
  const before = project([services.web, services.db], { volumes: ['data'] });
  const containers = [runningContainer(before, services.web), runningContainer(before, services.db)];
  const changedDb = { ...services.db, environment: { POSTGRES_PASSWORD: 'changed' } };
  const after = project([services.web, changedDb], { volumes: ['data'] });
  return { after, observed: withImages(observedUp(after, containers), { 'postgres:16': DEFAULT_IMAGE_ID }) };
}

function up(p: Parameters<typeof plan>[0], observed: ObservedState, options: PlanOptions = {}): Plan {
  return plan(p, observed, options);
}

test('a new project creates its network, volume and containers, dependencies started first', () => {
  const { web, db } = webAndDb();
  const p = project([web, db], { volumes: ['data'] });
  assertGolden('new-project', up(p, withImages(observedEmpty(p), { 'postgres:16': 'sha256:pg' })));
});

test('an unchanged project is a no-op', () => {
  const { web, db } = webAndDb();
  const p = project([web, db], { volumes: ['data'] });
  const observed = withImages(observedUp(p, [runningContainer(p, web), runningContainer(p, db)]), {
    'postgres:16': DEFAULT_IMAGE_ID,
  });
  const result = up(p, observed);
  assert.deepEqual(result.operations, []);
  assert.deepEqual(result.warnings, []);
  assertGolden('unchanged', result);
});

test('a changed environment value recreates only that service, naming the variable', () => {
  const { web, db } = webAndDb();
  const before = project([web, db], { volumes: ['data'] });
  const containers = [runningContainer(before, web), runningContainer(before, db)];
  const changedWeb = { ...web, environment: { DATABASE_URL: 'postgres://db/other', DEBUG: '1' } };
  const after = project([changedWeb, db], { volumes: ['data'] });
  const observed = withImages(observedUp(after, containers), { 'postgres:16': DEFAULT_IMAGE_ID });
  assertGolden('changed-env', up(after, observed));
});

test('a changed config without a recorded spec says "config changed"', () => {
  const { web, db } = webAndDb();
  const before = project([web, db], { volumes: ['data'] });
  const { spec: _spec, ...withoutSpec } = runningContainer(before, web);
  const changedWeb = { ...web, environment: { DATABASE_URL: 'postgres://db/other' } };
  const after = project([changedWeb, db], { volumes: ['data'] });
  const observed = withImages(observedUp(after, [withoutSpec, runningContainer(before, db)]), {
    'postgres:16': DEFAULT_IMAGE_ID,
  });
  const creates = up(after, observed).operations.filter((op) => op.kind === OpKind.ContainerCreate);
  assert.deepEqual(
    creates.map((op) => op.reason),
    ['config changed'],
  );
});

test('a new image id for the same reference recreates the containers using it', () => {
  const { web, db } = webAndDb();
  const p = project([web, db], { volumes: ['data'] });
  const observed = withImages(observedUp(p, [runningContainer(p, web), runningContainer(p, db)]), {
    'postgres:16': 'sha256:newer',
  });
  assertGolden('changed-image', up(p, observed));
});

test('scaling up creates the missing replicas only', () => {
  const web = service('web', { scale: 3 });
  const p = project([web]);
  assertGolden('scaled-up', up(p, observedUp(p, [runningContainer(p, web, 1)])));
});

test('scaling down stops and removes the highest numbers first', () => {
  const web = service('web', { scale: 1 });
  const p = project([web]);
  const observed = observedUp(
    p,
    [1, 2, 3].map((n) => runningContainer(p, web, n)),
  );
  assertGolden('scaled-down', up(p, observed));
});

test('--scale overrides the project replica count', () => {
  const web = service('web');
  const p = project([web]);
  const result = up(p, observedUp(p, [runningContainer(p, web, 1)]), { scale: { web: 2 } });
  assert.deepEqual(
    result.operations.map((op) => `${op.kind} ${op.resource}`),
    ['container.create service:web:2', 'container.start service:web:2'],
  );
});

test('a removed service leaves an orphan that is warned about and kept', () => {
  const web = service('web');
  const old = service('worker');
  const before = project([web, old]);
  const after = project([web]);
  const observed = observedUp(after, [runningContainer(after, web), runningContainer(before, old)]);
  const result = up(after, observed);
  assert.deepEqual(result.operations, []);
  assertGolden('orphan-warning', result);
});

test('--remove-orphans stops and removes the orphan containers', () => {
  const web = service('web');
  const old = service('worker');
  const before = project([web, old]);
  const after = project([web]);
  const observed = observedUp(after, [runningContainer(after, web), runningContainer(before, old)]);
  assertGolden('orphan-removed', up(after, observed, { removeOrphans: true }));
});

test('a recreated dependency leaves its running dependents alone by default', () => {
  const { after, observed } = dbRecreated();
  assertGolden('dependency-recreated', up(after, observed));
});

test('--always-recreate-deps recreates the dependents of a recreated dependency, dependents stopped first', () => {
  const { after, observed } = dbRecreated();
  assertGolden('dependency-recreated-always', up(after, observed, { alwaysRecreateDeps: true }));
});

test('--no-deps with a selected service converges that service only', () => {
  const { web, db } = webAndDb();
  const p = project([web, db], { volumes: ['data'] });
  const observed = withImages(observedEmpty(p), { 'postgres:16': 'sha256:pg' });
  assertGolden('no-deps-selected', up(p, observed, { services: ['web'], noDeps: true }));
});

test('a selected service brings its dependencies along without --no-deps', () => {
  const { web, db } = webAndDb();
  const cache = service('cache');
  const p = project([web, db, cache], { volumes: ['data'] });
  const observed = withImages(observedEmpty(p), { 'postgres:16': 'sha256:pg' });
  const services = new Set(up(p, observed, { services: ['web'] }).operations.map((op) => op.resource.split(':')[1]));
  assert.deepEqual([...services].sort(), ['data', 'db', 'default', 'web']);
});

test('depends_on conditions become wait ops the dependent start waits for', () => {
  const db = service('db', {
    healthcheck: {
      test: ['CMD', 'pg_isready'],
      interval: 1000,
      timeout: undefined,
      retries: 3,
      start_period: undefined,
      start_interval: undefined,
      disable: false,
    },
  });
  const migrate = service('migrate', {
    depends_on: { db: { condition: 'service_healthy', required: true, restart: false } },
  });
  const web = service('web', {
    depends_on: {
      db: { condition: 'service_healthy', required: true, restart: false },
      migrate: { condition: 'service_completed_successfully', required: false, restart: false },
    },
  });
  const p = project([web, migrate, db]);
  const result = up(p, observedEmpty(p));
  assertGolden('depends-on-healthy', result);
  const waits = result.operations.filter((op) => op.kind === OpKind.ContainerWaitHealthy);
  assert.equal(waits.length, 1, 'one health wait shared by both dependents');
  const completed = result.operations.find((op) => op.kind === OpKind.ContainerWaitCompleted);
  assert.equal(completed?.bestEffort, true, 'required: false makes the wait best effort');
});

test('a stopped container is started, and its dependents wait for that start', () => {
  const { web, db } = webAndDb();
  const p = project([web, db], { volumes: ['data'] });
  const observed = withImages(observedUp(p, [stoppedContainer(p, web, 1, 137), stoppedContainer(p, db)]), {
    'postgres:16': DEFAULT_IMAGE_ID,
  });
  assertGolden('stopped-started', up(p, observed));
});

test('--no-start creates without starting and plans no waits', () => {
  const { web, db } = webAndDb();
  const p = project([web, db], { volumes: ['data'] });
  const result = up(p, withImages(observedEmpty(p), { 'postgres:16': 'sha256:pg' }), { noStart: true });
  assert.ok(result.operations.every((op) => op.kind !== OpKind.ContainerStart));
});

test('--force-recreate recreates unchanged containers; --no-recreate only starts', () => {
  const web = service('web');
  const p = project([web]);
  const forced = up(p, observedUp(p, [runningContainer(p, web)]), { forceRecreate: true });
  assert.deepEqual(
    forced.operations.map((op) => op.kind),
    ['container.stop', 'container.remove', 'container.create', 'container.start'],
  );
  const changed = project([{ ...web, environment: { A: '1' } }]);
  const noRecreate = up(changed, observedUp(changed, [stoppedContainer(p, web)]), { noRecreate: true });
  assert.deepEqual(
    noRecreate.operations.map((op) => op.kind),
    ['container.start'],
  );
});

test('a recreated container takes over the anonymous volumes of the old one, unless renewed', () => {
  const web = service('web', {
    volumes: anonymousVolume('/app/node_modules'),
  });
  const p = project([web]);
  const old = runningContainer(p, web, 1, {
    configHash: 'old',
    mounts: [
      { destination: '/app/node_modules', volumeName: 'anon1', anonymous: true },
      { destination: '/data', volumeName: 'anon2', anonymous: true },
    ],
  });
  const kept = up(p, observedUp(p, [old]));
  const create = kept.operations.find((op) => op.kind === OpKind.ContainerCreate);
  assert.ok(create?.kind === OpKind.ContainerCreate);
  assert.equal(create.spec.inheritAnonymousFrom, old.id);
  assert.deepEqual(
    create.spec.mounts.map((m) => [m.target, m.type === 'volume' ? m.source : m.type]),
    [
      ['/app/node_modules', 'anon1'],
      ['/data', 'anon2'],
    ],
  );
  const remove = kept.operations.find((op) => op.kind === OpKind.ContainerRemove);
  assert.ok(remove?.kind === OpKind.ContainerRemove && !remove.spec.volumes);

  const renewed = up(p, observedUp(p, [old]), { renewAnonVolumes: true });
  const renewedCreate = renewed.operations.find((op) => op.kind === OpKind.ContainerCreate);
  assert.ok(renewedCreate?.kind === OpKind.ContainerCreate);
  assert.equal(renewedCreate.spec.inheritAnonymousFrom, undefined);
  assert.deepEqual(
    renewedCreate.spec.mounts.map((m) => (m.type === 'volume' ? m.source : m.type)),
    [undefined],
  );
});

/** A service volume entry for an anonymous volume at target. */
function anonymousVolume(target: string): ServiceVolume[] {
  return [volumeEntry(undefined, target)];
}

test('a changed image with carried-over anonymous volumes warns (stale node_modules) and names -V', () => {
  const web = service('web', { volumes: anonymousVolume('/app/node_modules') });
  const p = project([web]);
  const old = runningContainer(p, web, 1, {
    mounts: [{ destination: '/app/node_modules', volumeName: 'anon1', anonymous: true }],
  });
  const stale = /service web: the image changed, but the anonymous volume at \/app\/node_modules is carried over/;
  const changed = up(p, withImages(observedUp(p, [old]), { [DEFAULT_IMAGE]: 'sha256:new' }));
  assert.ok(changed.operations.some((op) => op.kind === OpKind.ContainerCreate && /image changed/.test(op.reason)));
  const warning = changed.warnings.find((text) => stale.test(text));
  assert.ok(warning !== undefined, changed.warnings.join('\n'));
  assert.match(warning, /-V\/--renew-anon-volumes/);
  assert.match(renderPlanText(changed), /\/app\/node_modules/);

  const forced = up(p, observedUp(p, [old]), { forceRecreate: true });
  assert.ok(forced.operations.some((op) => op.kind === OpKind.ContainerCreate));
  assert.ok(!forced.warnings.some((text) => stale.test(text)), 'same image: no warning');

  const renewed = up(p, withImages(observedUp(p, [old]), { [DEFAULT_IMAGE]: 'sha256:new' }), {
    renewAnonVolumes: true,
  });
  assert.ok(!renewed.warnings.some((text) => stale.test(text)), '-V: nothing is carried over');
});

test("a recreated volumes_from user does not take over its source container's volumes as its own", () => {
  const data = service('data', { volumes: anonymousVolume('/data') });
  const app = service('app', { volumes_from: ['data'] });
  const p = project([data, app]);
  const dataVolume = { destination: '/data', volumeName: 'anon-data', anonymous: true };
  const observed = withImages(
    observedUp(p, [
      runningContainer(p, data, 1, { mounts: [dataVolume] }),
      runningContainer(p, app, 1, { configHash: 'old', mounts: [dataVolume] }),
    ]),
    { [DEFAULT_IMAGE]: 'sha256:new' },
  );
  const result = up(p, observed, { services: ['app'], noDeps: true });
  const create = result.operations.find((op) => op.kind === OpKind.ContainerCreate);
  assert.ok(create?.kind === OpKind.ContainerCreate && create.spec.name.endsWith('app-1'));
  assert.deepEqual(create.spec.mounts, [], "the data container's volume became an own mount of app");
  assert.deepEqual(create.spec.volumesFrom, [{ container: 'tsfig-data-1', mode: 'rw' }]);
  assert.ok(!result.warnings.some((text) => text.includes('/data')), result.warnings.join('\n'));
});

test('up --no-deps of a volumes_from or network_mode user whose donor container is gone is refused (compose v2)', () => {
  const db = service('db', { volumes: anonymousVolume('/var/data') });
  const app = service('app', { volumes_from: ['db'] });
  const net = service('net', { network_mode: 'service:db' });
  const p = project([db, app, net]);
  const withoutDb = observedUp(p, [runningContainer(p, app), runningContainer(p, net)]);
  const refused = (names: string[], what: string) =>
    assert.throws(
      () => up(p, withoutDb, { services: names, noDeps: true }),
      (error: unknown) =>
        error instanceof TsfigError &&
        error.kind === 'not-found' &&
        error.message === `cannot share ${what} with service db: container missing`,
    );
  refused(['app'], 'volume');
  refused(['net'], 'network namespace');
  // The donor's container, even stopped, is enough; so is the donor converged by the same plan.
  const stoppedDb = observedUp(p, [stoppedContainer(p, db), runningContainer(p, app), runningContainer(p, net)]);
  assert.deepEqual(up(p, stoppedDb, { services: ['app'], noDeps: true }).operations, []);
  assert.ok(up(p, withoutDb, { services: ['app'] }).operations.length > 0);
  assert.ok(up(p, withoutDb, { services: ['app', 'db'], noDeps: true }).operations.length > 0);
});

test('network_mode: bridge joins the engine-wide default bridge, created once when missing and never removed by down', () => {
  const one = service('one', { network_mode: 'bridge' });
  const two = service('two', { network_mode: 'bridge', links: ['one'] });
  const p = project([one, two]);
  const result = up(p, observedEmpty(p));
  const creates = result.operations.filter((op) => op.kind === OpKind.NetworkCreate);
  assert.deepEqual(
    creates.map((op) => (op.kind === OpKind.NetworkCreate ? [op.spec.name, op.spec.labels] : [])),
    [['bridge', {}]],
  );
  const containers = result.operations.filter((op) => op.kind === OpKind.ContainerCreate);
  for (const op of containers) {
    assert.ok(op.kind === OpKind.ContainerCreate);
    assert.deepEqual(op.spec.network, {
      mode: 'networks',
      networks: [{ network: 'bridge', aliases: [], ipv4Address: undefined, macAddress: undefined }],
    });
    assert.ok(op.dependsOn.includes(creates[0]?.id ?? -1), `${op.spec.name} waits for the bridge`);
  }
  const link = containers.find((op) => op.kind === OpKind.ContainerCreate && op.spec.name.endsWith('two-1'));
  assert.ok(link?.kind === OpKind.ContainerCreate);
  assert.deepEqual([...new Set(link.spec.links?.map((l) => l.networks.join(',')))], ['bridge']);
  const existing = { ...observedEmpty(p), networks: [{ name: 'bridge', labels: {} }] };
  assert.ok(!up(p, existing).operations.some((op) => op.kind === OpKind.NetworkCreate));
  const running = observedUp(p, [runningContainer(p, one), runningContainer(p, two)]);
  const down = planDown(p, { ...running, networks: [...running.networks, { name: 'bridge', labels: {} }] });
  assert.ok(!down.operations.some((op) => op.kind === OpKind.NetworkRemove && op.spec.name === 'bridge'));
});

test("a link lists the linked image's exposed ports (observed), then the service's expose, with no engine call", () => {
  const db = service('db', { image: 'postgres:16', expose: ['9000'] });
  const app = service('app', { links: ['db:database'] });
  const p = project([db, app]);
  const observed = observedEmpty(p);
  const withPorts: ObservedState = {
    ...observed,
    images: { ...observed.images, 'postgres:16': { id: 'sha256:pg', exposedPorts: ['5432/tcp'] } },
  };
  const linksOf = (result: Plan) =>
    result.operations.flatMap((op) =>
      op.kind === OpKind.ContainerCreate && op.spec.service === 'app' ? (op.spec.links ?? []) : [],
    );
  const links = linksOf(up(p, withPorts));
  assert.ok(links.length > 0);
  for (const link of links) assert.deepEqual(link.exposedPorts, ['5432/tcp', '9000/tcp']);
  // an image that exposes nothing: the service's own ports only
  for (const link of linksOf(up(p, observed))) assert.deepEqual(link.exposedPorts, ['9000/tcp']);
});

test('two services sharing a container_name are refused only when one up selects both (compose v2)', () => {
  const a = service('test', { container_name: 'fixed' });
  const b = service('another', { container_name: 'fixed' });
  const p = project([a, b]);
  assert.throws(
    () => up(p, observedEmpty(p)),
    (error: unknown) =>
      error instanceof TsfigError &&
      error.kind === 'conflict' &&
      error.message.includes('services "another" and "test" both set container_name "fixed"'),
  );
  for (const name of ['test', 'another']) {
    const result = up(p, observedEmpty(p), { services: [name] });
    const creates = result.operations.filter((op) => op.kind === OpKind.ContainerCreate);
    assert.deepEqual(
      creates.map((op) => (op.kind === OpKind.ContainerCreate ? op.spec.name : '')),
      ['fixed'],
    );
  }
  assert.equal(up(p, observedEmpty(p), { scale: { another: 0 } }).operations.length > 0, true, 'scale 0 takes no name');
  const down = planDown(p, observedUp(p, [runningContainer(p, a)]));
  assert.ok(down.operations.some((op) => op.kind === OpKind.ContainerRemove));
});

test('down removes containers dependents first, then networks; -v also removes volumes', () => {
  const { web, db } = webAndDb();
  const p = project([web, db], { volumes: ['data'] });
  const observed = observedUp(p, [runningContainer(p, web), runningContainer(p, db)]);
  assertGolden('down', planDown(p, observed));
  assertGolden('down-volumes', planDown(p, observed, { volumes: true, timeoutSeconds: 3 }));
});

test('down keeps orphans unless asked and removes networks still labelled with the project', () => {
  const web = service('web');
  const old = service('worker');
  const before = project([web, old], { networks: ['back'] });
  const after = project([web]);
  const observed = observedUp(before, [runningContainer(after, web), stoppedContainer(before, old)]);
  assertGolden('down-orphans', planDown(after, observed));
  assertGolden('down-remove-orphans', planDown(after, observed, { removeOrphans: true }));
});

test("down SERVICE removes only that service's containers: no other container, network or named volume", () => {
  const { web, db } = webAndDb();
  const p = project([web, db], { volumes: ['data'] });
  const observed = observedUp(p, [runningContainer(p, web), runningContainer(p, db)]);
  const scoped = planDown(p, observed, { services: ['web'], volumes: true, removeOrphans: true });
  const touched = scoped.operations.map((op) => `${op.kind} ${op.resource}`);
  assert.ok(touched.length > 0 && touched.every((text) => text.includes('web')), touched.join('\n'));
  assert.ok(!touched.some((text) => /network|volume:data/.test(text)), touched.join('\n'));
});

test('down of a project with nothing running plans nothing', () => {
  const p = project([service('web')]);
  assert.equal(renderPlanText(planDown(p, observedEmpty(p))), 'No changes. The project is up to date.\n');
});

test('a missing image fails planning before anything is created', () => {
  const { web, db } = webAndDb();
  const p = project([web, db], { volumes: ['data'] });
  const observed = { ...observedEmpty(p), images: { 'busybox:latest': { id: DEFAULT_IMAGE_ID } } };
  assert.throws(
    () => up(p, observed),
    (error: unknown) =>
      error instanceof TsfigError &&
      error.kind === 'not-found' &&
      error.message === 'image not found locally: postgres:16 (service "db")',
  );
});

test('an unknown service on the command line is a usage error', () => {
  const p = project([service('web')]);
  assert.throws(
    () => up(p, observedEmpty(p), { services: ['wbe'] }),
    (error: unknown) =>
      error instanceof TsfigError && error.kind === 'usage' && /no such service: wbe/.test(error.message),
  );
});

test('a dependency cycle is rejected even though the loader should have caught it', () => {
  const started = { condition: 'service_started', required: true, restart: false } as const;
  const p = project([service('a', { depends_on: { b: started } }), service('b', { depends_on: { a: started } })]);
  assert.throws(
    () => up(p, observedEmpty(p)),
    (error: unknown) =>
      error instanceof TsfigError && /dependency cycle between services: a -> b -> a/.test(error.message),
  );
});

test('an external network that does not exist is an error', () => {
  const web = service('web');
  const base = project([web]);
  const p = {
    ...base,
    networks: { default: { ...base.networks.default!, external: true, name: 'shared' } },
  };
  assert.throws(() => up(p, observedEmpty(p)), /network shared declared as external, but could not be found/);
});

test('plans are deterministic whatever order the engine lists things in', () => {
  const { web, db } = webAndDb();
  const cache = service('cache', { scale: 2 });
  const p = project([web, db, cache], { volumes: ['data'] });
  const containers = [
    runningContainer(p, cache, 2),
    stoppedContainer(p, db),
    runningContainer(p, cache, 1, { configHash: 'x' }),
  ];
  const observed = withImages(observedUp(p, containers), { 'postgres:16': DEFAULT_IMAGE_ID });
  const reversed = { ...observed, containers: [...containers].reverse() };
  assert.equal(renderPlanJson(up(p, observed)), renderPlanJson(up(p, reversed)));
});

test('every dependency of an op comes before it', () => {
  const { web, db } = webAndDb();
  const p = project([web, db], { volumes: ['data'] });
  const before = project(
    [
      { ...web, environment: {} },
      { ...db, environment: {} },
    ],
    { volumes: ['data'] },
  );
  const observed = withImages(observedUp(p, [runningContainer(before, web), runningContainer(before, db)]), {
    'postgres:16': DEFAULT_IMAGE_ID,
  });
  const result = up(p, observed, { alwaysRecreateDeps: true });
  result.operations.forEach((op, index) => {
    assert.equal(op.id, index + 1);
    for (const dep of op.dependsOn) assert.ok(dep < op.id, `#${op.id} depends on later #${dep}`);
  });
});

test('the JSON rendering is the versioned plan', () => {
  const p = project([service('web')]);
  const parsed = JSON.parse(renderPlanJson(up(p, observedEmpty(p)))) as Plan;
  assert.equal(parsed.version, 1);
  assert.equal(parsed.project, 'tsfig');
  assert.deepEqual(
    parsed.operations.map((op) => op.kind),
    ['network.create', 'container.create', 'container.start'],
  );
});

test('keys the engine cannot honour yet are listed as warnings above the plan', () => {
  const web = service('web', { other: { ipc: 'host' }, dns: ['1.1.1.1'] });
  const p = project([web]);
  assertGolden('unsupported-keys', up(p, observedEmpty(p)));
});

test('one-off containers are left alone by up and removed by down', () => {
  const web = service('web');
  const p = project([web]);
  const oneoff = runningContainer(p, web, 0, { id: 'id-run', name: 'tsfig-web-run-0123456789ab', oneoff: true });
  const observed = observedUp(p, [runningContainer(p, web), oneoff]);
  assert.deepEqual(up(p, observed).operations, []);
  const down = planDown(p, observed);
  assert.ok(down.operations.some((op) => op.kind === OpKind.ContainerRemove && op.spec.container === 'id-run'));
});

test('--scale of an unknown service or a bad count is a usage error', () => {
  const p = project([service('web')]);
  assert.throws(() => up(p, observedEmpty(p), { scale: { wbe: 2 } }), /--scale: no such service: wbe/);
  assert.throws(() => up(p, observedEmpty(p), { scale: { web: -1 } }), /whole number/);
});

/** A healthcheck `CMD true` with every timing left to the defaults. */
const CMD_TRUE_HEALTHCHECK = {
  test: ['CMD', 'true'],
  interval: undefined,
  timeout: undefined,
  retries: undefined,
  start_period: undefined,
  start_interval: undefined,
  disable: false,
};

test('up --wait adds a health wait with the timeout for every container that has a healthcheck', () => {
  const db = service('db', { healthcheck: CMD_TRUE_HEALTHCHECK, scale: 2 });
  const web = service('web');
  const p = project([web, db]);
  const result = up(p, observedUp(p, [runningContainer(p, db, 1), runningContainer(p, web)]), {
    wait: true,
    waitTimeoutMs: 30_000,
  });
  const waits = result.operations.filter((op) => op.kind === OpKind.ContainerWaitHealthy);
  assert.deepEqual(
    waits.map((op) => [op.resource, op.kind === OpKind.ContainerWaitHealthy && op.spec.timeoutMs, op.dependsOn.length]),
    [
      ['service:db:1', 30_000, 0],
      ['service:db:2', 30_000, 1],
    ],
  );
});

test('up --wait on an up-to-date project still reads as no changes', () => {
  const db = service('db', { healthcheck: CMD_TRUE_HEALTHCHECK });
  const p = project([db]);
  const result = up(p, observedUp(p, [runningContainer(p, db)]), { wait: true });
  assert.equal(planHasChanges(result), false);
  assert.equal(
    renderPlanText(result),
    '= wait until tsfig-db-1 is healthy (up --wait)\n\nNo changes. The project is up to date.\n',
  );
});

test('the JSON plan of a new project carries every engine argument (golden)', () => {
  const { web, db } = webAndDb();
  const p = project([web, db], { volumes: ['data'] });
  const json = renderPlanJson(up(p, withImages(observedEmpty(p), { 'postgres:16': 'sha256:pg' })));
  // The hash belongs to hash.ts; the golden shows where it goes, not its value.
  assertGoldenText(
    'new-project.json.txt',
    json.replace(/"io\.tsfig\.config-hash": "[0-9a-f]+"/g, '"io.tsfig.config-hash": "[hash]"'),
  );
});

test('a container waiting for its restart policy is neither started by up nor removed without a stop', () => {
  const web = service('web', { restart: 'on-failure:3' });
  const p = project([web]);
  const restarting = runningContainer(p, web, 1, { running: false, status: 'restarting', exitCode: 1 });
  assert.deepEqual(up(p, observedUp(p, [restarting])).operations, []);
  assert.deepEqual(
    planDown(p, observedUp(p, [restarting])).operations.map((op) => op.kind),
    ['container.stop', 'container.remove', 'network.remove'],
  );
});

test('depends_on restart: true restarts a running dependent around its recreated dependency', () => {
  const { after, observed } = dbRecreated({
    depends_on: { db: { condition: 'service_started', required: true, restart: true } },
  });
  assertGolden('dependency-recreated-restart', up(after, observed));
});

test('recreate reasons name changed ports, networks and restart policies', () => {
  const web = service('web');
  const before = project([web]);
  const changed = service('web', {
    restart: 'always',
    networks: { default: defaultServiceNetwork(), back: defaultServiceNetwork() },
    ports: [
      {
        target: 80,
        published: '8080',
        host_ip: '127.0.0.1',
        protocol: 'tcp',
        mode: 'ingress',
        name: undefined,
        app_protocol: undefined,
      },
    ],
  });
  const after = project([changed], { networks: ['back'] });
  assertGolden('changed-ports-networks', up(after, observedUp(after, [runningContainer(before, web)])));
});

// compose v2's down leaves a network a remaining container uses ("Resource is still in use") instead of failing
// (e2e TestStartStopMultipleFiles: `-f other.yaml down` while the other file's containers run)
test('down keeps a network an orphan it keeps is attached to, with a warning', () => {
  const web = service('web', { networks: { default: defaultServiceNetwork() } });
  const other = service('other', { networks: { default: defaultServiceNetwork() } });
  const before = project([web, other]);
  const after = project([web]);
  const orphan = runningContainer(before, other);
  const attached = { ...orphan, spec: { image: 'busybox', networks: [{ name: 'tsfig_default' }] } };
  const kept = planDown(after, observedUp(before, [runningContainer(after, web), attached]));
  assert.ok(!kept.operations.some((op) => op.kind === OpKind.NetworkRemove));
  assert.ok(kept.warnings.some((w) => /network tsfig_default is kept: it is still in use by tsfig-other-1/.test(w)));
  const all = planDown(after, observedUp(before, [runningContainer(after, web), attached]), { removeOrphans: true });
  assert.ok(all.operations.some((op) => op.kind === OpKind.NetworkRemove));
});

// compose v2 (reconcile.go sortContainers; e2e TestScaleDownNoRecreate): scaling down keeps the up-to-date
// containers and removes the obsolete ones, whatever their numbers
test('scale down keeps the up-to-date replicas (#3, #4) and removes the obsolete ones (#1, #2)', () => {
  const web = service('web');
  const p = project([web]);
  const old = { imageId: 'sha256:old' };
  const observed = observedUp(p, [
    runningContainer(p, web, 1, old),
    runningContainer(p, web, 2, old),
    runningContainer(p, web, 3),
    runningContainer(p, web, 4),
  ]);
  const result = up(p, observed, { scale: { web: 2 } });
  const touched = result.operations.map((op) => `${op.kind} ${op.resource}`);
  assert.deepEqual(touched.filter((t) => t.startsWith(OpKind.ContainerRemove)).sort(), [
    `${OpKind.ContainerRemove} service:web:1`,
    `${OpKind.ContainerRemove} service:web:2`,
  ]);
  assert.ok(!touched.some((t) => t.startsWith(OpKind.ContainerCreate)), touched.join('\n'));
  // --no-recreate: nothing is obsolete, the lowest numbers stay
  const keep = up(p, observed, { scale: { web: 2 }, noRecreate: true });
  assert.deepEqual(
    keep.operations
      .filter((op) => op.kind === OpKind.ContainerRemove)
      .map((op) => op.resource)
      .sort(),
    ['service:web:3', 'service:web:4'],
  );
});
