// Docker's default seccomp profile (native/src/seccomp.c): compiles seccomp-probe.c against the native objects and
// runs every check in its own process, with the filter (Docker's default capability set unless said otherwise) and,
// as a baseline, without it: the kernel's own answer shows that an EPERM came from the filter.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const NATIVE = path.join(ROOT, 'native');
const BUILD = path.join(NATIVE, 'build');
const PROBE_SRC = path.join(ROOT, 'test', 'integration', 'seccomp-probe.c');
const CFLAGS = ['-std=c11', '-D_GNU_SOURCE', '-O2', '-Wall', '-Wextra', '-Werror', '-iquote', path.join(NATIVE, 'src')];

const EPERM = 1;
const ESRCH = 3;
const EACCES = 13;
const ENOSYS = 38;

const CAP = {
  CHOWN: 0,
  DAC_OVERRIDE: 1,
  FOWNER: 3,
  FSETID: 4,
  KILL: 5,
  SETGID: 6,
  SETUID: 7,
  SETPCAP: 8,
  NET_BIND_SERVICE: 10,
  NET_RAW: 13,
  SYS_CHROOT: 18,
  SYS_ADMIN: 21,
  MKNOD: 27,
  AUDIT_WRITE: 29,
  SETFCAP: 31,
} as const;

function capMask(caps: readonly number[]): string {
  return caps.reduce((mask, cap) => mask | (1n << BigInt(cap)), 0n).toString(16);
}

/** The 14 capabilities docker run grants by default. */
const DOCKER_DEFAULT_CAPS = [
  CAP.CHOWN,
  CAP.DAC_OVERRIDE,
  CAP.FSETID,
  CAP.FOWNER,
  CAP.MKNOD,
  CAP.NET_RAW,
  CAP.SETGID,
  CAP.SETUID,
  CAP.SETFCAP,
  CAP.SETPCAP,
  CAP.NET_BIND_SERVICE,
  CAP.SYS_CHROOT,
  CAP.KILL,
  CAP.AUDIT_WRITE,
];
const DEFAULT_MASK = capMask(DOCKER_DEFAULT_CAPS);
const SYS_ADMIN_MASK = capMask([...DOCKER_DEFAULT_CAPS, CAP.SYS_ADMIN]);
const NO_CAPS_MASK = '0';

interface ProbeResult {
  ret: number;
  errno: number;
  loadUs: number;
  /** With a cache mode: where the filter came from. */
  source?: 'built' | 'cached';
  /** filter-digest: FNV-1a of the program the kernel holds. */
  digest?: string;
}

const isRoot = process.getuid?.() === 0;
const isX64 = process.arch === 'x64';

/** Objects other engineers own may not link on their own; then only what the seccomp code needs. */
function nativeObjects(tmp: string): { all: string[]; minimal: string[] } {
  const wanted = ['error.o', 'seccomp.o'];
  if (!wanted.every((o) => existsSync(path.join(BUILD, o)))) {
    try {
      execFileSync('make', ['-s', '-C', NATIVE], { stdio: 'pipe' });
    } catch {
      // The tree may not build as a whole while others work in it: build just our two objects.
    }
  }
  if (!wanted.every((o) => existsSync(path.join(BUILD, o)))) {
    const minimal = ['error', 'seccomp'].map((name) => {
      const obj = path.join(tmp, `${name}.o`);
      execFileSync('cc', [...CFLAGS, '-c', '-o', obj, path.join(NATIVE, 'src', `${name}.c`)], { stdio: 'pipe' });
      return obj;
    });
    return { all: minimal, minimal };
  }
  const all = readdirSync(BUILD)
    .filter((f) => f.endsWith('.o') && f !== 'main.o')
    .map((f) => path.join(BUILD, f));
  return { all, minimal: wanted.map((o) => path.join(BUILD, o)) };
}

function buildProbe(tmp: string): string {
  const out = path.join(tmp, 'seccomp-probe');
  const { all, minimal } = nativeObjects(tmp);
  const link = (objects: string[]) =>
    execFileSync('cc', [...CFLAGS, '-o', out, PROBE_SRC, ...objects, '-lseccomp'], { stdio: 'pipe' });
  try {
    link(all);
  } catch {
    link(minimal);
  }
  return out;
}

describe('seccomp: Docker default profile', { skip: isRoot ? false : 'needs root' }, () => {
  let tmp = '';
  let probe = '';
  const loadTimes: number[] = [];

  before(() => {
    tmp = mkdtempSync(path.join(tmpdir(), 'tsfig-seccomp-'));
    probe = buildProbe(tmp);
  });

  after(() => {
    // The probe's own compiled-filter cache entries (keyed by its binary): nothing else uses them.
    if (probe !== '') for (const mask of [DEFAULT_MASK, NO_CAPS_MASK]) spawnSync(probe, ['getpid', mask, 'forget']);
    if (tmp !== '') rmSync(tmp, { recursive: true, force: true });
  });

  /**
   * Runs one check in its own process; mask 'none' runs it without a filter. With a mode, the filter goes through
   * the compiled-filter cache (seccomp-probe.c says how).
   */
  function run(check: string, mask: string = DEFAULT_MASK, mode?: string): ProbeResult {
    const res = spawnSync(probe, [check, mask, ...(mode === undefined ? [] : [mode])], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(res.signal, null, `${check}: killed by ${res.signal}; stderr: ${res.stderr}`);
    assert.equal(res.status, 0, `${check}: exit ${res.status}; stderr: ${res.stderr}`);
    const m = /ret=(-?\d+) errno=(\d+) load_us=(-?\d+)(?: source=(built|cached))?(?: digest=([0-9a-f]+))?/.exec(
      res.stdout,
    );
    assert.ok(m, `${check}: unexpected output ${JSON.stringify(res.stdout)}`);
    const result: ProbeResult = { ret: Number(m[1]), errno: Number(m[2]), loadUs: Number(m[3]) };
    if (m[4] !== undefined) result.source = m[4] as 'built' | 'cached';
    if (m[5] !== undefined) result.digest = m[5];
    if (result.loadUs >= 0) loadTimes.push(result.loadUs);
    return result;
  }

  function assertAllowed(check: string, mask?: string): void {
    const r = run(check, mask);
    assert.ok(r.ret >= 0, `${check} should be allowed, got errno ${r.errno}`);
  }

  /** The filter answers errno; the baseline shows the kernel alone would not have said the same. */
  function assertFiltered(check: string, errno: number, mask?: string): void {
    const filtered = run(check, mask);
    assert.equal(filtered.ret, -1, `${check} should fail under the filter`);
    assert.equal(filtered.errno, errno, `${check}: errno ${filtered.errno}, want ${errno}`);
    const baseline = run(check, 'none');
    assert.ok(
      baseline.ret >= 0 || baseline.errno !== errno,
      `${check}: the kernel itself answers errno ${errno}, so this check cannot tell the filter worked`,
    );
  }

  /** Allowed by the filter: whatever the kernel answers, it is not the filter's EPERM. */
  function assertNotFiltered(check: string, mask?: string): void {
    const r = run(check, mask);
    assert.ok(r.ret >= 0 || r.errno !== EPERM, `${check}: EPERM, the filter blocked it`);
  }

  test('the filter is installed (Seccomp: 2)', () => {
    assert.equal(run('seccomp-mode', 'none').ret, 0);
    assert.equal(run('seccomp-mode').ret, 2);
  });

  test('ordinary syscalls are allowed', () => {
    for (const check of ['getpid', 'open', 'fork', 'socket-unix', 'socket-inet']) assertAllowed(check);
  });

  test('personality: the query (0xffffffff) is allowed, other personas are not', () => {
    assertAllowed('personality-query');
    assertFiltered('personality-bsd', EPERM);
  });

  test('privileged syscalls return EPERM without the capabilities', () => {
    for (const check of ['keyctl', 'add_key', 'mount', 'unshare-newns', 'reboot', 'bpf', 'swapoff']) {
      assertFiltered(check, EPERM);
    }
    // kexec_load: the kernel may refuse with EPERM itself (kexec disabled, lockdown), so no baseline comparison.
    const kexec = run('kexec_load');
    assert.deepEqual([kexec.ret, kexec.errno], [-1, EPERM]);
  });

  test('clone with namespace flags is blocked without CAP_SYS_ADMIN; plain fork is not', () => {
    assertFiltered('clone-newns', EPERM);
    assertAllowed('fork');
  });

  test('clone3 returns ENOSYS without CAP_SYS_ADMIN (so libc falls back to clone)', () => {
    assertFiltered('clone3', ENOSYS);
  });

  test('socket: AF_VSOCK and AF_ALG are blocked', () => {
    assertFiltered('socket-vsock', EPERM);
    const alg = run('socket-alg');
    assert.deepEqual([alg.ret, alg.errno], [-1, EPERM]);
  });

  test('ptrace is allowed on kernels >= 4.8', () => {
    const r = run('ptrace');
    assert.deepEqual([r.ret, r.errno], [-1, ESRCH], 'bad request on pid 0: the kernel, not the filter, answers');
  });

  test('rules conditional on capabilities follow the mask', () => {
    // CAP_SYS_ADMIN opens mount, unshare, namespace clone and a real clone3.
    for (const check of ['unshare-newns', 'mount', 'clone-newns']) assertNotFiltered(check, SYS_ADMIN_MASK);
    const clone3 = run('clone3', SYS_ADMIN_MASK);
    assert.notEqual(clone3.errno, ENOSYS, 'clone3 reaches the kernel with CAP_SYS_ADMIN');
    assert.notEqual(clone3.errno, EPERM);
    // chroot needs CAP_SYS_CHROOT, which the default set has.
    assertAllowed('chroot');
    assertFiltered('chroot', EPERM, NO_CAPS_MASK);
  });

  test('the i386 and x32 ABIs are covered by the filter, not killed', { skip: !isX64 && 'x86_64 only' }, () => {
    // A kernel without IA32 emulation (ia32_emulation=0) answers int 0x80 with SIGSEGV even with no filter: then
    // there is no i386 ABI to cover.
    const native = spawnSync(probe, ['i386-getpid', 'none'], { encoding: 'utf8', timeout: 20_000 });
    if (native.signal !== 'SIGSEGV' && run('i386-getpid', 'none').ret >= 0) {
      assertAllowed('i386-getpid');
      assertFiltered('i386-keyctl', EPERM);
    }
    // Kernels without CONFIG_X86_X32_ABI answer ENOSYS; the filter must let the call through to say so.
    assertNotFiltered('x32-getpid');
  });

  test('without no_new_privs the kernel needs CAP_SYS_ADMIN to take the filter', () => {
    assert.equal(run('load-without-sys-admin').errno, EACCES);
    assert.equal(run('load-with-nnp').ret, 2);
  });

  test('a filter from the compiled-filter cache is the same program and behaves the same', () => {
    const fresh = run('seccomp-mode', DEFAULT_MASK, 'fresh');
    assert.deepEqual([fresh.source, fresh.ret], ['built', 2], 'a missing entry is built, stored and loaded');
    // The program the kernel holds, read back with PTRACE_SECCOMP_GET_FILTER: libseccomp's own load vs the cache.
    const direct = run('filter-digest', DEFAULT_MASK, 'built');
    const cached = run('filter-digest', DEFAULT_MASK, 'cached');
    assert.equal(cached.source, 'cached');
    assert.ok(direct.ret > 100, `a real program (${direct.ret} instructions)`);
    assert.deepEqual([cached.ret, cached.digest], [direct.ret, direct.digest], 'the very same instructions');
    for (const [check, errno] of [
      ['keyctl', EPERM],
      ['clone3', ENOSYS],
      ['clone-newns', EPERM],
      ['socket-vsock', EPERM],
    ] as const) {
      const r = run(check, DEFAULT_MASK, 'cached');
      assert.deepEqual([r.source, r.ret, r.errno], ['cached', -1, errno], check);
    }
    assert.deepEqual(
      [run('seccomp-mode', DEFAULT_MASK, 'cached').ret, run('fork', DEFAULT_MASK, 'cached').ret],
      [2, 0],
    );
    // The caps mask is part of the key: without CAP_SYS_CHROOT, chroot is refused, from its own entry.
    assert.equal(run('chroot', NO_CAPS_MASK, 'fresh').errno, EPERM);
    const chroot = run('chroot', NO_CAPS_MASK, 'cached');
    assert.deepEqual([chroot.source, chroot.ret, chroot.errno], ['cached', -1, EPERM]);
    assertAllowed('chroot');
  });

  test('a damaged or loosened cache entry is rebuilt, never loaded', () => {
    for (const damage of ['damage-flip', 'damage-truncate', 'damage-mode']) {
      const r = run('keyctl', DEFAULT_MASK, damage);
      assert.deepEqual([r.source, r.ret, r.errno], ['built', -1, EPERM], damage);
      assert.equal(run('clone3', DEFAULT_MASK, 'cached').errno, ENOSYS, `${damage}: the rebuilt entry is used`);
    }
  });

  test('load time', (t) => {
    assert.ok(loadTimes.length > 0);
    const sorted = [...loadTimes].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)] ?? 0;
    t.diagnostic(
      `build+load of the filter: median ${median} µs, min ${sorted[0]} µs, max ${sorted.at(-1)} µs over ${sorted.length} runs`,
    );
  });
});
