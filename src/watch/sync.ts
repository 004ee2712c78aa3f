/**
 * `sync`: copies changed host files into a running container through the engine.
 *
 * How: each batch becomes small POSIX `sh` scripts (the spec of a plan's `container.sync` operation, see
 * src/watch/actions.ts) that `EnginePort.syncFiles` runs with `engine.containers.exec` inside the container (its
 * mount namespace, root and user); they write the bytes with `printf` (octal escapes for anything not plain text) to
 * a temporary name and `mv` it over the target. So:
 * - the write resolves paths in the container's own root, as the container's user: a symlink inside the container can
 *   never lead out to the host (unlike writing into the overlay upper dir or /proc/PID/root from the host, where an
 *   absolute symlink in the container would resolve against the host's root);
 * - the host side never follows symlinks: files are read with lstat; a symlink that stays inside the watched tree is
 *   recreated as a symlink, one that points outside is skipped and reported (its target is never read);
 * - readers in the container never see a half-written file (rename is atomic).
 * It needs `sh`, `printf`, `mkdir`, `mv`, `chmod`, `rm`, `ln` in the image (busybox or coreutils); a scratch or
 * distroless image cannot be synced this way (the exec fails and the action reports it).
 */
import { lstat, readFile, readdir, readlink } from 'node:fs/promises';
import path from 'node:path';
import type { WatchRule } from './rules.js';
import { containerPath } from './rules.js';

export type SyncOp =
  | { readonly kind: 'write'; readonly dest: string; readonly data: Buffer; readonly mode: number }
  | { readonly kind: 'mkdir'; readonly dest: string }
  | { readonly kind: 'symlink'; readonly dest: string; readonly link: string }
  | { readonly kind: 'remove'; readonly dest: string };

/** Single-quoted for sh. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * Bytes as a single-quoted `printf` format that prints exactly them: printable ASCII stays as is (but `'`, `\`, `%`
 * and a leading `-`), newlines stay literal, every other byte is a 3-digit octal escape.
 */
export function printfFormat(data: Buffer): string {
  let out = '';
  for (let index = 0; index < data.length; index++) {
    const byte = data[index] ?? 0;
    const plain =
      (byte >= 0x20 &&
        byte <= 0x7e &&
        byte !== 0x27 &&
        byte !== 0x5c &&
        byte !== 0x25 &&
        !(index === 0 && byte === 0x2d)) ||
      byte === 0x0a;
    out += plain ? String.fromCharCode(byte) : `\\${byte.toString(8).padStart(3, '0')}`;
  }
  return `'${out}'`;
}

/** Raw bytes per printf command: escaped, at most 4x, well under Linux's 128 KiB per argument. */
const CHUNK = 16 * 1024;
/** Size of one script (one argv element). */
const SCRIPT_LIMIT = 96 * 1024;

/** The commands of one op; a large file is several commands (append), then an atomic rename. */
function opCommands(op: SyncOp): string[] {
  const dest = shellQuote(op.dest);
  const parent = shellQuote(path.posix.dirname(op.dest));
  switch (op.kind) {
    case 'remove':
      return [`rm -rf ${dest}`];
    case 'mkdir':
      return [`mkdir -p ${dest}`];
    case 'symlink':
      return [`mkdir -p ${parent}`, `rm -rf ${dest}`, `ln -s ${shellQuote(op.link)} ${dest}`];
    case 'write': {
      const temp = shellQuote(`${op.dest}.tsfig-sync`);
      const commands = [`mkdir -p ${parent}`];
      if (op.data.length === 0) commands.push(`: > ${temp}`);
      for (let offset = 0; offset < op.data.length; offset += CHUNK) {
        const format = printfFormat(op.data.subarray(offset, offset + CHUNK));
        commands.push(`printf ${format} ${offset === 0 ? '>' : '>>'} ${temp}`);
      }
      commands.push(`chmod ${(op.mode & 0o7777).toString(8)} ${temp}`, `mv -f ${temp} ${dest}`);
      return commands;
    }
  }
}

/** The ops as `sh -c` scripts, each under the argument size limit; `set -e` stops a script at its first failure. */
export function syncScripts(ops: readonly SyncOp[]): string[] {
  const scripts: string[] = [];
  let current: string[] = [];
  let size = 0;
  for (const op of ops) {
    for (const command of opCommands(op)) {
      if (size + command.length > SCRIPT_LIMIT && current.length > 0) {
        scripts.push(['set -e', ...current].join('\n'));
        current = [];
        size = 0;
      }
      current.push(command);
      size += command.length + 1;
    }
  }
  if (current.length > 0) scripts.push(['set -e', ...current].join('\n'));
  return scripts;
}

function inside(root: string, candidate: string): boolean {
  const relative = path.relative(root, candidate);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

/** What syncing `hostPaths` (changed paths under the rule) means, reading the host with lstat only. */
export async function syncOps(
  rule: WatchRule,
  hostPaths: readonly string[],
): Promise<{ ops: SyncOp[]; skipped: string[] }> {
  const ruleStat = await lstat(rule.path).catch(() => undefined);
  const ruleIsFile = ruleStat !== undefined && !ruleStat.isDirectory();
  const ops: SyncOp[] = [];
  const skipped: string[] = [];
  for (const hostPath of [...new Set(hostPaths)].sort()) {
    const dest = containerPath(rule, hostPath, ruleIsFile);
    if (dest === undefined) continue;
    const stat = await lstat(hostPath).catch(() => undefined);
    if (stat === undefined) {
      ops.push({ kind: 'remove', dest });
    } else if (stat.isSymbolicLink()) {
      const link = await readlink(hostPath);
      const resolved = path.resolve(path.dirname(hostPath), link);
      // only a relative link that stays in the watched tree means the same thing in the container
      if (path.isAbsolute(link) || ruleIsFile || !inside(rule.path, resolved)) skipped.push(hostPath);
      else ops.push({ kind: 'symlink', dest, link });
    } else if (stat.isDirectory()) {
      ops.push({ kind: 'mkdir', dest });
    } else if (stat.isFile()) {
      ops.push({ kind: 'write', dest, data: await readFile(hostPath), mode: stat.mode });
    } else {
      skipped.push(hostPath);
    }
  }
  return { ops, skipped };
}

/** Every path under `root` (not following symlinks), for initial_sync. */
export async function walk(
  root: string,
  keep: (hostPath: string) => boolean,
  descend: (hostPath: string) => boolean = keep,
): Promise<string[]> {
  const stat = await lstat(root).catch(() => undefined);
  if (stat === undefined) return [];
  if (!stat.isDirectory()) return [root];
  const result: string[] = [];
  const visit = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      // a directory that is not kept itself may hold files that are (include: ["**/*.js"])
      if (keep(full)) result.push(full);
      if (entry.isDirectory() && descend(full)) await visit(full);
    }
  };
  await visit(root);
  return result;
}
