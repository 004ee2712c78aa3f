/**
 * Claims on the image store (issue #20): what an operation that writes images (pull, import, load, build, commit,
 * image rm/prune) has put in `layers/` and `blobs/` that no image refers to yet.
 *
 * An operation opens its claim before its first write: it takes the lock `image-claim:<root>:<token>` (a lock of
 * engine/state/lock.ts: it dies with its process, whatever kills it) and then writes `image-claims/<token>.json`
 * (its pid, operation and lock name). Each layer and config blob it is about to put in the store, or reuses from it,
 * is added to that record under the store lock before the layer or blob is in place. Once its images are written,
 * the operation removes the record and then releases the lock.
 *
 * So, under the store lock, a layer or blob that no image refers to is either listed by a claim whose lock is held
 * (a live operation: left alone) or a leftover of an operation that died (its record is there, its lock is free) or
 * of an older crash: deleted by the next operation that opens a claim when it sees a dead record, by `image rm` and
 * `image prune`, and by `system check --repair`. No age rule is needed.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { promises as fs, unlinkSync } from 'node:fs';
import path from 'node:path';
import { ifLockFree } from '../containers/staging.js';
import { isErrno } from '../errors.js';
import { readJson, writeJsonAtomic } from '../state/atomic.js';
import { acquireLock, type Lock } from '../state/lock.js';

export interface ClaimRecord {
  readonly pid: number;
  readonly operation: string;
  /** The lock its process holds while the claim is live (`image-claim:<root>:<token>`). */
  readonly lock: string;
  readonly created: string;
  /** Chain ids (hex) of layers it added or reuses. */
  readonly layers: string[];
  /** Digests (hex) of config blobs it added. */
  readonly blobs: string[];
}

export type ClaimKind = 'layers' | 'blobs';

/** The claims directory of a state root. */
export function claimsDir(root: string): string {
  return path.join(root, 'image-claims');
}

/** The lock a claim's process holds while it lives; token is the record's name without `.json`. */
function claimLockName(root: string, token: string): string {
  return `image-claim:${root}:${token}`;
}

/** Records of this process's open claims, removed at its exit. */
const openRecords = new Set<string>();
let exitHook = false;

function removeOpenRecords(): void {
  for (const file of openRecords) {
    try {
      unlinkSync(file);
    } catch {
      // already gone
    }
  }
}

/** A live claim of this process. */
export class ImageClaim {
  private record: ClaimRecord;
  private released = false;

  readonly root: string;
  readonly file: string;
  private readonly lock: Lock;

  private constructor(root: string, file: string, lock: Lock, record: ClaimRecord) {
    this.root = root;
    this.file = file;
    this.lock = lock;
    this.record = record;
  }

  /** Takes a new claim's lock, then writes its record. */
  static async open(root: string, operation: string): Promise<ImageClaim> {
    const token = `${process.pid}-${randomBytes(6).toString('hex')}`;
    const name = claimLockName(root, token);
    const lock = await acquireLock(name, { timeoutMs: 10_000 });
    const dir = claimsDir(root);
    const file = path.join(dir, `${token}.json`);
    const record: ClaimRecord = {
      pid: process.pid,
      operation,
      lock: name,
      created: new Date().toISOString(),
      layers: [],
      blobs: [],
    };
    try {
      await fs.mkdir(dir, { recursive: true, mode: 0o700 });
      await writeJsonAtomic(file, record, 0o600);
    } catch (error) {
      await lock.release();
      throw error;
    }
    const claim = new ImageClaim(root, file, lock, record);
    // an ordinary exit (even one that skips the finally blocks) leaves no record; a kill leaves a dead one
    openRecords.add(file);
    if (openRecords.size === 1 && !exitHook) {
      exitHook = true;
      process.once('exit', removeOpenRecords);
    }
    return claim;
  }

  /** Adds a layer or blob (hex) to the record before it is written or reused. Call with the store lock held. */
  async add(kind: ClaimKind, hex: string): Promise<void> {
    if (this.released || this.record[kind].includes(hex)) return;
    this.record = { ...this.record, [kind]: [...this.record[kind], hex] };
    await writeJsonAtomic(this.file, this.record, 0o600);
  }

  /** Removes the record, then releases the lock: what it listed is now the images' (or nobody's). */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    openRecords.delete(this.file);
    await fs.rm(this.file, { force: true });
    await this.lock.release();
  }
}

/** The claim of the operation this code runs for (AsyncLocalStorage: concurrent operations of a process each have theirs). */
export const currentClaim = new AsyncLocalStorage<ImageClaim>();

export interface ClaimsState {
  /** Layers and blobs listed by live claims (hex). */
  readonly layers: Set<string>;
  readonly blobs: Set<string>;
  /** Records of claims whose process is gone, and temp files of interrupted record writes. */
  readonly dead: string[];
}

/** Reads every claim record of root and tells live ones (lock held) from dead ones (lock free). */
export async function readClaims(root: string): Promise<ClaimsState> {
  const state: ClaimsState = { layers: new Set(), blobs: new Set(), dead: [] };
  const dir = claimsDir(root);
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return state;
    throw error;
  }
  const alive = new Map<string, boolean>();
  const isLive = async (token: string): Promise<boolean> => {
    let known = alive.get(token);
    if (known === undefined) {
      known = (await ifLockFree(claimLockName(root, token), () => Promise.resolve())).held;
      alive.set(token, known);
    }
    return known;
  };
  for (const name of names) {
    const file = path.join(dir, name);
    // `<token>.json`, or `.<token>.json.<rand>.tmp` (a write of it in progress, or the rest of an interrupted one)
    const token = /^\.?([0-9]+-[0-9a-f]+)\.json(?:\.[0-9a-f]+\.tmp)?$/.exec(name)?.[1];
    if (token === undefined || !(await isLive(token))) {
      state.dead.push(file);
      continue;
    }
    if (name.startsWith('.')) continue;
    // read under the store lock (held by the caller), under which a claim adds what it writes
    const record = await readJson<ClaimRecord>(file).catch(() => undefined);
    for (const hex of record?.layers ?? []) state.layers.add(hex);
    for (const hex of record?.blobs ?? []) state.blobs.add(hex);
  }
  return state;
}
