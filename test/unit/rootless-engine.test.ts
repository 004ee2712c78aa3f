/** Rootless mode in the engine: what decides it, and what it changes in specs, runtime.conf and layers (issue #16). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withoutOverlayXattrs } from '../../engine/layers/capture.js';
import { ignoredLimitsWarning, requestedLimits } from '../../engine/containers/limits.js';
import { runtimeConfEntries } from '../../engine/containers/runtime-config.js';
import type { ContainerRecord, ContainerSpec } from '../../engine/containers/types.js';
import { renderRuntimeConf } from '../../engine/runtime/conf.js';
import { isUserNamespaceMap } from '../../engine/system/rootless.js';

test("the host's identity uid_map is not rootless; any other map is", () => {
  assert.equal(isUserNamespaceMap('         0          0 4294967295\n'), false);
  assert.equal(isUserNamespaceMap('0 1001 1\n1 100000 65536\n'), true);
  assert.equal(isUserNamespaceMap('0 1001 1\n'), true);
  assert.equal(isUserNamespaceMap('0 0 65536\n'), true);
  assert.equal(isUserNamespaceMap(''), true);
});

test('limits are named by their docker flags; none asked gives no warning even without cgroups', () => {
  const spec: ContainerSpec = { image: 'x', memory: 64 << 20, nanoCpus: 5e8, pidsLimit: 10 };
  assert.deepEqual(requestedLimits(spec), ['memory', 'cpus', 'pids-limit']);
  assert.equal(ignoredLimitsWarning({ image: 'x' }, false), undefined);
  assert.equal(ignoredLimitsWarning({ image: 'x', memory: 0 }, false), undefined);
  assert.equal(ignoredLimitsWarning(spec, true), undefined);
});

test('limits asked where containers have no cgroups: one warning, the same text for every container', () => {
  const a = ignoredLimitsWarning({ image: 'x', memory: 64 << 20 }, false);
  const b = ignoredLimitsWarning({ image: 'y', cpuShares: 512, pidsLimit: 5 }, false);
  assert.match(
    a ?? '',
    /^resource limits .* are ignored: rootless containers run without cgroups on this host \(cgroup v[12]/,
  );
  assert.equal(a, b);
});

const record: ContainerRecord = {
  v: 1,
  id: 'a'.repeat(64),
  name: 'web',
  created: '2026-01-01T00:00:00.000Z',
  imageId: 'sha256:' + 'b'.repeat(64),
  imageRef: 'x',
  spec: { image: 'x', memory: 1 << 20 },
  process: { argv: ['true'], env: [], cwd: '/', user: '' },
  hostname: 'aaaaaaaaaaaa',
  capabilities: [],
  stopSignal: 15,
  stopTimeout: 10,
  mounts: [],
  labels: {},
};

test('runtime.conf of a container without cgroups says `cgroup none`, and carries the oom_score_adj given', () => {
  const text = renderRuntimeConf(
    runtimeConfEntries(record, ['/l'], { dir: '/c', runDir: '/r', cgroup: 'none' }, 'new', undefined, 200),
  );
  const lines = text.split('\n');
  assert.ok(lines.includes('cgroup none'));
  assert.ok(lines.includes('oom_score_adj 200'));
  const root = renderRuntimeConf(
    runtimeConfEntries(record, ['/l'], { dir: '/c', runDir: '/r', cgroup: 'tsf-x/a' }, 'new'),
  );
  assert.ok(root.split('\n').includes('oom_score_adj 0'));
});

test("a layer from an upper dir: overlay's own xattrs of the mode's prefix make opacity and are dropped", () => {
  const entry = (xattrs: Record<string, Buffer>) => ({
    name: 'd',
    type: 'dir' as const,
    mode: 0o755,
    uid: 0,
    gid: 0,
    mtime: 0,
    xattrs,
  });
  const rootless = withoutOverlayXattrs(
    entry({ 'user.overlay.opaque': Buffer.from('y'), 'user.keep': Buffer.from('1') }),
    'user.overlay.',
  );
  assert.equal(rootless.opaque, true);
  assert.deepEqual(Object.keys(rootless.entry.xattrs ?? {}), ['user.keep']);
  // as root a user.overlay.* xattr is the image's own, overlay does not read it
  const root = withoutOverlayXattrs(entry({ 'user.overlay.opaque': Buffer.from('y') }), 'trusted.overlay.');
  assert.equal(root.opaque, false);
  assert.deepEqual(Object.keys(root.entry.xattrs ?? {}), ['user.overlay.opaque']);
  assert.equal(
    withoutOverlayXattrs(entry({ 'trusted.overlay.opaque': Buffer.from('y') }), 'trusted.overlay.').opaque,
    true,
  );
});
