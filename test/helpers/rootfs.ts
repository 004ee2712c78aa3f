import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, symlink, writeFile, copyFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** Debian's busybox-static, installed by scripts/setup.sh. */
export const BUSYBOX = '/bin/busybox';

let applets: string[] | undefined;

function busyboxApplets(): string[] {
  applets ??= execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' })
    .split('\n')
    .map((name) => name.trim())
    .filter((name) => name !== '' && name !== 'busybox');
  return applets;
}

/**
 * Lays out a minimal busybox root filesystem in dir (which must exist and be empty): /bin/busybox plus a symlink per
 * applet in /bin, /etc/passwd and /etc/group with root, daemon and nobody, and the usual empty directories.
 * The same layout the busybox base image has (scripts/base-images.sh), without the store.
 */
export async function makeBusyboxRootfs(dir: string): Promise<void> {
  for (const sub of ['bin', 'etc', 'tmp', 'root', 'proc', 'sys', 'dev', 'home', 'var', 'usr/bin', 'sbin']) {
    await mkdir(path.join(dir, sub), { recursive: true });
  }
  await chmod(path.join(dir, 'tmp'), 0o1777);
  await copyFile(BUSYBOX, path.join(dir, 'bin', 'busybox'));
  await chmod(path.join(dir, 'bin', 'busybox'), 0o755);
  for (const name of busyboxApplets()) {
    await symlink('busybox', path.join(dir, 'bin', name)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    });
  }
  await writeFile(
    path.join(dir, 'etc', 'passwd'),
    'root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
  );
  await writeFile(path.join(dir, 'etc', 'group'), 'root:x:0:\ndaemon:x:1:\nusers:x:100:nobody\nnogroup:x:65534:\n');
}

/**
 * A busybox root filesystem laid out as an image layer's lower dir: `lower` is <tmp>/<prefix>XXXXXX/diff, and `base`
 * (its parent) is what to remove when done.
 */
export async function makeBusyboxLower(prefix: string): Promise<{ base: string; lower: string }> {
  const base = await mkdtemp(path.join(tmpdir(), prefix));
  const lower = path.join(base, 'diff');
  await mkdir(lower);
  await makeBusyboxRootfs(lower);
  return { base, lower };
}
