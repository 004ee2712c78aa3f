import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';
import { NEEDS_ROOT, eventually, spawnCli, suiteEngine, writeProject } from '../helpers/engine.js';

const BUSYBOX = 'tsfig/busybox:latest';

interface PsRow {
  ID: string;
  RestartCount: number;
  Name: string;
  Service: string;
  State: string;
  ExitCode: number;
  Created: string;
}

describe('compose commands (root)', { skip: NEEDS_ROOT }, () => {
  const t = suiteEngine('interfaces');
  let projects = 0;

  /** A fresh project directory holding tsfig.yml with the given text. */
  const project = (yaml: string) => writeProject(t, `project${++projects}`, yaml);

  async function ps(dir: string, ...args: string[]): Promise<PsRow[]> {
    const result = await t.cli(['ps', '-a', '--format', 'json', ...args], { cwd: dir });
    assert.equal(result.code, 0, result.stderr);
    return result.stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as PsRow);
  }

  async function down(dir: string): Promise<void> {
    const result = await t.cli(['down', '-v', '-t', '1'], { cwd: dir });
    assert.equal(result.code, 0, result.stderr);
  }

  test('up twice is a no-op; an environment change recreates only that service', async () => {
    const yaml = (value: string) => `services:
  a:
    image: ${BUSYBOX}
    command: sleep 300
    init: true
    environment:
      VALUE: "${value}"
  b:
    image: ${BUSYBOX}
    command: sleep 300
    init: true
`;
    const dir = await project(yaml('one'));
    const first = await t.cli(['up', '-d'], { cwd: dir });
    assert.equal(first.code, 0, first.stderr);
    const before = await ps(dir);
    assert.deepEqual(
      before.map((row) => [row.Name, row.State]),
      [
        [`project${projects}-a-1`, 'running'],
        [`project${projects}-b-1`, 'running'],
      ],
    );
    const again = await t.cli(['up', '-d'], { cwd: dir });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /up to date/);
    assert.deepEqual(
      (await ps(dir)).map((row) => row.ID),
      before.map((row) => row.ID),
    );

    await writeFile(path.join(dir, 'tsfig.yml'), yaml('two'));
    const dry = await t.cli(['up', '--dry-run'], { cwd: dir });
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /~ recreate container project\d+-a-1 \(.*VALUE/);
    assert.doesNotMatch(dry.stdout, /-b-1/);
    const changed = await t.cli(['up', '-d'], { cwd: dir });
    assert.equal(changed.code, 0, changed.stderr);
    const after = await ps(dir);
    assert.notEqual(after.find((row) => row.Service === 'a')?.ID, before.find((row) => row.Service === 'a')?.ID);
    assert.equal(after.find((row) => row.Service === 'b')?.ID, before.find((row) => row.Service === 'b')?.ID);
    const env = await t.cli(['exec', '-T', 'a', 'sh', '-c', 'echo $VALUE'], { cwd: dir });
    assert.equal(env.stdout, 'two\n');
    await down(dir);
  });

  test('scale 3 then 1', async () => {
    const dir = await project(`services:\n  worker:\n    image: ${BUSYBOX}\n    command: sleep 300\n    init: true\n`);
    assert.equal((await t.cli(['up', '-d', '--scale', 'worker=3'], { cwd: dir })).code, 0);
    assert.deepEqual(
      (await ps(dir)).map((row) => row.Name.replace(/^project\d+-/, '')),
      ['worker-1', 'worker-2', 'worker-3'],
    );
    const hosts = async () =>
      (await t.cli(['exec', '-T', 'worker', 'cat', '/etc/hosts'], { cwd: dir })).stdout.match(/worker-\d/g)?.sort();
    assert.deepEqual(await hosts(), ['worker-1', 'worker-2', 'worker-3']);
    assert.equal((await t.cli(['up', '-d', '--scale', 'worker=1'], { cwd: dir })).code, 0);
    assert.deepEqual(
      (await ps(dir)).map((row) => row.Name.replace(/^project\d+-/, '')),
      ['worker-1'],
    );
    // The removed replicas are gone from the remaining container's /etc/hosts when `up` returns.
    assert.deepEqual(await hosts(), ['worker-1']);
    await down(dir);
  });

  test('dependencies start first; --exit-code-from returns the tester code; run --rm passes the exit code', async () => {
    const dir = await project(`services:
  db:
    image: ${BUSYBOX}
    command: sh -c 'echo ready > /tmp/index.html; exec httpd -f -p 80 -h /tmp'
  tester:
    image: ${BUSYBOX}
    depends_on: [db]
    command: sh -c 'wget -q -O - http://db/index.html && exit 7'
`);
    const up = await t.cli(['up', '--exit-code-from', 'tester', '--no-color'], { cwd: dir, timeoutMs: 60_000 });
    assert.equal(up.code, 7, up.stderr);
    assert.match(up.stdout, /tester-1 +\| ready/);
    const rows = await ps(dir);
    const db = rows.find((row) => row.Service === 'db');
    const tester = rows.find((row) => row.Service === 'tester');
    assert.ok(db !== undefined && tester !== undefined);
    assert.ok(db.Created <= tester.Created, 'db was created after the tester that depends on it');

    const run = await t.cli(['run', '--rm', '-T', 'tester', 'sh', '-c', 'exit 5'], { cwd: dir });
    assert.equal(run.code, 5, run.stderr);
    // An attached run keeps the container's streams apart, as docker compose run does.
    const streams = await t.cli(['run', '--rm', '-T', 'tester', 'sh', '-c', 'echo to-out; echo to-err >&2'], {
      cwd: dir,
    });
    assert.equal(streams.code, 0, streams.stderr);
    assert.equal(streams.stdout, 'to-out\n');
    assert.match(streams.stderr, /^to-err$/m);
    const oneoffs = (await t.engine.containers.list({ all: true })).filter(
      (c) => c.labels['io.tsfig.oneoff'] === 'True',
    );
    assert.deepEqual(oneoffs, [], 'run --rm left its container');
    await down(dir);
  });

  test('run without a tty passes SIGTERM to the container (docker compose run does) and exits with its code', async () => {
    const dir = await project(`services:\n  app:\n    image: ${BUSYBOX}\n    network_mode: none\n`);
    // `sleep & wait`: a trap runs only once a foreground command has finished, `wait` is interrupted
    const script = 'trap "echo got TERM; exit 3" TERM; echo ready; sleep 100 & wait';
    const { child, output } = spawnCli(['run', '--rm', '-T', 'app', 'sh', '-c', script], t.env, { cwd: dir });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await eventually(() => (output().includes('ready') ? true : undefined), 30_000);
      child.kill('SIGTERM');
      // without forwarding the CLI died of the TERM (143 seen by a shell) and the container slept on
      assert.equal(await exited, 3, output());
      assert.match(output(), /got TERM/);
      const oneoffs = (await t.engine.containers.list({ all: true })).filter(
        (c) => c.labels['io.tsfig.oneoff'] === 'True',
      );
      assert.deepEqual(oneoffs, [], 'run --rm left its container');
    } finally {
      child.kill('SIGKILL');
      await down(dir);
    }
  });

  test('run without a tty: a second signal gets the terminal back (128+N) and leaves the container running', async () => {
    const dir = await project(`services:\n  app:\n    image: ${BUSYBOX}\n    network_mode: none\n`);
    // sleep as PID 1 has no handler: the kernel drops the forwarded TERM
    const { child, output } = spawnCli(['run', '--rm', '-T', 'app', 'sh', '-c', 'echo ready; exec sleep 100'], t.env, {
      cwd: dir,
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const oneoffs = async () =>
      (await t.engine.containers.list({ all: true })).filter((c) => c.labels['io.tsfig.oneoff'] === 'True');
    try {
      await eventually(() => (output().includes('ready') ? true : undefined), 30_000);
      child.kill('SIGTERM');
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal(child.exitCode, null, `the CLI ended at the first TERM: ${output()}`);
      child.kill('SIGTERM');
      assert.equal(await exited, 143, output());
      assert.match(output(), /keeps running/);
      assert.deepEqual(
        (await oneoffs()).map((c) => c.state.running),
        [true],
      );
    } finally {
      child.kill('SIGKILL');
      await down(dir);
    }
    assert.deepEqual(await oneoffs(), [], 'down left the one-off');
  });

  test('links: the linked service is reachable under its alias, with Fig-style variables', async () => {
    const dir = await project(`services:
  db:
    build: ./db
    command: sh -c 'echo from-db > /tmp/index.html; exec httpd -f -p 80 -h /tmp'
    environment:
      SECRET: s3
  app:
    image: ${BUSYBOX}
    links: ["db:database"]
    command: sh -c 'env | grep ^DATABASE_ | sort; wget -q -O - http://database/index.html'
`);
    // the image exposes 80: the planner lists it for the link variables (observed image config)
    await mkdir(path.join(dir, 'db'));
    await writeFile(path.join(dir, 'db', 'Dockerfile'), `FROM ${BUSYBOX}\nEXPOSE 80\n`);
    const up = await t.cli(['up', '--exit-code-from', 'app', '--no-log-prefix', '--no-color'], { cwd: dir });
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stdout, new RegExp(`^DATABASE_NAME=/project${projects}-app-1/database$`, 'm'));
    assert.match(up.stdout, /^DATABASE_ENV_SECRET=s3$/m);
    assert.match(up.stdout, /^DATABASE_PORT=tcp:\/\/[\d.]+:80$/m);
    assert.match(up.stdout, /^DATABASE_PORT_80_TCP_PORT=80$/m);
    assert.match(up.stdout, /^from-db$/m);
    await down(dir);
  });

  test('build: up builds, an unchanged up does not, and up --build after a source change rebuilds and recreates only that service', async () => {
    const dir = await project(`services:
  app:
    build: ./app
    init: true
    command: ["sh", "-c", "cat /srv/message; exec sleep 300"]
  other:
    image: ${BUSYBOX}
    init: true
    command: sleep 300
`);
    await mkdir(path.join(dir, 'app'));
    await writeFile(path.join(dir, 'app', 'Dockerfile'), `FROM ${BUSYBOX}\nCOPY message /srv/message\n`);
    await writeFile(path.join(dir, 'app', 'message'), 'first\n');
    const first = await t.cli(['up', '-d'], { cwd: dir });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /Image project\d+-app {2}Built/);
    const before = await ps(dir);
    await eventually(async () =>
      (await t.cli(['logs', '--no-log-prefix', 'app'], { cwd: dir })).stdout === 'first\n' ? true : undefined,
    );

    const unchanged = await t.cli(['up', '-d'], { cwd: dir });
    assert.match(unchanged.stderr, /up to date/);

    await writeFile(path.join(dir, 'app', 'message'), 'second\n');
    const dry = await t.cli(['up', '-d', '--no-build', '--dry-run'], { cwd: dir });
    assert.match(dry.stdout, /No changes/, 'with --no-build the old image stays');
    // compose v2: the image is there, so a plain up builds nothing (e2e TestLocalComposeBuild)
    const plain = await t.cli(['up', '-d', '--dry-run'], { cwd: dir });
    assert.match(plain.stdout, /No changes/, 'a plain up rebuilt an image that is there');
    const changed = await t.cli(['up', '-d', '--build'], { cwd: dir });
    assert.equal(changed.code, 0, changed.stderr);
    const after = await ps(dir);
    assert.notEqual(after.find((row) => row.Service === 'app')?.ID, before.find((row) => row.Service === 'app')?.ID);
    assert.equal(after.find((row) => row.Service === 'other')?.ID, before.find((row) => row.Service === 'other')?.ID);
    await eventually(async () =>
      (await t.cli(['logs', '--no-log-prefix', 'app'], { cwd: dir })).stdout === 'second\n' ? true : undefined,
    );
    await down(dir);
  });

  test('down leaves no container, network, nft table or process of the project', async () => {
    const dir = await project(`services:
  web:
    image: ${BUSYBOX}
    command: httpd -f -p 80
    ports: ["127.0.0.1::80"]
`);
    assert.equal((await t.cli(['up', '-d'], { cwd: dir })).code, 0);
    const port = await t.cli(['port', 'web', '80'], { cwd: dir });
    assert.match(port.stdout, /^127\.0\.0\.1:\d+\n$/);
    await down(dir);
    assert.deepEqual(await ps(dir), []);
    assert.deepEqual(await t.engine.networks.list(), []);
    const tables = execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' });
    assert.ok(!tables.includes(t.engine.paths.hostPrefix));
    const processes = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
    assert.ok(!processes.includes(path.join(t.engine.paths.containers)));
  });

  test('two concurrent up give one stack', async () => {
    const dir = await project(`services:\n  one:\n    image: ${BUSYBOX}\n    command: sleep 300\n    init: true\n`);
    const [a, b] = await Promise.all([t.cli(['up', '-d'], { cwd: dir }), t.cli(['up', '-d'], { cwd: dir })]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    assert.equal((await ps(dir)).length, 1);
    await down(dir);
  });

  test('bad input: invalid file, unknown service, held port, missing image change nothing', async () => {
    const invalid = await project(`services:\n  web:\n    image: ${BUSYBOX}\n    prots: ["80"]\n`);
    const config = await t.cli(['up', '-d'], { cwd: invalid });
    assert.equal(config.code, 65);
    assert.match(config.stderr, /tsfig\.yml:4:5: error: services\.web: unknown key "prots"/);
    assert.match(config.stderr, /did you mean "ports"/);

    const valid = await project(`services:\n  web:\n    image: ${BUSYBOX}\n    command: sleep 300\n`);
    const unknown = await t.cli(['up', '-d', 'nope'], { cwd: valid });
    assert.equal(unknown.code, 64);
    assert.match(unknown.stderr, /no such service: nope/);

    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const held = (server.address() as net.AddressInfo).port;
    try {
      const portProject = await project(`services:
  first:
    image: ${BUSYBOX}
    command: sleep 300
  web:
    image: ${BUSYBOX}
    command: sleep 300
    ports: ["127.0.0.1:${held}:80"]
`);
      const conflict = await t.cli(['up', '-d'], { cwd: portProject });
      assert.equal(conflict.code, 1);
      assert.match(
        conflict.stderr,
        new RegExp(`port 127\\.0\\.0\\.1:${held}/tcp is already in use by process ${process.pid}`),
      );
      assert.deepEqual(await ps(portProject), []);
    } finally {
      server.close();
    }

    const missing = await project(`services:\n  web:\n    image: nosuch/image:1\n`);
    const image = await t.cli(['up', '-d'], { cwd: missing });
    assert.equal(image.code, 1);
    // pull_policy defaults to missing: the pull is refused before any lookup (tests allow loopback registries
    // only), and the error says how to get an image in offline.
    assert.match(image.stderr, /nosuch\/image:1/);
    assert.match(image.stderr, /tsfig image import/);
    assert.deepEqual(await t.engine.networks.list(), [], 'a network was created for a plan that could not run');
    assert.deepEqual(await t.engine.containers.list({ all: true }), []);
  });

  test('restart: on-failure:3 runs the command 4 times then stops, with no tsfig process alive', async () => {
    const dir = await project(`services:
  flaky:
    image: ${BUSYBOX}
    command: sh -c 'echo run; exit 1'
    restart: on-failure:3
`);
    assert.equal((await t.cli(['up', '-d'], { cwd: dir })).code, 0);
    // A CLI of this test's engine root (other runs on the machine have roots of their own).
    const mine = `TSFIG_ROOT=${t.env.TSFIG_ROOT ?? ''}\0`;
    const clis = readdirSync('/proc')
      .filter((entry) => /^\d+$/.test(entry))
      .filter((pid) => {
        try {
          const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
          return args.includes('bin/tsfig.js') && readFileSync(`/proc/${pid}/environ`, 'utf8').includes(mine);
        } catch {
          return false;
        }
      });
    assert.deepEqual(clis, [], 'a tsfig CLI process is still alive');
    const row = await eventually(async () => {
      const [flaky] = await ps(dir);
      return flaky !== undefined && flaky.State === 'exited' && flaky.RestartCount === 3 ? flaky : undefined;
    }, 20_000);
    assert.equal(row.ExitCode, 1);
    const logs = await t.cli(['logs', '--no-log-prefix', 'flaky'], { cwd: dir });
    assert.equal(logs.stdout, 'run\nrun\nrun\nrun\n');
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal((await ps(dir))[0]?.RestartCount, 3, 'the policy restarted it a fourth time');
    await down(dir);
  });

  test('the containers keep running and logging after the CLI exited', async () => {
    const dir = await project(`services:
  ticker:
    image: ${BUSYBOX}
    command: sh -c 'i=0; while true; do i=$$((i+1)); echo tick-$$i; sleep 0.2; done'
    init: true
`);
    assert.equal((await t.cli(['up', '-d'], { cwd: dir })).code, 0);
    await eventually(async () => {
      const logs = await t.cli(['logs', '--no-log-prefix'], { cwd: dir });
      return /tick-5/.test(logs.stdout) ? true : undefined;
    });
    const tail = await t.cli(['logs', '--tail', '1', 'ticker'], { cwd: dir });
    assert.match(tail.stdout, /^ticker-1 +\| tick-\d+\n$/);
    await down(dir);
  });
});
