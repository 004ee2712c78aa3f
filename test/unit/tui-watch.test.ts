import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { DockerIgnore } from '../../engine/build/dockerignore.js';
import { Debouncer } from '../../src/watch/debounce.js';
import { containerPath, watchRules, type WatchRule } from '../../src/watch/rules.js';
import { printfFormat, syncScripts } from '../../src/watch/sync.js';
import { matches } from '../../src/watch/watch.js';
import type { Project } from '../../src/model/project.js';

function projectWith(develop: unknown): Project {
  return {
    name: 'demo',
    project_directory: '/work/app',
    services: { web: { name: 'web', other: { develop }, build: undefined } },
  } as unknown as Project;
}

const rule = (overrides: Partial<WatchRule> = {}): WatchRule => ({
  service: 'web',
  path: '/work/app/src',
  action: 'sync',
  target: '/app',
  ignore: [],
  include: [],
  initialSync: false,
  deprecations: [],
  exec: undefined,
  ...overrides,
});

test('develop.watch rules resolve paths against the project directory and check their fields', () => {
  const rules = watchRules(
    projectWith({
      watch: [
        { path: './src', action: 'sync', target: '/app/', ignore: 'node_modules', initial_sync: true },
        { path: 'package.json', action: 'rebuild' },
        { path: 'conf', action: 'sync+exec', target: '/etc/app', exec: { command: 'kill -HUP 1' } },
      ],
    }),
  );
  assert.equal(rules.length, 3);
  assert.deepEqual(
    [rules[0]?.path, rules[0]?.target, rules[0]?.ignore, rules[0]?.initialSync],
    ['/work/app/src', '/app', ['node_modules'], true],
  );
  assert.equal(rules[1]?.action, 'rebuild');
  assert.deepEqual(rules[2]?.exec?.command, ['/bin/sh', '-c', 'kill -HUP 1']);
  assert.throws(() => watchRules(projectWith({ watch: [{ path: 'x', action: 'sync' }] })), /needs an absolute target/);
  assert.throws(() => watchRules(projectWith({ watch: [{ path: 'x', action: 'copy' }] })), /action must be one of/);
  assert.deepEqual(watchRules(projectWith(undefined)), []);
});

test("compose's older x-initialSync still syncs first, with compose's deprecation warning (TestCheckWarningXInitialSyn)", () => {
  const [legacy, official] = watchRules(
    projectWith({
      watch: [
        { path: './src', action: 'sync', target: '/app', 'x-initialSync': true },
        { path: './lib', action: 'sync', target: '/lib', initial_sync: true },
      ],
    }),
  );
  assert.equal(legacy?.initialSync, true);
  assert.deepEqual(legacy?.deprecations, [
    'x-initialSync is DEPRECATED, please use the official `initial_sync` attribute',
  ]);
  assert.deepEqual(official?.deprecations, []);
});

test('a changed path maps below the target; paths outside the rule do not map', () => {
  assert.equal(containerPath(rule(), '/work/app/src/a/b.js', false), '/app/a/b.js');
  assert.equal(containerPath(rule(), '/work/app/src', false), '/app');
  assert.equal(containerPath(rule(), '/work/app/other.js', false), undefined);
  assert.equal(
    containerPath(rule({ path: '/work/app/x.conf', target: '/etc/x.conf' }), '/work/app/x.conf', true),
    '/etc/x.conf',
  );
});

test('ignore and include patterns are .dockerignore-style, relative to the rule path', () => {
  const matcher = {
    rule: rule(),
    ignore: new DockerIgnore(['.git', '**/*.swp', 'node_modules']),
    include: new DockerIgnore(['**/*.js', 'lib']),
    context: undefined,
  };
  assert.equal(matches(matcher, '/work/app/src/a.js'), true);
  assert.equal(matches(matcher, '/work/app/src/lib/readme.md'), true);
  assert.equal(matches(matcher, '/work/app/src/readme.md'), false, 'not included');
  assert.equal(matches(matcher, '/work/app/src/node_modules/x/index.js'), false, 'ignored');
  assert.equal(matches(matcher, '/work/app/src/.a.js.swp'), false);
  assert.equal(matches(matcher, '/work/app/elsewhere.js'), false);
});

test('printf formats reproduce every byte through sh', () => {
  const data = Buffer.from([0, 1, 0x27, 0x5c, 0x25, 0x0a, 0x41, 0xff, 0x2d]);
  const format = printfFormat(Buffer.concat([Buffer.from('-'), data]));
  assert.ok(format.startsWith("'\\055"), 'a leading dash is escaped (not an option)');
  const out = execFileSync('sh', ['-c', `printf ${format}`]);
  assert.deepEqual(out, Buffer.concat([Buffer.from('-'), data]));
});

test('sync scripts write through a temporary name and split large files under the argument limit', () => {
  const big = Buffer.alloc(200 * 1024, 0x61);
  const scripts = syncScripts([
    { kind: 'write', dest: "/app/it's.txt", data: Buffer.from('hi\n'), mode: 0o100644 },
    { kind: 'write', dest: '/app/big.bin', data: big, mode: 0o100755 },
    { kind: 'remove', dest: '/app/gone' },
    { kind: 'symlink', dest: '/app/link', link: 'hello.txt' },
  ]);
  assert.ok(scripts.length >= 2);
  for (const script of scripts) {
    assert.ok(script.startsWith('set -e\n'));
    assert.ok(script.length < 128 * 1024);
  }
  const all = scripts.join('\n');
  assert.match(all, /printf 'hi\n' > '\/app\/it'\\''s\.txt\.tsfig-sync'/);
  assert.match(all, /mv -f '\/app\/it'\\''s\.txt\.tsfig-sync' '\/app\/it'\\''s\.txt'/);
  assert.match(all, /chmod 755 '\/app\/big\.bin\.tsfig-sync'/);
  assert.match(all, />> '\/app\/big\.bin\.tsfig-sync'/);
  assert.match(all, /rm -rf '\/app\/gone'/);
  assert.match(all, /ln -s 'hello\.txt' '\/app\/link'/);
});

test('the debouncer turns a burst into one flush with every key', async () => {
  const flushes: string[][] = [];
  const debouncer = new Debouncer<string>((keys) => flushes.push(keys), 20, 1000);
  for (let index = 0; index < 100; index++) debouncer.add(index % 2 === 0 ? 'a' : 'b');
  await new Promise<void>((resolve) => {
    const poll = () => (flushes.length > 0 ? resolve() : setTimeout(poll, 5));
    poll();
  });
  assert.deepEqual(flushes, [['a', 'b']]);
  debouncer.cancel();
});
