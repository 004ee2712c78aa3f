/**
 * Engine core benchmark (issue 2): create+start to exit of `true` in the busybox image, tsfig beside `crun run` and
 * `runc run` on the same rootfs, interleaved round-robin in one run, plus the monitor's memory per container.
 *
 *   sudo node --import tsx bench/engine-run.ts [--runs N] [--warmup N] [--monitors K] [--profile-runs N] [--no-write]
 *
 * Everything lives in one temp dir (bundle, engine root, run root, a copy of the native helper) that is removed at the
 * end, on failure and on Ctrl-C, together with every crun/runc/tsfig container it made. No network use. Writes the
 * section "Engine core: container run" of BENCHMARKS.md and the raw samples to bench/results/ (unless --no-write).
 * A part that cannot run (the native runtime not finished, dist/ not built) is reported as "unavailable: <reason>";
 * no figure is ever filled in by hand.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  readFileSync,
  readdirSync,
  rmdirSync,
  statSync,
  watch,
  writeFileSync,
  mkdirSync,
  promises as fs,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Engine } from '../engine/index.js';
import { dirtyPaths, f1, f2, headCommit, loadavg, stats, type Stats } from './harness.js';
import { REPO, updateSection } from './report.js';

const SECTION = 'Engine core: container run';
const BUSYBOX_TAR = '/var/cache/tsfig/busybox.tar';
const IMAGE = 'tsfig/busybox:latest';
/** How long the monitors run before their memory is read (the monitor trims its heap when idle). */
const SETTLE_MS = 1000;

// ---- options ---------------------------------------------------------------------------------------------------

interface Options {
  runs: number;
  warmup: number;
  monitors: number;
  profileRuns: number;
  write: boolean;
}

function parseOptions(argv: readonly string[]): Options {
  const options: Options = { runs: 50, warmup: 5, monitors: 10, profileRuns: 5, write: true };
  const int = (flag: string, value: string | undefined): number => {
    const n = Number(value);
    if (value === undefined || !Number.isInteger(n) || n < 0) throw new Error(`${flag} needs a whole number`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--runs') options.runs = Math.max(1, int(arg, argv[++i]));
    else if (arg === '--warmup') options.warmup = int(arg, argv[++i]);
    else if (arg === '--monitors') options.monitors = int(arg, argv[++i]);
    else if (arg === '--profile-runs') options.profileRuns = int(arg, argv[++i]);
    else if (arg === '--no-write') options.write = false;
    else if (arg === '--help' || arg === '-h') {
      console.log(
        'usage: node --import tsx bench/engine-run.ts [--runs N] [--warmup N] [--monitors K] [--profile-runs N] [--no-write]',
      );
      process.exit(0);
    } else throw new Error(`unknown argument ${arg}`);
  }
  return options;
}

// ---- clean-up --------------------------------------------------------------------------------------------------

const cleanups: { label: string; fn: () => Promise<void> | void }[] = [];
let cleaning: Promise<void> | undefined;

function onCleanup(label: string, fn: () => Promise<void> | void): void {
  cleanups.push({ label, fn });
}

/** Children of timedSpawn still running (a tsc build, a runtime mid-start): killed first on a signal. */
const children = new Set<ChildProcess>();

async function killChildren(): Promise<void> {
  for (const child of children) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 2000))]);
  }
}

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await killChildren();
    for (let item = cleanups.pop(); item !== undefined; item = cleanups.pop()) {
      try {
        await item.fn();
      } catch (error) {
        console.error(`clean-up (${item.label}): ${message(error)}`);
      }
    }
  })();
  return cleaning;
}

/**
 * On a signal, main() stops at its next step (it checks `stopping`), so nothing it is creating escapes the clean-up;
 * the children are killed at once so that step comes quickly.
 */
let stopping = false;

class Stopped extends Error {}

function checkStopping(): void {
  if (stopping) throw new Stopped('stopped by a signal');
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    console.error(`\n${signal}: cleaning up`);
    const settle = new Promise((resolve) => setTimeout(resolve, 15_000));
    void killChildren()
      .then(() => Promise.race([mainDone, settle]))
      .then(() => cleanup())
      .finally(() => process.exit(130));
  });
}

// ---- helpers ---------------------------------------------------------------------------------------------------

function message(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n')[0]?.trim() ?? '';
}

const now = (): number => Number(process.hrtime.bigint()) / 1e6;

function firstLine(cmd: string, args: readonly string[]): string {
  try {
    return (
      execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
        .split('\n')[0]
        ?.trim() ?? ''
    );
  } catch (error) {
    return `unavailable: ${message(error)}`;
  }
}

interface Spawned {
  /** spawn() to the child's exit, ms. */
  ms: number;
  /** spawn() to the first line on fd 3, ms (when fd3 was asked for). */
  fd3Ms?: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  fd3: string;
}

/** Runs a command and times it from spawn() to its exit (the 'exit' event, not the close of its pipes). */
function timedSpawn(
  cmd: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; fd3?: boolean; cwd?: string } = {},
): Promise<Spawned> {
  return new Promise((resolve, reject) => {
    const stdio: ('ignore' | 'pipe')[] = ['ignore', 'ignore', 'pipe'];
    if (options.fd3 === true) stdio.push('pipe');
    const start = now();
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, { stdio, env: options.env ?? process.env, cwd: options.cwd });
    } catch (error) {
      reject(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    children.add(child);
    let stderr = '';
    let fd3 = '';
    let fd3Ms: number | undefined;
    let exitMs = 0;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const sync = child.stdio[3] as NodeJS.ReadableStream | null | undefined;
    sync?.setEncoding('utf8');
    sync?.on('data', (chunk: string) => {
      if (fd3Ms === undefined && (fd3 + chunk).includes('\n')) fd3Ms = now() - start;
      fd3 += chunk;
    });
    child.on('error', (error) => {
      children.delete(child);
      reject(error);
    });
    child.on('exit', (code, signal) => {
      children.delete(child);
      exitMs = now() - start;
      exit = { code, signal };
    });
    child.on('close', () => {
      if (exit === undefined) return;
      const result: Spawned = { ms: exitMs, code: exit.code, signal: exit.signal, stderr: stderr.trim(), fd3 };
      if (fd3Ms !== undefined) result.fd3Ms = fd3Ms;
      resolve(result);
    });
  });
}

function check(result: Spawned, what: string): Spawned {
  if (result.code !== 0) {
    throw new Error(
      `${what} exited ${result.code ?? result.signal}: ${result.stderr.split('\n').slice(-3).join(' | ')}`,
    );
  }
  return result;
}

function run(cmd: string, args: readonly string[], cwd?: string): string {
  return execFileSync(cmd, args, { encoding: 'utf8', cwd, stdio: ['ignore', 'pipe', 'pipe'] });
}

// ---- statistics ------------------------------------------------------------------------------------------------

// ---- series ----------------------------------------------------------------------------------------------------

interface Sample {
  ms: number;
  /** Sub-timings of the same run (ms). */
  parts?: Record<string, number>;
}

interface Series {
  key: string;
  /** 'ablation' rows go to their own table. */
  group?: 'ablation';
  label: string;
  command: string;
  note?: string;
  unavailable?: string;
  sample(): Promise<Sample>;
  samples: number[];
  parts: Record<string, number[]>;
  failures: string[];
}

function series(key: string, label: string, command: string, sample: () => Promise<Sample>, note?: string): Series {
  const s: Series = { key, label, command, sample, samples: [], parts: {}, failures: [] };
  if (note !== undefined) s.note = note;
  return s;
}

/** Runs every available series once per round, rotating the order each round so drift hits all of them alike. */
async function roundRobin(all: Series[], rounds: number, warmup: number, label: string): Promise<void> {
  const total = rounds + warmup;
  for (let round = 0; round < total; round++) {
    const order = all.map((_, i) => all[(i + round) % all.length] as Series);
    for (const s of order) {
      if (s.unavailable !== undefined) continue;
      checkStopping();
      try {
        const result = await s.sample();
        if (round < warmup) continue;
        s.samples.push(result.ms);
        for (const [part, ms] of Object.entries(result.parts ?? {})) (s.parts[part] ??= []).push(ms);
      } catch (error) {
        s.failures.push(message(error));
        if (s.failures.length >= 3) s.unavailable = `failed 3 times, last: ${message(error)}`;
      }
    }
    if ((round + 1) % 10 === 0 || round + 1 === total) process.stderr.write(`${label}: round ${round + 1}/${total}\n`);
  }
}

// ---- machine and tree facts ------------------------------------------------------------------------------------

function gitCommit(): { commit: string; dirtyPaths: string[] } {
  const head = headCommit();
  const dirty = dirtyPaths();
  return { commit: dirty.length > 0 ? `${head}+dirty` : head, dirtyPaths: dirty };
}

function machine(): Record<string, string | undefined> {
  const cpu = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
  const unified = '/sys/fs/cgroup/unified/cgroup.controllers';
  let cgroups = 'v1';
  try {
    const fsType = run('stat', ['-f', '-c', '%T', '/sys/fs/cgroup']).trim();
    if (fsType === 'cgroup2fs') cgroups = 'v2 (unified)';
    else if (existsSync(unified)) {
      const controllers = readFileSync(unified, 'utf8').trim();
      cgroups = `hybrid: v1 controllers + cgroup2 at /sys/fs/cgroup/unified (controllers: ${controllers || 'none'})`;
    }
  } catch {
    cgroups = 'unknown';
  }
  return {
    nproc: String(os.availableParallelism()),
    cpu,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    kernel: os.release(),
    crun: firstLine('crun', ['--version']),
    runc: firstLine('runc', ['--version']),
    node: process.version,
    cgroups,
    tmpFs: firstLine('stat', ['-f', '-c', '%T', os.tmpdir()]),
    loadBefore: loadavg(),
  };
}

// ---- crun/runc bundle ------------------------------------------------------------------------------------------

interface OciSetup {
  bundle: string;
  rootfs: string;
  /** Prefix that runs crun in a mount namespace without the hybrid cgroup2 mount, when needed. */
  crunPrefix: string[];
  crunNote?: string;
  /** Whether the bundle's config has a seccomp filter. */
  seccomp: boolean;
}

/** crun 1.8 refuses hybrid cgroups whose cgroup2 part has controllers; it runs fine when that mount is not visible. */
async function crunWrapper(tmp: string): Promise<{ prefix: string[]; note?: string }> {
  const unified = '/sys/fs/cgroup/unified/cgroup.controllers';
  if (!existsSync(unified) || readFileSync(unified, 'utf8').trim() === '') return { prefix: [] };
  const holder = spawn(
    'unshare',
    [
      '--mount',
      '--propagation',
      'private',
      'sh',
      '-c',
      'umount -l /sys/fs/cgroup/unified && echo ready && exec sleep 86400',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], cwd: tmp },
  );
  onCleanup('crun namespace holder', () => {
    if (holder.exitCode === null && holder.signalCode === null) holder.kill('SIGKILL');
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    holder.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      if (out.includes('ready')) resolve();
    });
    holder.on('error', reject);
    holder.on('exit', (code) => reject(new Error(`namespace holder exited ${code}`)));
  });
  return {
    prefix: ['nsenter', `--mount=/proc/${holder.pid}/ns/mnt`, '--'],
    note:
      'crun 1.8 refuses this host\'s hybrid cgroups ("cgroups in hybrid mode not supported, drop all controllers from ' +
      'cgroupv2": /sys/fs/cgroup/unified has the hugetlb controller), so it runs through `nsenter --mount` into a ' +
      'mount namespace where /sys/fs/cgroup/unified is unmounted; crun then uses the v1 hierarchies like runc and ' +
      'tsfig. The wrapper\'s own cost is the "nsenter --mount /bin/true" row.',
  };
}

async function prepareBundle(tmp: string): Promise<OciSetup> {
  const bundle = path.join(tmp, 'bundle');
  const rootfs = path.join(bundle, 'rootfs');
  mkdirSync(rootfs, { recursive: true });
  run('tar', ['--numeric-owner', '-C', rootfs, '-xf', BUSYBOX_TAR]);
  run('crun', ['spec'], bundle);
  const configFile = path.join(bundle, 'config.json');
  const config = JSON.parse(readFileSync(configFile, 'utf8')) as {
    root: { path: string; readonly?: boolean };
    process: { args: string[]; terminal: boolean };
    linux?: { seccomp?: unknown };
  };
  config.root = { path: rootfs, readonly: false };
  config.process.args = ['/bin/true'];
  config.process.terminal = false;
  writeFileSync(configFile, `${JSON.stringify(config, null, 2)}\n`);
  const wrapper = await crunWrapper(tmp);
  const setup: OciSetup = { bundle, rootfs, crunPrefix: wrapper.prefix, seccomp: config.linux?.seccomp !== undefined };
  if (wrapper.note !== undefined) setup.crunNote = wrapper.note;
  return setup;
}

function ociSeries(oci: OciSetup): Series[] {
  let counter = 0;
  const live = new Map<string, string[]>();
  onCleanup('crun/runc containers', async () => {
    for (const [id, prefix] of live) await timedSpawn(prefix[0] as string, [...prefix.slice(1), 'delete', '-f', id]);
  });
  const runtime = (name: 'crun' | 'runc', prefix: readonly string[]) => async (): Promise<Sample> => {
    const id = `tsfb-${process.pid}-${name}-${counter++}`;
    const argv = [...prefix, name];
    live.set(id, argv);
    try {
      const result = check(
        await timedSpawn(argv[0] as string, [...argv.slice(1), 'run', '--bundle', oci.bundle, id]),
        `${name} run`,
      );
      return { ms: result.ms };
    } finally {
      await timedSpawn(argv[0] as string, [...argv.slice(1), 'delete', '-f', id]);
      live.delete(id);
    }
  };
  const list = [
    series(
      'crun',
      '`crun run`',
      `${[...oci.crunPrefix, 'crun'].join(' ')} run --bundle B ID`,
      runtime('crun', oci.crunPrefix),
    ),
    series('runc', '`runc run`', 'runc run --bundle B ID', runtime('runc', [])),
  ];
  if (oci.crunPrefix.length > 0) {
    list.push(
      series(
        'nsenter',
        '`nsenter --mount` /bin/true (crun wrapper cost)',
        `${oci.crunPrefix.join(' ')} /bin/true`,
        async () => {
          const argv = [...oci.crunPrefix, '/bin/true'];
          return { ms: check(await timedSpawn(argv[0] as string, argv.slice(1)), 'nsenter').ms };
        },
      ),
    );
  }
  list.push(
    series(
      'floor',
      '`unshare` + `chroot` /bin/true (floor)',
      'unshare --mount --uts --ipc --net --pid --fork chroot ROOTFS /bin/true',
      async () => ({
        ms: check(
          await timedSpawn('unshare', [
            '--mount',
            '--uts',
            '--ipc',
            '--net',
            '--pid',
            '--fork',
            'chroot',
            oci.rootfs,
            '/bin/true',
          ]),
          'unshare',
        ).ms,
      }),
    ),
    series('spawn', 'spawn /bin/true (harness floor)', '/bin/true', async () => ({
      ms: check(await timedSpawn('/bin/true', []), '/bin/true').ms,
    })),
  );
  return list;
}

// ---- tsfig -----------------------------------------------------------------------------------------------------

interface TsfigSetup {
  engine?: Engine;
  env: NodeJS.ProcessEnv;
  runtimeSha: string;
  unavailable?: string;
  cliUnavailable?: string;
  distNote?: string;
  /** bin/tsfig.js the CLI rows run. */
  cliBin: string;
}

function sha256File(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex').slice(0, 16);
}

/** Removes every container of the bench engine, then anything its monitors left (cgroups, processes). */
async function removeAllContainers(engine: Engine, cgroupParent: string): Promise<void> {
  const monitors: number[] = [];
  for (const summary of await engine.containers.list({ all: true })) {
    try {
      const status = await engine.containers.status(await engine.containers.get(summary.id));
      if (status?.state === 'running') monitors.push(status.monitor, status.pid);
    } catch {
      // listed but unreadable: removal below still tries
    }
    await engine.containers.remove(summary.id, { force: true }).catch((error: unknown) => {
      console.error(`clean-up: cannot remove container ${summary.id.slice(0, 12)}: ${message(error)}`);
    });
  }
  for (const pid of monitors) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone, as it should be
    }
  }
  for (const hierarchy of existsSync('/sys/fs/cgroup') ? readdirSync('/sys/fs/cgroup') : []) {
    const dir = path.join('/sys/fs/cgroup', hierarchy, cgroupParent);
    if (!existsSync(dir)) continue;
    for (const child of readdirSync(dir, { withFileTypes: true })) {
      if (child.isDirectory()) rmdirSync(path.join(dir, child.name));
    }
    rmdirSync(dir);
  }
}

/**
 * The runtime caches compiled seccomp programs host-wide in /var/cache/tsfig/seccomp, keyed among other things by the
 * identity (dev:ino:size:mtime) of its own binary. Entries keyed by the benchmark's private copy were made by this
 * run and by nothing else: they are removed with the rest. Must run while the copy still exists.
 */
async function removeSeccompCacheEntries(binary: string): Promise<void> {
  const dir = '/var/cache/tsfig/seccomp';
  if (!existsSync(dir) || !existsSync(binary)) return;
  const st = await fs.stat(binary, { bigint: true });
  const nsec = (st.mtimeNs % 1_000_000_000n).toString().padStart(9, '0');
  const identity = `runtime /proc/self/exe ${st.dev}:${st.ino}:${st.size}:${st.mtimeNs / 1_000_000_000n}.${nsec}\n`;
  for (const name of await fs.readdir(dir)) {
    if (!name.endsWith('.bpf')) continue;
    const file = path.join(dir, name);
    const head = (await fs.readFile(file).catch(() => Buffer.alloc(0))).subarray(0, 4096).toString('latin1');
    if (head.includes(identity)) await fs.rm(file, { force: true });
  }
}

/** Builds the current src/ and engine/ into <tmp>/cli (package.json, node_modules link, bin/tsfig.js beside dist/). */
async function privateCliBuild(tmp: string): Promise<string | { error: string }> {
  const dir = path.join(tmp, 'cli');
  try {
    await fs.mkdir(path.join(dir, 'bin'), { recursive: true });
    await fs.copyFile(path.join(REPO, 'package.json'), path.join(dir, 'package.json'));
    await fs.copyFile(path.join(REPO, 'bin', 'tsfig.js'), path.join(dir, 'bin', 'tsfig.js'));
    await fs.symlink(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
    const tsc = path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
    const result = await timedSpawn(process.execPath, [
      tsc,
      '-p',
      path.join(REPO, 'tsconfig.build.json'),
      '--outDir',
      path.join(dir, 'dist'),
    ]);
    const entry = path.join(dir, 'dist', 'src', 'cli', 'bin.js');
    // tsc emits even with type errors in files being edited by others; only a missing entry point is fatal.
    if (!existsSync(entry)) return { error: `tsc exited ${result.code}: ${result.stderr.slice(0, 200)}` };
    return path.join(dir, 'bin', 'tsfig.js');
  } catch (error) {
    return { error: message(error) };
  }
}

async function prepareTsfig(tmp: string): Promise<TsfigSetup> {
  const built = path.join(REPO, 'native', 'build', 'tsfig-runtime');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TSFIG_ROOT: path.join(tmp, 'root'),
    TSFIG_RUN_ROOT: path.join(tmp, 'run'),
  };
  const setup: TsfigSetup = { env, runtimeSha: 'missing', cliBin: path.join(REPO, 'bin', 'tsfig.js') };
  if (!existsSync(built)) {
    setup.unavailable = 'native/build/tsfig-runtime is missing (make -C native)';
    return setup;
  }
  // A private copy: the tree's binary may be rebuilt by someone else while the benchmark runs.
  const copy = path.join(tmp, 'tsfig-runtime');
  await fs.copyFile(built, copy);
  await fs.chmod(copy, 0o755);
  setup.runtimeSha = sha256File(copy);
  onCleanup('seccomp cache entries of the private runtime copy', () => removeSeccompCacheEntries(copy));
  env.TSFIG_RUNTIME = copy;
  process.env.TSFIG_RUNTIME = copy;
  process.env.TSFIG_ROOT = env.TSFIG_ROOT;
  process.env.TSFIG_RUN_ROOT = env.TSFIG_RUN_ROOT;
  let engine: Engine;
  try {
    const module = await import('../engine/index.js');
    engine = module.createEngine({ env });
    await engine.images.importRootfs({ kind: 'file', path: BUSYBOX_TAR }, { reference: IMAGE });
  } catch (error) {
    setup.unavailable = `engine set-up failed: ${message(error)}`;
    return setup;
  }
  setup.engine = engine;
  await installSyncCounter();
  onCleanup('tsfig containers', () => removeAllContainers(engine, engine.paths.cgroupParent));
  // Probe: one full run; a stub or failing runtime makes the tsfig rows "unavailable", never a crash.
  try {
    const record = await engine.containers.create({ image: IMAGE, cmd: ['/bin/true'] });
    try {
      await engine.containers.start(record.id);
      const code = await engine.containers.wait(record.id, { timeoutMs: 10_000 });
      if (code !== 0) throw new Error(`/bin/true exited ${code}`);
    } finally {
      await engine.containers.remove(record.id, { force: true });
    }
  } catch (error) {
    setup.unavailable = `tsfig-runtime start: ${message(error)}`;
  }
  // The CLI runs from dist/. When dist/ is older than the sources (others keep editing the tree), the CLI rows run
  // a private build of the current sources instead, made in the temp dir (the tree's dist/ is left alone).
  const distEntry = path.join(REPO, 'dist', 'src', 'cli', 'bin.js');
  const newer = (since: number): string[] =>
    ['src', 'engine'].flatMap((dir) =>
      (readdirSync(path.join(REPO, dir), { recursive: true }) as string[])
        .filter((file) => file.endsWith('.ts') && statSync(path.join(REPO, dir, file)).mtimeMs > since)
        .map((file) => `${dir}/${file}`),
    );
  const stale = existsSync(distEntry) ? newer(statSync(distEntry).mtimeMs) : ['(no dist/)'];
  if (stale.length > 0) {
    checkStopping();
    const built = await privateCliBuild(tmp);
    if (typeof built === 'string') {
      setup.cliBin = built;
      setup.distNote =
        `the tree's dist/ was missing or older than ${stale.length} source file(s) (e.g. ${stale.slice(0, 3).join(', ')}), ` +
        'so the CLI rows ran `bin/tsfig.js` over a private `tsc -p tsconfig.build.json` build of the current sources';
    } else if (existsSync(distEntry)) {
      setup.distNote =
        `the CLI rows ran the tree's dist/, older than ${stale.length} source file(s) (e.g. ` +
        `${stale.slice(0, 3).join(', ')}): a private build failed (${built.error})`;
    } else setup.cliUnavailable = `dist/ is not built and a private build failed: ${built.error}`;
  }
  return setup;
}

/** Waits (inotify on the container dir, with a slow poll as a safety net) until status.json says exited. */
function waitExitedStatus(
  dir: string,
  statusFile: string,
  timeoutMs: number,
): { done: Promise<number>; cancel(): void } {
  let settled = false;
  let watcher: ReturnType<typeof watch> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let poll: NodeJS.Timeout | undefined;
  const stop = (): void => {
    settled = true;
    watcher?.close();
    if (timer !== undefined) clearTimeout(timer);
    if (poll !== undefined) clearInterval(poll);
  };
  const done = new Promise<number>((resolve, reject) => {
    const look = (): void => {
      if (settled) return;
      try {
        const status = JSON.parse(readFileSync(statusFile, 'utf8')) as { state?: string; exitCode?: number };
        if (status.state === 'exited') {
          const at = now();
          stop();
          resolve(at);
        }
      } catch {
        // not there yet, or being renamed into place
      }
    };
    watcher = watch(dir, look);
    poll = setInterval(look, 50);
    timer = setTimeout(() => {
      stop();
      reject(new Error(`no exited status in ${statusFile} after ${timeoutMs} ms`));
    }, timeoutMs);
  });
  return { done, cancel: stop };
}

interface NativeContainer {
  dir: string;
  status: string;
  runDir: string;
}

/** A container started once through the engine, so its dir holds the runtime.conf the engine wrote. */
async function nativeContainer(
  engine: Engine,
  name: string,
  extra: { seccomp?: 'default' | 'unconfined'; network?: string } = {},
): Promise<NativeContainer> {
  const record = await engine.containers.create({ image: IMAGE, cmd: ['/bin/true'], name, ...extra });
  await engine.containers.start(record.id);
  await engine.containers.wait(record.id, { timeoutMs: 10_000 });
  const dir = path.join(engine.paths.containers, record.id);
  const conf = readFileSync(path.join(dir, 'runtime.conf'), 'utf8');
  const key = (k: string): string => {
    const value = new RegExp(`^${k} (.*)$`, 'm').exec(conf)?.[1];
    if (value === undefined) throw new Error(`runtime.conf has no ${k}`);
    return value;
  };
  return { dir, status: key('status'), runDir: key('run_dir') };
}

function nativeSample(container: NativeContainer, env: NodeJS.ProcessEnv) {
  return async (): Promise<Sample> => {
    await fs.rm(container.status, { force: true });
    await fs.mkdir(container.runDir, { recursive: true, mode: 0o700 });
    const exited = waitExitedStatus(path.dirname(container.status), container.status, 10_000);
    const start = now();
    let result: Spawned;
    try {
      result = await timedSpawn(env.TSFIG_RUNTIME as string, ['start', container.dir], {
        env: { ...env, _TSFIG_SYNC_FD: '3' },
        fd3: true,
      });
    } catch (error) {
      exited.cancel();
      throw error;
    }
    const line = result.fd3.split('\n').find((l) => l.trim() !== '') ?? '';
    if (!line.includes('"started"')) {
      exited.cancel();
      throw new Error(`tsfig-runtime start: ${line || result.stderr || `exit ${result.code}`}`);
    }
    const end = await exited.done;
    return {
      ms: end - start,
      parts: { started: result.fd3Ms ?? NaN, startExit: result.ms, afterStarted: end - start - (result.fd3Ms ?? NaN) },
    };
  };
}

/** fsync(2)s made through FileHandle.sync (the engine's atomic writes), counted and timed for the whole process. */
const syncCounter = { count: 0, ms: 0 };

async function installSyncCounter(): Promise<void> {
  const probe = await fs.open(os.devNull, 'r');
  const proto = Object.getPrototypeOf(probe) as { sync: (this: unknown) => Promise<void> };
  await probe.close();
  const original = proto.sync;
  proto.sync = async function sync(this: unknown): Promise<void> {
    const start = now();
    try {
      await original.call(this);
    } finally {
      syncCounter.count++;
      syncCounter.ms += now() - start;
    }
  };
  onCleanup('fsync counter', () => {
    proto.sync = original;
  });
}

interface NativeContainers {
  base: NativeContainer;
  unconfined: NativeContainer;
  hostNet: NativeContainer;
}

function tsfigSeries(setup: TsfigSetup, native: NativeContainers | undefined): Series[] {
  const engine = setup.engine;
  const api = series(
    'tsfig-api',
    'tsfig engine API',
    "containers.create({image, cmd:['/bin/true']}) + start + wait (remove untimed)",
    async () => {
      if (engine === undefined) throw new Error('no engine');
      const syncs = { ...syncCounter };
      const t0 = now();
      const record = await engine.containers.create({ image: IMAGE, cmd: ['/bin/true'] });
      const t1 = now();
      try {
        await engine.containers.start(record.id);
        const t2 = now();
        const code = await engine.containers.wait(record.id, { timeoutMs: 10_000 });
        const t3 = now();
        if (code !== 0) throw new Error(`/bin/true exited ${code}`);
        const parts = { create: t1 - t0, start: t2 - t1, wait: t3 - t2 };
        return {
          ms: t3 - t0,
          parts: { ...parts, fsyncMs: syncCounter.ms - syncs.ms, fsyncs: syncCounter.count - syncs.count },
        };
      } finally {
        await engine.containers.remove(record.id, { force: true });
      }
    },
  );
  const nativeRow = series(
    'tsfig-native',
    '`tsfig-runtime start` alone',
    '_TSFIG_SYNC_FD=3 tsfig-runtime start DIR (prepared runtime.conf), to status.json "exited"',
    native !== undefined && engine !== undefined
      ? nativeSample(native.base, setup.env)
      : () => Promise.reject(new Error('no container')),
    'timed from spawn to the monitor\'s rename of status.json to "exited" (seen by inotify)',
  );
  const cli = series(
    'tsfig-cli',
    '`tsfig container run --rm` (CLI, incl. node start-up)',
    'node bin/tsfig.js container run --rm tsfig/busybox true',
    async () => {
      const result = check(
        await timedSpawn(process.execPath, [setup.cliBin, 'container', 'run', '--rm', 'tsfig/busybox', 'true'], {
          env: setup.env,
        }),
        'tsfig container run',
      );
      return { ms: result.ms };
    },
  );
  const version = series('tsfig-version', '`tsfig --version` (CLI floor)', 'node bin/tsfig.js --version', async () => ({
    ms: check(await timedSpawn(process.execPath, [setup.cliBin, '--version'], { env: setup.env }), 'tsfig --version')
      .ms,
  }));
  const nodeFloor = series('node', '`node -e 0` (Node start-up floor)', 'node -e 0', async () => ({
    ms: check(await timedSpawn(process.execPath, ['-e', '0']), 'node -e 0').ms,
  }));
  // Ablations of the native start: the same prepared runtime.conf but without seccomp, or in the host netns.
  const noRuntime = () => Promise.reject(new Error('no container'));
  const unconfined = series(
    'native-unconfined',
    '`tsfig-runtime start`, seccomp unconfined',
    'as above, runtime.conf of a container created with seccomp: unconfined',
    native !== undefined ? nativeSample(native.unconfined, setup.env) : noRuntime,
  );
  const hostNet = series(
    'native-hostnet',
    '`tsfig-runtime start`, network host (no new netns)',
    'as above, runtime.conf of a container created with network: host',
    native !== undefined ? nativeSample(native.hostNet, setup.env) : noRuntime,
  );
  unconfined.group = 'ablation';
  hostNet.group = 'ablation';
  for (const s of [api, nativeRow, cli, unconfined, hostNet]) {
    if (setup.unavailable !== undefined) s.unavailable = setup.unavailable;
  }
  if (setup.cliUnavailable !== undefined) {
    cli.unavailable ??= setup.cliUnavailable;
    version.unavailable = setup.cliUnavailable;
  }
  return [api, nativeRow, cli, version, nodeFloor, unconfined, hostNet];
}

// ---- monitor memory --------------------------------------------------------------------------------------------

interface MonitorMemory {
  pid: number;
  vmRssKiB: number;
  vmHwmKiB: number;
  pssKiB: number;
  privateKiB: number;
  exe: string;
}

function kib(text: string, field: string): number {
  const value = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1];
  return value === undefined ? NaN : Number(value);
}

async function monitorMemory(engine: Engine, count: number): Promise<{ monitors: MonitorMemory[]; error?: string }> {
  const ids: string[] = [];
  const monitors: MonitorMemory[] = [];
  try {
    for (let i = 0; i < count; i++) {
      checkStopping();
      const record = await engine.containers.create({
        image: IMAGE,
        cmd: ['/bin/sleep', '30'],
        name: `bench-rss-${i}`,
      });
      ids.push(record.id);
      await engine.containers.start(record.id);
    }
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    for (const id of ids) {
      const status = await engine.containers.status(await engine.containers.get(id));
      if (status?.state !== 'running')
        throw new Error(`container ${id.slice(0, 12)} is ${status?.state ?? 'not started'}`);
      const pid = status.monitor;
      const procStatus = readFileSync(`/proc/${pid}/status`, 'utf8');
      const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
      monitors.push({
        pid,
        vmRssKiB: kib(procStatus, 'VmRSS'),
        vmHwmKiB: kib(procStatus, 'VmHWM'),
        pssKiB: kib(rollup, 'Pss'),
        privateKiB: kib(rollup, 'Private_Clean') + kib(rollup, 'Private_Dirty'),
        exe: path.basename(await fs.readlink(`/proc/${pid}/exe`)),
      });
    }
    return { monitors };
  } catch (error) {
    return { monitors, error: message(error) };
  } finally {
    for (const id of ids) await engine.containers.remove(id, { force: true }).catch(() => undefined);
  }
}

// ---- profile ---------------------------------------------------------------------------------------------------

/**
 * Phases of one `tsfig-runtime start` from an strace of it (ms), consecutive so they add up to the total. Defined
 * by syscalls only (no knowledge of the helper's internals), so they stay meaningful while native/ changes.
 */
interface Timeline {
  /** execve of tsfig-runtime to the clone() of the container (fork and detach of the monitor, cgroup dirs and
   * limits, seccomp program prepared). */
  setup: number;
  /** That clone() to the container's first mount() (namespaces, gate, cgroup join). */
  cloneToMounts: number;
  /** Time inside write()s of a pid to cgroup.procs or tasks (any process), wherever it falls. */
  cgroupAttach: number;
  /** The longest of those writes. */
  cgroupLongest: number;
  /** First to last mount() of the container (rootfs, /proc, /dev, /sys, binds, pivot_root, masks). */
  mounts: number;
  /** Last mount() to the seccomp load (capabilities, user, and the seccomp build when done in-process). */
  toSeccomp: number;
  /** The SECCOMP_SET_MODE_FILTER syscall. */
  seccompLoad: number;
  /** Seccomp load to execve of the command. */
  toExec: number;
  /** execve of the command to the `started` line on the sync fd (status.json "running" written and fsynced). */
  execToStarted: number;
  /** `started` to the exit of the monitor (the command runs and exits, reap, cgroup removal, final status). */
  startedToMonitorExit: number;
  /** Time inside fsync()s of the monitor (status.json). */
  fsync: number;
  /** execve of tsfig-runtime to the exit of the monitor. */
  total: number;
  /** seccomp() calls other than the load (libseccomp probing: a filter was built during this start). */
  seccompProbes: number;
  /** Instructions in the loaded seccomp program. */
  bpfLen: number;
}

interface Profile {
  tool: string;
  timelines: Timeline[];
  error?: string;
}

/** Parses `strace -f -ttt -T -y` output into the phases above. */
function parseTimeline(text: string): Timeline {
  type Call = { pid: number; ts: number; call: string; args: string; dur: number };
  const calls: Call[] = [];
  const pending = new Map<number, { ts: number; call: string; args: string }>();
  for (const line of text.split('\n')) {
    const m = /^(\d+)\s+(\d+\.\d+) (.*)$/.exec(line);
    if (m === null) continue;
    const pid = Number(m[1]);
    const ts = Number(m[2]) * 1000;
    const rest = m[3] ?? '';
    const resumed = /^<\.\.\. (\w+) resumed>(.*)$/.exec(rest);
    if (resumed !== null) {
      const start = pending.get(pid);
      pending.delete(pid);
      if (start === undefined) continue;
      const dur = Number(/<(\d+\.\d+)>$/.exec(rest)?.[1] ?? '0') * 1000;
      calls.push({ pid, ts: start.ts, call: start.call, args: start.args + (resumed[2] ?? ''), dur });
      continue;
    }
    const call = /^(\w+)\((.*)$/.exec(rest);
    if (call === null) continue;
    if (rest.endsWith('<unfinished ...>')) {
      pending.set(pid, { ts, call: call[1] ?? '', args: call[2] ?? '' });
      continue;
    }
    const dur = Number(/<(\d+\.\d+)>$/.exec(rest)?.[1] ?? '0') * 1000;
    calls.push({ pid, ts, call: call[1] ?? '', args: call[2] ?? '', dur });
  }
  calls.sort((a, b) => a.ts - b.ts);
  const need = (c: Call | undefined, what: string): Call => {
    if (c === undefined) throw new Error(`strace: no ${what}`);
    return c;
  };
  const exec0 = need(
    calls.find((c) => c.call === 'execve'),
    'execve',
  );
  const clone = need(
    calls.find((c) => /^clone3?$/.test(c.call) && c.args.includes('CLONE_NEWNS')),
    'namespace clone',
  );
  const containerPid = Number(/= (\d+)/.exec(clone.args)?.[1] ?? NaN);
  const inContainer = calls.filter((c) => c.pid === containerPid);
  const mounts = inContainer.filter((c) => c.call === 'mount' || c.call === 'pivot_root');
  const firstMount = need(mounts[0], 'mount in the container');
  const lastMount = mounts[mounts.length - 1] ?? firstMount;
  const load = inContainer.find((c) => c.call === 'seccomp' && c.args.includes('len='));
  const execCmd = need(
    inContainer.find((c) => c.call === 'execve'),
    'execve of the command',
  );
  const started = need(
    calls.find((c) => c.call === 'write' && c.args.includes('\\"type\\":\\"started\\"')),
    'started line',
  );
  const monitorPid = calls.find((c) => c.call === 'write' && c.args.includes('status.json'))?.pid;
  const monitorExit = [...calls].reverse().find((c) => c.pid === monitorPid && c.call === 'exit_group');
  const sum = (list: Call[]): number => list.reduce((total, c) => total + c.dur, 0);
  const attach = calls.filter((c) => c.call === 'write' && /\/(cgroup\.procs|tasks)>/.test(c.args));
  const afterMounts = lastMount.ts + lastMount.dur;
  const loadEnd = load !== undefined ? load.ts + load.dur : afterMounts;
  return {
    setup: clone.ts - exec0.ts,
    cloneToMounts: firstMount.ts - clone.ts,
    cgroupAttach: sum(attach),
    cgroupLongest: Math.max(0, ...attach.map((c) => c.dur)),
    mounts: afterMounts - firstMount.ts,
    toSeccomp: (load?.ts ?? afterMounts) - afterMounts,
    seccompLoad: load?.dur ?? 0,
    toExec: execCmd.ts - loadEnd,
    execToStarted: started.ts - execCmd.ts,
    startedToMonitorExit: (monitorExit?.ts ?? started.ts) - started.ts,
    fsync: sum(calls.filter((c) => (c.call === 'fsync' || c.call === 'fdatasync') && c.pid === monitorPid)),
    total: (monitorExit?.ts ?? started.ts) - exec0.ts,
    seccompProbes: calls.filter((c) => c.call === 'seccomp' && c !== load).length,
    bpfLen: Number(/len=(\d+)/.exec(load?.args ?? '')?.[1] ?? 0),
  };
}

/** Straces a few native starts (only the listed syscalls stop the tracee: --seccomp-bpf) and splits them in phases. */
async function profileNative(container: NativeContainer, env: NodeJS.ProcessEnv, runs: number, tmp: string) {
  const profile: Profile = {
    tool: 'strace -f -ttt -T -y --seccomp-bpf -e trace=execve,clone,clone3,write,fsync,fdatasync,mount,pivot_root,seccomp,exit_group',
    timelines: [],
  };
  if (runs === 0) return profile;
  if (!existsSync('/usr/bin/strace')) return { ...profile, error: 'strace is not installed' };
  const out = path.join(tmp, 'strace.txt');
  try {
    for (let i = 0; i < runs; i++) {
      checkStopping();
      await fs.rm(container.status, { force: true });
      await fs.mkdir(container.runDir, { recursive: true, mode: 0o700 });
      const exited = waitExitedStatus(path.dirname(container.status), container.status, 20_000);
      const args = profile.tool.split(' ').slice(1);
      const result = await timedSpawn(
        'strace',
        [...args, '-o', out, env.TSFIG_RUNTIME as string, 'start', container.dir],
        {
          env: { ...env, _TSFIG_SYNC_FD: '3' },
          fd3: true,
        },
      ).catch((error: unknown) => {
        exited.cancel();
        throw error;
      });
      if (!result.fd3.includes('"started"')) {
        exited.cancel();
        throw new Error(`start under strace: ${result.fd3.trim() || result.stderr}`);
      }
      await exited.done;
      // The monitor outlives the start command: give strace a moment to write its last lines.
      await new Promise((resolve) => setTimeout(resolve, 100));
      profile.timelines.push(parseTimeline(readFileSync(out, 'utf8')));
    }
  } catch (error) {
    profile.error = message(error);
  }
  return profile;
}

// ---- report ----------------------------------------------------------------------------------------------------

interface Results {
  date: string;
  command: string;
  commit: string;
  dirtyPaths: string[];
  machine: Record<string, string | undefined>;
  options: Options;
  runtimeSha: string;
  notes: string[];
  series: Series[];
  crunMedian: number;
  crunNetMedian: number;
  memory: { monitors: MonitorMemory[]; error?: string } | { unavailable: string };
  profile: Profile | undefined;
}

const esc = (text: string): string => text.replaceAll('|', '\\|');

function tableRow(s: Series, crun: number, crunNet: number): string {
  if (s.samples.length === 0) return `| ${s.label} | unavailable: ${esc(s.unavailable ?? 'no samples')} | | | | | | |`;
  const st = stats(s.samples);
  const ratio = (base: number): string => (Number.isFinite(base) && base > 0 ? `${f2(st.median / base)}x` : 'n/a');
  return `| ${s.label} | ${f1(st.median)} | ${f1(st.p10)} | ${f1(st.p90)} | ${f1(st.min)} | ${f1(st.max)} | ${ratio(crun)} | ${ratio(crunNet)} |`;
}

const medianOf = (r: Results, key: string): number => stats(r.series.find((s) => s.key === key)?.samples ?? []).median;
const partOf = (r: Results, key: string, part: string): number =>
  stats(r.series.find((s) => s.key === key)?.parts[part] ?? []).median;
/**
 * Median of the per-round differences a[i] − b[i] of two rows (or of row parts): the rows ran in the same rounds,
 * so this cancels most of the load that hit both. Falls back to the difference of medians if the counts differ.
 */
function paired(r: Results, a: string, b: string, partA?: string, partB?: string): number {
  const pick = (key: string, part?: string): number[] => {
    const s = r.series.find((x) => x.key === key);
    return (part === undefined ? s?.samples : s?.parts[part]) ?? [];
  };
  const xs = pick(a, partA);
  const ys = pick(b, partB);
  if (xs.length === 0 || xs.length !== ys.length) return stats(xs).median - stats(ys).median;
  return stats(xs.map((x, i) => x - (ys[i] ?? NaN))).median;
}

/** A difference of two timings: small negative ones are noise, not a gain. */
const diff = (ms: number): string => (ms > 0.05 ? `${f1(ms)} ms` : `nothing measurable (${f1(ms)} ms)`);
const timelineMedian = (r: Results, pick: (t: Timeline) => number): number =>
  stats((r.profile?.timelines ?? []).map(pick)).median;

function verdicts(r: Results): string[] {
  const lines: string[] = [];
  for (const key of ['tsfig-api', 'tsfig-native']) {
    const s = r.series.find((x) => x.key === key);
    if (s === undefined || s.samples.length === 0) continue;
    const { median: med, min } = stats(s.samples);
    const within = med / r.crunNetMedian;
    lines.push(
      `- ${s.label}: median ${f1(med)} ms (min ${f1(min)} ms). Target under 30 ms: **${med < 30 ? 'met' : 'missed'}**. ` +
        'Target within 1.5x ' +
        `of crun (${f1(r.crunNetMedian)} ms, its median less the nsenter wrapper's): ${f2(within)}x, ` +
        `**${within <= 1.5 ? 'met' : 'missed'}**.`,
    );
  }
  const unconfined = medianOf(r, 'native-unconfined');
  if (Number.isFinite(unconfined)) {
    lines.push(
      `- like for like with crun's bundle (no seccomp filter), the native start takes ${f1(unconfined)} ms: ` +
        `${f2(unconfined / r.crunNetMedian)}x crun.`,
    );
  }
  if ('monitors' in r.memory && r.memory.monitors.length > 0) {
    const rss = stats(r.memory.monitors.map((m) => m.vmRssKiB));
    lines.push(
      `- monitor RSS: mean ${f1(rss.mean)} KiB, max ${rss.max} KiB. Target under 1 MiB (1024 KiB): ` +
        `**${rss.max < 1024 ? 'met' : 'missed'}**.`,
    );
  }
  return lines;
}

function whereTheTimeGoes(r: Results): string[] {
  const api = medianOf(r, 'tsfig-api');
  const native = medianOf(r, 'tsfig-native');
  if (!Number.isFinite(api) || !Number.isFinite(native))
    return ['Not measured: the tsfig rows are unavailable in this run.'];
  const out: string[] = [];
  const create = partOf(r, 'tsfig-api', 'create');
  const start = partOf(r, 'tsfig-api', 'start');
  const wait = partOf(r, 'tsfig-api', 'wait');
  const fsyncMs = partOf(r, 'tsfig-api', 'fsyncMs');
  const fsyncs = partOf(r, 'tsfig-api', 'fsyncs');
  const started = partOf(r, 'tsfig-native', 'started');
  const unconfined = medianOf(r, 'native-unconfined');
  const hostNet = medianOf(r, 'native-hostnet');
  const seccompCost = paired(r, 'tsfig-native', 'native-unconfined');
  const netnsCost = paired(r, 'tsfig-native', 'native-hostnet');
  const engineCost = paired(r, 'tsfig-api', 'tsfig-native');
  const exitAfterStarted = partOf(r, 'tsfig-native', 'afterStarted');
  out.push(
    `**Engine API** (medians of the ${r.options.runs} runs above): create ${f1(create)} ms, start ${f1(start)} ms, ` +
      `wait ${f1(wait)} ms. The engine made ${fsyncs} fsync(2) calls per create+start+wait (container.json and ` +
      `runtime.conf, each file + its directory), ${f1(fsyncMs)} ms in total (temp dir on ${r.machine.tmpFs}). ` +
      `\`start\` is the native start (spawn to the \`started\` line: ${f1(started)} ms when run alone) plus ` +
      `${diff(start - started)} of Node around it (lock, status read, runtime.conf write + 2 fsyncs, spawn). ` +
      `\`wait\` polls status.json at 5, 10, 20 ... ms, so it sees an exit up to one poll late (run alone, the ` +
      `monitor records the exit ${f1(exitAfterStarted)} ms after \`started\`). Per round, the API row took ` +
      `${diff(engineCost)} more than the native row (median of the paired differences).`,
  );
  out.push('');
  out.push(
    `**Native ablations** (interleaved with the rows above): without seccomp the native start takes ${f1(unconfined)} ms ` +
      `(Docker's default profile costs ${diff(seccompCost)}); in the host network namespace ${f1(hostNet)} ms ` +
      `(a new netns costs ${diff(netnsCost)}); costs are medians of the per-round differences. crun and runc run ` +
      'the `crun spec` default, which has no ' +
      'seccomp filter, so the like-for-like native figure is the unconfined one.',
  );
  const cli = medianOf(r, 'tsfig-cli');
  const version = medianOf(r, 'tsfig-version');
  const nodeFloor = medianOf(r, 'node');
  if (Number.isFinite(cli) && Number.isFinite(version)) {
    out.push('');
    out.push(
      `**CLI**: \`node -e 0\` takes ${f1(nodeFloor)} ms and \`tsfig --version\` ${f1(version)} ms, so loading the ` +
        `CLI's modules costs ${diff(version - nodeFloor)}; \`container run --rm\` takes ${f1(cli)} ms, ` +
        `${diff(cli - version)} over \`--version\` (the engine work of the API row plus the removal, which the ` +
        'API row does not time).',
    );
  }
  const p = r.profile;
  if (p !== undefined && p.timelines.length > 0) {
    const t = (pick: (x: Timeline) => number): string => f1(timelineMedian(r, pick));
    out.push('');
    out.push(
      `**Inside \`tsfig-runtime start\`** (median of ${p.timelines.length} runs under \`${p.tool}\`, which adds ` +
        'overhead to each traced syscall only):',
    );
    out.push('');
    out.push('| phase | ms |');
    out.push('| --- | ---: |');
    const row = (label: string, pick: (x: Timeline) => number): void => {
      out.push(`| ${label} | ${t(pick)} |`);
    };
    row(
      'exec of tsfig-runtime to clone() of the container (monitor fork and detach, cgroup dirs and limits, seccomp program prepared)',
      (x) => x.setup,
    );
    row('clone() with the namespaces to the first mount() (gate, cgroup join)', (x) => x.cloneToMounts);
    row('mounts: overlay rootfs, /proc, /dev, /sys, binds, pivot_root, masked and read-only paths', (x) => x.mounts);
    row(
      'last mount to the seccomp load (capabilities, user; the seccomp build when done in-process)',
      (x) => x.toSeccomp,
    );
    row(`seccomp load (the syscall; ${timelineMedian(r, (x) => x.bpfLen)} BPF instructions)`, (x) => x.seccompLoad);
    row('seccomp load to execve of /bin/true', (x) => x.toExec);
    row(
      'execve of /bin/true to the `started` line (status.json "running" written and fsynced)',
      (x) => x.execToStarted,
    );
    row(
      '`started` to exit of the monitor (true exits, reap, cgroup removal, final status)',
      (x) => x.startedToMonitorExit,
    );
    out.push(`| **total**, exec of tsfig-runtime to exit of the monitor | ${t((x) => x.total)} |`);
    out.push('');
    out.push(
      `Across those phases: ${t((x) => x.cgroupAttach)} ms inside write()s of pids to cgroup.procs/tasks (longest ` +
        `single write ${t((x) => x.cgroupLongest)} ms), ${t((x) => x.fsync)} ms inside the monitor's fsync()s, and ` +
        `${timelineMedian(r, (x) => x.seccompProbes)} seccomp() calls besides the load (libseccomp probing, i.e. a ` +
        'filter built during the start; 0 means the prepared program was reused).',
    );
  }
  if (p?.error !== undefined) out.push('', `Profile incomplete: ${p.error}.`);
  // Suggestions, largest measured cost first.
  const attach = timelineMedian(r, (x) => x.cgroupAttach);
  const probes = timelineMedian(r, (x) => x.seccompProbes);
  const candidates: { cost: number; text: string }[] = [
    {
      cost: seccompCost,
      text:
        probes > 0
          ? `**Seccomp** (${diff(seccompCost)} by ablation; the start built the filter with libseccomp, ` +
            `${probes} probing seccomp() calls): build the BPF once per profile, arch set and kernel ` +
            '(`seccomp_export_bpf`, cached) and load the raw program with seccomp(2) in the container.'
          : `**Seccomp** (${diff(seccompCost)} by ablation; the prepared program is reused, no libseccomp probing ` +
            `during the start, and the load syscall takes ${f1(timelineMedian(r, (x) => x.seccompLoad))} ms under ` +
            'strace): what is left is most likely the monitor reading and checking the cached program and the kernel ' +
            `running a ${timelineMedian(r, (x) => x.bpfLen)}-instruction filter on every syscall of the container; ` +
            "libseccomp's binary-tree layout (SCMP_FLTATR_CTL_OPTIMIZE 2) would shorten the path per syscall.",
    },
    {
      cost: engineCost,
      text:
        `**Node-side engine work** (API row − native row, paired per round: ${diff(engineCost)}): \`create\` ${f1(create)} ms ` +
        `(lists and parses every container.json under the names lock, writes container.json with 2 fsyncs); ` +
        `\`start\` adds ${diff(start - started)} around the native start (\`get()\` parses every container.json ` +
        'again, lock, status read, image resolve, runtime.conf written with 2 fsyncs, spawn); `wait` takes ' +
        `${f1(wait)} ms for an exit the monitor records ${f1(exitAfterStarted)} ms after \`started\`, polling ` +
        'status.json from a 5 ms first sleep. Look containers up by full id directly, take one lock for create+start, ' +
        'write runtime.conf without fsync (it is rewritten before every start and read only by it) or under the ' +
        "tmpfs run root, and make `wait` event-driven (inotify on the container dir, or an exit line on the monitor's " +
        'ctl socket).',
    },
    {
      cost: attach,
      text:
        `**cgroup attach** (${f1(attach)} ms inside write()s of pids to cgroup.procs/tasks, the longest single ` +
        `write ${f1(timelineMedian(r, (x) => x.cgroupLongest))} ms): a v1 migration waits for the kernel (most ` +
        'likely an RCU grace period on cgroup_threadgroup_rwsem) while nothing else proceeds; overlap it with work ' +
        'that needs no cgroup (mount preparation, reading the seccomp program), and use clone3(CLONE_INTO_CGROUP) ' +
        'on v2.',
    },
    {
      cost: timelineMedian(r, (x) => x.fsync),
      text:
        `**The monitor's fsyncs** (${f1(timelineMedian(r, (x) => x.fsync))} ms inside fsync() under strace, one ` +
        'before `started` and one before "exited"): the "running" status is only trusted for the current boot ' +
        '(bootId), so it needs no fsync; without one the "exited" status is still atomic (rename), and a host ' +
        "crash would only turn the lost exit code into the engine's reboot repair.",
    },
    {
      cost: netnsCost,
      text:
        `**Network namespace** (${diff(netnsCost)} by ablation): creating a netns with \`lo\` up on the ` +
        'critical path; a small pool of pre-made namespaces (bind-mounted files the engine already knows how to ' +
        'join) would take it off.',
    },
  ];
  const top = candidates
    .filter((c) => Number.isFinite(c.cost))
    .sort((a, b) => b.cost - a.cost)
    .slice(0, 3);
  out.push('');
  out.push('**Suggested improvements**, largest measured cost first (not implemented here):');
  out.push('');
  top.forEach((c, i) => out.push(`${i + 1}. ${c.text}`));
  return out;
}

function renderMarkdown(r: Results, resultsFile: string | undefined): string {
  const out: string[] = [];
  out.push(`Command (as root, from the repo root): \`${r.command}\``);
  out.push('');
  out.push(
    `Commit \`${r.commit}\`${r.dirtyPaths.length > 0 ? ` (${r.dirtyPaths.length} uncommitted paths in the shared tree)` : ''}, ` +
      `${r.date}, tsfig-runtime sha256 \`${r.runtimeSha}\`. Machine: ${r.machine.nproc} CPUs (${r.machine.cpu}), ` +
      `${r.machine.memory}, kernel ${r.machine.kernel}, ${r.machine.crun}, ${r.machine.runc}, node ${r.machine.node}, ` +
      `cgroups ${r.machine.cgroups}, temp dir on ${r.machine.tmpFs}; load average ${r.machine.loadBefore} before, ` +
      `${r.machine.loadAfter ?? '?'} after (a shared machine: other work ran during the benchmark).`,
  );
  out.push('');
  out.push(
    `Each row: ${r.options.runs} runs after ${r.options.warmup} warm-ups, all rows interleaved round-robin in one ` +
      'process (order rotated each round). Time in ms from `spawn()` (or the first API call) to the exit of ' +
      '`/bin/true` in the busybox rootfs; crun/runc share one bundle made with `crun spec` (its default namespaces, ' +
      'args `/bin/true`, terminal false, rootfs read-write); `delete -f` and `remove` are outside the timed part. ' +
      'The native row is timed to the monitor renaming status.json to "exited" (seen through inotify).',
  );
  out.push('');
  out.push('| what | median | p10 | p90 | min | max | / crun | / crun − nsenter |');
  out.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const s of r.series.filter((x) => x.group === undefined)) out.push(tableRow(s, r.crunMedian, r.crunNetMedian));
  out.push('');
  out.push('Ablations of the native start (same runs, same rotation):');
  out.push('');
  out.push('| what | median | p10 | p90 | min | max | / crun | / crun − nsenter |');
  out.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const s of r.series.filter((x) => x.group === 'ablation')) out.push(tableRow(s, r.crunMedian, r.crunNetMedian));
  out.push('');
  const v = verdicts(r);
  if (v.length > 0) out.push(...v, '');
  out.push('### Monitor memory');
  out.push('');
  if ('unavailable' in r.memory) out.push(`unavailable: ${r.memory.unavailable}`);
  else if (r.memory.monitors.length === 0) out.push(`unavailable: ${r.memory.error ?? 'no monitors'}`);
  else {
    const m = r.memory.monitors;
    const st = (pick: (x: MonitorMemory) => number): Stats => stats(m.map(pick));
    out.push(
      `${m.length} containers running \`/bin/sleep 30\` through the engine, read ${SETTLE_MS} ms after the last ` +
        `start; per monitor process (\`${m[0]?.exe ?? ''}\`, pid from status.json):`,
    );
    out.push('');
    out.push('| KiB | mean | max |');
    out.push('| --- | ---: | ---: |');
    out.push(`| VmRSS | ${f1(st((x) => x.vmRssKiB).mean)} | ${st((x) => x.vmRssKiB).max} |`);
    out.push(`| Pss (smaps_rollup) | ${f1(st((x) => x.pssKiB).mean)} | ${st((x) => x.pssKiB).max} |`);
    out.push(
      `| Private_Clean + Private_Dirty | ${f1(st((x) => x.privateKiB).mean)} | ${st((x) => x.privateKiB).max} |`,
    );
    out.push(`| VmHWM (peak, during start-up) | ${f1(st((x) => x.vmHwmKiB).mean)} | ${st((x) => x.vmHwmKiB).max} |`);
    if (r.memory.error !== undefined) out.push('', `(stopped early: ${r.memory.error})`);
  }
  out.push('');
  out.push('### Where the time goes');
  out.push('');
  out.push(...whereTheTimeGoes(r));
  out.push('');
  if (r.notes.length > 0) {
    out.push('### Notes');
    out.push('');
    for (const note of r.notes) out.push(`- ${note}`);
    out.push('');
  }
  out.push('<details><summary>Raw samples (ms, in run order)</summary>');
  out.push('');
  out.push('```');
  for (const s of r.series) {
    out.push(`${s.key}: ${s.samples.length > 0 ? s.samples.map(f2).join(' ') : `unavailable: ${s.unavailable ?? ''}`}`);
    for (const [name, values] of Object.entries(s.parts)) out.push(`${s.key}.${name}: ${values.map(f2).join(' ')}`);
  }
  for (const [i, t] of (r.profile?.timelines ?? []).entries()) {
    out.push(
      `strace ${i + 1}: ${(Object.entries(t) as [string, number][]).map(([k, x]) => `${k}=${f2(x)}`).join(' ')}`,
    );
  }
  if ('monitors' in r.memory) {
    out.push(`monitor VmRSS KiB: ${r.memory.monitors.map((m) => m.vmRssKiB).join(' ')}`);
    out.push(`monitor Pss KiB: ${r.memory.monitors.map((m) => m.pssKiB).join(' ')}`);
    out.push(`monitor Private KiB: ${r.memory.monitors.map((m) => m.privateKiB).join(' ')}`);
  }
  out.push('```');
  out.push('');
  if (resultsFile !== undefined)
    out.push(`All of it as JSON (with failures and machine facts): \`${resultsFile}\`.`, '');
  out.push('</details>');
  return out.join('\n');
}

// ---- main ------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('run as root: containers need namespaces, mounts and cgroups');
  if (!existsSync(BUSYBOX_TAR)) {
    console.error(`${BUSYBOX_TAR} is missing: running scripts/base-images.sh`);
    execFileSync('bash', [path.join(REPO, 'scripts', 'base-images.sh')], { stdio: 'inherit' });
  }
  const startedAt = new Date();
  const { commit, dirtyPaths } = gitCommit();
  const facts = machine();
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'tsfig-bench-'));
  onCleanup('temp dir', () => fs.rm(tmp, { recursive: true, force: true }));
  const notes: string[] = [];
  const load = os.loadavg()[0] ?? 0;
  if (load > os.availableParallelism()) {
    notes.push(
      `The machine was busy with other work (1-minute load ${load.toFixed(1)} on ${os.availableParallelism()} CPUs ` +
        'when the run began): every row is slowed and spread out. The interleaving spreads the disturbance over ' +
        'all rows alike; the min column is the closest to an idle machine.',
    );
  }

  const oci = await prepareBundle(tmp);
  checkStopping();
  if (oci.crunNote !== undefined) notes.push(oci.crunNote);
  if (!oci.seccomp)
    notes.push(
      "The `crun spec` bundle has no seccomp filter (`linux.seccomp` unset); tsfig applies Docker's default profile.",
    );
  const tsfig = await prepareTsfig(tmp);
  checkStopping();
  if (tsfig.distNote !== undefined) notes.push(`CLI rows: ${tsfig.distNote}.`);
  let native: NativeContainers | undefined;
  if (tsfig.engine !== undefined && tsfig.unavailable === undefined) {
    try {
      native = {
        base: await nativeContainer(tsfig.engine, 'bench-native'),
        unconfined: await nativeContainer(tsfig.engine, 'bench-native-unconfined', { seccomp: 'unconfined' }),
        hostNet: await nativeContainer(tsfig.engine, 'bench-native-hostnet', { network: 'host' }),
      };
    } catch (error) {
      tsfig.unavailable = `preparing runtime.conf for the native rows: ${message(error)}`;
    }
  }
  const all = [...tsfigSeries(tsfig, native), ...ociSeries(oci)];
  const order = [
    'crun',
    'runc',
    'tsfig-api',
    'tsfig-native',
    'tsfig-cli',
    'tsfig-version',
    'node',
    'nsenter',
    'floor',
    'spawn',
    'native-unconfined',
    'native-hostnet',
  ];
  all.sort((a, b) => order.indexOf(a.key) - order.indexOf(b.key));
  for (const s of all) if (s.unavailable !== undefined) console.error(`${s.key}: unavailable: ${s.unavailable}`);
  await roundRobin(all, options.runs, options.warmup, 'bench');

  const crunMedian = stats(all.find((s) => s.key === 'crun')?.samples ?? []).median;
  const nsenter = all.find((s) => s.key === 'nsenter');
  const crunNetMedian = crunMedian - (nsenter !== undefined ? stats(nsenter.samples).median : 0);

  checkStopping();
  const memory: Results['memory'] =
    tsfig.engine !== undefined && tsfig.unavailable === undefined
      ? await monitorMemory(tsfig.engine, options.monitors)
      : { unavailable: tsfig.unavailable ?? 'no engine' };
  checkStopping();
  const profile =
    native !== undefined ? await profileNative(native.base, tsfig.env, options.profileRuns, tmp) : undefined;
  checkStopping();
  facts.loadAfter = loadavg();
  for (const s of all) {
    if (s.failures.length > 0)
      notes.push(`${s.key}: ${s.failures.length} failed sample(s), first: ${s.failures[0] ?? ''}`);
  }

  const argv = process.argv.slice(2).filter((arg) => arg !== '--no-write');
  const results: Results = {
    date: startedAt.toISOString().replace(/\.\d+Z$/, 'Z'),
    command: ['node --import tsx bench/engine-run.ts', ...argv].join(' '),
    commit,
    dirtyPaths,
    machine: facts,
    options,
    runtimeSha: tsfig.runtimeSha,
    notes,
    series: all,
    crunMedian,
    crunNetMedian,
    memory,
    profile,
  };
  const stamp = results.date.replace(/:/g, '').replace(/Z$/, '');
  const resultsRel = `bench/results/engine-run-${stamp}.json`;
  const markdown = renderMarkdown(results, options.write ? resultsRel : undefined);
  console.log(markdown);
  if (options.write) {
    mkdirSync(path.join(REPO, 'bench', 'results'), { recursive: true });
    const json = { ...results, series: all.map((s) => ({ ...s, stats: stats(s.samples), sample: undefined })) };
    writeFileSync(path.join(REPO, resultsRel), `${JSON.stringify(json, null, 2)}\n`);
    // In the repo's format, so `prettier --check .` (CI) passes with the results committed.
    const prettier = path.join(REPO, 'node_modules', 'prettier', 'bin', 'prettier.cjs');
    if (existsSync(prettier))
      execFileSync(process.execPath, [prettier, '--write', resultsRel], { cwd: REPO, stdio: 'ignore' });
    updateSection(SECTION, markdown);
    console.error(`wrote BENCHMARKS.md (section "${SECTION}") and ${resultsRel}`);
  }
}

const mainDone: Promise<void> = main()
  .catch((error: unknown) => {
    if (stopping) return;
    console.error(`bench/engine-run: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exitCode = 1;
  })
  .finally(() => cleanup());
