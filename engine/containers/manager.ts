import { AsyncLocalStorage } from 'node:async_hooks';
import { spawn } from 'node:child_process';
import { promises as fs, readFileSync, watch, type FSWatcher } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { EngineError, isEngineError, isErrno } from '../errors.js';
import { renderRuntimeConf } from '../runtime/conf.js';
import { parseRuntimeMessage, runtimeError } from '../runtime/protocol.js';
import { runtimeBinary } from '../runtime/binary.js';
import { spawnCommandHere } from '../runtime/spawner.js';
import { pathExists, readJson, writeFileAtomic, writeJsonAtomic } from '../state/atomic.js';
import { newId, shortId } from '../state/ids.js';
import { acquireLock, withLock, type Lock } from '../state/lock.js';
import type { EnginePaths } from '../state/paths.js';
import type { NetworkManager, NetworkState } from '../network/index.js';
import { renderHostsFile, renderStaticHosts } from '../network/hosts.js';
import { inspectJson } from './inspect.js';
import { resolveCapabilities } from './capabilities.js';
import { currentBootId, destroyCgroup, isSameProcess, removeEmptyCgroupParent } from './liveness.js';
import { readLogs, type LogReadOptions } from './logs.js';
import { CONTAINER_NAME, randomName } from './names.js';
import { resolveProcess, type ImageProcessConfig } from './process.js';
import { userSpecProblem } from './user-spec.js';
import { autoRemoveExitCommand, checkAutoRemove } from './cleanup.js';
import { isFrozen } from './cgroup-state.js';
import { ignoredLimitsWarning } from './limits.js';
import { cgroupsAvailable, containerOomScoreAdj, isRootless, noCgroupsReason } from '../system/rootless.js';
import { allocateUserns, checkUserns, releaseUserns, type UsernsRange } from './userns.js';
import { containerFiles, runtimeConfEntries, type ContainerDirs, type ShiftPlan } from './runtime-config.js';
import {
  idmapSupported,
  joinLowerdir,
  shiftContainerFiles,
  shiftedLayers,
  shiftVolume,
  splitLowerdir,
} from './shift.js';
import { signalNumber } from './signals.js';
import {
  containerLockName,
  CREATING,
  creatingLockName,
  creatorAlive,
  finishRemovals,
  REMOVING,
  sweepContainerDebris,
} from './staging.js';
import type {
  ContainerRecord,
  ContainerSpec,
  ContainerState,
  ContainerSummary,
  LogEntry,
  MonitorStatus,
} from './types.js';
import { ensureRunDir, removeEmptyRunRoot } from '../state/run-root.js';
import { writeContainerFiles, type ContainerFile } from '../volumes/files.js';
import { compareText } from '../state/compare.js';

/** The container locks the current async context holds (ContainerManager.withContainerLock). */
const heldContainerLocks = new AsyncLocalStorage<ReadonlySet<string>>();

/**
 * How long a monitor may take to answer a control command by default (it answers in milliseconds; see control()).
 * TSFIG_MONITOR_TIMEOUT_MS overrides it (the tests of an unanswering monitor use a shorter one).
 */
const CONTROL_TIMEOUT_MS = 10_000;

/** A monitor that accepted a control command and did not answer it in time. */
class MonitorTimeout extends EngineError {
  constructor(message: string) {
    super('runtime', message, { hint: 'its process may be stopped (SIGSTOP) or stuck' });
  }
}

/** What the container manager needs from the image store. */
export interface ImageSource {
  resolve(reference: string): Promise<{ id: string; config: { config?: ImageProcessConfig } }>;
  layerDirs(image: { id: string }): readonly string[] | Promise<readonly string[]>;
}

export interface CreateOptions {
  /**
   * Wraps the step that writes the container's (staged) record and may complete its mounts: the caller's lock, held
   * only around that step (EnginePort resolves volumes under `volumes.withLock` here, so a volume cannot be removed
   * between being resolved and being referred to by a record). Gets the write step; returns its record.
   */
  readonly reserve?: (
    write: (extraMounts: NonNullable<ContainerSpec['mounts']>) => Promise<ContainerRecord>,
  ) => Promise<ContainerRecord>;
  /**
   * Don't rewrite the other containers' /etc/hosts now (the new container's own is written before create returns):
   * the caller awaits flushHosts(), which does it once for its whole batch of creates (the compose executor, at the
   * end of a plan).
   */
  readonly deferHosts?: boolean;
  /**
   * Told what the container was created without that its spec asked for (docker's create `Warnings`): resource
   * limits where containers have no cgroups (rootless on cgroup v1). Called once the container exists.
   */
  readonly onWarning?: (message: string) => void;
}

export interface ExecOptions {
  readonly argv: readonly string[];
  readonly env?: readonly string[];
  readonly user?: string;
  readonly workingDir?: string;
  readonly tty?: boolean;
  /** docker exec -i: relay the caller's stdin to the process (default true); without it the process reads EOF. */
  readonly interactive?: boolean;
  /**
   * The caller's stdio ('inherit', the CLI) or pipes (tests, programmatic use). Either way the process gets pipes or,
   * with tty, a new pty that the native helper relays: never an fd of the caller's terminal.
   */
  readonly stdio?: 'inherit' | 'pipe';
  /** docker exec -d: return once the process runs; it stays in the container after the caller exits. */
  readonly detach?: boolean;
  /** docker exec --privileged: every capability for this process (the container's seccomp profile stays). */
  readonly privileged?: boolean;
}

export interface ExecResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

const EMPTY_STATE: ContainerState = {
  status: 'created',
  running: false,
  pid: 0,
  exitCode: 0,
  oomKilled: false,
  error: '',
  startedAt: '',
  finishedAt: '',
  restartCount: 0,
};

function stateOf(status: MonitorStatus | undefined): ContainerState {
  if (status === undefined) return EMPTY_STATE;
  return {
    status: status.state,
    // docker's: a container waiting for its restart policy's back-off counts as running (stop/rm/kill apply)
    running: status.state !== 'exited',
    pid: status.state === 'running' ? status.pid : 0,
    exitCode: status.exitCode ?? 0,
    oomKilled: status.oomKilled === true,
    error: status.error ?? '',
    startedAt: status.startedAt,
    finishedAt: status.finishedAt ?? '',
    restartCount: status.restartCount ?? 0,
    ...(status.health !== undefined
      ? { health: { status: status.health.status, failingStreak: status.health.failingStreak } }
      : {}),
  };
}

/** The host's resolv.conf without loopback nameservers (unreachable from a container's own netns), as docker does. */
function resolvConfContent(network: string): string {
  let host = '';
  try {
    host = readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    return '';
  }
  if (network === 'host') return host;
  return host
    .split('\n')
    .filter((line) => !/^\s*nameserver\s+(127\.|::1\s*$)/.test(line))
    .join('\n');
}

/**
 * Containers of one engine root: records on disk, a native monitor per running container, no daemon. Every read
 * checks the monitor is still alive and repairs the state of a container whose monitor died.
 */
export class ContainerManager {
  readonly paths: EnginePaths;
  private readonly images: ImageSource;
  private readonly networks: NetworkManager | undefined;
  /** Container records by dir entry (see readRecords): records are immutable once written. */
  private readonly recordCache = new Map<string, ContainerRecord>();
  private readonly controlTimeoutMs: number;

  constructor(
    paths: EnginePaths,
    images: ImageSource,
    networks?: NetworkManager,
    options: { controlTimeoutMs?: number } = {},
  ) {
    this.paths = paths;
    this.images = images;
    this.networks = networks;
    this.controlTimeoutMs = options.controlTimeoutMs ?? CONTROL_TIMEOUT_MS;
  }

  private dirOf(id: string): string {
    return path.join(this.paths.containers, id);
  }

  private dirs(id: string): ContainerDirs {
    return {
      dir: this.dirOf(id),
      runDir: path.join(this.paths.runContainers, shortId(id)),
      // rootless without writable cgroups: none at all (native/PROTOCOL.md `cgroup none`)
      cgroup: cgroupsAvailable() ? `${this.paths.cgroupParent}/${shortId(id)}` : 'none',
    };
  }

  private lockName(id: string): string {
    return containerLockName(this.paths, id);
  }

  /**
   * Runs fn under the container's lock, the one start/stop/remove take: nothing starts or removes it meanwhile.
   * Reentrant within fn's async context (heldContainerLocks): status() takes this lock to repair a container whose
   * monitor died, and start/remove/cp call it holding the lock already; taking it again waited for itself until the
   * lock timeout (`rm -f` of a container whose monitor was killed stalled 120 s, then failed).
   */
  withContainerLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const name = this.lockName(id);
    const held = heldContainerLocks.getStore();
    if (held?.has(name) === true) return fn();
    return withLock(name, () => heldContainerLocks.run(new Set([...(held ?? []), name]), fn));
  }

  /**
   * Creates a container (nothing runs yet). Name conflicts and bad options fail before anything is written.
   * The name is reserved under the `container-names` lock by writing the record into `<id>.creating`; networks are
   * attached outside that lock (parallel creates only serialise on the network lock), and the staged dir is renamed
   * into place under the lock again. While staged, the container counts as live for repairNetworking (as long as
   * its creator runs) and as a volume user (volumes/users.ts reads staged records too).
   */
  async create(spec: ContainerSpec, options: CreateOptions = {}): Promise<ContainerRecord> {
    checkAutoRemove(spec);
    const image = await this.images.resolve(spec.image);
    const imageConfig = image.config.config ?? {};
    const id = newId();
    const hostname = spec.hostname ?? id.slice(0, 12);
    const process = resolveProcess(imageConfig, spec, spec.image, hostname);
    const userProblem = userSpecProblem(process.user);
    if (userProblem !== undefined) {
      throw new EngineError('invalid', `invalid user "${process.user}": ${userProblem}`, {
        hint: "use a user name or a uid in 0..2147483647 (-u, user:, or the image's USER)",
      });
    }
    const capabilities = resolveCapabilities(spec);
    const stopSignal = signalNumber(spec.stopSignal ?? imageConfig.StopSignal ?? 'SIGTERM', '--stop-signal');
    if (spec.name !== undefined && !CONTAINER_NAME.test(spec.name)) {
      throw new EngineError('invalid', `invalid container name "${spec.name}"`, {
        hint: 'names use only [a-zA-Z0-9][a-zA-Z0-9_.-]',
      });
    }
    if (spec.userns === 'auto') await checkUserns();
    let userns: UsernsRange | undefined;
    const namesLock = `${this.paths.rootId}:container-names`;
    const staging = `${this.dirOf(id)}${CREATING}`;
    let recordedFiles: ContainerFile[] = []; // set by prepareStaging, under the creating lock below
    const write = (extraMounts: NonNullable<ContainerSpec['mounts']>): Promise<ContainerRecord> =>
      withLock(namesLock, async () => {
        const existing = await this.readRecords({ staged: true });
        let name = spec.name;
        if (name !== undefined) {
          const holder = existing.find((record) => record.name === name);
          if (holder !== undefined && (await this.holdsName(holder.id))) {
            throw new EngineError(
              'conflict',
              `the container name "${name}" is already in use by container ${shortId(holder.id)}`,
              {
                hint: `remove it (tsfig container rm ${name}) or choose another name`,
              },
            );
          }
        } else {
          const taken = new Set(existing.map((record) => record.name));
          do name = randomName();
          while (taken.has(name));
        }
        const mounts = options.reserve === undefined ? spec.mounts : [...(spec.mounts ?? []), ...extraMounts];
        // The files' content stays out of the record (their digest is kept).
        const exposedPorts = mergeExposedPorts(spec.exposedPorts, imageConfig.ExposedPorts ?? undefined);
        const full: ContainerSpec = {
          ...spec,
          ...(exposedPorts.length > 0 ? { exposedPorts } : {}),
          ...(mounts !== undefined ? { mounts } : {}),
          ...(spec.files !== undefined ? { files: recordedFiles } : {}),
        };
        const record: ContainerRecord = {
          v: 1,
          id,
          name,
          created: new Date().toISOString(),
          imageId: image.id,
          imageRef: spec.image,
          spec: full,
          process,
          hostname,
          capabilities,
          stopSignal,
          stopTimeout: spec.stopTimeout ?? 10,
          mounts: full.mounts ?? [],
          labels: spec.labels ?? {},
          ...(userns !== undefined ? { userns } : {}),
        };
        await writeJsonAtomic(path.join(staging, 'container.json'), record, 0o600);
        return record;
      });
    // Held while the staged dir exists: a later command that finds it with this lock free rolls it back (staging.ts).
    const creating = await acquireLock(creatingLockName(this.paths, id));
    let record: ContainerRecord;
    try {
      recordedFiles = await this.prepareStaging(staging, hostname, spec);
      try {
        // After the staged dir exists: a range whose container has neither dir is one `system check` reports.
        if (spec.userns === 'auto') userns = await allocateUserns(this.paths, id);
        record = await (options.reserve ?? ((fn) => fn([])))(write);
      } catch (error) {
        await fs.rm(staging, { recursive: true, force: true });
        if (userns !== undefined) await releaseUserns(this.paths, id);
        throw error;
      }
      await this.placeStaged(record, staging, namesLock).catch(async (error: unknown) => {
        if (userns !== undefined) await releaseUserns(this.paths, id);
        throw error;
      });
    } finally {
      await creating.release();
    }
    const networked = (record.spec.networks ?? []).length > 0;
    if (networked) {
      // Deferred: one pass by flushHosts() for the whole batch. A pass rewrites every attached container's file, each
      // listing every other: started at each create, passes ran back to back through an `up` of 500 containers and
      // took the CPU its creates needed (issue 18: create grew from 292 to 811 ms through the batch).
      if (options.deferHosts === true) this.hostsDirty = true;
      else await this.refreshHosts();
    }
    const warning = ignoredLimitsWarning(record.spec);
    if (warning !== undefined) options.onWarning?.(warning);
    return record;
  }

  /**
   * Whether container `id`, found holding a name, still does: it exists, or is staged by a live creator. A stage of
   * a dead creator is rolled back here (the caller holds the names lock), so its name is free again.
   */
  private async holdsName(id: string): Promise<boolean> {
    if (await pathExists(this.dirOf(id))) return true;
    if (await creatorAlive(this.paths, id)) return true;
    await fs.rm(`${this.dirOf(id)}${CREATING}`, { recursive: true, force: true });
    return false;
  }

  /** Attaches a staged container and renames it into place; on failure, its sandbox and staged dir go. */
  private async placeStaged(record: ContainerRecord, staging: string, namesLock: string): Promise<void> {
    const networked = (record.spec.networks ?? []).length > 0;
    try {
      await this.connect(record, staging);
      if (networked) await this.writeHostsFile(record, containerFiles(staging).hosts);
      await withLock(namesLock, () => fs.rename(staging, this.dirOf(record.id)));
    } catch (error) {
      if (networked) {
        await this.requireNetworks()
          .removeSandbox(record.id)
          .catch(() => undefined);
      }
      await fs.rm(staging, { recursive: true, force: true });
      throw error;
    }
  }

  private readonly deferredHosts = new Set<Promise<void>>();

  /**
   * Waits for what creates and removals with `deferHosts` left to do: the other containers' /etc/hosts, the removed
   * containers' veths (gone with their namespaces), the root's parent cgroup and run dir when no container is left;
   * fails if one failed.
   */
  async flushHosts(): Promise<void> {
    const pending = [...this.deferredHosts];
    this.deferredHosts.clear();
    if (this.hostsDirty) {
      this.hostsDirty = false;
      pending.push(this.refreshHosts());
    }
    await Promise.all(pending);
    if (this.removedSinceFlush) {
      this.removedSinceFlush = false;
      await removeEmptyCgroupParent(this.paths.cgroupParent);
      await removeEmptyRunRoot(this.paths);
    }
  }

  /** Work a create or remove with `deferHosts` left for flushHosts(). */
  private defer(work: Promise<void>): void {
    work.catch(() => undefined); // reported by flushHosts()
    this.deferredHosts.add(work);
  }

  /** A create or removal with `deferHosts` happened since the last flushHosts(). */
  private hostsDirty = false;
  private removedSinceFlush = false;

  /** Attaches a new (staged, in `dir`) container to its networks (ports on the first) and writes its resolv.conf. */
  private async connect(record: ContainerRecord, dir: string): Promise<void> {
    const wanted = record.spec.networks ?? [];
    if (wanted.length === 0) return;
    const networks = this.requireNetworks();
    // One batched operation (sandbox + every attachment): parallel creates share the network lock and its processes.
    await networks.connect(
      record.id,
      wanted.map((network, index) => ({
        network: network.name,
        options: {
          ip: network.ip,
          aliases: network.aliases,
          containerName: record.name,
          hostname: record.hostname,
          ports: index === 0 ? (record.spec.ports ?? []) : [],
        },
      })),
    );
    // The embedded resolver on the gateway answers the project's names (and forwards or refuses the rest).
    const resolvConf = await networks.resolvConf(record.id);
    if (resolvConf !== undefined) await fs.writeFile(containerFiles(dir).resolvConf, resolvConf);
  }

  private requireNetworks(): NetworkManager {
    if (this.networks === undefined) throw new EngineError('internal', 'the engine was created without networking');
    return this.networks;
  }

  /**
   * Rewrites, in place, the /etc/hosts of every container attached to a network, so a container started later is
   * resolvable from one started earlier without a restart (the file is bind-mounted, so its inode must stay).
   * Concurrent calls of this process share one pass that starts after they asked (parallel creates of one `up`
   * rewrite the files a few times, not once per container); passes of all processes hold the `hosts` lock and read
   * the network state inside it, so the last pass written is never older than the state.
   */
  private refreshHosts(): Promise<void> {
    if (this.networks === undefined) return Promise.resolve();
    if (this.hostsPending !== undefined) return this.hostsPending;
    const previous = this.hostsRunning ?? Promise.resolve();
    const pass: Promise<void> = previous
      .catch(() => undefined)
      .then(() => {
        this.hostsPending = undefined;
        this.hostsRunning = pass;
        return withLock(`${this.paths.rootId}:hosts`, () => this.writeHostsFiles());
      })
      .finally(() => {
        if (this.hostsRunning === pass) this.hostsRunning = undefined;
      });
    this.hostsPending = pass;
    return pass;
  }

  /**
   * `network connect`/`disconnect`: rewrites the /etc/hosts of every container on a network after its endpoints
   * changed, and of the containers in `also` (one just disconnected from its last network is on none of them).
   */
  async refreshNetworkHosts(also: readonly string[] = []): Promise<void> {
    await this.refreshHosts();
    for (const id of also) {
      const files = containerFiles(this.dirOf(id));
      const record = await readJson<ContainerRecord>(files.record);
      if (record !== undefined) {
        await withLock(`${this.paths.rootId}:hosts`, () => this.writeHostsFile(record, files.hosts));
        // Its resolver is the one of its first remaining network (written in place: the file is bind-mounted).
        const resolvConf = await this.networks?.resolvConf(id);
        if (resolvConf !== undefined) await fs.writeFile(files.resolvConf, resolvConf);
      }
    }
  }

  private hostsPending: Promise<void> | undefined;
  private hostsRunning: Promise<void> | undefined;

  private async writeHostsFiles(): Promise<void> {
    if (this.networks === undefined) return;
    const states = await this.networks.list();
    const ids = new Set(states.flatMap((network) => Object.keys(network.endpoints)));
    for (const id of ids) {
      const files = containerFiles(this.dirOf(id));
      const record = await readJson<ContainerRecord>(files.record);
      if (record === undefined) continue;
      await this.writeHostsFile(record, files.hosts, states);
    }
  }

  /** Writes one container's /etc/hosts (in place) from the network state. */
  private async writeHostsFile(record: ContainerRecord, file: string, states?: NetworkState[]): Promise<void> {
    if (this.networks === undefined) return;
    const extra = (record.spec.extraHosts ?? []).map((line) => `${line}\n`).join('');
    const content = renderHostsFile(record.id, states ?? (await this.networks.list())) + extra;
    await fs.writeFile(file, content).catch((error: unknown) => {
      if (!isErrno(error, 'ENOENT')) throw error;
    });
  }

  private async removeFiles(id: string): Promise<void> {
    const dirs = this.dirs(id);
    await destroyCgroup(dirs.cgroup);
    await fs.rm(dirs.runDir, { recursive: true, force: true });
    // Rename first so a crash mid-delete never leaves a half container that still looks complete.
    const doomed = `${dirs.dir}${REMOVING}`;
    await fs.rename(dirs.dir, doomed).catch((error: unknown) => {
      if (!isErrno(error, 'ENOENT')) throw error;
    });
    await fs.rm(doomed, { recursive: true, force: true });
  }

  /**
   * Makes the container's dir as `staging` (`<id>.creating`) with its files, but not its record (written
   * under the names lock), for create() to rename into place once attached.
   */
  /** Makes the staged dir and the files the container gets; returns those files as its record keeps them. */
  private async prepareStaging(staging: string, hostname: string, spec: ContainerSpec): Promise<ContainerFile[]> {
    const files = containerFiles(staging);
    await fs.mkdir(this.paths.containers, { recursive: true, mode: 0o700 });
    try {
      await fs.mkdir(staging, { mode: 0o700 });
      for (const sub of ['rootfs', 'upper', 'work']) await fs.mkdir(path.join(staging, sub), { mode: 0o755 });
      const network = spec.network ?? 'none';
      await fs.writeFile(path.join(staging, 'hostname'), `${hostname}\n`);
      const hosts = network === 'host' ? readFileSync('/etc/hosts', 'utf8') : renderStaticHosts(spec.extraHosts ?? []);
      await fs.writeFile(path.join(staging, 'hosts'), hosts);
      await fs.writeFile(path.join(staging, 'resolv.conf'), resolvConfContent(network));
      await fs.writeFile(path.join(staging, path.basename(files.log)), '', { mode: 0o640 });
      return await writeContainerFiles(staging, spec.files ?? []);
    } catch (error) {
      await fs.rm(staging, { recursive: true, force: true });
      throw error;
    }
  }

  /** Records of the containers; with `staged`, also those still being created (`<id>.creating`, under the names lock). */
  private async readRecords(options: { staged?: boolean } = {}): Promise<ContainerRecord[]> {
    let entries: string[];
    try {
      entries = await fs.readdir(this.paths.containers);
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return [];
      throw error;
    }
    // A removal whose remover died is finished here: the next command that reads containers does it.
    if (entries.some((entry) => entry.endsWith(REMOVING))) await finishRemovals(this.paths, entries);
    const pattern = options.staged === true ? /^[0-9a-f]{64}(\.creating)?$/ : /^[0-9a-f]{64}$/;
    const wanted = entries.filter((entry) => pattern.test(entry));
    // A record is written once, when its container is created, and ids are never reused: a dir entry read once is
    // known for as long as it exists. (Every create checks names against every record: without this, `up` of 50
    // read 50 x 50 records under the names lock.)
    const present = new Set(entries);
    for (const entry of this.recordCache.keys()) if (!present.has(entry)) this.recordCache.delete(entry);
    const read = await Promise.all(
      wanted.map(async (entry) => {
        const cached = this.recordCache.get(entry);
        if (cached !== undefined) return cached;
        const record = await readJson<ContainerRecord>(path.join(this.paths.containers, entry, 'container.json'));
        if (record !== undefined) this.recordCache.set(entry, record);
        return record;
      }),
    );
    return read.filter((record) => record !== undefined);
  }

  /**
   * Ids of containers being created by a live process (`<id>.creating` whose creator holds its creating lock). Staged
   * dirs whose creator died (a crash mid-create) are rolled back and removals a crash interrupted are finished; the
   * caller holds the names lock.
   */
  private async creatingIds(): Promise<Set<string>> {
    return (await sweepContainerDebris(this.paths)).creating;
  }

  /**
   * Removes containers staged (`<id>.creating`) by a creating process that died: a `kill -9` mid-create. What builds
   * call before they start; a sandbox such a container had goes with the next repairNetworking.
   */
  async sweepStaged(): Promise<void> {
    await withLock(`${this.paths.rootId}:container-names`, () => this.creatingIds());
  }

  /**
   * Repairs networking after a crash (`kill -9` mid-command): drops endpoints, links and sandboxes of containers that
   * no longer exist and re-applies the firewall. Holds the names lock, under which create() stages and renames its
   * record: a container being created by a live process (staged) counts as live and its endpoints are left to it
   * (never re-plumbed here); a staged container whose creator died is debris.
   */
  async repairNetworking(): Promise<void> {
    const networks = this.networks;
    if (networks === undefined) return;
    await withLock(`${this.paths.rootId}:container-names`, async () => {
      const creating = await this.creatingIds();
      const live = new Set((await this.readRecords()).map((record) => record.id));
      for (const id of creating) live.add(id);
      await networks.reconcile({ liveContainers: live, busy: creating });
    });
  }

  /** Finds a container by full id, unique id prefix, or name. */
  async get(ref: string): Promise<ContainerRecord> {
    if (/^[0-9a-f]{64}$/.test(ref)) {
      // A full id (what the orchestrator passes): one file, not every record.
      const record = await readJson<ContainerRecord>(containerFiles(this.dirOf(ref)).record);
      if (record !== undefined) return record;
    }
    const records = await this.readRecords();
    const byName = records.find((record) => record.name === ref || record.id === ref);
    if (byName !== undefined) return byName;
    const byPrefix = /^[0-9a-f]{1,64}$/.test(ref) ? records.filter((record) => record.id.startsWith(ref)) : [];
    if (byPrefix.length === 1 && byPrefix[0] !== undefined) return byPrefix[0];
    if (byPrefix.length > 1) {
      throw new EngineError('conflict', `container id prefix "${ref}" is ambiguous`, {
        hint: 'give more characters of the id',
      });
    }
    throw new EngineError('not-found', `no such container: ${ref}`, {
      hint: 'list containers with: tsfig container ls -a',
    });
  }

  /** The monitor's status, repaired when the monitor died (or the host rebooted) while the container ran. */
  async status(record: ContainerRecord): Promise<MonitorStatus | undefined> {
    const file = containerFiles(this.dirOf(record.id)).status;
    const status = await readJson<MonitorStatus>(file);
    if (status === undefined || status.state === 'exited') return status;
    if (status.bootId === currentBootId() && (await isSameProcess(status.monitor, status.monitorStart))) return status;
    return this.withContainerLock(record.id, async () => {
      const again = await readJson<MonitorStatus>(file);
      if (again === undefined || again.state === 'exited') return again;
      if (again.bootId === currentBootId() && (await isSameProcess(again.monitor, again.monitorStart))) return again;
      await destroyCgroup(this.dirs(record.id).cgroup);
      await fs.rm(this.dirs(record.id).runDir, { recursive: true, force: true });
      const repaired: MonitorStatus = {
        ...again,
        state: 'exited',
        exitCode: 255,
        finishedAt: new Date().toISOString(),
        error: again.bootId === currentBootId() ? 'the container monitor died' : 'the host rebooted',
      };
      await writeJsonAtomic(file, repaired);
      return repaired;
    });
  }

  async state(record: ContainerRecord): Promise<ContainerState> {
    return stateOf(await this.status(record));
  }

  /** Starts a created or exited container; a running one is left alone. */
  async start(ref: string): Promise<ContainerRecord> {
    const record = await this.get(ref);
    await this.withContainerLock(record.id, async () => {
      const status = await this.status(record);
      if (status?.state === 'running' || status?.state === 'restarting') return;
      await this.startLocked(record);
    });
    return record;
  }

  private async startLocked(record: ContainerRecord): Promise<void> {
    const image = await this.images.resolve(record.imageId);
    const lowerDirs = await this.images.layerDirs(image);
    const dirs = this.dirs(record.id);
    const files = containerFiles(dirs.dir);
    const netns = await this.netnsOf(record);
    await this.ensureSandbox(record);
    await ensureRunDir(dirs.runDir, 0o700);
    // held until the container runs: another start cannot chown a volume it shares meanwhile (shift.ts)
    const volumeLocks: Lock[] = [];
    let message: ReturnType<typeof parseRuntimeMessage>;
    try {
      const shift = await this.prepareShift(record, lowerDirs, dirs.dir, volumeLocks);
      await fs.rm(files.status, { force: true });
      await writeFileAtomic(
        files.runtimeConf,
        renderRuntimeConf(
          runtimeConfEntries(
            record,
            shift?.lowers ?? lowerDirs,
            dirs,
            netns,
            autoRemoveExitCommand(this.paths, record),
            containerOomScoreAdj(),
            shift?.plan,
          ),
        ),
        0o600,
      );
      message = await this.runStart(dirs.dir);
    } finally {
      for (const lock of volumeLocks.reverse()) await lock.release();
    }
    if (message.type === 'error') {
      await destroyCgroup(dirs.cgroup);
      await fs.rm(dirs.runDir, { recursive: true, force: true });
      throw runtimeError(message, `cannot start container ${record.name}`, startHint(message.step));
    }
  }

  /**
   * chown-on-copy (engine/containers/shift.ts), root mode only: with a user namespace, what sits on a file system
   * without idmapped mounts is chowned to the range instead (the layers as copies in the container's dir, volumes in
   * place, the engine's files); a volume on such a file system chowned for another range is chowned back to the
   * container's own ids, or to its range. Undefined when idmapped mounts serve everything (nothing changes then).
   * The locks of the volumes it looked at are pushed on locks (the caller releases them once the container runs).
   */
  private async prepareShift(
    record: ContainerRecord,
    lowerDirs: readonly string[],
    dir: string,
    locks: Lock[],
  ): Promise<{ lowers: readonly string[]; plan: ShiftPlan } | undefined> {
    if (isRootless()) return undefined;
    const range = record.userns;
    const volumes = record.mounts.filter((mount) => mount.type === 'bind' && mount.volumeName !== undefined);
    if (range === undefined && volumes.length === 0) return undefined;
    let lowers = lowerDirs;
    let lowerShifted = false;
    let engineFiles = false;
    const mounts = new Map<string, { source: string }>();
    if (range !== undefined) {
      const [top] = lowerDirs;
      if (top !== undefined && !(await idmapSupported(top))) {
        lowers = await shiftedLayers(dir, lowerDirs, range);
        lowerShifted = true;
      }
      if (!(await idmapSupported(dir))) {
        await shiftContainerFiles(dir, range);
        engineFiles = true;
      }
      for (const mount of record.mounts) {
        if (mount.imageId === undefined) continue;
        const layers = mount.type === 'overlay' ? splitLowerdir(mount.source) : [mount.source];
        if (layers[0] === undefined || (await idmapSupported(layers[0]))) continue;
        const copies = await shiftedLayers(dir, layers, range);
        mounts.set(mount.destination, { source: mount.type === 'overlay' ? joinLowerdir(copies) : (copies[0] ?? '') });
      }
    }
    const names = [...new Set(volumes.map((mount) => mount.volumeName as string))].sort(compareText);
    for (const name of names) {
      const mount = volumes.find((candidate) => candidate.volumeName === name);
      if (mount === undefined || (await fs.stat(mount.source).catch(() => undefined)) === undefined) continue;
      // only a volume on a file system without idmapped mounts is ever chowned (shift.json: one that is); a
      // container without a user namespace that uses one takes its lock too, so that a start chowning it for a
      // range sees it running (and the other way round); a probe that fails there changes nothing for it
      const chowned = await pathExists(path.join(this.paths.volumes, name, 'shift.json'));
      const supported =
        range === undefined ? await idmapSupported(mount.source).catch(() => true) : await idmapSupported(mount.source);
      if (supported && !chowned) continue;
      locks.push(await acquireLock(`${this.paths.rootId}:volume-shift:${name}`));
      const to = supported || range === undefined ? undefined : range;
      await shiftVolume(this.paths, name, mount.source, to, () => this.otherVolumeUser(record, name));
      if (!supported && range !== undefined) {
        for (const each of volumes) if (each.volumeName === name) mounts.set(each.destination, { source: each.source });
      }
    }
    if (!lowerShifted && !engineFiles && mounts.size === 0) return undefined;
    return { lowers, plan: { lowerShifted, mounts, engineFiles } };
  }

  /** A running container other than record that uses the volume (whose files are about to move to another range). */
  private async otherVolumeUser(record: ContainerRecord, volume: string): Promise<string | undefined> {
    for (const other of await this.readRecords()) {
      if (other.id === record.id || !other.mounts.some((mount) => mount.volumeName === volume)) continue;
      const status = await readJson<MonitorStatus>(containerFiles(this.dirOf(other.id)).status);
      if (status === undefined || status.state === 'exited' || status.bootId !== currentBootId()) continue;
      if (!(await isSameProcess(status.monitor, status.monitorStart))) continue;
      // it runs with the volume stored as it is now: moving it to another range takes its files away
      return other.name;
    }
    return undefined;
  }

  /**
   * Makes a networked container's sandbox again when it is missing: a `kill -9` of a `down` between the sandbox's
   * removal and the record's (the next `up` starts the container again), or a reboot (netns files live under the
   * run root). Its stale endpoints go first, then it is attached as at create.
   */
  private async ensureSandbox(record: ContainerRecord): Promise<void> {
    if ((record.spec.networks ?? []).length === 0) return;
    const networks = this.requireNetworks();
    if (await networks.hasSandbox(record.id)) return;
    await networks.removeSandbox(record.id);
    const dir = this.dirOf(record.id);
    await this.connect(record, dir);
    await this.writeHostsFile(record, containerFiles(dir).hosts);
    await this.refreshHosts();
  }

  /**
   * `tsfig-runtime start DIR`, forked by the spawner (engine/runtime/spawner.ts) in this process's network namespace
   * (spawnCommandHere: rootless, the monitor and its exit command run where the CLI does); its report comes on fd 3.
   */
  private async runStart(dir: string): Promise<ReturnType<typeof parseRuntimeMessage>> {
    const result = await spawnCommandHere(runtimeBinary(), ['start', dir], {
      env: { ...process.env, _TSFIG_SYNC_FD: '3' },
      fd3: true,
    });
    const line = result.fd3
      .toString()
      .split('\n')
      .find((candidate) => candidate.trim() !== '');
    if (line === undefined) {
      throw new EngineError(
        'runtime',
        `the native runtime exited (${result.code}) without reporting: ${result.stderr.toString().trim() || 'no output'}`,
      );
    }
    return parseRuntimeMessage(line);
  }

  /** The runtime's `netns` value: a fresh one, the host's, the container's sandbox, or another container's. */
  private async netnsOf(record: ContainerRecord): Promise<string> {
    if ((record.spec.networks ?? []).length > 0) return path.join(this.paths.netns, record.id);
    const mode = record.spec.network ?? 'none';
    if (mode === 'none') return 'new';
    if (mode === 'host') return 'host';
    if (mode.startsWith('container:')) {
      const other = await this.get(mode.slice('container:'.length));
      if ((other.spec.networks ?? []).length > 0) return path.join(this.paths.netns, other.id);
      const status = await this.status(other);
      if (status?.state !== 'running') {
        throw new EngineError('conflict', `cannot join the network of container ${other.name}: it is not running`, {
          hint: `start it first: tsfig container start ${other.name}`,
        });
      }
      return `/proc/${status.pid}/ns/net`;
    }
    throw new EngineError('invalid', `unknown network mode "${mode}"`, { hint: 'use none, host or container:NAME' });
  }

  /**
   * Sends one command to the container's monitor over its control socket. A monitor that accepts but does not answer
   * within controlTimeoutMs (stopped, or stuck) fails it with a MonitorTimeout: the wait was unbounded, and a
   * `down` whose monitor never answered hung for ever.
   */
  private async control(record: ContainerRecord, command: string): Promise<void> {
    const socketPath = path.join(this.dirs(record.id).runDir, 'ctl');
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = net.createConnection(socketPath);
      let data = '';
      const timer = setTimeout(() => {
        socket.destroy();
        reject(
          new MonitorTimeout(
            `container ${record.name}: its monitor did not answer "${command}" within ${this.controlTimeoutMs / 1000} s`,
          ),
        );
      }, this.controlTimeoutMs);
      socket.setEncoding('utf8');
      socket.on('connect', () => socket.write(`${command}\n`));
      socket.on('data', (chunk: string) => {
        data += chunk;
        if (data.includes('\n')) socket.end();
      });
      socket.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      socket.on('close', () => {
        clearTimeout(timer);
        resolve(data.trim());
      });
    });
    if (reply.startsWith('error')) {
      throw new EngineError('runtime', `container ${record.name}: ${reply.slice('error'.length).trim()}`);
    }
  }

  /**
   * Stop and rm -f when the monitor does not answer: SIGKILL to it (only while it is the process that wrote
   * status.json); the next read of the status repairs the container (its cgroup killed, marked exited).
   */
  private async killUnresponsiveMonitor(record: ContainerRecord): Promise<void> {
    const status = await readJson<MonitorStatus>(containerFiles(this.dirOf(record.id)).status);
    if (status === undefined || !(await isSameProcess(status.monitor, status.monitorStart))) return;
    try {
      process.kill(status.monitor, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
    for (let waited = 0; waited < 5000 && (await isSameProcess(status.monitor, status.monitorStart)); waited += 10) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Stops a running container: stop signal, then SIGKILL after the timeout (seconds). Waits until it has exited. */
  async stop(ref: string, timeoutSeconds?: number): Promise<ContainerRecord> {
    const record = await this.get(ref);
    const status = await this.status(record);
    if (status === undefined || status.state === 'exited') return record;
    const timeout = timeoutSeconds ?? record.stopTimeout;
    try {
      await this.control(record, `stop ${timeout}`);
    } catch (error) {
      if (error instanceof MonitorTimeout) await this.killUnresponsiveMonitor(record);
      else if (!isErrno(error, 'ENOENT') && !isErrno(error, 'ECONNREFUSED')) throw error;
    }
    // an autoRemove container may be gone by then (its monitor's cleanup): stopped all the same
    await this.wait(record.id, { timeoutMs: (timeout + 10) * 1000 }).catch((error: unknown) => {
      if (!isEngineError(error, 'not-found')) throw error;
    });
    return record;
  }

  async kill(ref: string, signal: string | number = 'SIGKILL'): Promise<ContainerRecord> {
    const record = await this.get(ref);
    const number = signalNumber(signal, '--signal');
    const status = await this.status(record);
    if (status === undefined || status.state === 'exited') {
      throw new EngineError('conflict', `container ${record.name} is not running`, {
        hint: `start it first: tsfig container start ${record.name}`,
      });
    }
    await this.control(record, `kill ${number}`);
    // As Docker does for SIGKILL: return once the process is gone (exited, or restarted by its restart policy), so a
    // `kill` followed by `rm` or `ps` sees it stopped.
    if (number === 9) await this.waitProcessGone(record, status.pid, 10_000);
    return record;
  }

  private async waitProcessGone(record: ContainerRecord, pid: number | undefined, timeoutMs: number): Promise<void> {
    const file = containerFiles(this.dirOf(record.id)).status;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const now = await readJson<MonitorStatus>(file);
      if (now === undefined || now.state !== 'running' || now.pid !== pid) return;
      if (!(await isSameProcess(now.monitor, now.monitorStart))) return;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /**
   * Refuses pause and unpause where containers have no freezer: rootless without cgroups (podman: "pause is not
   * supported for cgroupv1 rootless containers"). Callers that check the paused state first call it before that.
   */
  checkFreezable(record: ContainerRecord, verb: 'pause' | 'unpause'): void {
    if (cgroupsAvailable()) return;
    throw new EngineError(
      'unsupported',
      `cannot ${verb} container ${record.name}: pause is not supported for rootless containers on ` +
        `${noCgroupsReason()} (no freezer cgroup)`,
      { hint: `stop the container instead (tsfig container stop ${record.name}), or run tsfig as root` },
    );
  }

  /** Whether the container's processes are frozen (`pause`); never without cgroups. */
  isPaused(id: string): Promise<boolean> {
    return isFrozen(this.paths, id);
  }

  /** Pauses (freezes) or resumes every process of a running container through its freezer cgroup. */
  async freeze(ref: string, frozen: boolean): Promise<ContainerRecord> {
    const record = await this.get(ref);
    if ((await this.status(record))?.state !== 'running') {
      throw new EngineError('conflict', `container ${record.name} is not running`);
    }
    this.checkFreezable(record, frozen ? 'pause' : 'unpause');
    const cgroup = this.dirs(record.id).cgroup;
    const v1 = path.join('/sys/fs/cgroup/freezer', cgroup, 'freezer.state');
    const v2 = path.join('/sys/fs/cgroup', cgroup, 'cgroup.freeze');
    const target = await fs.access(v1).then(
      () => ({ file: v1, value: frozen ? 'FROZEN' : 'THAWED' }),
      () => ({ file: v2, value: frozen ? '1' : '0' }),
    );
    await fs.writeFile(target.file, target.value);
    return record;
  }

  /** Waits for the container to exit and returns its exit code. */
  async wait(ref: string, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<number> {
    const record = await this.get(ref);
    const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
    const changes = watchDir(this.dirOf(record.id), options.signal);
    try {
      let delay = 5;
      for (;;) {
        const status = await this.status(record);
        if (status === undefined) {
          if ((await readJson(containerFiles(this.dirOf(record.id)).record)) === undefined) {
            throw new EngineError('not-found', `container ${record.name} was removed`);
          }
          throw new EngineError('conflict', `container ${record.name} has not been started`, {
            hint: `start it with: tsfig container start ${record.name}`,
          });
        }
        if (status.state === 'exited') return status.exitCode ?? 0;
        options.signal?.throwIfAborted();
        if (Date.now() > deadline)
          throw new EngineError('runtime', `timed out waiting for container ${record.name} to exit`);
        await changes.next(delay);
        delay = Math.min(delay * 2, 100);
      }
    } finally {
      changes.close();
    }
  }

  /** Removes a container. A running one needs force (it is killed first). */
  /**
   * Removes a container (stopping it first with `force`). With `deferHosts`, the other containers' /etc/hosts are
   * not rewritten now but by the next flushHosts() (one pass for a whole `down`, instead of one per burst of
   * removals rewriting files of containers about to go too).
   */
  async remove(ref: string, options: { force?: boolean; deferHosts?: boolean } = {}): Promise<ContainerRecord> {
    const record = await this.get(ref);
    await this.withContainerLock(record.id, async () => {
      const status = await this.status(record);
      if (status !== undefined && status.state !== 'exited') {
        if (options.force !== true) {
          throw new EngineError('conflict', `cannot remove container ${record.name}: it is running`, {
            hint: `stop it first (tsfig container stop ${record.name}) or use --force`,
          });
        }
        await this.control(record, 'kill 9').catch(async (error: unknown) => {
          if (error instanceof MonitorTimeout) await this.killUnresponsiveMonitor(record);
        });
        await this.waitExitedUnlocked(record, 10_000);
      }
      if ((record.spec.networks ?? []).length > 0) {
        await this.requireNetworks().removeSandbox(
          record.id,
          options.deferHosts === true ? { whenGone: (gone) => this.defer(gone) } : {},
        );
      }
      await this.removeFiles(record.id);
      if (record.userns !== undefined) await releaseUserns(this.paths, record.id);
    });
    if (options.deferHosts === true) {
      // once for the whole batch, by flushHosts(): each try takes the kernel's cgroup lock, which the batch's other
      // removals are waiting for
      this.removedSinceFlush = true;
      if ((record.spec.networks ?? []).length > 0) this.hostsDirty = true;
      return record;
    }
    if ((record.spec.networks ?? []).length > 0) await this.refreshHosts();
    await removeEmptyCgroupParent(this.paths.cgroupParent);
    await removeEmptyRunRoot(this.paths);
    return record;
  }

  private async waitExitedUnlocked(record: ContainerRecord, timeoutMs: number): Promise<void> {
    const file = containerFiles(this.dirOf(record.id)).status;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const status = await readJson<MonitorStatus>(file);
      if (status === undefined || status.state === 'exited') return;
      if (!(await isSameProcess(status.monitor, status.monitorStart))) return;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Records with their current state, for callers that need the whole record (the orchestrator's observe). */
  async listRecords(
    labels: Readonly<Record<string, string | undefined>> = {},
  ): Promise<{ record: ContainerRecord; state: ContainerState }[]> {
    const matching = (await this.readRecords()).filter((record) =>
      Object.entries(labels).every(([key, value]) =>
        value === undefined ? key in record.labels : record.labels[key] === value,
      ),
    );
    // The statuses in parallel (a file each; a dead monitor's repair takes that container's own lock).
    const states = await Promise.all(matching.map((record) => this.state(record)));
    return matching.map((record, index) => ({ record, state: states[index] as ContainerState }));
  }

  async list(
    options: { all?: boolean; labels?: Readonly<Record<string, string | undefined>> } = {},
  ): Promise<ContainerSummary[]> {
    const summaries: ContainerSummary[] = [];
    for (const record of await this.readRecords()) {
      if (options.labels !== undefined) {
        const matches = Object.entries(options.labels).every(([key, value]) =>
          value === undefined ? key in record.labels : record.labels[key] === value,
        );
        if (!matches) continue;
      }
      const state = await this.state(record);
      if (options.all !== true && !state.running) continue;
      summaries.push({
        id: record.id,
        name: record.name,
        image: record.imageRef,
        imageId: record.imageId,
        command: record.process.argv.join(' '),
        created: record.created,
        state,
        labels: record.labels,
      });
    }
    return summaries.sort((a, b) => compareText(b.created, a.created));
  }

  /** docker inspect's shape, for the fields tsfig has (inspect.ts). */
  async inspect(ref: string): Promise<Record<string, unknown>> {
    const record = await this.get(ref);
    const status = await this.status(record);
    const networks = this.networks === undefined ? [] : await this.networks.list();
    return inspectJson(this.paths, record, stateOf(status), status, networks);
  }

  /** Published ports of a container, as `port` prints them. */
  async ports(ref: string): Promise<{ containerPort: number; proto: string; hostIp: string; hostPort: number }[]> {
    const record = await this.get(ref);
    const result = [];
    for (const network of this.networks === undefined ? [] : await this.networks.list()) {
      for (const port of network.endpoints[record.id]?.ports ?? []) result.push(port);
    }
    return result;
  }

  /**
   * Appends lines to the container's json-file log, as if the container had written them: the output of a lifecycle
   * hook (compose shows it with the service's logs). One O_APPEND write per call, so the monitor's lines stay whole.
   */
  async appendLog(ref: string, entries: readonly { stream: 'stdout' | 'stderr'; text: string }[]): Promise<void> {
    if (entries.length === 0) return;
    const record = await this.get(ref);
    const time = new Date().toISOString();
    const data = entries
      .map((entry) => `${JSON.stringify({ log: `${entry.text}\n`, stream: entry.stream, time })}\n`)
      .join('');
    await fs.appendFile(containerFiles(this.dirOf(record.id)).log, data);
  }

  /** The container's log entries; with follow, until the container has exited. */
  async *logs(ref: string, options: LogReadOptions = {}): AsyncGenerator<LogEntry> {
    const record = await this.get(ref);
    const file = containerFiles(this.dirOf(record.id)).log;
    // a restarting container keeps its log: follow until it has really exited
    // (or is gone: an autoRemove container removed by its monitor's cleanup)
    const done = async () => {
      const status = await this.status(record);
      if (status !== undefined) return status.state === 'exited';
      return (await readJson(containerFiles(this.dirOf(record.id)).record)) === undefined;
    };
    yield* readLogs(file, done, options);
  }

  /** Runs a process in a running container, in its namespaces and with its security settings. */
  async exec(ref: string, options: ExecOptions): Promise<ExecResult> {
    const record = await this.get(ref);
    const status = await this.status(record);
    if (status?.state !== 'running') {
      throw new EngineError('conflict', `container ${record.name} is not running`, {
        hint: `start it first: tsfig container start ${record.name}`,
      });
    }
    // Docker refuses too: a process joining a frozen cgroup freezes at once, and the exec would hang in state D.
    if (await isFrozen(this.paths, record.id)) {
      throw new EngineError('conflict', `container ${record.name} is paused`, {
        hint: `unpause it first: tsfig container unpause ${record.name}`,
      });
    }
    const userProblem = options.user === undefined ? undefined : userSpecProblem(options.user);
    if (userProblem !== undefined) {
      throw new EngineError('invalid', `invalid user "${options.user ?? ''}": ${userProblem}`, {
        hint: 'use a user name or a uid in 0..2147483647',
      });
    }
    const args = ['exec', this.dirOf(record.id)];
    if (options.user !== undefined) args.push('--user', options.user);
    if (options.workingDir !== undefined) args.push('--cwd', options.workingDir);
    for (const env of options.env ?? []) args.push('--env', env);
    if (options.privileged === true) args.push('--privileged');
    if (options.detach === true) args.push('--detach');
    else if (options.tty === true) args.push('--tty');
    if (options.interactive === false && options.detach !== true) args.push('--no-stdin');
    args.push('--', ...options.argv);
    const stdio = options.stdio ?? 'pipe';
    return new Promise((resolve, reject) => {
      const child = spawn(runtimeBinary(), args, {
        stdio: stdio === 'inherit' ? ['inherit', 'inherit', 'inherit', 'pipe'] : ['ignore', 'pipe', 'pipe', 'pipe'],
        env: { ...process.env, _TSFIG_SYNC_FD: '3' },
      });
      let stdout = '';
      let stderr = '';
      let sync = '';
      child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      (child.stdio[3] as NodeJS.ReadableStream).setEncoding('utf8');
      (child.stdio[3] as NodeJS.ReadableStream).on('data', (chunk: string) => (sync += chunk));
      child.on('error', reject);
      child.on('close', (code, signal) => {
        const line = sync.split('\n').find((candidate) => candidate.trim() !== '');
        if (line !== undefined) {
          const message = parseRuntimeMessage(line);
          if (message.type === 'error') {
            reject(runtimeError(message, `cannot exec in container ${record.name}`, startHint(message.step)));
            return;
          }
        }
        resolve({ exitCode: code ?? 128 + (signal === null ? 0 : signalNumber(signal)), stdout, stderr });
      });
    });
  }
}

function startHint(step: string): string | undefined {
  if (step === 'exec') return 'check the command exists in the image and is executable';
  if (step === 'user') return 'check the user exists in the image (/etc/passwd) or use a numeric uid';
  if (step.startsWith('cgroup')) return 'check the resource limits (-m, --cpus, --pids-limit)';
  if (step === 'rlimit') return `ulimits cannot exceed the host's hard limits (ulimit -Hn)`;
  return undefined;
}

/**
 * Wakes a wait loop when an entry of dir changes (inotify through fs.watch: the monitor renames status.json into
 * place when the container exits), when signal aborts, or after the loop's poll delay at the latest: the poll stays
 * as the safety net (a monitor that died writes nothing; a directory that cannot be watched is only polled). Without
 * it, `wait` saw an exit up to one poll (100 ms) late, and `down` of n containers paid that per container.
 */
function watchDir(dir: string, signal?: AbortSignal): { next(delayMs: number): Promise<void>; close(): void } {
  let wake: (() => void) | undefined;
  let changed = false;
  let watcher: FSWatcher | undefined;
  const poke = (): void => {
    changed = true;
    wake?.();
  };
  try {
    watcher = watch(dir, { persistent: false }, poke);
    watcher.on('error', () => undefined);
  } catch {
    watcher = undefined;
  }
  signal?.addEventListener('abort', poke);
  return {
    next(delayMs) {
      if (changed) {
        changed = false;
        return Promise.resolve();
      }
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          wake = undefined;
          resolve();
        }, delayMs);
        wake = () => {
          clearTimeout(timer);
          wake = undefined;
          changed = false;
          resolve();
        };
      });
    },
    close() {
      watcher?.close();
      signal?.removeEventListener('abort', poke);
      wake?.();
    },
  };
}

/** The spec's and the image's exposed ports (`PORT/proto`), each once, by port number then protocol. */
export function mergeExposedPorts(
  own: readonly string[] | undefined,
  image: Readonly<Record<string, unknown>> | undefined,
): string[] {
  const all = new Set([...(own ?? []), ...Object.keys(image ?? {})].map((p) => (p.includes('/') ? p : `${p}/tcp`)));
  const key = (p: string) => Number.parseInt(p, 10);
  return [...all].sort((a, b) => key(a) - key(b) || (a < b ? -1 : a > b ? 1 : 0));
}
