/**
 * The engine-wide default `bridge` network (network_mode: bridge): two projects' ups may both plan its creation; the
 * one that comes second finds it made and goes on (a shared create), where a project's own network would conflict.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EnginePort } from '../../src/compose/engine-port.js';
import { nullSink } from '../../src/events/events.js';
import { makeTestEngine, skipUnlessRoot } from '../helpers/engine.js';

test('a shared network create (the default bridge) that finds the network made meanwhile succeeds; a project network conflicts', async (t) => {
  if (skipUnlessRoot(t)) return;
  const te = await makeTestEngine();
  t.after(() => te.cleanup());
  const port = new EnginePort(te.engine, nullSink, te.env);
  const spec = {
    name: 'bridge',
    driver: 'bridge' as const,
    internal: false,
    subnet: undefined,
    gateway: undefined,
    labels: {},
  };
  // another project's up made it between this one's observe and its create
  await te.engine.networks.create('bridge', { internal: false, labels: {} });
  await port.createNetwork({ ...spec, shared: true });
  await assert.rejects(port.createNetwork(spec), /network "bridge" already exists/);
  assert.equal((await te.engine.networks.list()).filter((n) => n.name === 'bridge').length, 1);
});
