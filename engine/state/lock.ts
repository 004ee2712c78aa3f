import { createHash, randomBytes } from 'node:crypto';
import { promises as fs, rmdirSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { EngineError, isErrno } from '../errors.js';
import { inRootlessSession, rootlessRuntimeDir } from '../rootless/env.js';
import { DEFAULT_RUN_BASE } from './paths.js';

/**
 * A host-wide exclusive lock held by this process: a hard link, named after the lock, to a unix socket this process
 * listens on, in a directory only this uid can enter (`/run/tsfig/locks`, 0700). The kernel closes the socket when
 * the process dies, however it dies, so a crash (or `kill -9`) never leaves a lock held: the links refuse connections
 * from then on, and the next taker removes them.
 *
 * Locks were abstract sockets (`\0tsfig-lock-<hash>`), which any local user (or a `--network host` container) could
 * bind first, stalling tsfig or, for `tsfig-dns-<root>`, making it believe its resolver ran (issue #15). A name in a
 * root-only directory cannot be taken by another uid, and unlike an abstract name it is the same lock in every
 * network namespace (the rootless resolver runs in the session's).
 *
 * Layout: each process listens on one socket, `.p.<token>` (created as `.t.<token>` and renamed once listening, so a
 * `.p.` file that refuses connections is a dead process's). Taking lock L links it as `<hash(L)>.<token>.<n>` and
 * then lists the directory: another `<hash(L)>.*` that accepts a connection means L is held, or that two takers met;
 * either way this one steps back (unlinks its entry) and tries again after a pause (the later of two takers is sure
 * to see the earlier, so two never both keep it). Entries are never reused (unique tokens), so removing one found
 * dead can never remove a live one.
 */
export interface Lock {
  readonly name: string;
  release(): Promise<void>;
}

export interface LockOptions {
  /** Give up after this long. @default 120000 */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** sun_path holds 108 bytes with its NUL. */
const SUN_PATH_MAX = 107;

/**
 * The locks directory: in the rootless session's runtime dir when rootless (what the user's roots share), under the
 * run base as root, else a per-uid dir under the temp dir (the unit tests of an unprivileged user).
 */
export function lockDirectory(env: NodeJS.ProcessEnv = process.env): string {
  const base = inRootlessSession(env) ? rootlessRuntimeDir(env) : undefined;
  if (base !== undefined) return path.join(base, 'locks');
  const uid = process.geteuid?.() ?? 0;
  return uid === 0 ? path.join(DEFAULT_RUN_BASE, 'locks') : path.join(os.tmpdir(), `tsfig-locks-${uid}`);
}

function unsafeDir(dir: string, why: string): EngineError {
  return new EngineError('permission', `refusing the lock directory ${dir}: ${why}`, {
    hint: `another user could take tsfig's locks there; remove it (as root) and run the command again`,
  });
}

/** Creates the locks directory 0700 and checks it and its parent: real directories, writable by this uid only. */
async function prepareDir(dir: string): Promise<void> {
  const uid = process.geteuid?.() ?? 0;
  const parent = path.dirname(dir);
  await fs.mkdir(parent, { recursive: true, mode: 0o711 });
  const up = await fs.lstat(parent);
  if (!up.isDirectory()) throw unsafeDir(dir, `${parent} is not a directory`);
  // writable by others only with the sticky bit (/tmp): then they cannot rename or remove what is ours in it
  if ((up.uid !== uid && up.uid !== 0) || ((up.mode & 0o022) !== 0 && (up.mode & 0o1000) === 0)) {
    throw unsafeDir(dir, `${parent} is writable by another user`);
  }
  await fs.mkdir(dir, { mode: 0o700 }).catch((error: unknown) => {
    if (!isErrno(error, 'EEXIST')) throw error;
  });
  const st = await fs.lstat(dir);
  if (!st.isDirectory()) throw unsafeDir(dir, 'it is not a directory');
  if (st.uid !== uid) throw unsafeDir(dir, `it belongs to uid ${st.uid}`);
  if ((st.mode & 0o077) !== 0) await fs.chmod(dir, 0o700);
}

/** Whether the socket file accepts connections; a dead one (its process closed it or died) is removed. */
function probe(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(file);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      socket.destroy();
      if (error.code === 'ECONNREFUSED') {
        // unique names: this file can only ever be the dead socket it is now
        void fs.unlink(file).then(
          () => resolve(false),
          () => resolve(false),
        );
      } else {
        // ENOENT: released meanwhile; anything else (EAGAIN: a full backlog) is a live holder
        resolve(error.code !== 'ENOENT');
      }
    });
  });
}

/** This process's socket: the directory, and the path every entry it takes is a hard link of. */
interface Holder {
  readonly dir: string;
  readonly socket: string;
  readonly token: string;
}

let holder: Promise<Holder> | undefined;
let entries = 0;

/** Entry files this process holds now: its exit removes them (a lock held at exit is released, not left behind). */
const held = new Set<string>();

/** Listens on `temporary`; ENOENT when the directory was removed meanwhile (the last process's exit removes it). */
function listen(server: net.Server, temporary: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(temporary, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

async function startHolder(): Promise<Holder> {
  const dir = lockDirectory();
  const token = `${process.pid.toString(36)}-${randomBytes(6).toString('hex')}`;
  const socket = path.join(dir, `.p.${token}`);
  if (socket.length + 40 > SUN_PATH_MAX) {
    throw new EngineError('internal', `lock socket paths under ${dir} would be longer than ${SUN_PATH_MAX} bytes`);
  }
  const temporary = path.join(dir, `.t.${token}`);
  // Registered before the first listen: an exit while this runs (EPIPE, a second Ctrl-C) takes the temporary socket
  // with it too. What this process still holds goes with it, then its socket, then the directory if nothing else is
  // in it.
  process.once('exit', () => {
    for (const file of [...held, socket, temporary]) {
      try {
        unlinkSync(file);
      } catch {
        // already gone, or never made
      }
    }
    try {
      rmdirSync(dir);
    } catch {
      // other processes' entries, or gone
    }
  });
  for (let attempt = 0; ; attempt++) {
    await prepareDir(dir);
    const server = net.createServer((connection) => connection.destroy());
    server.unref();
    try {
      await listen(server, temporary);
      await fs.rename(temporary, socket);
      break;
    } catch (error) {
      // another process's exit removed the (then empty) directory between our mkdir and listen: make it again
      server.close();
      if (!isErrno(error, 'ENOENT') || attempt >= 5) throw error;
    }
  }
  // What processes that died since left (kill -9 skips their exit): their sockets and the entries they held, and a
  // temporary socket of one killed before its rename. A temporary socket of a live process may not listen yet (bind
  // comes before listen), so it is probed only once the pid its token names is gone.
  const others = (await fs.readdir(dir)).filter(
    (entry) =>
      !entry.endsWith(`.${token}`) && !entry.includes(`.${token}.`) && (!entry.startsWith('.t.') || deadToken(entry)),
  );
  await Promise.all(others.map((entry) => probe(path.join(dir, entry))));
  return { dir, socket, token };
}

/**
 * Whether the process a `.t.<pid in base 36>-<hex>` name was made by is gone. A pid of another pid namespace, or a
 * reused one, reads as alive: the file is then kept (and were a live one removed, its maker listens again).
 */
function deadToken(entry: string): boolean {
  const pid = Number.parseInt(/^\.t\.([0-9a-z]+)-/.exec(entry)?.[1] ?? '', 36);
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return isErrno(error, 'ESRCH');
  }
}

function currentHolder(): Promise<Holder> {
  if (holder === undefined) {
    holder = startHolder();
    holder.catch(() => (holder = undefined));
  }
  return holder;
}

function entryPrefix(name: string): string {
  return `${createHash('sha256').update(name).digest('hex').slice(0, 32)}.`;
}

/** One try at the lock (see Lock): its release when taken, undefined when held by another or met another taker. */
async function tryTake(name: string, again = true): Promise<(() => Promise<void>) | undefined> {
  const { dir, socket, token } = await currentHolder();
  const prefix = entryPrefix(name);
  const entry = `${prefix}${token}.${(entries++).toString(36)}`;
  const file = path.join(dir, entry);
  try {
    await fs.link(socket, file);
  } catch (error) {
    if (!isErrno(error, 'ENOENT') || !again) throw error;
    // our socket's file (or the directory) was removed from outside: listen again
    holder = undefined;
    return tryTake(name, false);
  }
  held.add(file);
  const release = (): Promise<void> => {
    held.delete(file);
    return fs.unlink(file).catch(() => undefined);
  };
  const others = (await fs.readdir(dir)).filter((other) => other.startsWith(prefix) && other !== entry);
  const live = await Promise.all(others.map((other) => probe(path.join(dir, other))));
  if (!live.includes(true)) return release;
  await release();
  return undefined;
}

/**
 * Waiters of this process, per lock name: the tail of a FIFO. Only its head polls the socket, and a release hands the
 * lock straight to the next waiter here; without it, N concurrent callers of one process (the executor's parallel
 * creates) each slept up to 100 ms between attempts and the lock sat free between holders.
 */
const localQueues = new Map<string, Promise<void>>();

/** Entries a release kept for the next waiter of this process (see acquireLock), per lock name. */
const handedOver = new Map<string, () => Promise<void>>();

/** Resolves when `turn` does; rejects at the deadline or on abort (the turn is then given up by the caller). */
function awaitTurn(
  turn: Promise<void>,
  name: string,
  deadline: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const finish = (error?: Error): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onAbort = (): void => {
      const reason: unknown = signal?.reason;
      finish(reason instanceof Error ? reason : new Error('aborted'));
    };
    const timer = setTimeout(
      () =>
        finish(
          new EngineError('conflict', `timed out waiting for lock "${name}"`, {
            hint: 'another tsfig command is still working on the same objects; wait for it or stop it',
          }),
        ),
      Math.max(0, deadline - Date.now()),
    );
    if (signal?.aborted === true) {
      onAbort();
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    void turn.then(() => finish());
  });
}

/** Acquires the named lock, waiting (with back-off) while another process holds it. */
export async function acquireLock(name: string, options: LockOptions = {}): Promise<Lock> {
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  const previous = localQueues.get(name) ?? Promise.resolve();
  let passTurn!: () => void;
  const mine = new Promise<void>((resolve) => (passTurn = resolve));
  const tail = previous.then(() => mine);
  localQueues.set(name, tail);
  const done = (): void => {
    passTurn();
    if (localQueues.get(name) !== tail) return;
    localQueues.delete(name);
    // the last of the queue gave up: the entry kept for it is released
    const kept = handedOver.get(name);
    handedOver.delete(name);
    void kept?.();
  };
  try {
    await awaitTurn(previous, name, deadline, options.signal);
    let delay = 2;
    for (;;) {
      options.signal?.throwIfAborted();
      const release = handedOver.get(name) ?? (await tryTake(name));
      handedOver.delete(name);
      if (release !== undefined) {
        return {
          name,
          release: async () => {
            // a waiter of this process is next: it gets the entry as it is, without unlinking and linking again
            if (localQueues.get(name) !== tail) handedOver.set(name, release);
            else await release();
            done();
          },
        };
      }
      if (Date.now() > deadline) {
        throw new EngineError('conflict', `timed out waiting for lock "${name}"`, {
          hint: 'another tsfig command is still working on the same objects; wait for it or stop it',
        });
      }
      // randomised: two takers that met both stepped back, and one of them must get in first next time
      await sleep(delay * (0.5 + Math.random()));
      delay = Math.min(delay * 2, 100);
    }
  } catch (error) {
    // Gives up its place: the next waiter's turn comes when the previous holder's does.
    void previous.then(done);
    throw error;
  }
}

/** Runs fn while holding the named lock. */
export async function withLock<T>(name: string, fn: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  const lock = await acquireLock(name, options);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}
