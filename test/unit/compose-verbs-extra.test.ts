/**
 * `cp`'s choice of containers (compose's listContainersTargetedForCopy) and `stats --format` templates.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderStatsTemplate } from '../../src/cli/compose/extra-verbs.js';
import type { StatsRow } from '../../src/cli/commands/container-verbs.js';
import { detachScanner, parseDetachKeys, parseSigProxy } from '../../src/cli/attach-session.js';
import { copyTargets } from '../../src/compose/cp.js';
import { TsfigError } from '../../src/errors.js';
import { observedUp, project, runningContainer, service, stoppedContainer } from '../helpers/project.js';

const web = service('web');
const idle = service('idle');
const p = project([web, idle]);
const observed = observedUp(p, [
  runningContainer(p, web, 2),
  stoppedContainer(p, web, 1),
  runningContainer(p, idle, 1, { oneoff: true, name: 'tsfig-idle-run-1234' }),
]);
const names = (list: readonly { name: string }[]) => list.map((container) => container.name);

test('cp into a service reaches every container (stopped ones too), out of it the first one', () => {
  assert.deepEqual(names(copyTargets(observed, { service: 'web', direction: 'to' })), ['tsfig-web-1', 'tsfig-web-2']);
  assert.deepEqual(names(copyTargets(observed, { service: 'web', direction: 'from' })), ['tsfig-web-1']);
  assert.deepEqual(names(copyTargets(observed, { service: 'web', direction: 'to', index: 2 })), ['tsfig-web-2']);
});

test('cp reaches one-off containers with --all (or --index), and names the service that has no container', () => {
  assert.throws(
    () => copyTargets(observed, { service: 'idle', direction: 'to' }),
    (error: unknown) => error instanceof TsfigError && /no container found for service "idle"/.test(error.message),
  );
  assert.deepEqual(names(copyTargets(observed, { service: 'idle', direction: 'to', all: true })), [
    'tsfig-idle-run-1234',
  ]);
  assert.throws(
    () => copyTargets(observed, { service: 'web', direction: 'from', index: 3 }),
    /service "web" has no container with index 3/,
  );
});

const row: StatsRow = {
  BlockIO: '0B / 0B',
  CPUPerc: '1.50%',
  Container: 'app-web-1',
  ID: 'abcdef123456',
  MemPerc: '0.10%',
  MemUsage: '1MiB / 1GiB',
  Name: 'app-web-1',
  NetIO: '1kB / 2kB',
  PIDs: '3',
};

test('stats --format templates: fields, json, table with docker headers; unknown fields are usage errors', () => {
  assert.equal(renderStatsTemplate([row], '{{.Name}}: {{.CPUPerc}}'), 'app-web-1: 1.50%\n');
  assert.equal(renderStatsTemplate([row], '{{json .PIDs}}'), '"3"\n');
  assert.deepEqual(JSON.parse(renderStatsTemplate([row], '{{json .}}')), row);
  assert.equal(
    renderStatsTemplate([row], 'table {{.Name}}\\t{{.MemUsage}}'),
    'NAME        MEM USAGE / LIMIT\napp-web-1   1MiB / 1GiB\n',
  );
  assert.throws(() => renderStatsTemplate([row], '{{.Nope}}'), /--format: no field "Nope"/);
  assert.throws(() => renderStatsTemplate([row], '{{range .}}x{{end}}'), /--format: unsupported template/);
});

test('attach: detach keys are parsed as docker does and held back from the container', () => {
  assert.deepEqual(parseDetachKeys('ctrl-p,ctrl-q'), [16, 17]);
  assert.deepEqual(parseDetachKeys('a,ctrl-@'), [97, 0]);
  assert.throws(() => parseDetachKeys('ctrl-1'), /--detach-keys: invalid key "ctrl-1"/);
  const scan = detachScanner([16, 17]);
  assert.deepEqual(scan(Buffer.from('ab\x10')), { forward: Buffer.from('ab'), detach: false });
  assert.deepEqual(scan(Buffer.from('c')), { forward: Buffer.from('\x10c'), detach: false });
  assert.deepEqual(scan(Buffer.from('x\x10\x11y')), { forward: Buffer.from('x'), detach: true });
  assert.equal(parseSigProxy('false'), false);
  assert.equal(parseSigProxy(true), true);
  assert.throws(() => parseSigProxy('maybe'), /--sig-proxy/);
});
