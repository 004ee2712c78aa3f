import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { NEEDS_ROOT, eventually, suiteEngine, writeProject, type CliResult } from '../helpers/engine.js';
import { makeBusyboxRootfs } from '../helpers/rootfs.js';

const BUSYBOX = 'tsfig/busybox:latest';

interface PsRow {
  ID: string;
  Name: string;
  Service: string;
  State: string;
}

describe('compose volumes and data containers (root)', { skip: NEEDS_ROOT }, () => {
  const t = suiteEngine('root');
  let projects = 0;

  /** A fresh project directory holding tsfig.yml with the given text; returns the directory and project name. */
  async function project(yaml: string): Promise<{ dir: string; name: string }> {
    const name = `vproject${++projects}`;
    return { dir: await writeProject(t, name, yaml), name };
  }

  async function ok(args: string[], dir: string, env?: Record<string, string>): Promise<CliResult> {
    const result = await t.cli(args, { cwd: dir, ...(env !== undefined ? { env } : {}) });
    assert.equal(result.code, 0, `tsfig ${args.join(' ')} failed:\n${result.stderr}`);
    return result;
  }

  async function ps(dir: string): Promise<PsRow[]> {
    const result = await ok(['ps', '-a', '--format', 'json'], dir);
    return result.stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as PsRow);
  }

  async function sh(dir: string, service: string, script: string): Promise<string> {
    return (await ok(['exec', '-T', service, 'sh', '-c', script], dir)).stdout;
  }

  async function volumeNames(): Promise<string[]> {
    return (await t.engine.volumes.list()).volumes.map((volume) => volume.Name);
  }

  /** `down -v`, then nothing of the project is left: containers, networks, volumes labelled with it. */
  async function downAll(dir: string, name: string): Promise<void> {
    await ok(['down', '-v', '-t', '1'], dir);
    const containers = (await t.engine.containers.list({ all: true })).filter(
      (c) => c.labels['io.tsfig.project'] === name,
    );
    assert.deepEqual(containers, [], 'containers left after down -v');
    const networks = (await t.engine.networks.list()).filter((n) => n.labels['io.tsfig.project'] === name);
    assert.deepEqual(networks, [], 'networks left after down -v');
    const volumes = (await t.engine.volumes.list()).volumes.filter((v) => v.Labels['io.tsfig.project'] === name);
    assert.deepEqual(
      volumes.map((v) => v.Name),
      [],
      'volumes left after down -v',
    );
  }

  /** Nothing at all exists in the engine: for bad input that must change nothing. */
  async function assertEngineEmpty(): Promise<void> {
    assert.deepEqual(await t.engine.containers.list({ all: true }), [], 'a container was created');
    assert.deepEqual(await t.engine.networks.list(), [], 'a network was created');
    assert.deepEqual(await volumeNames(), [], 'a volume was created');
  }

  /** Every process of the project's containers: the monitors (status.json) and everything in their cgroups. */
  async function stackPids(name: string): Promise<number[]> {
    const pids = new Set<number>();
    const containers = (await t.engine.containers.list({ all: true })).filter(
      (c) => c.labels['io.tsfig.project'] === name,
    );
    for (const c of containers) {
      const status = JSON.parse(readFileSync(path.join(t.engine.paths.containers, c.id, 'status.json'), 'utf8')) as {
        monitor: number;
        pid: number;
      };
      pids.add(status.monitor);
      pids.add(status.pid);
    }
    // This root's cgroup parent holds only this test engine's containers (tsf-<root id>).
    for (const controller of readdirSync('/sys/fs/cgroup')) {
      const parent = path.join('/sys/fs/cgroup', controller, t.engine.paths.cgroupParent);
      if (!existsSync(parent)) continue;
      for (const entry of readdirSync(parent, { withFileTypes: true })) {
        if (!entry.isDirectory()) continue;
        const procs = path.join(parent, entry.name, 'cgroup.procs');
        if (!existsSync(procs)) continue;
        for (const line of readFileSync(procs, 'utf8').split('\n')) if (line !== '') pids.add(Number(line));
      }
    }
    pids.delete(0);
    return [...pids];
  }

  test('the data-container pattern: data service, app with volumes_from, run --rm reads what the app wrote', async () => {
    const { dir, name } = await project(`services:
  data:
    image: ${BUSYBOX}
    volumes: [/data]
    command: "true"
  app:
    image: ${BUSYBOX}
    volumes_from: [data]
    command: sh -c 'echo written-by-app > /data/file; exec sleep 300'
    init: true
  reader:
    image: ${BUSYBOX}
    volumes_from: ["data:ro"]
    profiles: [tools]
    command: cat /data/file
`);
    try {
      await ok(['up', '-d'], dir);
      const anonymous = await volumeNames();
      assert.equal(anonymous.length, 1, `one anonymous volume for /data: ${anonymous.join(', ')}`);
      await eventually(async () => {
        const result = await t.cli(['exec', '-T', 'app', 'cat', '/data/file'], { cwd: dir });
        return result.stdout === 'written-by-app\n' ? true : undefined;
      });

      const read = await ok(['run', '--rm', '-T', 'reader'], dir);
      assert.equal(read.stdout, 'written-by-app\n');
      const write = await t.cli(['run', '--rm', '-T', 'reader', 'sh', '-c', 'echo x > /data/other'], { cwd: dir });
      assert.notEqual(write.code, 0, 'a volumes_from :ro mount was writable');
      assert.match(write.stderr + write.stdout, /Read-only file system/);

      const oneoffs = (await t.engine.containers.list({ all: true })).filter(
        (c) => c.labels['io.tsfig.oneoff'] === 'True',
      );
      assert.deepEqual(oneoffs, [], 'run --rm left its container');
      assert.deepEqual(await volumeNames(), anonymous, "run --rm removed the data container's volume");
      // A one-off of the data service gets its own anonymous /data, which run --rm removes.
      assert.equal((await ok(['run', '--rm', '-T', 'data', 'ls', '-A', '/data'], dir)).stdout, '');
      assert.deepEqual(await volumeNames(), anonymous, 'run --rm left its anonymous volume');
      const failed = await t.cli(['run', '--rm', '-T', 'data', '/no/such/command'], { cwd: dir });
      assert.equal(failed.code, 127, failed.stderr);
      assert.deepEqual(await volumeNames(), anonymous, 'run --rm that failed to start left its anonymous volume');

      // Recreating the app keeps reading the data container's volume (not a copy of it).
      await writeFile(
        path.join(dir, 'tsfig.yml'),
        (await readFile(path.join(dir, 'tsfig.yml'), 'utf8')).replace(
          'init: true',
          'init: true\n    environment: [X=1]',
        ),
      );
      await ok(['up', '-d', 'app'], dir);
      assert.equal(await sh(dir, 'app', 'cat /data/file'), 'written-by-app\n');
      assert.deepEqual(await volumeNames(), anonymous);
      await ok(['up', '-d', '-V', '--force-recreate', 'app'], dir);
      assert.deepEqual(await volumeNames(), anonymous, "-V on the app removed the data container's volume");
      assert.equal((await ok(['run', '--rm', '-T', 'reader'], dir)).stdout, 'written-by-app\n');

      // rm -v: the data container's volume goes with the last container that uses it.
      await ok(['rm', '-s', '-f', '-v'], dir);
      assert.deepEqual(await ps(dir), []);
      assert.deepEqual(await volumeNames(), [], 'rm -v left the anonymous volume');
    } finally {
      await downAll(dir, name);
    }
    assert.deepEqual(await volumeNames(), []);
  });

  test('a named volume survives down/up, --force-recreate, an image rebuild and kill -9 of the stack; down -v removes it', async () => {
    const { dir, name } = await project(`services:
  db:
    image: ${BUSYBOX}
    command: sleep 300
    init: true
    volumes: ["dbdata:/var/lib/db"]
  sidecar:
    image: ${BUSYBOX}
    command: sleep 300
    init: true
volumes:
  dbdata: {}
`);
    const volume = `${name}_dbdata`;
    try {
      await ok(['up', '-d'], dir);
      await sh(dir, 'db', 'echo precious > /var/lib/db/table');
      const inspect = await ok(['volume', 'inspect', volume], dir);
      assert.match(inspect.stdout, new RegExp(`"io.tsfig.project": "${name}"`));

      await ok(['down', '-t', '1'], dir);
      assert.deepEqual(await ps(dir), []);
      assert.ok((await volumeNames()).includes(volume), 'down removed the named volume');
      await ok(['up', '-d'], dir);
      assert.equal(await sh(dir, 'db', 'cat /var/lib/db/table'), 'precious\n');

      const before = (await ps(dir)).find((row) => row.Service === 'db')?.ID;
      await ok(['up', '-d', '--force-recreate'], dir);
      assert.notEqual((await ps(dir)).find((row) => row.Service === 'db')?.ID, before, 'not recreated');
      assert.equal(await sh(dir, 'db', 'cat /var/lib/db/table'), 'precious\n');

      // An image rebuild: the same tag now names another image; up recreates db and the data stays.
      const rootfs = await mkdtemp(path.join(t.dir, 'rootfs-'));
      await makeBusyboxRootfs(rootfs);
      await writeFile(path.join(rootfs, 'etc', 'rebuilt'), 'yes\n');
      await t.engine.images.importRootfs({ kind: 'dir', path: rootfs }, { reference: `${name}/db:latest` });
      await writeFile(
        path.join(dir, 'tsfig.yml'),
        (await readFile(path.join(dir, 'tsfig.yml'), 'utf8')).replace(
          `image: ${BUSYBOX}\n    command: sleep 300\n    init: true\n    volumes`,
          `image: ${name}/db:latest\n    command: sleep 300\n    init: true\n    volumes`,
        ),
      );
      await ok(['up', '-d'], dir);
      assert.equal(await sh(dir, 'db', 'cat /etc/rebuilt /var/lib/db/table'), 'yes\nprecious\n');
      await writeFile(path.join(rootfs, 'etc', 'rebuilt'), 'again\n');
      await t.engine.images.importRootfs({ kind: 'dir', path: rootfs }, { reference: `${name}/db:latest` });
      const dry = await ok(['up', '--dry-run'], dir);
      assert.match(dry.stdout, new RegExp(`~ recreate container ${name}-db-1 \\(image changed\\)`));
      const rebuilt = await ok(['up', '-d'], dir);
      assert.doesNotMatch(rebuilt.stderr, /renew-anon-volumes/, 'a named volume is not an anonymous one');
      assert.equal(await sh(dir, 'db', 'cat /etc/rebuilt /var/lib/db/table'), 'again\nprecious\n');
      await rm(rootfs, { recursive: true, force: true });

      // kill -9 of every process of the stack (monitors and container processes; only this test's own).
      const pids = await stackPids(name);
      assert.ok(pids.length >= 4, `expected monitors and processes of two containers, got ${pids.join(' ')}`);
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
        }
      }
      await eventually(() => (pids.every((pid) => !existsSync(`/proc/${pid}`)) ? true : undefined));
      await eventually(async () => ((await ps(dir)).every((row) => row.State !== 'running') ? true : undefined));
      await ok(['up', '-d'], dir);
      assert.deepEqual(
        (await ps(dir)).map((row) => row.State),
        ['running', 'running'],
      );
      assert.equal(await sh(dir, 'db', 'cat /var/lib/db/table'), 'precious\n');

      // In use: the engine refuses to remove it and names the container.
      const busy = await t.cli(['volume', 'rm', volume], { cwd: dir });
      assert.equal(busy.code, 1);
      assert.match(busy.stderr, new RegExp(`volume ${volume} is in use by container ${name}-db-1`));
      assert.ok((await volumeNames()).includes(volume));
    } finally {
      await downAll(dir, name);
    }
    assert.ok(!(await volumeNames()).includes(volume), 'down -v kept the named volume');
    assert.ok(!existsSync(t.engine.volumes.dataDir(volume)), "the volume's data is still on disk");
    await t.engine.images.remove(`${name}/db:latest`).catch(() => undefined);
  });

  test('an anonymous volume is populated from the image and carried across recreate; -V gives a fresh one; a changed image warns', async () => {
    // web asks for the anonymous volume in the project file, worker gets it from the image's VOLUME.
    const image = 'vtest/node-app:latest';
    const rootfs = await mkdtemp(path.join(t.dir, 'rootfs-'));
    await makeBusyboxRootfs(rootfs);
    await mkdir(path.join(rootfs, 'app', 'node_modules'), { recursive: true });
    const build = async (version: string) => {
      await writeFile(path.join(rootfs, 'app', 'node_modules', 'version'), `${version}\n`);
      const options = { reference: image, changes: ['VOLUME /app/node_modules'] };
      return (await t.engine.images.importRootfs({ kind: 'dir', path: rootfs }, options)).id;
    };
    await build('v1');
    const yaml = (value: string) => `services:
  web:
    image: ${image}
    command: sleep 300
    init: true
    environment:
      VALUE: "${value}"
    volumes: [/app/node_modules]
  worker:
    image: ${image}
    command: sleep 300
    init: true
`;
    const both = async (script: string) => [await sh(dir, 'web', script), await sh(dir, 'worker', script)];
    const { dir, name } = await project(yaml('one'));
    try {
      await ok(['up', '-d'], dir);
      assert.deepEqual(await both('cat /app/node_modules/version'), ['v1\n', 'v1\n'], 'not populated from the image');
      await both('echo installed > /app/node_modules/marker');
      const first = await volumeNames();
      assert.equal(first.length, 2, first.join(', '));

      await writeFile(path.join(dir, 'tsfig.yml'), yaml('two'));
      assert.match((await ok(['up', '--dry-run'], dir)).stdout, /~ recreate container .*-web-1 .*VALUE/);
      const recreated = await ok(['up', '-d'], dir);
      assert.doesNotMatch(recreated.stderr, /renew-anon-volumes/, 'warned although the image did not change');
      assert.deepEqual(await both('cat /app/node_modules/marker'), ['installed\n', 'installed\n'], 'not carried over');
      assert.deepEqual(await volumeNames(), first);

      // The image changes: the carried-over volumes hide the new content; tsfig says so and names -V.
      await build('v2');
      const plan = await ok(['up', '--dry-run'], dir);
      assert.match(plan.stdout, /image changed/);
      assert.match(plan.stdout, /service web: .*\/app\/node_modules .*-V\/--renew-anon-volumes/);
      const stale = await ok(['up', '-d'], dir);
      for (const service of ['web', 'worker']) {
        assert.match(
          stale.stderr,
          new RegExp(
            `WARN service ${service}: the image changed, but the anonymous volume at /app/node_modules is carried over.*-V/--renew-anon-volumes`,
          ),
        );
      }
      assert.deepEqual(await both('cat /app/node_modules/version /app/node_modules/marker'), [
        'v1\ninstalled\n',
        'v1\ninstalled\n',
      ]);
      assert.deepEqual(await volumeNames(), first);

      const fresh = await ok(['up', '-d', '-V', '--force-recreate'], dir);
      assert.doesNotMatch(fresh.stderr, /renew-anon-volumes/);
      assert.deepEqual(await both('ls /app/node_modules; cat /app/node_modules/version'), [
        'version\nv2\n',
        'version\nv2\n',
      ]);
      const renewed = await volumeNames();
      assert.equal(renewed.length, 2, `old anonymous volumes are left: ${renewed.join(', ')}`);
      assert.ok(!renewed.some((volume) => first.includes(volume)), '-V kept an old volume');
    } finally {
      await downAll(dir, name);
      await rm(rootfs, { recursive: true, force: true });
    }
    assert.deepEqual(await volumeNames(), []);
    await t.engine.images.remove(image).catch(() => undefined);
  });

  test(':ro mounts cannot be written; tmpfs size is enforced (tmpfs: and long syntax)', async () => {
    const { dir, name } = await project(`services:
  box:
    image: ${BUSYBOX}
    command: sleep 300
    init: true
    tmpfs: ["/scratch:size=1m"]
    volumes:
      - "shared:/shared:ro"
      - "./src:/src:ro"
      - type: volume
        source: shared
        target: /shared-long
        read_only: true
      - type: tmpfs
        target: /cache
        tmpfs:
          size: 1m
volumes:
  shared: {}
`);
    try {
      await ok(['up', '-d'], dir);
      for (const target of ['/shared', '/src', '/shared-long']) {
        const write = await t.cli(['exec', '-T', 'box', 'touch', `${target}/x`], { cwd: dir });
        assert.notEqual(write.code, 0, `${target} was writable`);
        assert.match(write.stderr, /Read-only file system/);
      }
      const mounts = await sh(dir, 'box', 'grep -E " /(scratch|cache) " /proc/mounts');
      assert.match(mounts, /^tmpfs \/scratch tmpfs rw,.*size=1024k/m);
      assert.match(mounts, /^tmpfs \/cache tmpfs rw,.*size=1024k/m);
      for (const target of ['/scratch', '/cache']) {
        const fill = await t.cli(
          ['exec', '-T', 'box', 'dd', 'if=/dev/zero', `of=${target}/big`, 'bs=1024', 'count=2048'],
          { cwd: dir },
        );
        assert.notEqual(fill.code, 0, `${target} took 2 MiB`);
        assert.match(fill.stderr, /No space left on device/);
      }
    } finally {
      await downAll(dir, name);
    }
  });

  test('external volumes and name: overrides: used by up, external never removed by down -v; a missing external is refused first', async () => {
    await ok(['volume', 'create', 'vtest-external'], t.dir);
    try {
      await writeFile(path.join(t.engine.volumes.dataDir('vtest-external'), 'seed'), 'from-outside\n');
      const { dir, name } = await project(`services:
  box:
    image: ${BUSYBOX}
    command: sleep 300
    init: true
    volumes: ["ext:/ext", "custom:/custom"]
volumes:
  ext:
    external: true
    name: vtest-external
  custom:
    name: vtest-custom-name
`);
      try {
        const up = await ok(['up', '-d'], dir);
        assert.doesNotMatch(up.stderr, /already exists/);
        assert.equal(
          await sh(dir, 'box', 'cat /ext/seed; echo inside > /custom/f; cat /custom/f'),
          'from-outside\ninside\n',
        );
        assert.deepEqual(await volumeNames(), ['vtest-custom-name', 'vtest-external']);
        await ok(['down', '-t', '1'], dir);
        await ok(['up', '-d'], dir);
        assert.equal(await sh(dir, 'box', 'cat /custom/f'), 'inside\n');
      } finally {
        await downAll(dir, name);
      }
      assert.deepEqual(await volumeNames(), ['vtest-external'], 'down -v removed an external volume');
      assert.equal(
        readFileSync(path.join(t.engine.volumes.dataDir('vtest-external'), 'seed'), 'utf8'),
        'from-outside\n',
      );
    } finally {
      await ok(['volume', 'rm', 'vtest-external'], t.dir);
    }

    const missing = await project(`services:
  box:
    image: ${BUSYBOX}
    command: sleep 300
    volumes: ["ext:/ext", "mine:/mine"]
volumes:
  ext:
    external: true
    name: vtest-not-there
  mine: {}
`);
    const refused = await t.cli(['up', '-d'], { cwd: missing.dir });
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /external volume not found: vtest-not-there/);
    assert.match(refused.stderr, /hint: create it first \(tsfig volume create vtest-not-there\)/);
    await assertEngineEmpty();
  });

  test('bind sources: a missing one is created for the short syntax, refused with create_host_path: false', async () => {
    const short = await project(`services:
  box:
    image: ${BUSYBOX}
    command: sh -c 'echo hi > /made/by-container; exec sleep 300'
    init: true
    volumes: ["./made/here:/made"]
`);
    try {
      const up = await ok(['up', '-d'], short.dir);
      assert.match(
        up.stderr,
        new RegExp(`note: ${short.name}-box-1: created the missing bind source ${path.join(short.dir, 'made')}`),
      );
      const host = path.join(short.dir, 'made', 'here', 'by-container');
      await eventually(() => (existsSync(host) ? true : undefined));
      assert.equal(readFileSync(host, 'utf8'), 'hi\n');
    } finally {
      await downAll(short.dir, short.name);
    }
    assert.ok(existsSync(path.join(short.dir, 'made', 'here')), 'down removed a host directory');

    const long = await project(`services:
  first:
    image: ${BUSYBOX}
    command: sleep 300
    volumes: ["data:/data"]
  box:
    image: ${BUSYBOX}
    command: sleep 300
    volumes:
      - type: bind
        source: ./absent
        target: /mnt
        bind:
          create_host_path: false
volumes:
  data: {}
`);
    const refused = await t.cli(['up', '-d'], { cwd: long.dir });
    try {
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(
        refused.stderr,
        new RegExp(`service "box" volumes\\[0\\]: bind source path does not exist: ${path.join(long.dir, 'absent')}`),
      );
      assert.match(refused.stderr, /create_host_path: true/);
      assert.ok(!existsSync(path.join(long.dir, 'absent')), 'the missing bind source was created');
      await assertEngineEmpty();
    } finally {
      await downAll(long.dir, long.name);
    }
  });

  test('bad volume input is a project error with file:line:col, exit 65, nothing created', async () => {
    const cases: Array<[string, RegExp]> = [
      [
        `services:\n  box:\n    image: ${BUSYBOX}\n    volumes: ["/x:/y:bogus"]\n`,
        /tsfig\.yml:4:15: error: services\.box\.volumes\[0\]: invalid volume "\/x:\/y:bogus"/,
      ],
      [
        `services:\n  box:\n    image: ${BUSYBOX}\n    volumes: ["a:b:c:d"]\n`,
        /tsfig\.yml:4:15: error: services\.box\.volumes\[0\]: invalid volume "a:b:c:d"/,
      ],
      [
        `services:\n  box:\n    image: ${BUSYBOX}\n    volumes: ["nosuch:/data"]\n`,
        /tsfig\.yml:4:15: error: services\.box\.volumes\[0\]: volume "nosuch" is not declared in the top-level volumes section/,
      ],
      [
        `services:\n  box:\n    image: ${BUSYBOX}\n    volumes: ["data:/data"]\nvolumes:\n  data:\n    name: ../escape\n`,
        /tsfig\.yml:7:11: error: volumes\.data\.name: volume name "\.\.\/escape" contains a path separator/,
      ],
      [
        `services:\n  box:\n    image: ${BUSYBOX}\n    volumes: ["data:/data"]\nvolumes:\n  data:\n    external: true\n    name: a/b\n`,
        /tsfig\.yml:8:11: error: volumes\.data\.name: volume name "a\/b" contains a path separator/,
      ],
      [
        `services:\n  box:\n    image: ${BUSYBOX}\n    volumes: ["a/b:/data"]\nvolumes:\n  a/b: {}\n`,
        /tsfig\.yml:6:3: error: invalid name "a\/b" under volumes/,
      ],
    ];
    for (const [yaml, expected] of cases) {
      const { dir } = await project(yaml);
      const result = await t.cli(['up', '-d'], { cwd: dir });
      assert.equal(result.code, 65, `${yaml}\n${result.stderr}`);
      assert.match(result.stderr, expected);
      assert.deepEqual(readdirSync(dir), ['tsfig.yml'], 'something was created in the project directory');
      await assertEngineEmpty();
    }
    assert.ok(!existsSync(path.join(t.dir, 'escape')));
    assert.ok(!existsSync(path.join(t.engine.paths.root, 'escape')));
    const volumesDir = t.engine.paths.volumes;
    assert.deepEqual(existsSync(volumesDir) ? readdirSync(volumesDir) : [], []);
  });
  test('type: image mounts another image read-only (one layer: a bind, more: an overlay); the image is in use meanwhile', async () => {
    const { dir } = await project(`services:
  data:
    build: ./data
    image: imgvol-data:1
    profiles: ["build"]
  app:
    image: ${BUSYBOX}
    command: sleep 600
    init: true
    volumes:
      - type: image
        source: imgvol-data:1
        target: /mnt/data
      - type: image
        source: ${BUSYBOX}
        target: /mnt/bb
`);
    await mkdir(path.join(dir, 'data'), { recursive: true });
    await writeFile(
      path.join(dir, 'data', 'Dockerfile'),
      `FROM ${BUSYBOX}\nRUN mkdir /payload && echo hello from the image > /payload/msg\n`,
    );
    try {
      await ok(['--profile', 'build', 'build', 'data'], dir);
      await ok(['up', '-d', 'app'], dir);
      // Two layers (busybox, the RUN): an overlay of both; its files and the base image's are there.
      const read = await ok(['exec', '-T', 'app', 'cat', '/mnt/data/payload/msg'], dir);
      assert.equal(read.stdout, 'hello from the image\n');
      assert.equal((await ok(['exec', '-T', 'app', 'test', '-x', '/mnt/data/bin/busybox'], dir)).code, 0);
      const mounts = await ok(['exec', '-T', 'app', 'cat', '/proc/mounts'], dir);
      assert.match(mounts.stdout, /^overlay \/mnt\/data overlay ro,/m);
      assert.match(mounts.stdout, / \/mnt\/bb \S+ ro,/m);
      // Read-only, both.
      for (const target of ['/mnt/data/payload/msg', '/mnt/bb/new']) {
        const write = await t.cli(['exec', '-T', 'app', 'sh', '-c', `echo x > ${target}`], { cwd: dir });
        assert.notEqual(write.code, 0, `${target} was writable`);
        assert.match(write.stderr + write.stdout, /Read-only file system/);
      }
      // The mounted image is in use while the container exists.
      const rm = await t.cli(['image', 'rm', 'imgvol-data:1'], { cwd: dir });
      assert.notEqual(rm.code, 0);
      assert.match(rm.stderr, /in use by container/);
    } finally {
      await t.cli(['down', '-t', '0'], { cwd: dir });
      await t.cli(['image', 'rm', 'imgvol-data:1'], { cwd: dir });
    }
    assert.equal((await t.cli(['image', 'inspect', 'imgvol-data:1'], { cwd: dir })).code !== 0, true);
  });

  test('volume.subpath and image.subpath mount only that path; a symlink planted by a container is refused (attack)', async () => {
    const sub = (source: string, subpath: string, kind = 'volume'): string =>
      `    volumes:\n      - type: ${kind}\n        source: ${source}\n        target: /mnt\n        ${kind}:\n          subpath: ${subpath}\n`;
    const { dir } = await project(`services:
  planter:
    image: ${BUSYBOX}
    command: ["sh", "-c", "mkdir -p /data/real/deep && echo inside > /data/real/f && ln -s / /data/evil && ln -s /etc /data/evil2 && ln -s real /data/rel && echo planted"]
    volumes: [data:/data]
  reader:
    image: ${BUSYBOX}
    command: ["sh", "-c", "ls /mnt; cat /mnt/f"]
${sub('data', 'real')}  attacker:
    image: ${BUSYBOX}
    command: ["sh", "-c", "ls /mnt; cat /mnt/etc/hostname /mnt/passwd"]
${sub('data', 'evil')}  attacker2:
    image: ${BUSYBOX}
    command: ["cat", "/mnt/passwd"]
${sub('data', 'evil2')}  attacker3:
    image: ${BUSYBOX}
    command: ["ls", "/mnt"]
${sub('data', 'rel/deep')}  missing:
    image: ${BUSYBOX}
    command: ["true"]
${sub('data', 'nope')}  layered:
    build: ./img
    image: subpath-img:1
    profiles: ["build"]
  imgsub:
    image: ${BUSYBOX}
    command: ["sh", "-c", "ls /mnt; cat /mnt/msg; grep -c root /mnt2/passwd"]
    volumes:
      - type: image
        source: subpath-img:1
        target: /mnt
        image:
          subpath: payload
      - type: image
        source: ${BUSYBOX}
        target: /mnt2
        image:
          subpath: etc
  imgevil:
    image: ${BUSYBOX}
    command: ["ls", "/mnt"]
${sub(`subpath-img:1`, 'payload/up', 'image')}volumes:
  data:
`);
    await mkdir(path.join(dir, 'img'), { recursive: true });
    await writeFile(
      path.join(dir, 'img', 'Dockerfile'),
      `FROM ${BUSYBOX}\nRUN mkdir /payload && echo from the image > /payload/msg && ln -s / /payload/up\n`,
    );
    try {
      assert.equal((await ok(['run', '--rm', 'planter'], dir)).stdout, 'planted\n');
      // only the subpath: its files, not the volume's other entries
      assert.equal((await ok(['run', '--rm', 'reader'], dir)).stdout, 'deep\nf\ninside\n');
      // the attack: a symlink the first container planted in the volume, named as the subpath, must not give the
      // second one the host's / or /etc; refused as moby's safepath refuses any symlink in a subpath
      for (const [service, link] of [
        ['attacker', 'evil'],
        ['attacker2', 'evil2'],
        ['attacker3', 'rel/deep'],
      ] as const) {
        const result = await t.cli(['run', '--rm', service], { cwd: dir });
        assert.notEqual(result.code, 0, `${service} ran:\n${result.stdout}`);
        assert.match(
          result.stderr,
          new RegExp(`cannot access path \\S+/_data/${link}: Too many levels of symbolic links`),
        );
        assert.doesNotMatch(result.stdout, /root:x:0:0/);
      }
      const missing = await t.cli(['run', '--rm', 'missing'], { cwd: dir });
      assert.notEqual(missing.code, 0);
      assert.match(missing.stderr, /cannot access path \S+\/_data\/nope: No such file or directory/);

      // image.subpath: of a built two-layer image (an overlay) and of busybox (one layer, a bind)
      await ok(['--profile', 'build', 'build', 'layered'], dir);
      assert.equal((await ok(['run', '--rm', 'imgsub'], dir)).stdout, 'msg\nup\nfrom the image\n1\n');
      const evil = await t.cli(['run', '--rm', 'imgevil'], { cwd: dir });
      assert.notEqual(evil.code, 0, evil.stdout);
      assert.match(evil.stderr, /cannot access path <image>\/payload\/up: Too many levels of symbolic links/);
      assert.deepEqual(
        readFileSync('/proc/mounts', 'utf8')
          .split('\n')
          .filter((line) => line.includes(t.dir)),
        [],
        'no mount left on the host',
      );
    } finally {
      await t.cli(['down', '-v', '-t', '0', '--remove-orphans'], { cwd: dir });
      await t.cli(['image', 'rm', `subpath-img:1`], { cwd: dir });
    }
  });

  test('a subpath outside its volume is refused at its file:line:col, before anything is created', async () => {
    const { dir } = await project(`services:
  app:
    image: ${BUSYBOX}
    volumes:
      - type: volume
        source: data
        target: /mnt
        volume:
          subpath: ../../etc
volumes:
  data:
`);
    const result = await t.cli(['up', '-d'], { cwd: dir });
    assert.equal(result.code, 65, result.stderr);
    assert.match(
      result.stderr,
      /:9:20: error: services\.app\.volumes\[0\]\.volume\.subpath: "\.\.\/\.\.\/etc": subpath must be a relative path within the volume/,
    );
    assert.deepEqual(await t.engine.containers.list({ all: true }), []);
  });
});
