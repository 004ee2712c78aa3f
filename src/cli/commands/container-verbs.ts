/**
 * `tsfig container restart|pause|unpause|top|prune|stats|cp`: docker's container verbs beyond the lifecycle basics.
 */
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import type { Command } from 'commander';
import { Option } from 'commander';
import { withAutoRemoveHold } from '../../../engine/containers/index.js';
import { blockIo, containerPids, isFrozen, pidsCurrent } from '../../../engine/containers/index.js';
import type { ContainerRecord, ContainerState } from '../../../engine/containers/index.js';
import { isEngineError } from '../../../engine/errors.js';
import type { Engine } from '../../../engine/index.js';
import { cgroupsAvailable, noCgroupsReason } from '../../../engine/system/index.js';
import { shortId } from '../../../engine/state/index.js';
import { readCgroupStats } from '../../ui/tty/cgroup.js';
import { TsfigError } from '../../errors.js';
import { copyOne } from '../../compose/cp.js';
import { openEngine } from '../engine.js';
import { bytesSize, humanSize, renderTable } from '../table.js';
import { compareText } from '../../../engine/index.js';
import { collect, parseCount } from '../units.js';

const execFileAsync = promisify(execFile);

function timeoutFlag(flags: { time?: string; timeout?: string }): number | undefined {
  const value = flags.time ?? flags.timeout;
  return value === undefined ? undefined : parseCount(value, '--time');
}

/** Every ref resolved before anything changes: an unknown container fails the command with nothing done. */
async function records(engine: Engine, refs: readonly string[]): Promise<ContainerRecord[]> {
  const result: ContainerRecord[] = [];
  for (const ref of refs) result.push(await engine.containers.get(ref));
  return result;
}

function registerRestart(group: Command): void {
  group
    .command('restart')
    .description('restart one or more containers')
    .argument('<container...>')
    .option('-t, --time <seconds>', 'seconds to wait before killing the container')
    .addOption(new Option('--timeout <seconds>').hideHelp())
    .action(async (refs: string[], flags: { time?: string; timeout?: string }) => {
      const timeout = timeoutFlag(flags);
      const engine = await openEngine();
      for (const [index, record] of (await records(engine, refs)).entries()) {
        // a --rm container stays across a restart, as with docker: its monitor's cleanup waits for this hold, then
        // finds it running again and leaves it alone
        const restart = async () => {
          if (await isFrozen(engine.paths, record.id)) await engine.containers.freeze(record.id, false);
          await engine.containers.stop(record.id, timeout);
          await engine.containers.start(record.id);
        };
        await (record.spec.autoRemove === true ? withAutoRemoveHold(engine.paths, record.id, restart) : restart());
        process.stdout.write(`${refs[index] ?? record.id}\n`);
      }
    });
}

function registerPause(group: Command): void {
  for (const [name, frozen] of [
    ['pause', true],
    ['unpause', false],
  ] as const) {
    group
      .command(name)
      .description(
        frozen
          ? 'pause all processes within one or more containers'
          : 'unpause all processes within one or more containers',
      )
      .argument('<container...>')
      .action(async (refs: string[]) => {
        const engine = await openEngine();
        for (const ref of refs) {
          const record = await engine.containers.get(ref);
          const state = await engine.containers.state(record);
          if (state.status !== 'running') {
            throw new TsfigError('conflict', `container ${record.name} is not running`, {
              hint: `start it first: tsfig container start ${record.name}`,
            });
          }
          engine.containers.checkFreezable(record, name);
          const paused = await isFrozen(engine.paths, record.id);
          if (frozen && paused) throw new TsfigError('conflict', `container ${record.name} is already paused`);
          if (!frozen && !paused) throw new TsfigError('conflict', `container ${record.name} is not paused`);
          await engine.containers.freeze(record.id, frozen);
          process.stdout.write(`${ref}\n`);
        }
      });
  }
}

/**
 * The processes of a running container as `ps ARGS` prints them (docker top: `-ef` by default), filtered to the
 * container's cgroup by the PID column. Shared logic with compose `top` (which uses `ps -o` on the same cgroup pids).
 */
export async function containerTop(
  engine: Engine,
  record: ContainerRecord,
  psArgs: readonly string[],
): Promise<{ titles: string[]; rows: string[][] }> {
  const pids = new Set((await containerPids(engine.paths, record.id)).map(String));
  const args = psArgs.length > 0 ? [...psArgs] : ['-ef'];
  let stdout: string;
  try {
    ({ stdout } = await execFileAsync('ps', args, { encoding: 'utf8', maxBuffer: 64 << 20 }));
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new TsfigError('usage', `ps ${args.join(' ')} failed: ${stderr || (error as Error).message}`);
  }
  const lines = stdout.split('\n').filter((line) => line.trim() !== '');
  const titles = (lines[0] ?? '').trim().split(/\s+/);
  const pidColumn = titles.indexOf('PID');
  if (pidColumn < 0) {
    throw new TsfigError('usage', `couldn't find PID field in ps output`, { hint: 'give ps options that print PID' });
  }
  const rows = lines.slice(1).flatMap((line) => {
    const fields = line.trim().split(/\s+/);
    const row = [...fields.slice(0, titles.length - 1), fields.slice(titles.length - 1).join(' ')];
    return pids.has(fields[pidColumn] ?? '') ? [row] : [];
  });
  return { titles, rows };
}

function registerTop(group: Command): void {
  group
    .command('top')
    .description('display the running processes of a container')
    .argument('<container>')
    .argument('[ps-options...]', 'options for ps (default -ef)')
    .allowUnknownOption()
    .passThroughOptions()
    .helpOption('--help', 'display help for command')
    .action(async (ref: string, psArgs: string[]) => {
      const engine = await openEngine();
      const record = await engine.containers.get(ref);
      if ((await engine.containers.state(record)).status !== 'running') {
        throw new TsfigError('conflict', `container ${record.name} is not running`, {
          hint: `start it first: tsfig container start ${record.name}`,
        });
      }
      const { titles, rows } = await containerTop(engine, record, psArgs);
      process.stdout.write(renderTable(titles, rows));
    });
}

// ---- prune ----------------------------------------------------------------------------------------------------

/** docker's `until` filter: a duration before now (10m, 1h30m) or a timestamp (RFC 3339 or unix seconds). */
export function parseUntil(value: string, now = Date.now()): number {
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const parts = [...value.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)];
  if (parts.length > 0 && parts.map((part) => part[0]).join('') === value) {
    return now - parts.reduce((sum, part) => sum + Number(part[1]) * (units[part[2] ?? ''] ?? 0), 0);
  }
  const time = Date.parse(value);
  if (Number.isNaN(time)) {
    throw new TsfigError('usage', `--filter: invalid until value "${value}"`, {
      hint: 'use a duration (10m, 24h) or a timestamp (2024-01-02T15:04:05Z, unix seconds)',
    });
  }
  return time;
}

export interface PruneFilter {
  readonly until?: number;
  readonly labels: readonly { key: string; value?: string; negate: boolean }[];
}

export function parsePruneFilters(filters: readonly string[], now = Date.now()): PruneFilter {
  let until: number | undefined;
  const labels: { key: string; value?: string; negate: boolean }[] = [];
  for (const filter of filters) {
    const match = /^(until|label!?)=(.*)$/.exec(filter);
    if (match === null || match[2] === undefined || match[2] === '') {
      throw new TsfigError('usage', `--filter: invalid filter "${filter}"`, {
        hint: 'use until=DURATION|TIMESTAMP, label=KEY[=VALUE] or label!=KEY[=VALUE]',
      });
    }
    if (match[1] === 'until') {
      until = parseUntil(match[2], now);
      continue;
    }
    const index = match[2].indexOf('=');
    labels.push({
      key: index < 0 ? match[2] : match[2].slice(0, index),
      ...(index < 0 ? {} : { value: match[2].slice(index + 1) }),
      negate: match[1] === 'label!',
    });
  }
  return { ...(until !== undefined ? { until } : {}), labels };
}

export function matchesPruneFilter(record: ContainerRecord, filter: PruneFilter): boolean {
  if (filter.until !== undefined && !(Date.parse(record.created) < filter.until)) return false;
  return filter.labels.every(({ key, value, negate }) => {
    const has = value === undefined ? key in record.labels : record.labels[key] === value;
    return negate ? !has : has;
  });
}

/** Bytes of a directory tree (lstat sizes, symlinks not followed): a container's writable layer. */
async function treeSize(dir: string): Promise<number> {
  let total = 0;
  const visit = async (current: string): Promise<void> => {
    let entries;
    try {
      entries = await fs.readdir(current, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const full = path.join(current, entry.name);
      if (entry.isDirectory()) await visit(full);
      else total += (await fs.lstat(full).catch(() => undefined))?.size ?? 0;
    }
  };
  await visit(dir);
  return total;
}

const PRUNE_WARNING = 'WARNING! This will remove all stopped containers.\nAre you sure you want to continue?';

async function confirm(message: string): Promise<boolean> {
  process.stdout.write(`${message} [y/N] `);
  const rl = createInterface({ input: process.stdin });
  try {
    const [line] = (await Promise.race([once(rl, 'line'), once(rl, 'close').then(() => [''])])) as [string];
    return /^y(es)?$/i.test(line.trim());
  } finally {
    rl.close();
  }
}

function registerPrune(group: Command): void {
  group
    .command('prune')
    .description('remove all stopped containers')
    .option('-f, --force', 'do not prompt for confirmation')
    .option(
      '--filter <filter>',
      'provide filter values (until=DURATION|TIMESTAMP, label=KEY[=VALUE], label!=...)',
      collect,
    )
    .action(async (flags: { force?: boolean; filter?: string[] }) => {
      const filter = parsePruneFilters(flags.filter ?? []);
      if (flags.force !== true) {
        if (process.stdin.isTTY !== true) {
          throw new TsfigError('usage', 'container prune needs a confirmation, and stdin is not a terminal', {
            hint: 'prune without a prompt: tsfig container prune -f',
          });
        }
        if (!(await confirm(PRUNE_WARNING))) {
          throw new TsfigError('runtime', 'container prune has been cancelled');
        }
      }
      const engine = await openEngine();
      const deleted: string[] = [];
      let reclaimed = 0;
      for (const { record, state } of await engine.containers.listRecords()) {
        if (state.running || !matchesPruneFilter(record, filter)) continue;
        const size = await treeSize(path.join(engine.paths.containers, record.id, 'upper'));
        try {
          await engine.containers.remove(record.id); // no force: a container started meanwhile stays (conflict)
        } catch (error) {
          if (isEngineError(error, 'not-found') || isEngineError(error, 'conflict')) continue;
          throw error;
        }
        deleted.push(record.id);
        reclaimed += size;
      }
      if (deleted.length > 0) process.stdout.write(`Deleted Containers:\n${deleted.map((id) => `${id}\n`).join('')}\n`);
      process.stdout.write(`Total reclaimed space: ${humanSize(reclaimed, 4)}\n`);
    });
}

// ---- stats ----------------------------------------------------------------------------------------------------

export interface StatsRow {
  readonly BlockIO: string;
  readonly CPUPerc: string;
  readonly Container: string;
  readonly ID: string;
  readonly MemPerc: string;
  readonly MemUsage: string;
  readonly Name: string;
  readonly NetIO: string;
  readonly PIDs: string;
}

async function netIo(pid: number): Promise<{ rx: number; tx: number } | undefined> {
  try {
    const text = await fs.readFile(`/proc/${pid}/net/dev`, 'utf8');
    let rx = 0;
    let tx = 0;
    for (const line of text.split('\n').slice(2)) {
      const [name, rest] = line.split(':');
      if (rest === undefined || name?.trim() === 'lo') continue;
      const fields = rest.trim().split(/\s+/).map(Number);
      rx += fields[0] ?? 0;
      tx += fields[8] ?? 0;
    }
    return { rx, tx };
  } catch {
    return undefined;
  }
}

/**
 * The one warning `stats` gives where containers have no cgroups (rootless on cgroup v1): CPU, memory and block I/O
 * are then shown as `--`, not as a misleading 0. Undefined where they are measured.
 */
export function statsWarning(): string | undefined {
  if (cgroupsAvailable()) return undefined;
  return (
    `CPU, memory and block I/O are not available: rootless containers run without cgroups on this host ` +
    `(${noCgroupsReason()})`
  );
}

/**
 * One stats row per container: CPU % over sampleMs (two cgroup readings), memory, pids, net and block I/O; `--` for
 * what only a cgroup measures where a running container has none.
 */
export async function statsRows(
  engine: Engine,
  targets: readonly { record: ContainerRecord; state: ContainerState; ref: string }[],
  sampleMs: number,
): Promise<StatsRow[]> {
  const parent = engine.paths.cgroupParent;
  const measured = cgroupsAvailable();
  const first = await Promise.all(targets.map(({ record }) => readCgroupStats(parent, record.id)));
  const started = process.hrtime.bigint();
  if (targets.some(({ state }) => state.running)) await new Promise((resolve) => setTimeout(resolve, sampleMs));
  const elapsedNs = Number(process.hrtime.bigint() - started);
  return Promise.all(
    targets.map(async ({ record, state, ref }, index) => {
      const running = state.running;
      const now = running
        ? await readCgroupStats(parent, record.id)
        : { cpuUsageNs: undefined, memoryBytes: undefined };
      const before = first[index]?.cpuUsageNs;
      const cpu =
        now.cpuUsageNs !== undefined && before !== undefined && elapsedNs > 0
          ? ((now.cpuUsageNs - before) / elapsedNs) * 100
          : 0;
      const memory = now.memoryBytes ?? 0;
      const limit = record.spec.memory !== undefined && record.spec.memory > 0 ? record.spec.memory : os.totalmem();
      const net = running && state.pid > 0 ? await netIo(state.pid) : undefined;
      const block = running ? await blockIo(engine.paths, record.id) : undefined;
      const pids = running ? ((await pidsCurrent(engine.paths, record.id)) ?? 0) : 0;
      if (running && !measured) {
        return {
          BlockIO: '--',
          CPUPerc: '--',
          Container: ref,
          ID: shortId(record.id),
          MemPerc: '--',
          MemUsage: '-- / --',
          Name: record.name,
          NetIO: `${humanSize(net?.rx ?? 0)} / ${humanSize(net?.tx ?? 0)}`,
          PIDs: String(pids),
        };
      }
      return {
        BlockIO: `${humanSize(block?.read ?? 0)} / ${humanSize(block?.write ?? 0)}`,
        CPUPerc: `${Math.max(0, cpu).toFixed(2)}%`,
        Container: ref,
        ID: shortId(record.id),
        MemPerc: `${running ? ((memory / limit) * 100).toFixed(2) : '0.00'}%`,
        MemUsage: `${bytesSize(memory)} / ${bytesSize(running ? limit : 0)}`,
        Name: record.name,
        NetIO: `${humanSize(net?.rx ?? 0)} / ${humanSize(net?.tx ?? 0)}`,
        PIDs: String(pids),
      };
    }),
  );
}

export function renderStats(rows: readonly StatsRow[], format: string): string {
  if (format === 'json') return rows.map((row) => `${JSON.stringify(row)}\n`).join('');
  return renderTable(
    ['CONTAINER ID', 'NAME', 'CPU %', 'MEM USAGE / LIMIT', 'MEM %', 'NET I/O', 'BLOCK I/O', 'PIDS'],
    rows.map((row) => [row.ID, row.Name, row.CPUPerc, row.MemUsage, row.MemPerc, row.NetIO, row.BlockIO, row.PIDs]),
  );
}

function registerStats(group: Command): void {
  group
    .command('stats')
    .description('display a live stream of container resource usage statistics')
    .argument('[container...]')
    .option('-a, --all', 'show all containers (default shows just running)')
    .option('--no-stream', 'disable streaming stats and only pull the first result')
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .action(async (refs: string[], flags: { all?: boolean; stream: boolean; format: string }) => {
      const engine = await openEngine();
      const targets = async () => {
        if (refs.length > 0) {
          const result = [];
          for (const record of await records(engine, refs)) {
            result.push({ record, state: await engine.containers.state(record), ref: record.name });
          }
          return result;
        }
        return (await engine.containers.listRecords())
          .filter(({ state }) => flags.all === true || state.running)
          .sort((a, b) => compareText(b.record.created, a.record.created))
          .map(({ record, state }) => ({ record, state, ref: shortId(record.id) }));
      };
      const warning = statsWarning();
      if (warning !== undefined) process.stderr.write(`WARNING: ${warning}\n`);
      if (!flags.stream) {
        process.stdout.write(renderStats(await statsRows(engine, await targets(), 1000), flags.format));
        return;
      }
      for (;;) {
        const rows = await statsRows(engine, await targets(), 1000);
        if (process.stdout.isTTY === true && flags.format !== 'json') process.stdout.write('\x1b[2J\x1b[H');
        process.stdout.write(renderStats(rows, flags.format));
      }
    });
}

// ---- cp -------------------------------------------------------------------------------------------------------

/** docker's splitCpArg: `CONTAINER:PATH`, unless the argument is a local path (absolute or starting with `.`). */
export function splitCpArg(arg: string): { container?: string; path: string } {
  if (arg.startsWith('/') || arg.startsWith('.')) return { path: arg };
  const index = arg.indexOf(':');
  if (index <= 0) return { path: arg };
  return { container: arg.slice(0, index), path: arg.slice(index + 1) };
}

function registerCp(group: Command): void {
  group
    .command('cp')
    .description(
      'copy files/folders between a container and the local filesystem ("-" for a tar stream on stdin/stdout)',
    )
    .usage(
      '[options] CONTAINER:SRC_PATH DEST_PATH|-\n       tsfig container cp [options] SRC_PATH|- CONTAINER:DEST_PATH',
    )
    .argument('<source>')
    .argument('<destination>')
    .option('-a, --archive', 'archive mode (copy all uid/gid information)')
    .option('-L, --follow-link', 'always follow symbol link in SRC_PATH')
    .option('-q, --quiet', 'suppress progress output during copy')
    .action(
      async (
        sourceArg: string,
        destArg: string,
        flags: { archive?: boolean; followLink?: boolean; quiet?: boolean },
      ) => {
        const source = splitCpArg(sourceArg);
        const dest = splitCpArg(destArg);
        if (source.container !== undefined && dest.container !== undefined) {
          throw new TsfigError('usage', 'copying between containers is not supported');
        }
        if (source.container === undefined && dest.container === undefined) {
          throw new TsfigError('usage', 'must specify at least one container source', {
            hint: 'tsfig container cp CONTAINER:SRC_PATH DEST_PATH, or SRC_PATH CONTAINER:DEST_PATH',
          });
        }
        if (source.path === '') throw new TsfigError('usage', 'source can not be empty');
        if (dest.path === '') throw new TsfigError('usage', 'destination can not be empty');
        const options = {
          archive: flags.archive === true,
          followLink: flags.followLink === true,
          onWarning: (message: string) => process.stderr.write(`warning: ${message}\n`),
        };
        const engine = await openEngine();
        if (source.container !== undefined) {
          if (dest.path === '-' && process.stdout.isTTY === true) {
            throw new TsfigError('usage', 'refusing to write a tar stream to a terminal', {
              hint: 'redirect the output (> FILE, | tar x)',
            });
          }
          const bytes = await copyOne(engine, source.container, 'from', source.path, dest.path, {
            ...options,
            out: process.stdout,
          });
          if (bytes === undefined) {
            if (process.stdout.writableNeedDrain) await once(process.stdout, 'drain');
            return;
          }
          if (flags.quiet !== true) process.stderr.write(`Successfully copied ${humanSize(bytes)} to ${dest.path}\n`);
          return;
        }
        if (source.path === '-' && process.stdin.isTTY === true) {
          throw new TsfigError('usage', 'requested a tar stream from stdin, but stdin is a terminal', {
            hint: 'pipe a tar stream in: tar c DIR | tsfig container cp - CONTAINER:DEST',
          });
        }
        const bytes = await copyOne(engine, dest.container ?? '', 'to', dest.path, source.path, {
          ...options,
          input: process.stdin,
        });
        if (bytes !== undefined && flags.quiet !== true) {
          process.stderr.write(`Successfully copied ${humanSize(bytes)} to ${destArg}\n`);
        }
      },
    );
}

/** Adds restart, pause, unpause, top, prune, stats and cp to the `container` group. */
export function registerContainerVerbs(group: Command): void {
  registerRestart(group);
  registerPause(group);
  registerTop(group);
  registerPrune(group);
  registerStats(group);
  registerCp(group);
}
