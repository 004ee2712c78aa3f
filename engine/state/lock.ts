import { createHash } from 'node:crypto';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { EngineError } from '../errors.js';

/**
 * A host-wide exclusive lock held by this process: a listening socket in the abstract unix namespace. The kernel
 * releases it when the process dies, however it dies, so a crash (or `kill -9`) never leaves a stale lock behind.
 * Abstract sockets belong to the network namespace; tsfig always runs in the host's.
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

function socketName(name: string): string {
  const digest = createHash('sha256').update(name).digest('hex').slice(0, 40);
  return `\0tsfig-lock-${digest}`;
}

function tryListen(address: string): Promise<net.Server | undefined> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE') resolve(undefined);
      else reject(error);
    });
    server.listen(address, () => resolve(server));
  });
}

/**
 * Waiters of this process, per lock name: the tail of a FIFO. Only its head polls the socket, and a release hands the
 * lock straight to the next waiter here; without it, N concurrent callers of one process (the executor's parallel
 * creates) each slept up to 100 ms between attempts and the lock sat free between holders.
 */
const localQueues = new Map<string, Promise<void>>();

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
  const address = socketName(name);
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  const previous = localQueues.get(name) ?? Promise.resolve();
  let passTurn!: () => void;
  const mine = new Promise<void>((resolve) => (passTurn = resolve));
  const tail = previous.then(() => mine);
  localQueues.set(name, tail);
  const done = (): void => {
    passTurn();
    if (localQueues.get(name) === tail) localQueues.delete(name);
  };
  try {
    await awaitTurn(previous, name, deadline, options.signal);
    let delay = 2;
    for (;;) {
      options.signal?.throwIfAborted();
      const server = await tryListen(address);
      if (server !== undefined) {
        return {
          name,
          release: async () => {
            await new Promise<void>((resolve) => server.close(() => resolve()));
            done();
          },
        };
      }
      if (Date.now() > deadline) {
        throw new EngineError('conflict', `timed out waiting for lock "${name}"`, {
          hint: 'another tsfig command is still working on the same objects; wait for it or stop it',
        });
      }
      await sleep(delay);
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
