// Issue #15, "Beyond Docker's defaults": user namespaces in root mode. With `--userns auto` (compose
// `userns_mode: auto`, or TSFIG_USERNS=auto) a container's root is a subordinate id of the host (a range of 65536 ids
// of podman's user `containers` in /etc/subuid and /etc/subgid, kept in <root>/userns.json), never the host's root:
// it cannot write through a bind of a root-owned host directory, nor mknod, which the same container without a user
// namespace can. Volumes are mounted idmapped: what it writes is readable back by the next container after down/up.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { chmod, chown, lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { allocateUserns, listUserns, REGISTRY_DIR, USERNS_SIZE } from '../../engine/containers/userns.js';
import { createEngine, type Engine } from '../../engine/index.js';
import {
  BUSYBOX_TAR,
  engineEnv,
  leftovers,
  makeTestEngine,
  NEEDS_ROOT,
  REPO,
  removeEngineObjects,
  runCli,
  TEST_DIR_PREFIX,
  type CliOptions,
  type TestEngine,
} from '../helpers/engine.js';

const ENTRY = 'containers:2147483647:2147483648';
const IMAGE = 'tsfig/busybox:latest';

/** Adds podman's `containers` range (as scripts/setup.sh does) when missing; returns an undo. */
function ensureSubordinateIds(): () => void {
  const added: string[] = [];
  for (const file of ['/etc/subuid', '/etc/subgid']) {
    const text = readFileSync(file, 'utf8');
    if (/^containers:/m.test(text)) continue;
    writeFileSync(file, `${text}${text === '' || text.endsWith('\n') ? '' : '\n'}${ENTRY}\n`);
    added.push(file);
  }
  return () => {
    for (const file of added) {
      const lines = readFileSync(file, 'utf8').split('\n');
      writeFileSync(file, lines.filter((line) => line !== ENTRY).join('\n'));
    }
  };
}

function hostIds(pid: number): { uid: number; gid: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const uid = /^Uid:\s+(\d+)/m.exec(status);
  const gid = /^Gid:\s+(\d+)/m.exec(status);
  assert.ok(uid !== null && gid !== null, status);
  return { uid: Number(uid[1]), gid: Number(gid[1]) };
}

describe('user namespaces: container root is not host root (root)', { skip: NEEDS_ROOT }, () => {
  let t: TestEngine;
  let undo: () => void = () => undefined;
  before(async () => {
    undo = ensureSubordinateIds();
    t = await makeTestEngine();
  });
  after(async () => {
    await t.cleanup();
    undo();
  });

  async function pidOf(id: string): Promise<number> {
    const out = await t.cli(['container', 'inspect', '-f', '{{.State.Pid}}', id]);
    assert.equal(out.code, 0, out.stderr);
    return Number(out.stdout.trim());
  }

  test('--userns auto: root in the container is an unprivileged uid in /proc/<pid>/status; rm releases its range', async () => {
    const run = await t.cli(['container', 'run', '-d', '--userns', 'auto', IMAGE, 'sleep', '600']);
    assert.equal(run.code, 0, run.stderr);
    const id = run.stdout.trim();
    try {
      const ranges = await listUserns(t.engine.paths);
      const range = ranges[id];
      assert.ok(range !== undefined, JSON.stringify(ranges));
      const ids = hostIds(await pidOf(id));
      assert.deepEqual(ids, { uid: range.uid, gid: range.gid });
      assert.ok(ids.uid >= 65536 && ids.gid >= 65536, `host ids ${JSON.stringify(ids)}`);
      const inside = await t.cli(['container', 'exec', id, 'sh', '-c', 'id -u; cat /proc/self/uid_map']);
      assert.equal(inside.code, 0, inside.stderr);
      assert.match(inside.stdout, new RegExp(`^0\\n\\s*0\\s+${range.uid}\\s+${USERNS_SIZE}\\s*$`));
      // the image's files are root's in the container (idmapped layers), and root can write its own root fs
      const write = await t.cli([
        'container',
        'exec',
        id,
        'sh',
        '-c',
        'stat -c %u:%g /etc/passwd && touch /new && echo ok',
      ]);
      assert.equal(write.stdout, '0:0\nok\n', write.stderr);
    } finally {
      assert.equal((await t.cli(['container', 'rm', '-f', id])).code, 0);
    }
    assert.equal((await listUserns(t.engine.paths))[id], undefined, 'rm released the range');
  });

  test('TSFIG_USERNS=auto is the default; --userns host overrides it', async () => {
    const env = { TSFIG_USERNS: 'auto' };
    const auto = await t.cli(['container', 'run', '--rm', IMAGE, 'cat', '/proc/self/uid_map'], { env });
    assert.equal(auto.code, 0, auto.stderr);
    assert.doesNotMatch(auto.stdout, /^\s*0\s+0\s+4294967295\s*$/);
    const host = await t.cli(['container', 'run', '--rm', '--userns', 'host', IMAGE, 'cat', '/proc/self/uid_map'], {
      env,
    });
    assert.equal(host.code, 0, host.stderr);
    assert.match(host.stdout, /^\s*0\s+0\s+4294967295\s*$/);
  });

  test('attack: container root writes into a root-owned host dir bound in, and mknods; refused with userns', async () => {
    const hostDir = path.join(t.dir, 'root-owned');
    await mkdir(hostDir, { mode: 0o755 });
    const script = 'echo pwned > /host/evil-$0 && echo WROTE; mknod /tmp/sda b 8 0 && echo MKNOD; true';
    // control: without a user namespace (Docker's default) both succeed
    const host = await t.cli(['container', 'run', '--rm', '-v', `${hostDir}:/host`, IMAGE, 'sh', '-c', script, 'host']);
    assert.equal(host.code, 0, host.stderr);
    assert.match(host.stdout, /WROTE/);
    assert.match(host.stdout, /MKNOD/);
    assert.equal(await readFile(path.join(hostDir, 'evil-host'), 'utf8'), 'pwned\n');
    const auto = await t.cli([
      'container',
      'run',
      '--rm',
      '--userns',
      'auto',
      '-v',
      `${hostDir}:/host`,
      IMAGE,
      'sh',
      '-c',
      script,
      'auto',
    ]);
    assert.equal(auto.code, 0, auto.stderr);
    assert.doesNotMatch(auto.stdout, /WROTE/);
    assert.doesNotMatch(auto.stdout, /MKNOD/);
    assert.match(auto.stderr, /Permission denied/);
    assert.match(auto.stderr, /Operation not permitted/);
    await assert.rejects(stat(path.join(hostDir, 'evil-auto')), { code: 'ENOENT' });
  });

  test("commit, export and cp out show the container's owners; cp in writes them as its ids, into a volume too", async () => {
    const work = await mkdtemp(path.join(tmpdir(), 'tsfig-userns-cp-'));
    await t.cli(['volume', 'create', 'uvol']);
    const run = await t.cli(['container', 'run', '-d', '--userns', 'auto', '-v', 'uvol:/vol', IMAGE, 'sleep', '600']);
    assert.equal(run.code, 0, run.stderr);
    const id = run.stdout.trim();
    try {
      const made = await t.cli(['container', 'exec', id, 'sh', '-c', 'touch /made && mkdir /d && chown 5:6 /d']);
      assert.equal(made.code, 0, made.stderr);
      // in: a plain cp belongs to the container's root, -a keeps the source's ids, both as the container sees them
      await writeFile(path.join(work, 'in.txt'), 'in\n');
      await mkdir(path.join(work, 'tree'));
      await writeFile(path.join(work, 'tree', 'f'), 'f\n');
      await chown(path.join(work, 'tree', 'f'), 7, 8);
      assert.equal((await t.cli(['container', 'cp', path.join(work, 'in.txt'), `${id}:/in.txt`])).code, 0);
      assert.equal((await t.cli(['container', 'cp', '-a', path.join(work, 'tree'), `${id}:/tree`])).code, 0);
      const owners = await t.cli(['container', 'exec', id, 'stat', '-c', '%n %u:%g', '/in.txt', '/tree/f', '/d']);
      assert.equal(owners.stdout, '/in.txt 0:0\n/tree/f 7:8\n/d 5:6\n', owners.stderr);
      // out: -a gives the container's ids, not the host's of its range
      assert.equal((await t.cli(['container', 'cp', '-a', `${id}:/d`, path.join(work, 'd-out')])).code, 0);
      const out = await lstat(path.join(work, 'd-out'));
      assert.deepEqual([out.uid, out.gid], [5, 6]);
      // export: a flat tar with the container's owners
      const tar = path.join(work, 'export.tar');
      assert.equal((await t.cli(['container', 'export', '-o', tar, id])).code, 0);
      const listing = execFileSync('tar', ['--numeric-owner', '-tvf', tar], { encoding: 'utf8' });
      for (const [owner, name] of [
        ['0/0', 'made'],
        ['5/6', 'd/'],
        ['7/8', 'tree/f'],
      ] as const) {
        assert.match(listing, new RegExp(`^\\S+ ${owner} .* (\\./)?${name}$`, 'm'), `${name} in the export`);
      }
      // commit: the new image's layer has them too (a container without a user namespace sees 0, 5:6, 7:8)
      assert.equal((await t.cli(['container', 'commit', id, 'userns-commit'])).code, 0);
      const committed = await t.cli([
        ...['container', 'run', '--rm', '--userns', 'host', 'userns-commit'],
        ...['stat', '-c', '%n %u:%g', '/made', '/d', '/tree/f'],
      ]);
      assert.equal(committed.stdout, '/made 0:0\n/d 5:6\n/tree/f 7:8\n', committed.stderr);
      // a volume is an idmapped mount (host root cannot create files through it): cp writes in the volume's own
      // directory with the container's ids, as stored there; an id the range does not map is refused, writing nothing
      const vol = await t.cli(['container', 'cp', path.join(work, 'in.txt'), `${id}:/vol/in.txt`]);
      assert.equal(vol.code, 0, vol.stderr);
      assert.equal((await t.cli(['container', 'cp', '-a', path.join(work, 'tree'), `${id}:/vol`])).code, 0);
      const volOwners = await t.cli(['container', 'exec', id, 'stat', '-c', '%n %u:%g', '/vol/in.txt', '/vol/tree/f']);
      assert.equal(volOwners.stdout, '/vol/in.txt 0:0\n/vol/tree/f 7:8\n', volOwners.stderr);
      const data = path.join(t.engine.paths.volumes, 'uvol', '_data');
      const onDisk = await Promise.all(['in.txt', 'tree/f'].map((name) => lstat(path.join(data, name))));
      assert.deepEqual(
        onDisk.map((s) => [s.uid, s.gid]),
        [
          [0, 0],
          [7, 8],
        ],
      );
      await writeFile(path.join(work, 'far.txt'), 'far\n');
      await chown(path.join(work, 'far.txt'), 70000, 0);
      const far = await t.cli(['container', 'cp', '-a', path.join(work, 'far.txt'), `${id}:/vol/far.txt`]);
      assert.equal(far.code, 64, far.stderr);
      assert.match(far.stderr, /^error: far\.txt: id 70000 cannot be mapped into the container's user namespace$/m);
      await assert.rejects(lstat(path.join(data, 'far.txt')), { code: 'ENOENT' });
      assert.deepEqual(
        (await readdir(data)).filter((name) => name.startsWith('.tsfig-cp-')),
        [],
      );
    } finally {
      assert.equal((await t.cli(['container', 'rm', '-f', id])).code, 0);
      await t.cli(['image', 'rm', 'userns-commit']);
      await t.cli(['volume', 'rm', 'uvol']);
      await rm(work, { recursive: true, force: true });
    }
  });

  test("cp into a stopped container's bind-mounted host dir writes the range's host ids, as the container's root does", async () => {
    // A host directory bound in is not idmapped (as in Docker): what container root writes there is owned by the
    // range's first host id. cp into a stopped container reaches it in the host dir itself (inStoppedMount) and must
    // write the same ids; the container's own ids (0:0, 7:8) would be host root's there.
    const hostDir = path.join(t.dir, 'bound-stopped');
    const work = path.join(t.dir, 'bound-src');
    await mkdir(hostDir, { mode: 0o777 });
    await chmod(hostDir, 0o777);
    await mkdir(path.join(work, 'tree'), { recursive: true });
    await writeFile(path.join(work, 'in.txt'), 'in\n');
    await writeFile(path.join(work, 'tree', 'f'), 'f\n');
    await chown(path.join(work, 'tree', 'f'), 7, 8);
    const create = await t.cli([
      'container',
      'create',
      '--userns',
      'auto',
      '-v',
      `${hostDir}:/b`,
      IMAGE,
      'sleep',
      '600',
    ]);
    assert.equal(create.code, 0, create.stderr);
    const id = create.stdout.trim();
    try {
      const range = (await listUserns(t.engine.paths))[id];
      assert.ok(range !== undefined);
      assert.equal((await t.cli(['container', 'cp', path.join(work, 'in.txt'), `${id}:/b/in.txt`])).code, 0);
      const archive = await t.cli(['container', 'cp', '-a', path.join(work, 'tree'), `${id}:/b/tree`]);
      assert.equal(archive.code, 0, archive.stderr);
      const owners = await Promise.all(
        ['in.txt', 'tree', 'tree/f'].map(async (name) => {
          const s = await lstat(path.join(hostDir, name));
          return [name, s.uid, s.gid];
        }),
      );
      assert.deepEqual(owners, [
        ['in.txt', range.uid, range.gid],
        ['tree', range.uid, range.gid],
        ['tree/f', range.uid + 7, range.gid + 8],
      ]);
      // out of the stopped container, -a gives the ids as the container sees them, not the range's host ids
      const out = await t.cli(['container', 'cp', '-a', `${id}:/b/tree/f`, path.join(work, 'f-out')]);
      assert.equal(out.code, 0, out.stderr);
      const outStat = await lstat(path.join(work, 'f-out'));
      assert.deepEqual([outStat.uid, outStat.gid], [7, 8]);
      // the container, once started, sees them as its root's and as 7:8, and its root can rewrite the plain copy
      assert.equal((await t.cli(['container', 'start', id])).code, 0);
      const seen = await t.cli([
        ...['container', 'exec', id, 'sh', '-c'],
        'stat -c "%n %u:%g" /b/in.txt /b/tree/f && echo more >> /b/in.txt && cat /b/in.txt',
      ]);
      assert.equal(seen.stdout, '/b/in.txt 0:0\n/b/tree/f 7:8\nin\nmore\n', seen.stderr);
    } finally {
      assert.equal((await t.cli(['container', 'rm', '-f', id])).code, 0);
    }
  });

  test('cp reaches a second volume mounted inside the copied tree, stopped and running; a read-only one refuses first', async () => {
    // -v outer:/data -v inner:/data/sub: what a copy into /data puts under sub/ belongs in the inner volume. Before,
    // a stopped container's copy wrote it under the mount point in the outer volume (hidden once it runs), and a
    // running one refused it ("it is on an idmapped volume mount").
    const work = path.join(t.dir, 'nested-src');
    await mkdir(path.join(work, 'tree', 'sub'), { recursive: true });
    await writeFile(path.join(work, 'tree', 'top.txt'), 'top\n');
    await writeFile(path.join(work, 'tree', 'sub', 'in.txt'), 'in\n');
    await chown(path.join(work, 'tree', 'sub', 'in.txt'), 7, 8);
    await mkdir(path.join(work, 'run', 'sub'), { recursive: true });
    await writeFile(path.join(work, 'run', 'sub', 'run.txt'), 'run\n');
    const outer = path.join(t.engine.paths.volumes, 'nest-outer', '_data');
    const inner = path.join(t.engine.paths.volumes, 'nest-inner', '_data');
    const create = await t.cli([
      ...['container', 'create', '--userns', 'auto', '-v', 'nest-outer:/data', '-v', 'nest-inner:/data/sub'],
      ...[IMAGE, 'sleep', '600'],
    ]);
    assert.equal(create.code, 0, create.stderr);
    const id = create.stdout.trim();
    const ro = await t.cli([
      ...['container', 'create', '--userns', 'auto', '-v', 'nest-outer:/data', '-v', 'nest-inner:/data/sub:ro'],
      ...[IMAGE, 'true'],
    ]);
    assert.equal(ro.code, 0, ro.stderr);
    try {
      // stopped: written in each volume's own directory, with the container's ids as volumes store them
      const cp = await t.cli(['container', 'cp', '-a', `${path.join(work, 'tree')}/.`, `${id}:/data`]);
      assert.equal(cp.code, 0, cp.stderr);
      const owners = async (file: string) => {
        const s = await lstat(file);
        return [s.uid, s.gid];
      };
      assert.deepEqual(await owners(path.join(outer, 'top.txt')), [0, 0]);
      assert.deepEqual(await owners(path.join(inner, 'in.txt')), [7, 8]);
      await assert.rejects(lstat(path.join(outer, 'sub', 'in.txt')), { code: 'ENOENT' }, 'not under the mount point');
      // out of the stopped container: the inner volume's files, as the container sees them
      const out = await t.cli(['container', 'cp', '-a', `${id}:/data`, path.join(work, 'out')]);
      assert.equal(out.code, 0, out.stderr);
      assert.equal(await readFile(path.join(work, 'out', 'sub', 'in.txt'), 'utf8'), 'in\n');
      assert.deepEqual(await owners(path.join(work, 'out', 'sub', 'in.txt')), [7, 8]);
      // running (both volumes idmapped): the same
      const start = await t.cli(['container', 'start', id]);
      assert.equal(start.code, 0, start.stderr);
      const running = await t.cli(['container', 'cp', `${path.join(work, 'run')}/.`, `${id}:/data`]);
      assert.equal(running.code, 0, running.stderr);
      const seen = await t.cli([
        ...['container', 'exec', id, 'sh', '-c'],
        'cat /data/sub/in.txt /data/sub/run.txt; stat -c "%n %u:%g" /data/top.txt /data/sub/in.txt /data/sub/run.txt',
      ]);
      assert.equal(
        seen.stdout,
        'in\nrun\n/data/top.txt 0:0\n/data/sub/in.txt 7:8\n/data/sub/run.txt 0:0\n',
        seen.stderr,
      );
      assert.deepEqual(await owners(path.join(inner, 'run.txt')), [0, 0]);
      // the mount point the runtime made in the outer (idmapped) volume is the container root's
      assert.deepEqual(await owners(path.join(outer, 'sub')), [0, 0]);
      // a read-only volume below the destination: refused before anything is written
      await writeFile(path.join(work, 'tree', 'new.txt'), 'new\n');
      const refused = await t.cli(['container', 'cp', `${path.join(work, 'tree')}/.`, `${ro.stdout.trim()}:/data`]);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /\/data\/sub below the destination is mounted read-only/);
      await assert.rejects(lstat(path.join(outer, 'new.txt')), { code: 'ENOENT' }, 'nothing written');
      // a hard link from one volume to the other cannot be made: refused, naming both
      await mkdir(path.join(work, 'links', 'sub'), { recursive: true });
      await writeFile(path.join(work, 'links', 'a'), 'a\n');
      execFileSync('ln', [path.join(work, 'links', 'a'), path.join(work, 'links', 'sub', 'b')]);
      const links = await t.cli(['container', 'cp', `${path.join(work, 'links')}/.`, `${id}:/data`]);
      assert.notEqual(links.code, 0);
      assert.match(links.stderr, /cannot link sub\/b to a: they are on different mounts/);
    } finally {
      assert.equal((await t.cli(['container', 'rm', '-f', id, ro.stdout.trim()])).code, 0);
      assert.equal((await t.cli(['volume', 'rm', 'nest-outer', 'nest-inner'])).code, 0);
    }
  });

  test('concurrent containers get ranges that never overlap; all released on rm', async () => {
    const creates = await Promise.all(
      Array.from({ length: 4 }, () => t.cli(['container', 'create', '--userns', 'auto', IMAGE, 'true'])),
    );
    const ids = creates.map((create) => {
      assert.equal(create.code, 0, create.stderr);
      return create.stdout.trim();
    });
    try {
      const ranges = await listUserns(t.engine.paths);
      const mine = ids.map((id) => ranges[id]);
      for (const [i, a] of mine.entries()) {
        assert.ok(a !== undefined);
        for (const b of mine.slice(i + 1)) {
          assert.ok(b !== undefined);
          assert.ok(a.uid + a.size <= b.uid || b.uid + b.size <= a.uid, `uids overlap: ${JSON.stringify(mine)}`);
          assert.ok(a.gid + a.size <= b.gid || b.gid + b.size <= a.gid, `gids overlap: ${JSON.stringify(mine)}`);
        }
      }
    } finally {
      assert.equal((await t.cli(['container', 'rm', ...ids])).code, 0);
    }
    const left = await listUserns(t.engine.paths);
    assert.deepEqual(
      ids.filter((id) => left[id] !== undefined),
      [],
    );
  });

  test('a range whose container is gone (a create killed after allocating) is found and released by system check', async () => {
    // The state a `kill -9` of `container create` leaves between the allocation and the container's dir (the create
    // rolls back everything else on its next run): the real allocator, for an id with no container.
    const ghost = 'f'.repeat(64);
    await allocateUserns(t.engine.paths, ghost);
    const check = await t.cli(['system', 'check']);
    assert.notEqual(check.code, 0, 'check reports a finding');
    assert.match(check.stdout + check.stderr, /userns.*ffffffffffff.*allocated to a container that is gone/);
    const repair = await t.cli(['system', 'check', '--repair']);
    assert.match(repair.stdout + repair.stderr, /range released/);
    assert.equal((await listUserns(t.engine.paths))[ghost], undefined);
    const again = await t.cli(['system', 'check']);
    assert.equal(again.code, 0, again.stdout + again.stderr);
  });

  test('bad input changes nothing: --userns bogus, TSFIG_USERNS=bogus, no subordinate ids', async () => {
    const before = (await t.cli(['volume', 'ls', '-q'])).stdout;
    const flag = await t.cli(['container', 'run', '--rm', '--userns', 'bogus', '-v', 'uv-bad:/d', IMAGE, 'true']);
    assert.equal(flag.code, 64, flag.stderr);
    assert.match(flag.stderr, /^error: --userns: invalid user namespace mode "bogus"$/m);
    const env = await t.cli(['container', 'run', '--rm', '-v', 'uv-bad:/d', IMAGE, 'true'], {
      env: { TSFIG_USERNS: 'bogus' },
    });
    assert.match(env.stderr, /^error: TSFIG_USERNS: invalid user namespace mode "bogus"$/m);
    const noIds = await t.cli(['container', 'run', '--rm', '--userns', 'auto', '-v', 'uv-bad:/d', IMAGE, 'true'], {
      env: { TSFIG_USERNS_USER: 'tsfig-no-such-user' },
    });
    assert.notEqual(noIds.code, 0);
    assert.match(
      noIds.stderr,
      /^error: userns auto needs a subordinate id range of at least 65536 ids for tsfig-no-such-user in \/etc\/subuid$/m,
    );
    assert.equal((await t.cli(['volume', 'ls', '-q'])).stdout, before, 'no volume was made');
    assert.equal((await t.cli(['container', 'ls', '-aq'])).stdout, '', 'no container was made');
  });

  describe('compose: userns_mode', () => {
    let project: string;
    before(async () => {
      project = path.join(t.dir, 'proj');
      await mkdir(project);
      await writeFile(
        path.join(project, 'tsfig.yml'),
        [
          'name: usernsproj',
          'services:',
          '  app:',
          `    image: ${IMAGE}`,
          '    userns_mode: auto',
          '    command: ["sleep", "600"]',
          '    volumes: ["data:/data"]',
          'volumes:',
          '  data: {}',
          '',
        ].join('\n'),
      );
    });
    after(async () => {
      await t.cli(['down', '-v', '-t', '1'], { cwd: project });
    });

    test('userns_mode: auto; a file written into a named volume is read back after down/up', async () => {
      const up = await t.cli(['up', '-d'], { cwd: project });
      assert.equal(up.code, 0, up.stderr);
      const write = await t.cli(
        ['exec', '-T', 'app', 'sh', '-c', 'echo kept > /data/f && chmod 600 /data/f && stat -c %u /data/f'],
        { cwd: project },
      );
      assert.equal(write.stdout, '0\n', write.stderr);
      const first = (await t.cli(['ps', '-q'], { cwd: project })).stdout.trim();
      const firstIds = hostIds(await pidOf(first));
      assert.notEqual(firstIds.uid, 0);
      // the volume keeps the container's own ids (idmapped mount), not the host range's
      const stored = await stat(path.join(t.engine.paths.volumes, 'usernsproj_data', '_data', 'f'));
      assert.equal(stored.uid, 0);
      assert.equal((await t.cli(['down', '-t', '1'], { cwd: project })).code, 0);
      assert.equal((await listUserns(t.engine.paths))[first], undefined, 'down released the range');
      const again = await t.cli(['up', '-d'], { cwd: project });
      assert.equal(again.code, 0, again.stderr);
      const read = await t.cli(['exec', '-T', 'app', 'cat', '/data/f'], { cwd: project });
      assert.equal(read.code, 0, read.stderr);
      assert.equal(read.stdout, 'kept\n');
      const second = (await t.cli(['ps', '-q'], { cwd: project })).stdout.trim();
      assert.notEqual(hostIds(await pidOf(second)).uid, 0);
    });

    test('cp into the volume of a userns_mode: auto service: owned by its root (-a: the source ids), kept after down/up', async () => {
      // the volume is an idmapped mount in the container
      const src = path.join(t.dir, 'cp-src');
      await mkdir(path.join(src, 'tree'), { recursive: true });
      await writeFile(path.join(src, 'note.txt'), 'copied\n');
      await writeFile(path.join(src, 'tree', 'g'), 'g\n');
      await chown(path.join(src, 'tree', 'g'), 1000, 1001);
      const up = await t.cli(['up', '-d'], { cwd: project });
      assert.equal(up.code, 0, up.stderr);
      const plain = await t.cli(['cp', path.join(src, 'note.txt'), 'app:/data/note.txt'], { cwd: project });
      assert.equal(plain.code, 0, plain.stderr);
      const archive = await t.cli(['cp', '-a', path.join(src, 'tree'), 'app:/data/tree'], { cwd: project });
      assert.equal(archive.code, 0, archive.stderr);
      const check = [
        'exec',
        '-T',
        'app',
        'sh',
        '-c',
        'cat /data/note.txt; stat -c "%n %u:%g" /data/note.txt /data/tree/g',
      ];
      const expected = 'copied\n/data/note.txt 0:0\n/data/tree/g 1000:1001\n';
      const first = await t.cli(check, { cwd: project });
      assert.equal(first.stdout, expected, first.stderr);
      // the container's user (root of its range) can rewrite what was copied in
      const rewrite = await t.cli(['exec', '-T', 'app', 'sh', '-c', 'echo more >> /data/note.txt'], { cwd: project });
      assert.equal(rewrite.code, 0, rewrite.stderr);
      assert.equal((await t.cli(['down', '-t', '1'], { cwd: project })).code, 0);
      assert.equal((await t.cli(['up', '-d'], { cwd: project })).code, 0);
      const second = await t.cli(check, { cwd: project });
      assert.equal(second.stdout, expected.replace('copied\n', 'copied\nmore\n'), second.stderr);
    });

    test("type: image mounts are idmapped: an image's root-owned files are the container root's, not nobody's", async () => {
      // a two-layer image (an overlay when mounted; busybox alone is one layer: a bind), with a file owned by 5:6
      const made = await t.cli([
        ...['container', 'run', '--name', 'imgvol-src', IMAGE],
        ...['sh', '-c', 'mkdir /payload && echo hi > /payload/msg && chown 5:6 /payload/msg'],
      ]);
      assert.equal(made.code, 0, made.stderr);
      const dir = path.join(t.dir, 'imgproj');
      try {
        assert.equal((await t.cli(['container', 'commit', 'imgvol-src', 'userns-imgvol:1'])).code, 0);
        await mkdir(dir);
        await writeFile(
          path.join(dir, 'tsfig.yml'),
          [
            'name: usernsimg',
            'services:',
            '  app:',
            `    image: ${IMAGE}`,
            '    userns_mode: auto',
            '    command: ["sleep", "600"]',
            '    volumes:',
            '      - { type: image, source: "userns-imgvol:1", target: /mnt/data }',
            `      - { type: image, source: "${IMAGE}", target: /mnt/bb }`,
            '',
          ].join('\n'),
        );
        const up = await t.cli(['up', '-d'], { cwd: dir });
        assert.equal(up.code, 0, up.stderr);
        const owners = await t.cli(
          ['exec', '-T', 'app', 'stat', '-c', '%n %u:%g', '/mnt/data/payload/msg', '/mnt/data/bin', '/mnt/bb/bin'],
          { cwd: dir },
        );
        assert.equal(owners.stdout, '/mnt/data/payload/msg 5:6\n/mnt/data/bin 0:0\n/mnt/bb/bin 0:0\n', owners.stderr);
        const mounts = await t.cli(['exec', '-T', 'app', 'cat', '/proc/mounts'], { cwd: dir });
        assert.match(mounts.stdout, /^overlay \/mnt\/data overlay ro,/m);
        // still read-only
        const write = await t.cli(['exec', '-T', 'app', 'sh', '-c', 'echo x > /mnt/bb/new'], { cwd: dir });
        assert.notEqual(write.code, 0);
        assert.match(write.stderr, /Read-only file system/);
      } finally {
        await t.cli(['down', '-t', '0'], { cwd: dir });
        await t.cli(['container', 'rm', 'imgvol-src']);
        await t.cli(['image', 'rm', 'userns-imgvol:1']);
      }
    });

    test('userns_mode: bogus is refused with file:line:col and changes nothing', async () => {
      const dir = path.join(t.dir, 'bogus');
      await mkdir(dir);
      await writeFile(
        path.join(dir, 'tsfig.yml'),
        ['name: usernsbogus', 'services:', '  app:', `    image: ${IMAGE}`, '    userns_mode: bogus', ''].join('\n'),
      );
      const up = await t.cli(['up', '-d'], { cwd: dir });
      assert.equal(up.code, 65, up.stderr);
      assert.match(up.stderr, /tsfig\.yml:5:18: .*userns_mode: invalid user namespace mode "bogus"/);
      const ps = await t.cli(['container', 'ls', '-aq', '--filter', 'label=com.docker.compose.project=usernsbogus']);
      assert.equal(ps.stdout, '');
    });
  });
});

describe('user namespaces: ranges are host-wide, across state roots (root)', { skip: NEEDS_ROOT }, () => {
  let a: TestEngine;
  let b: TestEngine;
  let undo: () => void = () => undefined;
  before(async () => {
    undo = ensureSubordinateIds();
    a = await makeTestEngine();
    b = await makeTestEngine();
  });
  after(async () => {
    await a.cleanup();
    await b.cleanup();
    undo();
  });

  async function registry(): Promise<{ root: string; container: string; uid: number }[]> {
    const text = await readFile(path.join(REGISTRY_DIR, 'ranges.json'), 'utf8').catch(() => '{"entries":[]}');
    return (JSON.parse(text) as { entries: { root: string; container: string; uid: number }[] }).entries;
  }

  test("attack: a container of another state root reads a 0600 file of this root's container through a shared dir", async () => {
    // a host dir both bind in (not idmapped): what A's root writes there is owned by A's host id
    const shared = path.join(a.dir, 'shared');
    await mkdir(shared);
    await chmod(shared, 0o777);
    const run = await a.cli([
      'container',
      'run',
      '-d',
      '--userns',
      'auto',
      '-v',
      `${shared}:/s`,
      IMAGE,
      'sleep',
      '600',
    ]);
    assert.equal(run.code, 0, run.stderr);
    const id = run.stdout.trim();
    try {
      const write = await a.cli(['container', 'exec', id, 'sh', '-c', 'echo secret > /s/a && chmod 600 /s/a']);
      assert.equal(write.code, 0, write.stderr);
      const other = await b.cli([
        'container',
        'run',
        '-d',
        '--userns',
        'auto',
        '-v',
        `${shared}:/s`,
        IMAGE,
        'sleep',
        '600',
      ]);
      assert.equal(other.code, 0, other.stderr);
      const otherId = other.stdout.trim();
      try {
        const read = await b.cli(['container', 'exec', otherId, 'cat', '/s/a']);
        assert.notEqual(read.code, 0, `root B's container read root A's file: ${read.stdout}`);
        assert.doesNotMatch(read.stdout, /secret/);
        assert.match(read.stderr, /Permission denied/);
        const rangeA = (await listUserns(a.engine.paths))[id];
        const rangeB = (await listUserns(b.engine.paths))[otherId];
        assert.ok(rangeA !== undefined && rangeB !== undefined);
        assert.ok(
          rangeA.uid + rangeA.size <= rangeB.uid || rangeB.uid + rangeB.size <= rangeA.uid,
          `ranges overlap: ${JSON.stringify([rangeA, rangeB])}`,
        );
        // the registry names each range's state root and container
        const entries = await registry();
        assert.ok(entries.some((e) => e.root === a.engine.paths.root && e.container === id && e.uid === rangeA.uid));
        assert.ok(
          entries.some((e) => e.root === b.engine.paths.root && e.container === otherId && e.uid === rangeB.uid),
        );
      } finally {
        assert.equal((await b.cli(['container', 'rm', '-f', otherId])).code, 0);
      }
    } finally {
      assert.equal((await a.cli(['container', 'rm', '-f', id])).code, 0);
    }
    const left = await registry();
    assert.deepEqual(
      left.filter((e) => e.root === a.engine.paths.root || e.root === b.engine.paths.root),
      [],
      'rm released both',
    );
  });

  test('a state root that is gone loses its entries at the next allocation; system check --repair removes one its root does not hold', async () => {
    const gone = await makeTestEngine();
    await allocateUserns(gone.engine.paths, 'e'.repeat(64));
    await gone.cleanup(); // deleted with its userns.json: only the registry still holds the range
    assert.ok((await registry()).some((e) => e.root === gone.engine.paths.root));
    const create = await a.cli(['container', 'create', '--userns', 'auto', IMAGE, 'true']);
    assert.equal(create.code, 0, create.stderr);
    assert.equal((await a.cli(['container', 'rm', create.stdout.trim()])).code, 0);
    assert.deepEqual(
      (await registry()).filter((e) => e.root === gone.engine.paths.root),
      [],
      'dropped by the allocation',
    );
    // a create killed between the registry and the root's userns.json: the registry holds a range the root does not
    const ghost = 'd'.repeat(64);
    await allocateUserns(a.engine.paths, ghost);
    const file = path.join(a.engine.paths.root, 'userns.json');
    await rm(file);
    try {
      const check = await a.cli(['system', 'check']);
      assert.notEqual(check.code, 0, 'check reports a finding');
      assert.match(
        check.stdout + check.stderr,
        /dddddddddddd.*host-wide registry: subordinate ids \d+-\d+ held for a container its state root does not have/,
      );
      const repair = await a.cli(['system', 'check', '--repair']);
      assert.match(repair.stdout + repair.stderr, /entry removed/);
      const again = await a.cli(['system', 'check']);
      assert.equal(again.code, 0, again.stdout + again.stderr);
    } finally {
      if ((await registry()).some((e) => e.container === ghost)) await a.cli(['system', 'check', '--repair']);
    }
    assert.deepEqual(
      (await registry()).filter((e) => e.root === a.engine.paths.root),
      [],
    );
  });
});

// chown-on-copy: the same guarantees where the file system does not support idmapped mounts. The state root here is
// a ramfs (checked to refuse an idmapped mount first): the image's layers become copies owned by the range (in the
// container's dir, removed with it), a volume's files are chowned to the range of the container that starts with it,
// and the walks never follow a symlink or change a file hard-linked from outside the tree.
describe('user namespaces without idmapped mounts: chown-on-copy (root)', { skip: NEEDS_ROOT }, () => {
  let dir: string;
  let root: string;
  let env: NodeJS.ProcessEnv;
  let engine: Engine;
  let mounted = false;
  let undo: () => void = () => undefined;
  const cli = (args: readonly string[], options: CliOptions = {}) => runCli(args, env, options);

  before(async () => {
    undo = ensureSubordinateIds();
    dir = await mkdtemp(TEST_DIR_PREFIX);
    root = path.join(dir, 'root');
    await mkdir(root);
    execFileSync('mount', ['-t', 'ramfs', '-o', 'mode=0700', 'none', root]);
    mounted = true;
    env = engineEnv(dir);
    engine = createEngine({ env });
    await engine.images.importRootfs({ kind: 'file', path: BUSYBOX_TAR }, { reference: IMAGE });
  });
  after(async () => {
    await removeEngineObjects(engine);
    if (mounted) execFileSync('umount', [root]);
    await rm(dir, { recursive: true, force: true });
    undo();
  });

  async function pidOf(id: string): Promise<number> {
    const out = await cli(['container', 'inspect', '-f', '{{.State.Pid}}', id]);
    assert.equal(out.code, 0, out.stderr);
    return Number(out.stdout.trim());
  }

  test('the premise: ramfs refuses an idmapped mount (tsfig-runtime idmap-probe)', () => {
    const probe = spawnSync(path.join(REPO, 'native', 'build', 'tsfig-runtime'), ['idmap-probe', root], {
      encoding: 'utf8',
    });
    assert.equal(probe.status, 1, probe.stdout + probe.stderr);
    assert.match(probe.stdout, /the file system must support idmapped mounts/);
    const ext = spawnSync(path.join(REPO, 'native', 'build', 'tsfig-runtime'), ['idmap-probe', dir], {
      encoding: 'utf8',
    });
    assert.equal(ext.status, 0, `the test dir's own file system takes them: ${ext.stdout}`);
  });

  test("attack: a hostile image's symlinks and hard links do not lead the chowned copy out; root reads its 0600 files", async () => {
    // host files the image's symlinks name: a chown that followed one would give them to the container's root
    const victim = path.join(dir, 'victim');
    await writeFile(victim, 'host\n', { mode: 0o644 });
    const victimDir = path.join(dir, 'victim-dir');
    await mkdir(victimDir);
    await writeFile(path.join(victimDir, 'inner'), 'host\n');
    const script = [
      `ln -s ${victim} /evil`,
      `ln -s ${victimDir} /evil-dir`,
      'ln -s ../../../../../../../../victim /evil-rel',
      'echo secret > /secret && chmod 600 /secret',
      'echo a > /a && ln /a /b',
      'cp /bin/busybox /suid && chmod 4755 /suid',
      'mkdir /d5 && chown 5:6 /d5 && chmod 2775 /d5',
    ].join(' && ');
    const made = await cli(['container', 'run', '--name', 'hostile-src', IMAGE, 'sh', '-c', script]);
    assert.equal(made.code, 0, made.stderr);
    assert.equal((await cli(['container', 'commit', 'hostile-src', 'userns-hostile:1'])).code, 0);
    assert.equal((await cli(['container', 'rm', 'hostile-src'])).code, 0);
    const run = await cli(['container', 'run', '-d', '--userns', 'auto', 'userns-hostile:1', 'sleep', '600']);
    assert.equal(run.code, 0, run.stderr);
    const id = run.stdout.trim();
    try {
      const range = (await listUserns(engine.paths))[id];
      assert.ok(range !== undefined);
      const ids = hostIds(await pidOf(id));
      assert.deepEqual(ids, { uid: range.uid, gid: range.gid });
      assert.ok(ids.uid >= 65536, `host ids ${JSON.stringify(ids)}`);
      const inside = await cli([
        ...['container', 'exec', id, 'sh', '-c'],
        'id -u; cat /secret; stat -c "%n %u:%g %a" /etc/passwd /secret /suid /d5 /a; [ $(stat -c %i /a) = $(stat -c %i /b) ] && echo linked; readlink /evil; touch /new && echo wrote',
      ]);
      assert.equal(
        inside.stdout,
        [
          '0',
          'secret',
          '/etc/passwd 0:0 644',
          '/secret 0:0 600',
          '/suid 0:0 4755',
          '/d5 5:6 2775',
          '/a 0:0 644',
          'linked',
          victim,
          'wrote',
          '',
        ].join('\n'),
        inside.stderr,
      );
      // the root file system is an overlay of the copies, not of idmapped clones of the shared layers
      const mounts = await cli(['container', 'exec', id, 'grep', ' / overlay ', '/proc/mounts']);
      assert.match(mounts.stdout, new RegExp(`lowerdir=${engine.paths.containers}/${id}/shifted/`));
      // the host files the symlinks name are untouched; the links themselves are the range's
      for (const file of [victim, victimDir, path.join(victimDir, 'inner')]) {
        const s = await lstat(file);
        assert.deepEqual([s.uid, s.gid], [0, 0], file);
      }
      // the copy of the image's top layer (the committed one) holds the links
      const [layer] = engine.images.layerDirs(await engine.images.resolve('userns-hostile:1'));
      assert.ok(layer !== undefined);
      const copy = path.join(engine.paths.containers, id, 'shifted', path.basename(path.dirname(layer)));
      const link = await lstat(path.join(copy, 'evil'));
      assert.deepEqual([link.uid, link.gid], [range.uid, range.gid]);
      assert.equal((await lstat(path.join(copy, 'secret'))).uid, range.uid);
      // the shared layers keep the container's own ids
      assert.equal((await lstat(path.join(layer, 'secret'))).uid, 0);
    } finally {
      assert.equal((await cli(['container', 'rm', '-f', id])).code, 0);
    }
    await assert.rejects(lstat(path.join(engine.paths.containers, id)), { code: 'ENOENT' });
    assert.equal((await cli(['image', 'rm', 'userns-hostile:1'])).code, 0);
  });

  test('attack: symlinks and a hard link from outside in a volume are not followed by its chown', async () => {
    const victim = path.join(dir, 'vol-victim');
    await writeFile(victim, 'host\n', { mode: 0o644 });
    // a container without a user namespace (the volume's own ids) plants the links
    const plant = await cli([
      ...['container', 'run', '--rm', '-v', 'hvol:/v', IMAGE, 'sh', '-c'],
      `echo mine > /v/own && ln -s ${victim} /v/evil && ln -s ${dir} /v/evil-dir`,
    ]);
    assert.equal(plant.code, 0, plant.stderr);
    // and a file of the same file system, outside the volume, is hard-linked into it (as host root could)
    const data = path.join(engine.paths.volumes, 'hvol', '_data');
    const outside = path.join(root, 'outside');
    await writeFile(outside, 'outside\n');
    execFileSync('ln', [outside, path.join(data, 'hard')]);
    const run = await cli(['container', 'run', '-d', '--userns', 'auto', '-v', 'hvol:/v', IMAGE, 'sleep', '600']);
    assert.equal(run.code, 0, run.stderr);
    const id = run.stdout.trim();
    try {
      const range = (await listUserns(engine.paths))[id];
      assert.ok(range !== undefined);
      const seen = await cli(['container', 'exec', id, 'sh', '-c', 'stat -c "%n %u:%g" /v/own && echo more >> /v/own']);
      assert.equal(seen.stdout, '/v/own 0:0\n', seen.stderr);
      const owners = async (file: string) => {
        const s = await lstat(file);
        return [s.uid, s.gid];
      };
      assert.deepEqual(await owners(path.join(data, 'own')), [range.uid, range.gid]);
      assert.deepEqual(await owners(path.join(data, 'evil')), [range.uid, range.gid]);
      assert.deepEqual(await owners(victim), [0, 0]);
      assert.deepEqual(await owners(dir), [0, 0]);
      assert.deepEqual(await owners(outside), [0, 0], 'a file hard-linked from outside the volume is left alone');
    } finally {
      assert.equal((await cli(['container', 'rm', '-f', id])).code, 0);
      assert.equal((await cli(['volume', 'rm', 'hvol'])).code, 0);
      await rm(outside, { force: true });
    }
  });

  describe('compose: userns_mode: auto on a volume without idmapped mounts', () => {
    let project: string;
    before(async () => {
      project = path.join(dir, 'proj');
      await mkdir(project);
      await writeFile(
        path.join(project, 'tsfig.yml'),
        [
          'name: usernscopy',
          'services:',
          '  app:',
          `    image: ${IMAGE}`,
          '    userns_mode: auto',
          '    command: ["sleep", "600"]',
          '    volumes: ["data:/data"]',
          'volumes:',
          '  data: {}',
          '',
        ].join('\n'),
      );
    });
    after(async () => {
      await cli(['down', '-v', '-t', '0'], { cwd: project });
    });

    test('a file written into the volume is read back after down/up with another range, and by a container without one', async () => {
      const data = path.join(engine.paths.volumes, 'usernscopy_data', '_data');
      assert.equal((await cli(['up', '-d'], { cwd: project })).code, 0);
      const first = (await cli(['ps', '-q'], { cwd: project })).stdout.trim();
      const firstRange = (await listUserns(engine.paths))[first];
      assert.ok(firstRange !== undefined);
      assert.equal(hostIds(await pidOf(first)).uid, firstRange.uid);
      const write = await cli(
        ['exec', '-T', 'app', 'sh', '-c', 'echo kept > /data/f && chmod 600 /data/f && chown 7:8 /data && echo ok'],
        { cwd: project },
      );
      assert.equal(write.stdout, 'ok\n', write.stderr);
      // stored with the range's host ids (no idmapped mount to keep the container's own)
      assert.equal((await stat(path.join(data, 'f'))).uid, firstRange.uid);
      // cp into the running container's volume writes them as its ids too
      await writeFile(path.join(dir, 'cp-in'), 'copied\n');
      assert.equal((await cli(['cp', path.join(dir, 'cp-in'), 'app:/data/cp-in'], { cwd: project })).code, 0);
      assert.equal((await stat(path.join(data, 'cp-in'))).uid, firstRange.uid);
      assert.equal((await cli(['down', '-t', '0'], { cwd: project })).code, 0);
      // another container takes the range that was released: the next one gets another, and the volume follows it
      const holder = await cli(['container', 'create', '--userns', 'auto', IMAGE, 'true']);
      assert.equal(holder.code, 0, holder.stderr);
      try {
        assert.equal((await cli(['up', '-d'], { cwd: project })).code, 0);
        const second = (await cli(['ps', '-q'], { cwd: project })).stdout.trim();
        const secondRange = (await listUserns(engine.paths))[second];
        assert.ok(secondRange !== undefined);
        assert.notEqual(secondRange.uid, firstRange.uid);
        assert.equal(hostIds(await pidOf(second)).uid, secondRange.uid);
        const read = await cli(
          ['exec', '-T', 'app', 'sh', '-c', 'cat /data/f /data/cp-in; stat -c "%n %u:%g" /data /data/f /data/cp-in'],
          { cwd: project },
        );
        assert.equal(read.stdout, 'kept\ncopied\n/data 7:8\n/data/f 0:0\n/data/cp-in 0:0\n', read.stderr);
        assert.equal((await stat(path.join(data, 'f'))).uid, secondRange.uid);
        // a volume can be one range's at a time: another container with a user namespace is refused while it runs
        const other = await cli([
          ...['container', 'run', '-d', '--name', 'refused', '--userns', 'auto', '-v', 'usernscopy_data:/d', IMAGE],
          ...['sleep', '600'],
        ]);
        assert.notEqual(other.code, 0);
        assert.match(
          other.stderr,
          /volume usernscopy_data is in use by container usernscopy-app-1, whose user namespace differs/,
        );
        assert.equal((await stat(path.join(data, 'f'))).uid, secondRange.uid, 'the refused start changed nothing');
        // so is one without a user namespace (it would chown the files back to their own ids under the running one)
        const plainWhile = await cli(['container', 'run', '--rm', '-v', 'usernscopy_data:/d', IMAGE, 'true']);
        assert.notEqual(plainWhile.code, 0);
        assert.match(plainWhile.stderr, /volume usernscopy_data is in use by container usernscopy-app-1/);
        assert.equal((await stat(path.join(data, 'f'))).uid, secondRange.uid);
        await cli(['container', 'rm', '-f', 'refused']);
        assert.equal((await cli(['down', '-t', '0'], { cwd: project })).code, 0);
      } finally {
        assert.equal((await cli(['container', 'rm', holder.stdout.trim()])).code, 0);
      }
      // a container without a user namespace reads the container's own ids again
      const plain = await cli([
        'container',
        'run',
        '--rm',
        '-v',
        'usernscopy_data:/d',
        IMAGE,
        'stat',
        '-c',
        '%u:%g',
        '/d/f',
      ]);
      assert.equal(plain.stdout, '0:0\n', plain.stderr);
      assert.equal((await stat(path.join(data, 'f'))).uid, 0);
      await assert.rejects(stat(path.join(engine.paths.volumes, 'usernscopy_data', 'shift.json')), { code: 'ENOENT' });
    });
  });

  test('what a killed start leaves (a partial layer copy, a volume half chowned) is finished by the next start', async () => {
    const create = await cli(['container', 'create', '--userns', 'auto', '-v', 'kvol:/v', IMAGE, 'sleep', '600']);
    assert.equal(create.code, 0, create.stderr);
    const id = create.stdout.trim();
    try {
      const range = (await listUserns(engine.paths))[id];
      assert.ok(range !== undefined);
      // the state a kill -9 during the first start leaves: a copy not renamed into place, and a volume whose chown to
      // the range was recorded and had moved one file of two
      const [layer] = engine.images.layerDirs(await engine.images.resolve(IMAGE));
      assert.ok(layer !== undefined);
      const partial = path.join(
        engine.paths.containers,
        id,
        'shifted',
        `.tmp-${path.basename(path.dirname(layer))}-dead`,
      );
      await mkdir(path.join(partial, 'bin'), { recursive: true });
      const data = path.join(engine.paths.volumes, 'kvol', '_data');
      await writeFile(path.join(data, 'moved'), 'moved\n');
      await chown(path.join(data, 'moved'), range.uid + 5, range.gid + 5);
      await writeFile(path.join(data, 'left'), 'left\n');
      await chown(path.join(data, 'left'), 6, 6);
      const shiftJson = path.join(engine.paths.volumes, 'kvol', 'shift.json');
      await writeFile(shiftJson, JSON.stringify({ v: 1, to: range }));
      // meanwhile cp refuses the volume, naming it and what finishes it
      const cp = await cli(['container', 'cp', `${id}:/v/left`, path.join(dir, 'left-out')]);
      assert.notEqual(cp.code, 0);
      assert.match(cp.stderr, /volume kvol is being chowned to a container's user namespace/);
      assert.match(cp.stderr, /start a container that uses it/);
      // the next start removes the partial copy, copies again, and finishes the chown
      const start = await cli(['container', 'start', id]);
      assert.equal(start.code, 0, start.stderr);
      await assert.rejects(lstat(partial), { code: 'ENOENT' });
      const seen = await cli(['container', 'exec', id, 'stat', '-c', '%n %u:%g', '/v/moved', '/v/left', '/bin/sh']);
      assert.equal(seen.stdout, '/v/moved 5:5\n/v/left 6:6\n/bin/sh 0:0\n', seen.stderr);
      assert.deepEqual(JSON.parse(await readFile(shiftJson, 'utf8')), { v: 1, range });
    } finally {
      assert.equal((await cli(['container', 'rm', '-f', id])).code, 0);
      assert.equal((await cli(['volume', 'rm', 'kvol'])).code, 0);
    }
  });

  test('nothing remains after removal: no copies, no ranges, no mounts', async () => {
    assert.equal((await cli(['container', 'ls', '-aq'])).stdout, '');
    assert.deepEqual(await readdir(engine.paths.containers), []);
    assert.deepEqual(await listUserns(engine.paths), {});
    assert.deepEqual(
      leftovers(dir).filter((line) => !line.startsWith('none ')),
      [],
    );
  });
});

describe('TSFIG_IDMAP=0: the chown-on-copy fallback where idmapped mounts work (root)', { skip: NEEDS_ROOT }, () => {
  let t: TestEngine;
  let undo: () => void = () => undefined;
  before(async () => {
    undo = ensureSubordinateIds();
    t = await makeTestEngine();
  });
  after(async () => {
    await t.cleanup();
    undo();
  });

  test('TSFIG_IDMAP=0 copies the layers; TSFIG_IDMAP=bogus is refused naming the variable and makes nothing', async () => {
    const env = { TSFIG_IDMAP: '0' };
    const run = await t.cli(
      [
        'container',
        'run',
        '--rm',
        '--userns',
        'auto',
        IMAGE,
        'sh',
        '-c',
        'stat -c %u:%g /etc/passwd; grep " / overlay " /proc/mounts',
      ],
      { env },
    );
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^0:0\n/);
    assert.match(run.stdout, /\/shifted\//);
    const bogus = await t.cli(['container', 'run', '--rm', '--userns', 'auto', IMAGE, 'true'], {
      env: { TSFIG_IDMAP: 'bogus' },
    });
    assert.notEqual(bogus.code, 0);
    assert.match(bogus.stderr, /^error: TSFIG_IDMAP: invalid value "bogus"$/m);
    assert.equal((await t.cli(['container', 'ls', '-aq'])).stdout, '');
  });
});
