/**
 * The embedded resolver of one engine root, run as its own small detached process (like aardvark-dns):
 * `node dns-server.js <root> <runRoot> [--no-forward] [--upstream=IP:PORT...]`. Started and stopped by NetworkManager; see README.md.
 * It holds the lock `tsfig-dns-<rootId>` for its whole life (that lock is how others know it runs) and exits by
 * itself once its root has had no network for a few seconds, so it can never outlive its networks for long.
 */
import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import { promises as fs, watch } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { readJson, writeFileAtomic } from '../state/atomic.js';
import { acquireLock, type Lock } from '../state/lock.js';
import { enginePaths } from '../state/paths.js';
import {
  buildAnswer,
  buildPtrAnswer,
  dnsLockName,
  reverseLookup,
  TYPE_PTR,
  formatError,
  lookup,
  parseQuery,
  RCODE_NXDOMAIN,
  RCODE_SERVFAIL,
  TYPE_A,
  upstreams,
  isUpstreamReply,
  mayForward,
  type DnsQuery,
} from './dns.js';
import type { NetworkState } from './types.js';

interface Listener {
  readonly udp: dgram.Socket;
  readonly tcp: net.Server;
}

function log(message: string): void {
  process.stderr.write(`${new Date().toISOString()} tsfig-dns ${message}\n`);
}

async function main(): Promise<void> {
  const [root, runRoot, ...flags] = process.argv.slice(2);
  if (root === undefined || runRoot === undefined) throw new Error('usage: dns-server <root> <runRoot> [--no-forward]');
  const forward = !flags.includes('--no-forward');
  const paths = enginePaths(root, { TSFIG_RUN_ROOT: runRoot });
  let lock: Lock;
  try {
    lock = await acquireLock(dnsLockName(paths.rootId), { timeoutMs: 0 });
  } catch {
    return; // another resolver of this root runs
  }
  await writeFileAtomic(path.join(paths.runRoot, 'dns.pid'), `${process.pid}\n`);
  log(`started for ${root}, forwarding ${forward ? 'on' : 'off'}`);

  let networks: NetworkState[] = [];
  let emptySince: number | undefined;
  const listeners = new Map<string, Listener>();
  const resolvConf = await fs.readFile('/etc/resolv.conf', 'utf8').catch(() => '');
  const given = flags.filter((f) => f.startsWith('--upstream=')).map((f) => f.slice('--upstream='.length));
  const servers = (given.length > 0 ? given : upstreams(resolvConf)).map((s) => {
    const [host = '', port = '53'] = s.split(':');
    return { host, port: Number(port) };
  });
  const upstream = dgram.createSocket('udp4');
  interface Pending {
    readonly reply: (answer: Buffer) => void;
    readonly original: number;
    readonly timer: NodeJS.Timeout;
    readonly query: DnsQuery;
    readonly server: { readonly host: string; readonly port: number };
  }
  const pending = new Map<number, Pending>();
  upstream.on('message', (message, from) => {
    if (message.length < 2) return;
    const id = message.readUInt16BE(0);
    const entry = pending.get(id);
    // only the server asked, from its address and port, with the id and the question sent (else: forged, dropped)
    if (entry === undefined || !isUpstreamReply(message, from, entry.server, id, entry.query)) return;
    pending.delete(id);
    clearTimeout(entry.timer);
    message.writeUInt16BE(entry.original, 0);
    entry.reply(message);
  });
  upstream.on('error', (error) => log(`upstream socket: ${error.message}`));

  const answer = (message: Buffer, gateway: string, client: string, reply: (answer: Buffer) => void): void => {
    const query = parseQuery(message);
    if (query === undefined) {
      reply(formatError(message));
      return;
    }
    if (query.type === TYPE_PTR) {
      const target = reverseLookup(networks, gateway, query.name, client);
      if (target !== undefined) {
        reply(buildPtrAnswer(query, target));
        return;
      }
    }
    const found = lookup(networks, gateway, query.name, client);
    if (found !== undefined) {
      // Known container names: A records; other types get an empty NOERROR (IPv4-only networks).
      reply(buildAnswer(query, query.type === TYPE_A ? found : []));
      return;
    }
    const server = servers[0];
    if (!forward || !mayForward(networks, gateway)) {
      // an internal network's containers get project names only: nothing leaves through DNS (CVE-2024-29018)
      reply(buildAnswer(query, [], RCODE_NXDOMAIN, true));
      return;
    }
    if (server === undefined || pending.size >= 1024) {
      reply(buildAnswer(query, [], RCODE_SERVFAIL, false));
      return;
    }
    let id = randomInt(65536); // unpredictable: a forged reply must guess it
    while (pending.has(id)) id = (id + 1) % 65536;
    const copy = Buffer.from(message);
    copy.writeUInt16BE(id, 0);
    const timer = setTimeout(() => {
      pending.delete(id);
      reply(buildAnswer(query, [], RCODE_SERVFAIL, false));
    }, 5000);
    pending.set(id, { reply, original: query.id, timer, query, server });
    upstream.send(copy, server.port, server.host);
  };

  const listen = (gateway: string): Promise<Listener | undefined> =>
    new Promise((resolve) => {
      const udp = dgram.createSocket({ type: 'udp4', reuseAddr: true });
      const tcp = net.createServer((socket) => {
        let buffered = Buffer.alloc(0);
        socket.on('error', () => socket.destroy());
        socket.setTimeout(10_000, () => socket.destroy());
        socket.on('data', (chunk: Buffer) => {
          buffered = Buffer.concat([buffered, chunk]);
          while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
            const message = buffered.subarray(2, 2 + buffered.readUInt16BE(0));
            buffered = buffered.subarray(2 + message.length);
            answer(Buffer.from(message), gateway, socket.remoteAddress ?? '', (out) => {
              const length = Buffer.alloc(2);
              length.writeUInt16BE(out.length, 0);
              if (!socket.destroyed) socket.write(Buffer.concat([length, out]));
            });
          }
        });
      });
      const fail = (error: Error): void => {
        log(`cannot listen on ${gateway}:53: ${error.message}`);
        udp.close();
        tcp.close();
        resolve(undefined);
      };
      udp.once('error', fail);
      udp.bind(53, gateway, () => {
        udp.off('error', fail);
        udp.on('error', (error) => log(`udp ${gateway}: ${error.message}`));
        udp.on('message', (message, peer) =>
          answer(message, gateway, peer.address, (out) => udp.send(out, peer.port, peer.address)),
        );
        tcp.once('error', fail);
        tcp.listen({ port: 53, host: gateway }, () => {
          tcp.off('error', fail);
          resolve({ udp, tcp });
        });
      });
    });

  const stop = (code: number): void => {
    for (const l of listeners.values()) {
      l.udp.close();
      l.tcp.close();
    }
    upstream.close();
    void fs.rm(path.join(paths.runRoot, 'dns.pid'), { force: true }).finally(() => {
      void lock.release().finally(() => process.exit(code));
    });
  };

  let syncing = false;
  let again = false;
  const sync = async (): Promise<void> => {
    // A change seen while a pass reads the state is not dropped: the pass runs once more when it ends (it could have
    // read the file before the change), instead of waiting for the next poll.
    if (syncing) {
      again = true;
      return;
    }
    syncing = true;
    try {
      await syncOnce();
      while (again) {
        again = false;
        await syncOnce();
      }
    } finally {
      syncing = false;
    }
  };
  const syncOnce = async (): Promise<void> => {
    const files = await fs.readdir(paths.networks).catch(() => [] as string[]);
    const loaded: NetworkState[] = [];
    for (const file of files) {
      if (file.startsWith('.') || !file.endsWith('.json')) continue;
      const state = await readJson<NetworkState>(path.join(paths.networks, file)).catch(() => undefined);
      if (state !== undefined) loaded.push(state);
    }
    networks = loaded;
    const gateways = new Set(loaded.map((n) => n.gateway));
    for (const [gateway, l] of listeners) {
      if (gateways.has(gateway)) continue;
      l.udp.close();
      l.tcp.close();
      listeners.delete(gateway);
    }
    for (const gateway of gateways) {
      if (listeners.has(gateway)) continue;
      const l = await listen(gateway);
      if (l !== undefined) listeners.set(gateway, l);
    }
    if (loaded.length > 0) emptySince = undefined;
    else emptySince ??= Date.now();
    if (emptySince !== undefined && Date.now() - emptySince > 3000) {
      log('no network left; exiting');
      stop(0);
    }
  };

  process.on('SIGTERM', () => stop(0));
  process.on('SIGINT', () => stop(0));
  // Not mkdir -p: a resolver starting late, after its root was removed (a test's temp root), must not re-create it.
  try {
    await fs.mkdir(paths.networks);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  watch(paths.networks, () => void sync()).on('error', () => undefined);
  // Also poll: a bridge gets its address after the state is written (EADDRNOTAVAIL until then).
  setInterval(() => void sync(), 1000);
  await sync();
}

main().catch((error: unknown) => {
  log(`fatal: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
});
