/**
 * Reading a build's file trees: paths resolved inside a root without ever leaving it (symlinks included), the
 * layers of an image read top-down with whiteouts (for metadata of existing paths and /etc/passwd), and a stage's
 * merged root filesystem mounted read-only in a private mount namespace for `COPY --from`.
 */
import { spawn } from 'node:child_process';
import type { Stats } from 'node:fs';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { EngineError, isErrno } from '../errors.js';
import { isRootless } from '../system/rootless.js';
import { ownedTmpDir } from './tmpdir.js';

function parts(rel: string): string[] {
  return rel.split('/').filter((part) => part !== '' && part !== '.');
}

/**
 * The host path of rel inside root, with symlinks resolved inside root (an absolute link restarts at root, `..`
 * stops at root), so nothing outside root is ever reached. followFinal: resolve a symlink in the last component too.
 */
export async function resolveInRoot(root: string, rel: string, followFinal: boolean): Promise<string> {
  const pending = parts(rel);
  let resolved: string[] = [];
  let budget = 40;
  while (pending.length > 0) {
    const part = pending.shift() ?? '';
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const candidate = path.join(root, ...resolved, part);
    const stat = await fs.lstat(candidate).catch(() => undefined);
    if (stat?.isSymbolicLink() === true && (pending.length > 0 || followFinal)) {
      if (--budget < 0) throw new EngineError('invalid', `too many levels of symbolic links in ${rel}`);
      const target = await fs.readlink(candidate);
      if (target.startsWith('/')) resolved = [];
      pending.unshift(...parts(target));
      continue;
    }
    resolved.push(part);
  }
  return path.join(root, ...resolved);
}

function isWhiteout(stat: Stats): boolean {
  return stat.isCharacterDevice() && stat.rdev === 0;
}

/**
 * An image's layers (diff dirs, topmost first) seen as one tree, for lookups only: the topmost layer holding a path
 * wins, a whiteout hides it. (Opaque directories are not seen: Node cannot read xattrs; lookups are used for
 * metadata and small files where that is harmless.)
 */
export class LayerView {
  readonly diffDirs: readonly string[];

  constructor(diffDirs: readonly string[]) {
    this.diffDirs = diffDirs;
  }

  private async lookupExact(rel: readonly string[]): Promise<{ stat: Stats; host: string } | undefined> {
    for (const dir of this.diffDirs) {
      for (let i = 1; i <= rel.length; i++) {
        const host = path.join(dir, ...rel.slice(0, i));
        const stat = await fs.lstat(host).catch((error: unknown) => {
          if (isErrno(error, 'ENOENT') || isErrno(error, 'ENOTDIR')) return undefined;
          throw error;
        });
        if (stat === undefined) break;
        if (isWhiteout(stat)) return undefined;
        if (i === rel.length) return { stat, host };
        if (!stat.isDirectory()) {
          if (stat.isSymbolicLink()) return { stat, host: '' }; // resolved by the caller
          return undefined;
        }
      }
    }
    return undefined;
  }

  /** The stat and host path of an absolute path in the image, symlinks in the directories resolved. */
  async lookup(absolute: string, followFinal = false): Promise<{ stat: Stats; host: string } | undefined> {
    const pending = parts(absolute);
    let resolved: string[] = [];
    let budget = 40;
    while (pending.length > 0) {
      const part = pending.shift() ?? '';
      if (part === '..') {
        resolved.pop();
        continue;
      }
      const next = [...resolved, part];
      const found = await this.lookupExact(next);
      if (found === undefined) return undefined;
      if (found.stat.isSymbolicLink() && (pending.length > 0 || followFinal)) {
        if (--budget < 0) return undefined;
        const host = found.host !== '' ? found.host : undefined;
        const target = host !== undefined ? await fs.readlink(host) : await this.readlink(next);
        if (target === undefined) return undefined;
        if (target.startsWith('/')) resolved = [];
        pending.unshift(...parts(target));
        continue;
      }
      resolved = next;
      if (pending.length === 0) return found;
    }
    const root = this.diffDirs[0];
    return root === undefined ? undefined : { stat: await fs.lstat(root), host: root };
  }

  private async readlink(rel: readonly string[]): Promise<string | undefined> {
    for (const dir of this.diffDirs) {
      try {
        return await fs.readlink(path.join(dir, ...rel));
      } catch {
        // not in this layer
      }
    }
    return undefined;
  }

  async readFile(absolute: string): Promise<Buffer | undefined> {
    const found = await this.lookup(absolute, true);
    if (found === undefined || !found.stat.isFile()) return undefined;
    return fs.readFile(found.host);
  }
}

/**
 * Runs fn with the merged, read-only root filesystem of layers (diff dirs, topmost first), mounted in a private
 * mount namespace held by a helper process and read through /proc/<pid>/root: the mount vanishes with the helper,
 * even if tsfig dies.
 */
export async function withMergedRootfs<T>(
  diffDirs: readonly string[],
  tmpDir: string,
  fn: (root: string) => Promise<T>,
): Promise<T> {
  // named after this process: if it is killed outright, the next build removes the dir (debris.ts)
  const work = await ownedTmpDir(tmpDir, 'from');
  const mountpoint = path.join(work, 'merged');
  const empty = path.join(work, 'empty');
  await fs.mkdir(mountpoint);
  await fs.mkdir(empty);
  if (diffDirs.length === 0) {
    try {
      return await fn(mountpoint);
    } finally {
      await fs.rm(work, { recursive: true, force: true });
    }
  }
  const lower = [...diffDirs, empty].join(':');
  try {
    return await withPrivateOverlay(`ro,lowerdir=${lower}`, mountpoint, fn, {
      what: "the stage's root filesystem",
      hint: 'COPY --from needs root (mount namespaces and overlayfs)',
    });
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

/**
 * Runs fn with an overlay (mount options given) mounted on mountpoint in a private mount namespace held by a helper
 * process, read through /proc/<pid>/root: the mount is never visible on the host and vanishes with the helper, even
 * if tsfig dies. Rootless with `userxattr`, as the runtime mounts containers: the layers' opaque dirs are marked with
 * user.overlay.* there, which overlay reads only with it (without, a removed-and-remade dir showed its old files).
 */
export async function withPrivateOverlay<T>(
  mountOptions: string,
  mountpoint: string,
  fn: (root: string) => Promise<T>,
  describe: { readonly what: string; readonly hint?: string },
): Promise<T> {
  const options = isRootless() ? `${mountOptions},userxattr` : mountOptions;
  const child = spawn(
    'unshare',
    [
      '--mount',
      '--propagation',
      'private',
      '--',
      'sh',
      '-c',
      'mount -t overlay overlay -o "$1" "$2" && echo ready && read _',
      'sh',
      options,
      mountpoint,
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout.setEncoding('utf8').on('data', (text: string) => {
        if (text.includes('ready')) resolve();
      });
      child.once('error', reject);
      child.once('close', (code) =>
        reject(
          new EngineError(
            'runtime',
            `cannot mount ${describe.what}: ${stderr.trim() || `exit ${code}`}`,
            describe.hint !== undefined ? { hint: describe.hint } : {},
          ),
        ),
      );
    });
    return await fn(path.join(`/proc/${child.pid}/root`, mountpoint));
  } finally {
    child.stdin.end();
    child.kill('SIGTERM');
    await exited;
  }
}
