/**
 * `tsfig system check [--repair]`: compares the state on disk with the kernel and lists what a crash (`kill -9`,
 * power loss) or a hand edit left inconsistent; with repair, fixes each with the command that would have finished or
 * undone it (docs/reliability.md). Read-only without repair.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { cgroupDirs, destroyCgroup, isSameProcess, currentBootId } from '../containers/liveness.js';
import { containerLockName, creatorAlive, ifLockFree, sweepContainerDebris } from '../containers/staging.js';
import type { ContainerRecord, MonitorStatus } from '../containers/types.js';
import { listUserns, releaseStrayRegistryEntries, releaseUserns, strayRegistryEntries } from '../containers/userns.js';
import type { Engine } from '../index.js';
import { linkAlias } from '../network/names.js';
import { readJson } from '../state/atomic.js';
import { shortId } from '../state/ids.js';
import { ANONYMOUS_LABEL } from '../volumes/options.js';
import { containerRecordUsers } from '../volumes/users.js';
import { mountsUnder } from '../volumes/store.js';

const run = promisify(execFile);

export type FindingKind =
  | 'container'
  | 'process'
  | 'cgroup'
  | 'mount'
  | 'network'
  | 'netns'
  | 'link'
  | 'firewall'
  | 'volume'
  | 'image'
  | 'userns';

export interface Finding {
  readonly kind: FindingKind;
  /** What it is about: an id, a path, an interface or volume name. */
  readonly object: string;
  readonly problem: string;
  /** Set by a repair: whether it was fixed (and how, or why not). */
  repaired?: string;
  failed?: string;
}

export interface CheckOptions {
  readonly repair: boolean;
}

/** Inconsistencies of one engine root; repaired with options.repair. */
export async function checkSystem(engine: Engine, options: CheckOptions): Promise<Finding[]> {
  const findings: Finding[] = [];
  const step = async (found: Finding[], repair: () => Promise<string>): Promise<void> => {
    findings.push(...found);
    if (!options.repair || found.length === 0) return;
    try {
      const how = await repair();
      for (const finding of found) finding.repaired = how;
    } catch (error) {
      for (const finding of found) finding.failed = (error as Error).message;
    }
  };
  const records = await readRecords(engine);
  await step(await stagedAndRemoving(engine), async () => {
    await sweepContainerDebris(engine.paths);
    return 'rolled back / removal finished';
  });
  await step(await usernsFindings(engine), async () => {
    for (const id of await strayUsernsRanges(engine)) await releaseUserns(engine.paths, id);
    return 'range released';
  });
  await step(await registryFindings(engine), async () => {
    await releaseStrayRegistryEntries(engine.paths);
    return 'entry removed';
  });
  await step(await recordsWithoutProcesses(engine, records), async () => {
    for (const record of records) await engine.containers.status(record);
    return 'marked exited, its cgroup and run dir removed';
  });
  await step(await processesWithoutRecords(engine, records), async () => {
    for (const pid of await orphanMonitors(engine, records)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    return 'killed';
  });
  await step(await strayCgroups(engine, records), async () => {
    for (const name of await strayCgroupNames(engine, records))
      await destroyCgroup(`${engine.paths.cgroupParent}/${name}`);
    return 'processes killed, cgroup removed';
  });
  await step(await networkFindings(engine, records), async () => {
    await engine.containers.repairNetworking();
    return 'network state and host converged';
  });
  await step(await strayMounts(engine), async () => {
    for (const point of await strayMountPoints(engine)) await run('umount', ['--lazy', point]);
    return 'unmounted';
  });
  await step(await volumeFindings(engine), async () => {
    await engine.volumes.list(); // finishes interrupted removals, adopts interrupted creates
    const usersOf = containerRecordUsers(engine.paths);
    for (const name of await anonymousVolumes(engine)) {
      if ((await usersOf(name)).length === 0) await engine.volumes.remove(name, { usersOf, force: true });
    }
    return 'removal finished / create adopted / unused anonymous volume removed';
  });
  const image = await engine.images.checkUnreferenced({ repair: options.repair });
  findings.push(
    ...image.map((entry) => ({
      kind: 'image' as const,
      object: `${entry.kind} ${entry.name}`,
      problem: entry.problem,
      ...(options.repair ? { repaired: 'deleted' } : {}),
    })),
  );
  return findings;
}

/**
 * Subordinate id ranges (`--userns auto`) whose container is gone: neither its dir nor a stage of a live creator (a
 * create or rm killed between the range and the dir). Kept, they would only narrow what later containers can get.
 */
async function strayUsernsRanges(engine: Engine): Promise<string[]> {
  const stray: string[] = [];
  for (const id of Object.keys(await listUserns(engine.paths))) {
    if (await exists(path.join(engine.paths.containers, id))) continue;
    if ((await exists(path.join(engine.paths.containers, `${id}.creating`))) && (await creatorAlive(engine.paths, id)))
      continue;
    stray.push(id);
  }
  return stray;
}

async function usernsFindings(engine: Engine): Promise<Finding[]> {
  const ranges = await listUserns(engine.paths);
  return (await strayUsernsRanges(engine)).map((id) => ({
    kind: 'userns' as const,
    object: shortId(id),
    problem: `subordinate ids ${ranges[id]?.uid ?? '?'}-${(ranges[id]?.uid ?? 0) + (ranges[id]?.size ?? 0) - 1} allocated to a container that is gone`,
  }));
}

/**
 * The host-wide userns registry's entries of this root that the root does not hold: a create killed between the
 * registry and the root's userns.json. Kept, they narrow every root's ids. (Another root's are its own check's, and
 * those of a root that is gone are dropped by the next allocation.)
 */
async function registryFindings(engine: Engine): Promise<Finding[]> {
  return (await strayRegistryEntries(engine.paths)).map((entry) => ({
    kind: 'userns' as const,
    object: shortId(entry.container),
    problem: `host-wide registry: subordinate ids ${entry.uid}-${entry.uid + entry.size - 1} held for a container its state root does not have`,
  }));
}

/** The container records, read without the manager (whose reads finish interrupted removals: a check only looks). */
async function readRecords(engine: Engine): Promise<ContainerRecord[]> {
  const records: ContainerRecord[] = [];
  for (const entry of await fs.readdir(engine.paths.containers).catch(() => [] as string[])) {
    if (!/^[0-9a-f]{64}$/.test(entry)) continue;
    const record = await readJson<ContainerRecord>(path.join(engine.paths.containers, entry, 'container.json')).catch(
      () => undefined,
    );
    if (record !== undefined) records.push(record);
  }
  return records;
}

async function stagedAndRemoving(engine: Engine): Promise<Finding[]> {
  const found: Finding[] = [];
  for (const entry of await fs.readdir(engine.paths.containers).catch(() => [] as string[])) {
    const match = /^([0-9a-f]{64})\.(creating|removing)$/.exec(entry);
    if (match?.[1] === undefined) continue;
    const id = match[1];
    if (match[2] === 'creating') {
      if (!(await creatorAlive(engine.paths, id))) {
        found.push({ kind: 'container', object: shortId(id), problem: `staged by a creator that is gone (${entry})` });
      }
    } else {
      const free = await ifLockFree(containerLockName(engine.paths, id), () => Promise.resolve());
      if (!free.held) {
        found.push({
          kind: 'container',
          object: shortId(id),
          problem: `half removed by a command that is gone (${entry})`,
        });
      }
    }
  }
  return found;
}

async function recordsWithoutProcesses(engine: Engine, records: readonly ContainerRecord[]): Promise<Finding[]> {
  const found: Finding[] = [];
  for (const record of records) {
    const status = await readJson<MonitorStatus>(path.join(engine.paths.containers, record.id, 'status.json')).catch(
      () => undefined,
    );
    if (status === undefined || status.state === 'exited') continue;
    const alive = status.bootId === currentBootId() && (await isSameProcess(status.monitor, status.monitorStart));
    if (!alive) {
      found.push({
        kind: 'container',
        object: `${record.name} (${shortId(record.id)})`,
        problem: `recorded ${status.state}, but its monitor (pid ${status.monitor}) is gone`,
      });
    }
  }
  return found;
}

/** Monitors (`tsfig-runtime start <root>/containers/<id>`, and the processes they fork) whose container record is gone. */
async function orphanMonitors(engine: Engine, records: readonly ContainerRecord[]): Promise<number[]> {
  const ids = new Set(records.map((record) => record.id));
  const prefix = `${engine.paths.containers}/`;
  const found: number[] = [];
  for (const entry of await fs.readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = (await fs.readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (argv[1] !== 'start' || !(argv[0] ?? '').endsWith('tsfig-runtime')) continue;
    const dir = argv[2] ?? '';
    if (!dir.startsWith(prefix)) continue;
    // The monitor, the `start` command waiting for it and the healthcheck helpers it forks all look like this.
    if (ids.has(dir.slice(prefix.length))) continue;
    found.push(Number(entry));
  }
  return found;
}

async function processesWithoutRecords(engine: Engine, records: readonly ContainerRecord[]): Promise<Finding[]> {
  return (await orphanMonitors(engine, records)).map((pid) => ({
    kind: 'process' as const,
    object: `pid ${pid}`,
    problem: 'a container monitor whose container record is gone',
  }));
}

/** Cgroups under the root's parent that no container with a live monitor owns. */
async function strayCgroupNames(engine: Engine, records: readonly ContainerRecord[]): Promise<string[]> {
  const owners = new Map(records.map((record) => [shortId(record.id), record]));
  const names = new Set<string>();
  for (const dir of await cgroupDirs(engine.paths.cgroupParent)) {
    for (const entry of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (entry.isDirectory()) names.add(entry.name);
    }
  }
  const stray: string[] = [];
  for (const name of names) {
    const record = owners.get(name);
    if (record !== undefined) {
      const status = await readJson<MonitorStatus>(path.join(engine.paths.containers, record.id, 'status.json')).catch(
        () => undefined,
      );
      // starting (no status yet), or kept by its live monitor
      if (status === undefined) continue;
      if (status.state !== 'exited' && (await isSameProcess(status.monitor, status.monitorStart))) continue;
      const staged = await creatorAlive(engine.paths, record.id);
      if (staged) continue;
      const locked = await ifLockFree(containerLockName(engine.paths, record.id), () => Promise.resolve());
      if (locked.held) continue; // being started or removed right now
    }
    stray.push(name);
  }
  return stray;
}

async function strayCgroups(engine: Engine, records: readonly ContainerRecord[]): Promise<Finding[]> {
  return (await strayCgroupNames(engine, records)).map((name) => ({
    kind: 'cgroup' as const,
    object: `${engine.paths.cgroupParent}/${name}`,
    problem: 'a container cgroup no running container owns',
  }));
}

/** Ids of containers (records, and stages of live creators). */
async function liveIds(engine: Engine, records: readonly ContainerRecord[]): Promise<Set<string>> {
  const live = new Set(records.map((record) => record.id));
  for (const entry of await fs.readdir(engine.paths.containers).catch(() => [] as string[])) {
    const match = /^([0-9a-f]{64})\.creating$/.exec(entry);
    if (match?.[1] !== undefined && (await creatorAlive(engine.paths, match[1]))) live.add(match[1]);
  }
  return live;
}

async function networkFindings(engine: Engine, records: readonly ContainerRecord[]): Promise<Finding[]> {
  const found: Finding[] = [];
  const live = await liveIds(engine, records);
  const networks = await engine.networks.list();
  const sandboxes = new Set<string>();
  for (const network of networks) {
    for (const endpoint of Object.values(network.endpoints)) {
      sandboxes.add(endpoint.sandbox);
      if (!live.has(endpoint.containerId)) {
        found.push({
          kind: 'network',
          object: `${network.name}/${endpoint.containerName ?? shortId(endpoint.containerId)}`,
          problem: 'endpoint of a container that is gone',
        });
      }
    }
  }
  for (const name of await fs.readdir(engine.paths.netns).catch(() => [] as string[])) {
    const file = path.join(engine.paths.netns, name);
    if (sandboxes.has(file) && live.has(name)) continue;
    if (live.has(name)) continue;
    found.push({ kind: 'netns', object: file, problem: 'network sandbox of no container' });
  }
  const wanted = new Set(networks.flatMap((n) => [n.bridge, ...Object.values(n.endpoints).map((ep) => ep.hostVeth)]));
  const alias = linkAlias(engine.paths.rootId);
  let links: { ifname: string; ifalias?: string }[] = [];
  try {
    links = JSON.parse((await run('ip', ['-j', 'link', 'show'])).stdout) as typeof links;
  } catch {
    links = [];
  }
  const ours = links.filter((link) => link.ifname.startsWith(engine.paths.hostPrefix));
  for (const link of ours) {
    if (wanted.has(link.ifname)) continue;
    if (link.ifalias !== undefined && link.ifalias !== alias) continue; // another root sharing the prefix
    found.push({ kind: 'link', object: link.ifname, problem: 'host interface no network or endpoint refers to' });
  }
  const present = new Set(ours.map((link) => link.ifname));
  for (const network of networks) {
    if (!present.has(network.bridge)) {
      found.push({ kind: 'link', object: network.bridge, problem: `bridge of network ${network.name} is missing` });
    }
  }
  let tables = '';
  try {
    tables = (await run('nft', ['list', 'tables'])).stdout;
  } catch {
    tables = '';
  }
  const table = engine.networks.tableName;
  const hasTable = new RegExp(`^table ip ${table}$`, 'm').test(tables);
  if (hasTable && networks.length === 0) {
    found.push({ kind: 'firewall', object: `nft table ${table}`, problem: 'rules of a root without networks' });
  } else if (!hasTable && networks.length > 0) {
    found.push({
      kind: 'firewall',
      object: `nft table ${table}`,
      problem: 'missing: published ports and isolation are off',
    });
  }
  return found;
}

/** Mounts under the root or the run root other than the netns files of live sandboxes. */
async function strayMountPoints(engine: Engine): Promise<string[]> {
  const networks = await engine.networks.list();
  const sandboxes = new Set(networks.flatMap((n) => Object.values(n.endpoints).map((ep) => ep.sandbox)));
  const points = [...(await mountsUnder(engine.paths.root)), ...(await mountsUnder(engine.paths.runRoot))];
  return [...new Set(points)].filter((point) => !sandboxes.has(point));
}

async function strayMounts(engine: Engine): Promise<Finding[]> {
  return (await strayMountPoints(engine)).map((point) => ({
    kind: 'mount' as const,
    object: point,
    problem: 'mount no container or sandbox owns',
  }));
}

async function volumeFindings(engine: Engine): Promise<Finding[]> {
  const found: Finding[] = [];
  for (const entry of await fs.readdir(engine.paths.volumes, { withFileTypes: true }).catch(() => [])) {
    const full = path.join(engine.paths.volumes, entry.name);
    if (entry.name.startsWith('.removing-')) {
      found.push({ kind: 'volume', object: full, problem: 'removal interrupted by a crash' });
    } else if (entry.isDirectory() && !(await exists(path.join(full, 'volume.json')))) {
      found.push({ kind: 'volume', object: entry.name, problem: 'no volume.json: a create interrupted by a crash' });
    }
  }
  const usersOf = containerRecordUsers(engine.paths, { finish: false });
  for (const name of await anonymousVolumes(engine)) {
    if ((await usersOf(name)).length === 0) {
      found.push({ kind: 'volume', object: name, problem: 'anonymous volume whose containers are gone' });
    }
  }
  return found;
}

/** Names of the anonymous volumes (volume.json read directly: listing volumes adopts and finishes leftovers). */
async function anonymousVolumes(engine: Engine): Promise<string[]> {
  const names: string[] = [];
  for (const name of await fs.readdir(engine.paths.volumes).catch(() => [] as string[])) {
    if (name.startsWith('.')) continue;
    const record = await readJson<{ labels?: Record<string, string> }>(
      path.join(engine.paths.volumes, name, 'volume.json'),
    ).catch(() => undefined);
    if (record?.labels?.[ANONYMOUS_LABEL] !== undefined) names.push(name);
  }
  return names;
}

async function exists(file: string): Promise<boolean> {
  return fs.lstat(file).then(
    () => true,
    () => false,
  );
}
