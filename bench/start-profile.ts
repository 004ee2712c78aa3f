/**
 * Container start profile (issue 2): where the time of `tsfig-runtime start` goes, beside `crun run` on the same
 * busybox rootfs, all interleaved round-robin in one run.
 *
 *   sudo node --import tsx bench/start-profile.ts [--runs N] [--warmup N] [--runtime LABEL=PATH]...
 *        [--without COMMIT]... [--phases N] [--no-crun] [--write]
 *
 * --runtime LABEL=PATH  a tsfig-runtime binary to time (repeatable; default: current=native/build/tsfig-runtime)
 * --without COMMIT      also time "before": the working tree's native/ with COMMIT's native/ changes reverse-applied
 *                       (repeatable, newest first), built in a temp dir
 * --phases N            N extra starts per runtime under `strace -f` (syscall markers only) split into phases
 * --write               replace the section "Container start: where the time goes" of BENCHMARKS.md
 *
 * Each tsfig sample: a fresh container dir (runtime.conf as test/helpers/runtime-conf.ts writes it: Docker's default
 * capabilities, seccomp default, a new netns, the busybox rootfs as the overlay's lower dir), then `start` timed from
 * spawn() to the `started` line on fd 3 and to status.json saying "exited" (inotify). crun gets the same rootfs
 * (read-only root, no overlay), the same 14 capabilities and namespaces, with and without Docker's default seccomp
 * profile (generated from native/src/seccomp_profile.h). On hybrid-cgroup hosts crun 1.8 refuses to run while the
 * cgroup2 mount has controllers, so the whole benchmark re-executes itself in a private mount namespace where
 * /sys/fs/cgroup/unified is unmounted (tsfig only uses the v1 hierarchies there anyway).
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, watch, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { makeBusyboxRootfs } from '../test/helpers/rootfs.js';
import { DOCKER_CAPS, destroy, makeContainer, type TestContainer } from '../test/helpers/runtime-conf.js';
import { dirtyPaths, f1, headCommit, loadavg, stats } from './harness.js';
import { REPO, updateSection } from './report.js';

const SECTION = 'Container start: where the time goes';
const CGROUP_PREFIX = 'tsf-prof';
const now = (): number => performance.now();

// ---- options ---------------------------------------------------------------------------------------------------

interface Options {
  runs: number;
  warmup: number;
  runtimes: { label: string; path: string }[];
  without: string[];
  phases: number;
  crun: boolean;
  write: boolean;
}

function parseOptions(argv: readonly string[]): Options {
  const o: Options = { runs: 40, warmup: 3, runtimes: [], without: [], phases: 0, crun: true, write: false };
  const int = (flag: string, v: string | undefined): number => {
    const n = Number(v);
    if (v === undefined || !Number.isInteger(n) || n < 0) throw new Error(`${flag} needs a whole number`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--runs') o.runs = Math.max(1, int(a, argv[++i]));
    else if (a === '--warmup') o.warmup = int(a, argv[++i]);
    else if (a === '--phases') o.phases = int(a, argv[++i]);
    else if (a === '--no-crun') o.crun = false;
    else if (a === '--write') o.write = true;
    else if (a === '--without') o.without.push(argv[++i] ?? '');
    else if (a === '--runtime') {
      const m = /^([\w.+-]+)=(.+)$/.exec(argv[++i] ?? '');
      if (m?.[1] === undefined || m[2] === undefined) throw new Error('--runtime needs LABEL=PATH');
      o.runtimes.push({ label: m[1], path: path.resolve(m[2]) });
    } else throw new Error(`unknown argument ${a}`);
  }
  if (o.runtimes.length === 0)
    o.runtimes.push({ label: 'current', path: path.join(REPO, 'native/build/tsfig-runtime') });
  return o;
}

// ---- helpers ---------------------------------------------------------------------------------------------------

function run(cmd: string, args: readonly string[], cwd?: string, input?: string): string {
  return execFileSync(cmd, args, { encoding: 'utf8', cwd, input, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Spawns cmd; resolves with spawn→first line on fd 3 (if asked) and spawn→exit, in ms. */
function timedSpawn(
  cmd: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  fd3: boolean,
): Promise<{ firstLineMs?: number; exitMs: number; code: number | null; fd3: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const start = now();
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe', ...(fd3 ? (['pipe'] as const) : [])] });
    let stderr = '';
    let sync = '';
    let firstLineMs: number | undefined;
    let exit: { ms: number; code: number | null } | undefined;
    child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const s3 = child.stdio[3] as NodeJS.ReadableStream | undefined;
    s3?.setEncoding('utf8');
    s3?.on('data', (c: string) => {
      sync += c;
      if (firstLineMs === undefined && sync.includes('\n')) firstLineMs = now() - start;
    });
    child.on('error', reject);
    child.on('exit', (code) => (exit = { ms: now() - start, code }));
    child.on('close', () => {
      if (exit === undefined) return;
      resolve({ firstLineMs, exitMs: exit.ms, code: exit.code, fd3: sync, stderr });
    });
  });
}

/** Resolves with the time status.json first says "exited" (inotify on its dir, a slow poll as a safety net). */
function whenExited(tc: TestContainer, timeoutMs = 15_000): { done: Promise<number>; cancel(): void } {
  let settled = false;
  const watcher = watch(tc.dir);
  let poll: NodeJS.Timeout | undefined;
  let timer: NodeJS.Timeout | undefined;
  const stop = (): void => {
    settled = true;
    watcher.close();
    clearInterval(poll);
    clearTimeout(timer);
  };
  const done = new Promise<number>((resolve, reject) => {
    const look = (): void => {
      if (settled) return;
      try {
        if ((JSON.parse(readFileSync(tc.status, 'utf8')) as { state?: string }).state === 'exited') {
          const at = now();
          stop();
          resolve(at);
        }
      } catch {
        // not written yet
      }
    };
    watcher.on('change', look);
    poll = setInterval(look, 50);
    timer = setTimeout(() => {
      stop();
      reject(new Error(`no exited status in ${tc.status}`));
    }, timeoutMs);
  });
  return { done, cancel: stop };
}

// ---- series ----------------------------------------------------------------------------------------------------

interface Series {
  key: string;
  label: string;
  sample(): Promise<Record<string, number>>;
  samples: Record<string, number[]>;
  failures: string[];
}

function series(key: string, label: string, sample: () => Promise<Record<string, number>>): Series {
  return { key, label, sample, samples: {}, failures: [] };
}

let lower = '';
let containerCounter = 0;

async function newContainer(): Promise<TestContainer> {
  const id = `${CGROUP_PREFIX}${process.pid}-${containerCounter++}`;
  const cgroup = `${CGROUP_PREFIX}${process.pid}/${randomBytes(6).toString('hex')}`;
  const tc = await makeContainer(lower, { args: ['/bin/true'], override: { cgroup, name: id } });
  tc.cgroup = cgroup;
  return tc;
}

function tsfigSeries(label: string, runtime: string): Series {
  return series(`tsfig:${label}`, `\`tsfig-runtime start\` (${label})`, async () => {
    const tc = await newContainer();
    try {
      const exited = whenExited(tc);
      const start = now();
      const r = await timedSpawn(runtime, ['start', tc.dir], { ...process.env, _TSFIG_SYNC_FD: '3' }, true);
      if (r.code !== 0 || !r.fd3.includes('"started"')) {
        exited.cancel();
        throw new Error(`start: ${r.fd3.trim() || r.stderr.trim() || `exit ${r.code}`}`);
      }
      const end = await exited.done;
      return { started: r.firstLineMs ?? NaN, exited: end - start };
    } finally {
      await destroy(tc);
    }
  });
}

// ---- crun ------------------------------------------------------------------------------------------------------

/** Docker's default profile as OCI JSON, from the same tables tsfig uses (moby's setupSeccomp + runc's split). */
const OCI_PROFILE_C = String.raw`
#include "seccomp_profile.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
static const char *arch_name(uint32_t a) {
  switch (a) {
  case SCMP_ARCH_X86_64: return "SCMP_ARCH_X86_64"; case SCMP_ARCH_X86: return "SCMP_ARCH_X86";
  case SCMP_ARCH_X32: return "SCMP_ARCH_X32"; case SCMP_ARCH_AARCH64: return "SCMP_ARCH_AARCH64";
  case SCMP_ARCH_ARM: return "SCMP_ARCH_ARM"; default: return NULL; }
}
static const char *go_arch(void) {
  switch (seccomp_arch_native()) { case SCMP_ARCH_X86_64: return "amd64"; case SCMP_ARCH_AARCH64: return "arm64";
  default: return ""; }
}
static const char *op_name(enum scmp_compare op) {
  switch (op) { case SCMP_CMP_NE: return "SCMP_CMP_NE"; case SCMP_CMP_LT: return "SCMP_CMP_LT";
  case SCMP_CMP_LE: return "SCMP_CMP_LE"; case SCMP_CMP_EQ: return "SCMP_CMP_EQ"; case SCMP_CMP_GE: return "SCMP_CMP_GE";
  case SCMP_CMP_GT: return "SCMP_CMP_GT"; case SCMP_CMP_MASKED_EQ: return "SCMP_CMP_MASKED_EQ"; default: return "?"; }
}
static int listed(const char *const *l, const char *a) { for (; l && *l; l++) if (!strcmp(*l, a)) return 1; return 0; }
static int at_least(int M, int m, int kM, int km) { return kM > M || (kM == M && km >= m); }
static int applies(const struct tsfig_seccomp_rule *r, uint64_t caps, int kM, int km) {
  const char *a = go_arch();
  const struct tsfig_seccomp_cond *ex = &r->excludes, *in = &r->includes;
  if (ex->arches && listed(ex->arches, a)) return 0;
  if (ex->caps & caps) return 0;
  if (ex->min_kernel_major && at_least(ex->min_kernel_major, ex->min_kernel_minor, kM, km)) return 0;
  if (in->arches && !listed(in->arches, a)) return 0;
  if ((in->caps & caps) != in->caps) return 0;
  if (in->min_kernel_major && !at_least(in->min_kernel_major, in->min_kernel_minor, kM, km)) return 0;
  return 1;
}
static int first = 1;
static void entry(const struct tsfig_seccomp_rule *r, const struct tsfig_seccomp_arg *args, size_t n) {
  printf("%s{\"names\":[", first ? "" : ",");
  first = 0;
  int f = 1;
  for (const char *const *nm = r->names; *nm; nm++)
    if (seccomp_syscall_resolve_name(*nm) != __NR_SCMP_ERROR) { printf("%s\"%s\"", f ? "" : ",", *nm); f = 0; }
  if (r->action == SCMP_ACT_ALLOW) printf("],\"action\":\"SCMP_ACT_ALLOW\"");
  else printf("],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":%u", r->action & 0xffffu);
  printf(",\"args\":[");
  for (size_t i = 0; i < n; i++)
    printf("%s{\"index\":%u,\"value\":%llu,\"valueTwo\":%llu,\"op\":\"%s\"}", i ? "," : "", args[i].index,
           (unsigned long long)args[i].value, (unsigned long long)args[i].value_two, op_name(args[i].op));
  printf("]}");
}
int main(int argc, char **argv) {
  uint64_t caps = argc > 1 ? strtoull(argv[1], NULL, 16) : 0;
  struct utsname u; int kM = 0, km = 0;
  if (uname(&u) == 0) sscanf(u.release, "%d.%d", &kM, &km);
  printf("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":1,\"architectures\":[\"%s\"",
         arch_name(seccomp_arch_native()));
  for (size_t i = 0; i < sizeof tsfig_seccomp_archmap / sizeof tsfig_seccomp_archmap[0]; i++)
    if (tsfig_seccomp_archmap[i].arch == seccomp_arch_native())
      for (const uint32_t *s = tsfig_seccomp_archmap[i].sub_arches; *s; s++)
        if (arch_name(*s)) printf(",\"%s\"", arch_name(*s));
  printf("],\"syscalls\":[");
  for (size_t i = 0; i < sizeof tsfig_seccomp_rules / sizeof tsfig_seccomp_rules[0]; i++) {
    const struct tsfig_seccomp_rule *r = &tsfig_seccomp_rules[i];
    if (r->action == TSFIG_SECCOMP_DEFAULT_ACTION || !applies(r, caps, kM, km)) continue;
    unsigned seen = 0; int repeat = 0;
    for (size_t j = 0; j < r->n_args; j++) { repeat |= (seen >> r->args[j].index) & 1; seen |= 1u << r->args[j].index; }
    if (repeat) for (size_t j = 0; j < r->n_args; j++) entry(r, &r->args[j], 1);
    else entry(r, r->args, r->n_args);
  }
  printf("]}\n");
  return 0;
}
`;

const CAP_NUMBERS: Record<string, number> = {
  CAP_CHOWN: 0,
  CAP_DAC_OVERRIDE: 1,
  CAP_FOWNER: 3,
  CAP_FSETID: 4,
  CAP_KILL: 5,
  CAP_SETGID: 6,
  CAP_SETUID: 7,
  CAP_SETPCAP: 8,
  CAP_NET_BIND_SERVICE: 10,
  CAP_NET_RAW: 13,
  CAP_SYS_CHROOT: 18,
  CAP_MKNOD: 27,
  CAP_AUDIT_WRITE: 29,
  CAP_SETFCAP: 31,
};

function dockerProfile(tmp: string): unknown {
  const src = path.join(tmp, 'oci-profile.c');
  const bin = path.join(tmp, 'oci-profile');
  writeFileSync(src, OCI_PROFILE_C);
  run('cc', [
    '-std=c11',
    '-D_GNU_SOURCE',
    '-O1',
    '-iquote',
    path.join(REPO, 'native/src'),
    '-o',
    bin,
    src,
    '-lseccomp',
  ]);
  const mask = DOCKER_CAPS.reduce((m, c) => m | (1n << BigInt(CAP_NUMBERS[c] ?? 0)), 0n);
  return JSON.parse(run(bin, [mask.toString(16)]));
}

function crunBundle(tmp: string, name: string, seccomp: unknown): string {
  const bundle = path.join(tmp, name);
  mkdirSync(bundle, { recursive: true });
  run('crun', ['spec'], bundle);
  const file = path.join(bundle, 'config.json');
  const config = JSON.parse(readFileSync(file, 'utf8')) as {
    root: unknown;
    hostname: string;
    process: Record<string, unknown> & { capabilities: Record<string, string[]> };
    linux: { namespaces: { type: string }[]; seccomp?: unknown };
  };
  config.root = { path: lower, readonly: true };
  config.hostname = 'tsftest';
  config.process.args = ['/bin/true'];
  config.process.terminal = false;
  config.process.env = ['PATH=/bin:/usr/bin:/sbin'];
  config.process.noNewPrivileges = false;
  config.process.capabilities = {
    bounding: [...DOCKER_CAPS],
    effective: [...DOCKER_CAPS],
    permitted: [...DOCKER_CAPS],
    inheritable: [],
    ambient: [],
  };
  config.linux.namespaces.push({ type: 'cgroup' });
  if (seccomp !== undefined) config.linux.seccomp = seccomp;
  writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
  return bundle;
}

function crunSeries(key: string, label: string, bundle: string): Series {
  let n = 0;
  return series(key, label, async () => {
    const id = `${CGROUP_PREFIX}${process.pid}-${key.replace(/\W/g, '')}-${n++}`;
    try {
      const r = await timedSpawn('crun', ['run', '--bundle', bundle, id], process.env, false);
      if (r.code !== 0) throw new Error(`crun run: exit ${r.code}: ${r.stderr.trim()}`);
      return { exited: r.exitMs };
    } finally {
      await timedSpawn('crun', ['delete', '-f', id], process.env, false).catch(() => undefined);
      // With the cgroup2 mount gone from this namespace, crun still makes a dir for it in the tmpfs underneath.
      if (process.env.TSFIG_PROFILE_NS === '1')
        await rm(path.join('/sys/fs/cgroup/unified', id), { recursive: true, force: true });
    }
  });
}

// ---- phases (strace) -------------------------------------------------------------------------------------------

interface Call {
  pid: number;
  ts: number;
  dur: number;
  text: string;
}

function parseStrace(text: string): Call[] {
  const calls: Call[] = [];
  const pending = new Map<number, { ts: number; head: string }>();
  for (const line of text.split('\n')) {
    const m = /^(\d+)\s+(\d+\.\d+)\s+(.*)$/.exec(line);
    if (m?.[1] === undefined || m[2] === undefined || m[3] === undefined) continue;
    const pid = Number(m[1]);
    const ts = Number(m[2]) * 1000;
    let body = m[3];
    if (body.endsWith('<unfinished ...>')) {
      pending.set(pid, { ts, head: body.slice(0, -'<unfinished ...>'.length) });
      continue;
    }
    const resumed = /^<\.\.\. \w+ resumed>(.*)$/.exec(body);
    let start = ts;
    if (resumed?.[1] !== undefined) {
      const p = pending.get(pid);
      pending.delete(pid);
      if (p === undefined) continue;
      body = p.head + resumed[1];
      start = p.ts;
    }
    const dur = /<(\d+\.\d+)>$/.exec(body);
    calls.push({ pid, ts: start, dur: dur?.[1] !== undefined ? Number(dur[1]) * 1000 : 0, text: body });
  }
  return calls;
}

const PHASES = [
  'exec, runtime.conf, double fork',
  'monitor: oom_score_adj, seccomp program (after: cache), run dir',
  'cgroup create (7 v1 hierarchies)',
  'log, sockets, pipes, clone',
  'clone → first mount: release, cgroup join, cgroupns, lo up',
  'mounts: overlay, /proc, /dev, /sys, cgroups, pivot_root',
  'pivot_root → seccomp load: masks, ro paths, hostname, user (before: + libseccomp build)',
  '  of which libseccomp build (first seccomp() probe → load)',
  'seccomp load (kernel)',
  'caps, cwd → execve',
  'execve → status.json "running" renamed (fsync)',
  'status renamed → `started` written',
  'total spawn → `started`',
] as const;

function phasesOf(calls: Call[], runtimePath: string): number[] | undefined {
  const t0 = calls.find((c) => c.text.startsWith('execve(') && c.text.includes(runtimePath))?.ts;
  const monitor = calls.find((c) => c.text.includes('PR_SET_CHILD_SUBREAPER'));
  const cgFirst = calls.find((c) => c.text.startsWith('mkdir("/sys/fs/cgroup/'));
  const logOpen = calls.find((c) => c.text.startsWith('openat(') && c.text.includes('O_APPEND'));
  const clone = calls.find((c) => c.text.startsWith('clone(') && c.text.includes('CLONE_NEWNS'));
  const container = clone === undefined ? undefined : Number(/= (\d+)/.exec(clone.text.split(')').at(-1) ?? '')?.[1]);
  const inC = calls.filter((c) => c.pid === container);
  const firstMount = inC.find((c) => c.text.startsWith('mount('));
  const pivot = inC.find((c) => c.text.startsWith('pivot_root('));
  const afterPivot = inC.filter((c) => pivot !== undefined && c.ts > pivot.ts);
  const load = inC.find((c) => c.text.startsWith('seccomp(SECCOMP_SET_MODE_FILTER') && c.text.includes('len='));
  const probe = afterPivot.find((c) => c.text.startsWith('seccomp('));
  const exec = inC.find((c) => c.text.startsWith('execve('));
  const rename = calls.find((c) => c.text.startsWith('rename(') && c.text.includes('status.json.tmp'));
  const started = calls.find((c) => c.text.startsWith('write(') && c.text.includes('\\"started\\"'));
  const all = [t0, monitor, cgFirst, logOpen, clone, firstMount, pivot, load, exec, rename, started];
  if (all.some((x) => x === undefined) || load === undefined || probe === undefined) return undefined;
  const [a, b, c, d, e, f, g, , i, j, k] = all as [number, Call, Call, Call, Call, Call, Call, Call, Call, Call, Call];
  return [
    b.ts - a,
    c.ts - b.ts,
    d.ts - c.ts,
    e.ts + e.dur - d.ts,
    f.ts - (e.ts + e.dur),
    g.ts + g.dur - f.ts,
    load.ts - (g.ts + g.dur),
    probe.ts < load.ts && probe !== load ? load.ts - probe.ts : 0,
    load.dur,
    i.ts - (load.ts + load.dur),
    j.ts + j.dur - i.ts,
    k.ts - (j.ts + j.dur),
    k.ts + k.dur - a,
  ];
}

async function profilePhases(label: string, runtime: string, runs: number, tmp: string): Promise<number[][]> {
  const out: number[][] = [];
  for (let i = 0; i < runs; i++) {
    const tc = await newContainer();
    const file = path.join(tmp, `strace-${label}-${i}.txt`);
    try {
      const exited = whenExited(tc);
      const r = await timedSpawn(
        'strace',
        [
          '-f',
          '-ttt',
          '-T',
          '-o',
          file,
          '--seccomp-bpf',
          '-e',
          'trace=execve,clone,clone3,mkdir,openat,write,rename,mount,pivot_root,seccomp,prctl',
          runtime,
          'start',
          tc.dir,
        ],
        { ...process.env, _TSFIG_SYNC_FD: '3' },
        true,
      );
      if (!r.fd3.includes('"started"')) {
        exited.cancel();
        throw new Error(`strace start: ${r.fd3 || r.stderr}`);
      }
      await exited.done;
      const p = phasesOf(parseStrace(readFileSync(file, 'utf8')), runtime);
      if (p !== undefined) out.push(p);
    } finally {
      await destroy(tc);
    }
  }
  return out;
}

// ---- the run ---------------------------------------------------------------------------------------------------

/** Builds native/ of the working tree with the given commits' native/ changes reverse-applied. */
function buildWithout(commits: readonly string[], tmp: string): string {
  const dir = path.join(tmp, 'before');
  mkdirSync(dir);
  run('cp', ['-r', path.join(REPO, 'native/src'), path.join(REPO, 'native/Makefile'), dir]);
  for (const commit of commits) {
    const diff = run('git', ['-C', REPO, 'diff', `${commit}^`, commit, '--', 'native/src']);
    run('patch', ['-R', '-p3', '-d', path.join(dir, 'src')], undefined, diff);
  }
  run('make', ['-s', '-C', dir]);
  return path.join(dir, 'build', 'tsfig-runtime');
}

function leftovers(): string[] {
  const found: string[] = [];
  for (const ctrl of readdirSync('/sys/fs/cgroup')) {
    let names: string[] = [];
    try {
      names = readdirSync(path.join('/sys/fs/cgroup', ctrl));
    } catch {
      continue;
    }
    for (const n of names) if (n.startsWith(`${CGROUP_PREFIX}${process.pid}`)) found.push(`${ctrl}/${n}`);
  }
  return found;
}

function commitInfo(): string {
  const head = headCommit();
  const dirty = dirtyPaths({ paths: ['native/src', 'bench/start-profile.ts'] }).length;
  return dirty > 0 ? `${head}+dirty (${dirty} uncommitted paths under native/src)` : head;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/start-profile.ts needs root');
  const unified = '/sys/fs/cgroup/unified/cgroup.controllers';
  if (process.env.TSFIG_PROFILE_NS !== '1' && existsSync(unified) && readFileSync(unified, 'utf8').trim() !== '') {
    const child = spawn(
      'unshare',
      [
        '--mount',
        '--propagation',
        'private',
        '--',
        'sh',
        '-c',
        'umount -l /sys/fs/cgroup/unified && exec "$@"',
        'sh',
        process.execPath,
        ...process.execArgv,
        ...process.argv.slice(1),
      ],
      { stdio: 'inherit', env: { ...process.env, TSFIG_PROFILE_NS: '1' } },
    );
    child.on('exit', (code) => process.exit(code ?? 1));
    return;
  }
  const o = parseOptions(process.argv.slice(2));
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'tsfig-start-profile-'));
  const loadBefore = loadavg();
  try {
    lower = path.join(tmp, 'busybox');
    mkdirSync(lower);
    await makeBusyboxRootfs(lower);
    // Copies, so a rebuild of native/build during the run cannot swap a binary under a series.
    const runtimes = o.runtimes.map((r, i) => {
      const copy = path.join(tmp, `runtime-${i}-${r.label}`);
      run('cp', ['-p', r.path, copy]);
      return { label: r.label, path: copy };
    });
    if (o.without.length > 0) runtimes.unshift({ label: 'before', path: buildWithout(o.without, tmp) });
    const all: Series[] = runtimes.map((r) => tsfigSeries(r.label, r.path));
    let crunNote = '';
    if (o.crun) {
      all.push(crunSeries('crun', '`crun run` (no seccomp)', crunBundle(tmp, 'crun-plain', undefined)));
      try {
        all.push(
          crunSeries(
            'crun+seccomp',
            '`crun run` (Docker default seccomp)',
            crunBundle(tmp, 'crun-sec', dockerProfile(tmp)),
          ),
        );
      } catch (error) {
        crunNote = `crun with seccomp unavailable: ${String(error)}`;
      }
    }
    all.push(
      series('spawn', 'spawn `/bin/true` (harness floor)', async () => ({
        exited: (await timedSpawn('/bin/true', [], process.env, false)).exitMs,
      })),
    );
    const rounds = o.runs + o.warmup;
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < all.length; k++) {
        const s = all[(k + round) % all.length] as Series;
        try {
          const r = await s.sample();
          if (round < o.warmup) continue;
          for (const [part, ms] of Object.entries(r)) (s.samples[part] ??= []).push(ms);
        } catch (error) {
          s.failures.push(String(error));
          if (s.failures.length > 3) throw new Error(`${s.label} keeps failing: ${s.failures.join(' | ')}`);
        }
      }
      if ((round + 1) % 10 === 0) process.stderr.write(`round ${round + 1}/${rounds}\n`);
    }
    const phases: { label: string; rows: number[][] }[] = [];
    for (const r of o.phases > 0 ? runtimes : []) {
      phases.push({ label: r.label, rows: await profilePhases(r.label, r.path, o.phases, tmp) });
    }
    const loadAfter = loadavg();
    const left = leftovers();

    const crunCache = existsSync('/run/crun/.cache/seccomp')
      ? 'crun kept compiled filters in /run/crun/.cache/seccomp'
      : 'this crun compiles the profile on every run (no /run/crun/.cache/seccomp appeared)';
    const crunMedian = stats(all.find((s) => s.key === 'crun+seccomp')?.samples.exited ?? []).median;
    const lines: string[] = [];
    lines.push(
      `Command (as root, repo root): \`node --import tsx bench/start-profile.ts ${process.argv.slice(2).join(' ')}\``,
      '',
      `Commit \`${commitInfo()}\`, ${new Date().toISOString().slice(0, 19)}Z. Machine: ${os.cpus().length} CPUs ` +
        `(${os.cpus()[0]?.model.trim() ?? '?'}), kernel ${os.release()}, ${run('crun', ['--version']).split('\n')[0]}, ` +
        `node ${process.version}; load average ${loadBefore} before, ${loadAfter} after ` +
        '(a shared machine: other work ran at the same time, so absolute figures are noisy; the rows were ' +
        'interleaved round-robin so the noise hits them alike).',
      '',
      `${o.runs} runs per row after ${o.warmup} warm-ups. ms from \`spawn()\`; "started" = the \`started\` line on ` +
        'fd 3, "exited" = status.json renamed to "exited" (tsfig) or the exit of `crun run` (create, start, wait, ' +
        'delete). crun runs the same busybox dir as a read-only root (no overlay), 14 Docker capabilities, pid/net/' +
        'ipc/uts/mount/cgroup namespaces, v1 cgroups (the benchmark runs in a mount namespace without the cgroup2 ' +
        "mount, which crun 1.8 refuses on hybrid hosts). Its seccomp profile is Docker's default generated from " +
        `native/src/seccomp_profile.h; ${crunCache}.`,
      '',
      ...(o.without.length > 0
        ? [
            `"before" is native/ of this same tree with ${o.without.map((c) => `\`${c}\``).join(', ')} reverse-applied ` +
              '(`git diff C^ C -- native/src | patch -R`), built in a temp dir; every other row runs the binaries named. ' +
              'Those commits:',
            '',
            ...o.without.map((c) => `- \`${c}\` ${run('git', ['-C', REPO, 'log', '-1', '--format=%s', c]).trim()}`),
            '',
          ]
        : []),
      '| what | started: median | p10 | p90 | exited: median | p10 | p90 | min | max | exited / crun+seccomp |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    );
    for (const s of all) {
      const st = stats(s.samples.started ?? []);
      const ex = stats(s.samples.exited ?? []);
      const started = st.n > 0 ? `${f1(st.median)} | ${f1(st.p10)} | ${f1(st.p90)}` : '– | – | –';
      lines.push(
        `| ${s.label} | ${started} | ${f1(ex.median)} | ${f1(ex.p10)} | ${f1(ex.p90)} | ${f1(ex.min)} | ` +
          `${f1(ex.max)} | ${(ex.median / crunMedian).toFixed(2)}x |`,
      );
    }
    if (crunNote !== '') lines.push('', crunNote);
    const failures = all.filter((s) => s.failures.length > 0);
    for (const s of failures) lines.push('', `${s.label}: ${s.failures.length} failed runs, e.g. ${s.failures[0]}`);
    if (phases.length > 0) {
      lines.push(
        '',
        `Where the time goes: medians of ${o.phases} starts per runtime under \`strace -f -ttt -T --seccomp-bpf\` ` +
          '(only execve, clone, mkdir, openat, write, rename, mount, pivot_root, seccomp and prctl stop the ' +
          'tracee, which slows the syscall-heavy phases), phases cut at those syscalls:',
        '',
        `| phase | ${phases.map((p) => `${p.label} (ms)`).join(' | ')} |`,
        `| --- | ${phases.map(() => '---:').join(' | ')} |`,
      );
      PHASES.forEach((name, i) => {
        lines.push(`| ${name} | ${phases.map((p) => f1(stats(p.rows.map((r) => r[i] ?? NaN)).median)).join(' | ')} |`);
      });
    }
    lines.push('', left.length === 0 ? 'No cgroup was left behind.' : `Left behind: ${left.join(', ')}`);
    const markdown = lines.join('\n');
    console.log(markdown);
    if (o.write) updateSection(SECTION, markdown);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.stack : String(error));
  process.exit(1);
});
