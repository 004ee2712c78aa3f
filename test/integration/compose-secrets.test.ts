/**
 * Compose secrets and configs on real containers, through the CLI: where they appear in the container, with which
 * owner and mode, and where their values must never appear (inspect, the record, the image, `config`, the logs).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { NEEDS_ROOT, suiteEngine, writeProject, type CliResult } from '../helpers/engine.js';

const BUSYBOX = 'tsfig/busybox:latest';
const SECRET = 'pw-4c9e1f0a-never-printed';
const FILE_SECRET = 'file-secret-77d1a';

/** Every regular file under dir (recursively), for searching state for a value. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  if (!existsSync(dir)) return out;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(full));
    else if (entry.isFile()) out.push(full);
  }
  return out;
}

describe('compose secrets and configs (root)', { skip: NEEDS_ROOT }, () => {
  const t = suiteEngine('root');

  async function ok(args: string[], cwd: string, env?: Record<string, string>): Promise<CliResult> {
    const result = await t.cli(args, { cwd, ...(env !== undefined ? { env } : {}) });
    assert.equal(result.code, 0, `tsfig ${args.join(' ')} failed:\n${result.stderr}`);
    return result;
  }

  test('a secret at /run/secrets/pw, readable, read-only, and nowhere in inspect, record, image or config', async () => {
    const dir = await writeProject(
      t,
      'secrets1',
      `services:
  app:
    image: ${BUSYBOX}
    command: sleep 300
    init: true
    user: "1234"
    secrets: [pw, filepw]
    configs:
      - source: conf
        target: /etc/app/app.conf
        uid: "1234"
        gid: "4321"
        mode: 0640
      - plain
secrets:
  pw:
    environment: APP_PW
  filepw:
    file: ./filepw.txt
configs:
  conf:
    content: "level=debug"
  plain:
    file: ./plain.conf
`,
    );
    await writeFile(path.join(dir, 'filepw.txt'), FILE_SECRET, { mode: 0o644 });
    await writeFile(path.join(dir, 'plain.conf'), 'plain=1\n');
    const env = { APP_PW: SECRET };
    try {
      const up = await ok(['up', '-d'], dir, env);
      assert.ok(!(up.stdout + up.stderr).includes(SECRET), 'up printed the secret');

      // Readable by the service's (non-root) user, mode 0444 root:root, on a read-only mount.
      const read = await ok(['exec', '-T', 'app', 'cat', '/run/secrets/pw'], dir);
      assert.equal(read.stdout, SECRET);
      const stat = await ok(['exec', '-T', 'app', 'stat', '-c', '%a %u %g', '/run/secrets/pw'], dir);
      assert.equal(stat.stdout.trim(), '444 0 0');
      const write = await t.cli(['exec', '-T', '-u', '0', 'app', 'sh', '-c', 'echo x > /run/secrets/pw'], {
        cwd: dir,
      });
      assert.notEqual(write.code, 0, 'the secret was writable by root in the container');
      assert.match(write.stderr + write.stdout, /Read-only file system/);
      // The file secret is a read-only bind of the host file, as compose does.
      assert.equal((await ok(['exec', '-T', 'app', 'cat', '/run/secrets/filepw'], dir)).stdout, FILE_SECRET);

      // The configs: content at its target with the asked owner and mode; a file config at /<name>.
      const conf = await ok(['exec', '-T', 'app', 'stat', '-c', '%a %u %g', '/etc/app/app.conf'], dir);
      assert.equal(conf.stdout.trim(), '640 1234 4321');
      assert.equal((await ok(['exec', '-T', 'app', 'cat', '/etc/app/app.conf'], dir)).stdout, 'level=debug');
      assert.equal((await ok(['exec', '-T', 'app', 'cat', '/plain'], dir)).stdout, 'plain=1\n');

      // Nowhere else: inspect, the container's record and state files, the image, config's output, the logs.
      const inspect = await ok(['container', 'inspect', 'secrets1-app-1'], dir);
      assert.ok(!inspect.stdout.includes(SECRET), 'container inspect shows the secret');
      const id = (JSON.parse(inspect.stdout) as { Id: string }[])[0]?.Id ?? '';
      const containerDir = path.join(t.engine.paths.containers, id);
      const record = readFileSync(path.join(containerDir, 'container.json'), 'utf8');
      assert.ok(!record.includes(SECRET), 'the container record holds the secret');
      assert.match(record, /"sha256": "[0-9a-f]{64}"/, 'the record keeps a digest of each file');
      for (const file of filesUnder(t.engine.paths.root)) {
        if (file.startsWith(path.join(containerDir, 'files'))) continue; // the secret's own file (root-only)
        assert.ok(!readFileSync(file).includes(SECRET), `${file} holds the secret`);
      }
      const filesDir = path.join(containerDir, 'files');
      assert.equal((await import('node:fs')).statSync(filesDir).mode & 0o777, 0o700, 'files dir is not root-only');
      const config = await ok(['config'], dir, env);
      assert.ok(!config.stdout.includes(SECRET), 'config prints the secret');
      assert.match(config.stdout, /environment: APP_PW/);
      const logs = await ok(['logs'], dir);
      assert.ok(!logs.stdout.includes(SECRET));

      // A commit of the container (its writable layer) holds no secret either.
      await ok(['container', 'commit', 'secrets1-app-1', 'secrets1/committed:1'], dir);
      const save = path.join(t.dir, 'committed.tar');
      await ok(['image', 'save', '-o', save, 'secrets1/committed:1'], dir);
      assert.ok(!readFileSync(save).includes(SECRET), 'a commit of the container holds the secret');
      await ok(['image', 'rm', 'secrets1/committed:1'], dir);

      // An unset variable: a clear error naming it, and nothing changes.
      const missing = await t.cli(['up', '-d', '--force-recreate'], { cwd: dir });
      assert.equal(missing.code, 65, missing.stderr);
      assert.match(missing.stderr, /environment variable "APP_PW" required by secret "pw" is not set/);
      assert.doesNotMatch(missing.stderr, /\n\s+at /, 'a stack trace');
    } finally {
      await ok(['down', '-v', '-t', '0'], dir, env);
    }
    assert.ok(!existsSync(path.join(t.engine.paths.containers)) || readdirSync(t.engine.paths.containers).length === 0);
  });

  test('an external secret is refused before anything is created', async () => {
    const dir = await writeProject(
      t,
      'secrets2',
      `services:
  app:
    image: ${BUSYBOX}
    secrets: [ext]
secrets:
  ext:
    external: true
`,
    );
    const result = await t.cli(['up', '-d'], { cwd: dir });
    assert.equal(result.code, 65, result.stderr);
    assert.match(result.stderr, /secrets\.ext: external secrets live in a swarm cluster/);
    assert.deepEqual(await t.engine.containers.list({ all: true }), []);
    assert.deepEqual(await t.engine.networks.list(), []);
  });

  test('build.secrets: a file and an environment secret mounted by RUN --mount=type=secret, in no image, output or state', async () => {
    const sha = (text: string): string => createHash('sha256').update(text).digest('hex');
    const dir = await writeProject(
      t,
      'buildsecrets',
      `services:
  app:
    build:
      context: .
      secrets:
        - filepw
        - source: pw
          target: token
    image: buildsecrets/app:1
    command: ["sh", "-c", "cat /built; test -e /run/secrets && echo stub-left || echo no-stub"]
secrets:
  pw:
    environment: BUILD_PW
  filepw:
    file: ./filepw.txt
`,
    );
    await writeFile(
      path.join(dir, 'Dockerfile'),
      [
        `FROM ${BUSYBOX}`,
        `RUN --mount=type=secret,id=filepw test "$(sha256sum < /run/secrets/filepw | cut -c1-64)" = ${sha(FILE_SECRET)} && echo file-ok > /built`,
        `RUN --mount=type=secret,id=token,env=TOKEN,required=true test "$(printf %s "$TOKEN" | sha256sum | cut -c1-64)" = ${sha(SECRET)} && echo env-ok >> /built`,
        '',
      ].join('\n'),
    );
    await writeFile(path.join(dir, 'filepw.txt'), FILE_SECRET, { mode: 0o600 });
    const env = { BUILD_PW: SECRET };
    try {
      const build = await ok(['build'], dir, env);
      assert.ok(
        !(build.stdout + build.stderr).includes(SECRET) && !(build.stdout + build.stderr).includes(FILE_SECRET),
      );
      const up = await ok(['--progress', 'json', 'up', '--build', '-d'], dir, env);
      assert.ok(!(up.stdout + up.stderr).includes(SECRET), 'up printed the secret');
      const run = await ok(['run', '--rm', 'app'], dir, env);
      assert.equal(run.stdout, 'file-ok\nenv-ok\nno-stub\n');
      for (const file of filesUnder(t.engine.paths.root)) {
        const bytes = readFileSync(file);
        assert.ok(!bytes.includes(SECRET) && !bytes.includes(FILE_SECRET), `${file} holds a build secret`);
      }
      const plan = await ok(['up', '--dry-run', '--format', 'json', '--build', '-d', '--force-recreate'], dir, env);
      assert.ok(!(plan.stdout + plan.stderr).includes(SECRET));

      // the variable unset: a clear error naming it, nothing built
      const missing = await t.cli(['build'], { cwd: dir });
      assert.equal(missing.code, 65, missing.stderr);
      assert.match(missing.stderr, /environment variable "BUILD_PW" required by secret "pw" is not set/);
    } finally {
      await ok(['down', '--rmi', 'all', '-t', '0'], dir, env);
    }
  });

  test('build.secrets naming an undeclared secret is refused at its file:line:col', async () => {
    const dir = await writeProject(
      t,
      'buildsecrets2',
      `services:
  app:
    build:
      context: .
      secrets: [nope]
secrets:
  pw:
    environment: BUILD_PW
`,
    );
    const result = await t.cli(['build'], { cwd: dir });
    assert.equal(result.code, 65, result.stderr);
    assert.match(result.stderr, /:5:17: error: services\.app\.build\.secrets\[0\]: secret "nope" is not declared/);
  });
});
