/**
 * The embedded resolver's process of one root (engine/network/dns-server.ts): one small detached process, started
 * with the first network and stopped with the last, that answers on each gateway's port 53; and the resolv.conf that
 * points a container at it. Part of NetworkManager (manager.ts).
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { rootlessNetns } from '../rootless/env.js';
import { acquireLock } from '../state/lock.js';
import type { EnginePaths } from '../state/paths.js';
import { ensureRunDir } from '../state/run-root.js';
import { dnsLockName, renderResolvConf } from './dns.js';
import type { NetworkState } from './types.js';
import { compareNatural } from '../state/compare.js';

export class DnsProcess {
  private readonly paths: EnginePaths;
  private readonly dns: false | { forward: boolean; upstreams: readonly string[] };
  /** Resolver processes this instance started (killed by stopDns even before they wrote their pid file). */
  private readonly dnsChildren = new Set<number>();
  /** The resolver start under way in this process (ensureDns). */
  private dnsStart: Promise<void> | undefined;

  /** dns: false disables the resolver; forward: false answers NXDOMAIN for other names; upstreams replace the host's. */
  constructor(paths: EnginePaths, dns: false | { forward: boolean; upstreams: readonly string[] }) {
    this.paths = paths;
    this.dns = dns;
  }

  /** resolv.conf of a container: the resolver on the gateway of its first network (eth0), host search domains. */
  async resolvConf(containerId: string, networks: readonly NetworkState[]): Promise<string | undefined> {
    const host = await fs.readFile('/etc/resolv.conf', 'utf8').catch(() => '');
    const first = networks
      .flatMap((n) => (n.endpoints[containerId] !== undefined ? [{ n, ep: n.endpoints[containerId] }] : []))
      .sort((a, b) => compareNatural(a.ep?.ifname ?? '', b.ep?.ifname ?? ''))[0];
    if (first === undefined || this.dns === false) return undefined;
    return renderResolvConf(first.n.gateway, host);
  }

  /** True when this root's resolver process runs (it holds its lock). */
  async dnsRunning(): Promise<boolean> {
    try {
      const lock = await acquireLock(dnsLockName(this.paths.rootId), { timeoutMs: 0 });
      await lock.release();
      return false;
    } catch {
      return true;
    }
  }

  /**
   * Starts the resolver unless it runs; does not wait for it (it binds each gateway as soon as it can). One resolver
   * per command: networks created in parallel (up of a project with two) each get here before the first
   * resolver is ready; a second one would lose the resolver's lock and exit, its pid left in dns.pid. Concurrent calls
   * share one start, later ones see the child this command started (alive: starting or running).
   */
  ensureDns(): Promise<void> {
    this.dnsStart ??= this.startDns().finally(() => (this.dnsStart = undefined));
    return this.dnsStart;
  }

  private async startDns(): Promise<void> {
    if (this.dns === false || this.dnsChildren.size > 0 || (await this.dnsRunning())) return;
    const here = fileURLToPath(import.meta.url);
    const server = resolverScript(here);
    const ext = path.extname(server);
    // From the sources (tsx) the resolver needs the same loader; from dist/ it is plain JS.
    const loader = ext === '.ts' ? ['--import', import.meta.resolve('tsx')] : [];
    await ensureRunDir(this.paths.runRoot, 0o711);
    const log = await fs.open(path.join(this.paths.runRoot, 'dns.log'), 'a');
    try {
      const args = [
        ...loader,
        server,
        this.paths.root,
        this.paths.runRoot,
        ...(this.dns.forward ? [] : ['--no-forward']),
        ...this.dns.upstreams.map((u) => `--upstream=${u}`),
      ];
      // rootless: the resolver listens on the bridges' gateways, in the session's network namespace
      const netns = rootlessNetns();
      const child =
        netns === undefined
          ? spawn(process.execPath, args, { detached: true, stdio: ['ignore', log.fd, log.fd] })
          : spawn('nsenter', [`--net=${netns}`, '--', process.execPath, ...args], {
              detached: true,
              stdio: ['ignore', log.fd, log.fd],
            });
      child.on('error', () => undefined);
      if (child.pid !== undefined) {
        const pid = child.pid;
        this.dnsChildren.add(pid);
        child.once('exit', () => this.dnsChildren.delete(pid));
        // Recorded at once (the resolver rewrites it when ready), so a command in another process that removes the
        // last network right after this one created it can still find the resolver and stop it.
        await fs.writeFile(path.join(this.paths.runRoot, 'dns.pid'), `${pid}\n`);
      }
      child.unref();
    } finally {
      await log.close();
    }
  }

  /**
   * Stops the resolver (SIGTERM) and waits until it is gone. Its processes are found by their command line, not only
   * by dns.pid: two commands that start a resolver at the same moment both write the file, and the one that loses the
   * lock (and exits) may write last, leaving the running resolver unnamed.
   */
  async stopDns(): Promise<void> {
    const pids = new Set([...this.dnsChildren, ...(await resolverPids(this.paths.root))]);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    for (let i = 0; i < 100 && pids.size > 0; i++) {
      for (const pid of pids) if (!(await isAlive(pid))) pids.delete(pid);
      if (pids.size > 0) await sleep(10);
    }
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

/** The resolver processes of the engine root `root`: `node [loader] …/dns-server.{js,ts} <root> …`. */
async function resolverPids(root: string): Promise<number[]> {
  const entries = await fs.readdir('/proc').catch(() => [] as string[]);
  const found: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = (await fs.readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0');
    const at = argv.findIndex((a) => /[/\\]dns-server\.[cm]?[jt]s$/.test(a));
    if (at >= 0 && argv[at + 1] === root) found.push(Number(entry));
  }
  return found;
}

/**
 * True while pid runs. A zombie counts as gone: the resolver is detached, so the host's init reaps it, and on some
 * hosts only a second or two later.
 */
async function isAlive(pid: number): Promise<boolean> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  if (stat === '') return false;
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

/**
 * The resolver's script beside the module at `here`: dns-server.ts from the sources, dns-server.js from dist/src/
 * and from the bundle (whose CLI is one cli.cjs; the resolver stays its own ES module file, dns-server.js).
 */
export function resolverScript(here: string): string {
  return path.join(path.dirname(here), `dns-server${path.extname(here) === '.ts' ? '.ts' : '.js'}`);
}
