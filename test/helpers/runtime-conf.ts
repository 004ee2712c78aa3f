import { DEFAULT_CAPABILITIES } from '../../engine/containers/capabilities.js';
/**
 * Test helpers that drive native/build/tsfig-runtime directly: lay out a container dir with a hand-written
 * runtime.conf (native/PROTOCOL.md), start it, talk to its ctl socket, wait for its status, and tear everything down
 * (monitor, processes, cgroup dirs, temp dirs) even when a test fails half-way.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, rmdir, symlink, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';
import { makeBusyboxLower } from './rootfs.js';

export const RUNTIME = fileURLToPath(new URL('../../native/build/tsfig-runtime', import.meta.url));
export const CGROUP_V1_CONTROLLERS = ['memory', 'pids', 'cpu', 'cpuacct', 'cpuset', 'devices', 'freezer'];

/** Docker's default capability set (moby caps/defaults.go): CapEff 00000000a80425fb. */
export const DOCKER_CAPS: readonly string[] = DEFAULT_CAPABILITIES;

export type ConfValue = string | number | boolean;
export type ConfLine = readonly [key: string, value: ConfValue];

function escapeValue(value: ConfValue): string {
  const text = typeof value === 'boolean' ? (value ? '1' : '0') : String(value);
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\t/g, '\\t');
}

/** Renders runtime.conf text: `version 1` then one `key value` line per entry, in order. */
export function renderConf(lines: readonly ConfLine[]): string {
  return ['version 1', ...lines.map(([key, value]) => `${key} ${escapeValue(value)}`)].join('\n') + '\n';
}

export interface TestContainer {
  /** Container dir holding runtime.conf, the log and status.json. */
  dir: string;
  base: string;
  rootfs: string;
  upper: string;
  work: string;
  runDir: string;
  log: string;
  status: string;
  /** cgroup key relative to each hierarchy, `tsf-test<pid>x<random>/<id>`. */
  cgroup: string;
  id: string;
}

export interface ContainerSpec {
  /** argv of the container's command. */
  args: readonly string[];
  /** Extra runtime.conf lines (after the defaults, which they cannot repeat). */
  extra?: readonly ConfLine[];
  /** Replace the default capability set / seccomp / netns lines. */
  caps?: readonly string[];
  netns?: string;
  env?: readonly string[];
  /** Lines placed instead of every default line for this key. */
  override?: Record<string, ConfValue>;
  /**
   * Extra empty image layers stacked above the busybox one, laid out like the store (`layers/<chainid>/diff` under the
   * container's temp dir); the topmost holds `/layer-marker`. Enough of them push the overlay options over a page.
   */
  topLayers?: number;
}

/**
 * What this test process makes: temp dirs `tsfrt-<pid>-...` and cgroups `tsf-test<pid>x...`, so that the leak checks
 * of one test file never see what another file, running at the same time, has running.
 */
export const OWN_TMP = `tsfrt-${process.pid}-`;
export const OWN_CGROUPS = `tsf-test${process.pid}x`;

/** Creates temp dirs for one container over the given (read-only shared) lower dir and writes runtime.conf. */
export async function makeContainer(lower: string, spec: ContainerSpec): Promise<TestContainer> {
  const base = await mkdtemp(path.join(tmpdir(), OWN_TMP));
  const id = randomBytes(32).toString('hex');
  const tc: TestContainer = {
    base,
    id,
    dir: path.join(base, 'c'),
    rootfs: path.join(base, 'rootfs'),
    upper: path.join(base, 'upper'),
    work: path.join(base, 'work'),
    runDir: path.join(base, 'run'),
    log: path.join(base, 'c', 'log.json'),
    status: path.join(base, 'c', 'status.json'),
    cgroup: `${OWN_CGROUPS}${randomBytes(4).toString('hex')}/${id.slice(0, 12)}`,
  };
  for (const d of [tc.dir, tc.rootfs, tc.upper, tc.work]) await mkdir(d, { recursive: true });
  const defaults: Record<string, ConfValue> = {
    id,
    name: `test-${id.slice(0, 8)}`,
    rootfs: tc.rootfs,
    upper: tc.upper,
    work: tc.work,
    hostname: 'tsftest',
    netns: spec.netns ?? 'new',
    seccomp: 'default',
    cgroup: tc.cgroup,
    log: tc.log,
    run_dir: tc.runDir,
    status: tc.status,
    ...spec.override,
  };
  const lines: ConfLine[] = [];
  if (spec.topLayers !== undefined) {
    for (let i = 0; i < spec.topLayers; i++) {
      const diff = path.join(base, 'layers', randomBytes(32).toString('hex'), 'diff');
      await mkdir(diff, { recursive: true });
      if (i === 0) await writeFile(path.join(diff, 'layer-marker'), 'top\n');
      lines.push(['lower', diff]);
    }
    const bottom = path.join(base, 'layers', 'busybox');
    await symlink(lower, bottom);
    lines.push(['lower', bottom]);
  } else {
    lines.push(['lower', lower]);
  }
  for (const [key, value] of Object.entries(defaults)) lines.push([key, value]);
  for (const arg of spec.args) lines.push(['arg', arg]);
  for (const env of spec.env ?? ['PATH=/bin:/usr/bin:/sbin']) lines.push(['env', env]);
  for (const cap of spec.caps ?? DOCKER_CAPS) lines.push(['cap', cap]);
  lines.push(...(spec.extra ?? []));
  await writeConf(tc, lines);
  return tc;
}

export async function writeConf(tc: TestContainer, lines: readonly ConfLine[]): Promise<void> {
  await writeFile(path.join(tc.dir, 'runtime.conf'), renderConf(lines));
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Lines written on the sync fd (fd 3), parsed. */
  messages: Record<string, unknown>[];
}

/** Runs tsfig-runtime with `_TSFIG_SYNC_FD=3` and collects what it reports. */
export function runRuntime(args: readonly string[], input?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(RUNTIME, args, {
      env: { ...process.env, _TSFIG_SYNC_FD: '3' },
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const sync: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    const fd3 = child.stdio[3] as NodeJS.ReadableStream;
    fd3.on('data', (b: Buffer) => sync.push(b));
    child.on('error', reject);
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input);
    child.on('close', (code) => {
      const messages = Buffer.concat(sync)
        .toString('utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({
        code,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        messages,
      });
    });
  });
}

export function start(tc: TestContainer): Promise<RunResult> {
  return runRuntime(['start', tc.dir]);
}

export function exec(tc: TestContainer, options: readonly string[], args: readonly string[]): Promise<RunResult> {
  return runRuntime(['exec', tc.dir, ...options, '--', ...args]);
}

/** Sends one command line on `<run_dir>/<socket>` and returns the whole answer. */
export function ctl(tc: TestContainer, line: string, socket = 'ctl'): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(path.join(tc.runDir, socket));
    const chunks: Buffer[] = [];
    s.on('connect', () => {
      s.end(line);
    });
    s.on('data', (b: Buffer) => chunks.push(b));
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

export interface Status {
  v: number;
  state: 'running' | 'exited';
  pid: number;
  monitor: number;
  monitorStart: number;
  exitCode?: number;
  signal?: number;
  oomKilled?: boolean;
  startedAt: string;
  finishedAt?: string;
  bootId: string;
}

export async function readStatus(tc: TestContainer): Promise<Status | undefined> {
  try {
    return JSON.parse(await readFile(tc.status, 'utf8')) as Status;
  } catch {
    return undefined;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until status.json says exited and the monitor is gone. */
export async function waitExited(tc: TestContainer, timeoutMs = 15000): Promise<Status> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const st = await readStatus(tc);
    if (st?.state === 'exited' && !processAlive(st.monitor, st.monitorStart)) return st;
    if (Date.now() > deadline) throw new Error(`container did not exit: ${JSON.stringify(st)}`);
    await sleep(25);
  }
}

function startTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(rest[19]);
  } catch {
    return undefined;
  }
}

/** True if pid is alive and still the process that started at `start` (field 22 of /proc/pid/stat). */
export function processAlive(pid: number, start: number): boolean {
  const st = startTime(pid);
  if (st === undefined || st !== start) return false;
  try {
    const state = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^State:\s+(\S)/m)?.[1];
    return state !== 'Z';
  } catch {
    return false;
  }
}

/** Log entries of the container (json-file lines). */
export async function readLog(tc: TestContainer): Promise<{ log: string; stream: string; time: string }[]> {
  if (!existsSync(tc.log)) return [];
  return (await readFile(tc.log, 'utf8'))
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { log: string; stream: string; time: string });
}

export async function logText(tc: TestContainer, stream?: string): Promise<string> {
  return (await readLog(tc))
    .filter((e) => stream === undefined || e.stream === stream)
    .map((e) => e.log)
    .join('');
}

/** Runs a container to completion and returns its status and stdout+stderr text. */
export async function runToExit(tc: TestContainer): Promise<{ status: Status; output: string; start: RunResult }> {
  const result = await start(tc);
  if (result.code !== 0) throw new Error(`start failed: ${JSON.stringify(result.messages)} ${result.stderr}`);
  const status = await waitExited(tc);
  return { status, output: await logText(tc), start: result };
}

export function cgroupDirs(tc: TestContainer): string[] {
  return CGROUP_V1_CONTROLLERS.map((c) => path.join('/sys/fs/cgroup', c, tc.cgroup));
}

/** Tears a test container down whatever state it is in; safe to call twice. */
export async function destroy(tc: TestContainer): Promise<void> {
  const st = await readStatus(tc);
  if (st !== undefined && processAlive(st.monitor, st.monitorStart)) {
    await ctl(tc, 'stop 0\n').catch(() => '');
    await waitExited(tc, 5000).catch(() => undefined);
    if (processAlive(st.monitor, st.monitorStart)) process.kill(st.monitor, 'SIGKILL');
  }
  for (const dir of cgroupDirs(tc)) {
    for (let i = 0; i < 100 && existsSync(dir); i++) {
      const procs = await readFile(path.join(dir, 'cgroup.procs'), 'utf8').catch(() => '');
      for (const pid of procs.split('\n').filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
      await rmdir(dir).catch(() => undefined);
      if (existsSync(dir)) await sleep(20);
    }
    await rmdir(path.dirname(dir)).catch(() => undefined);
  }
  await rm(tc.base, { recursive: true, force: true });
}

/** Names of leftover cgroup dirs under any v1 hierarchy whose name starts with prefix. */
export async function leftoverCgroups(prefix: string): Promise<string[]> {
  const found: string[] = [];
  for (const c of CGROUP_V1_CONTROLLERS) {
    const names = await readdir(path.join('/sys/fs/cgroup', c)).catch(() => [] as string[]);
    for (const n of names) if (n.startsWith(prefix)) found.push(`${c}/${n}`);
  }
  return found;
}

/**
 * Registers hooks of the current suite: before its tests, a busybox lower dir for its containers (makeBusyboxLower);
 * after them, that dir goes and no cgroup of this process's tests may be left behind. Read `.lower` inside the tests.
 */
export function suiteBusyboxLower(prefix: string): { readonly lower: string } {
  const rootfs = { base: '', lower: '' };
  before(async () => {
    Object.assign(rootfs, await makeBusyboxLower(prefix));
  });
  after(async () => {
    await rm(rootfs.base, { recursive: true, force: true });
    assert.deepEqual(await leftoverCgroups(OWN_CGROUPS), [], 'cgroups left behind');
  });
  return rootfs;
}

/** Reads a hard limit of this process from /proc/self/limits ("Max open files" ...). */
export async function hardLimit(name: string): Promise<number> {
  const text = await readFile('/proc/self/limits', 'utf8');
  const line = text.split('\n').find((l) => l.startsWith(name));
  const hard = line?.slice(26).trim().split(/\s+/)[1];
  if (hard === undefined || hard === 'unlimited') throw new Error(`no finite hard limit for ${name}`);
  return Number(hard);
}
