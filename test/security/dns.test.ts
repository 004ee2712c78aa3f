// Item 5 of issue #15. The embedded resolver forwards names that are not the project's to an upstream resolver (here a
// fake one on 127.0.0.1, so nothing leaves the host):
// - never for an `internal: true` network (CVE-2024-29018: its containers would reach the outside through DNS);
// - it accepts an upstream reply only from the upstream's address and port, with the query's id and question: a
//   local process flooding the forwarding socket with forged replies for every id, and an upstream reply to another
//   question, are dropped.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeTestEngine, NEEDS_ROOT, runCli, type TestEngine } from '../helpers/engine.js';

/** Fake upstream: to each A query, first a reply to another question (198.18.66.66), then after 300 ms the real one. */
const UPSTREAM_PY = `
import socket, struct, threading, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('127.0.0.1', 0))
print(s.getsockname()[1], flush=True)
def reply(q, question, ip):
    r = q[:2] + struct.pack('>HHHHH', 0x8180, 1, 1, 0, 0) + question
    return r + struct.pack('>HHHIH', 0xc00c, 1, 1, 60, 4) + socket.inet_aton(ip)
def later(q, peer, question):
    time.sleep(0.3)
    s.sendto(reply(q, question, '198.18.99.99'), peer)
while True:
    q, peer = s.recvfrom(2048)
    end = 12
    while q[end] != 0: end += q[end] + 1
    end += 5
    s.sendto(reply(q, b'\\x05other\\x07example\\x00\\x00\\x01\\x00\\x01', '198.18.66.66'), peer)
    threading.Thread(target=later, args=(q, peer, q[12:end])).start()
`;

/** Forger: floods every UDP port given on stdin lines of 127.0.0.1 with replies for all 65536 ids (198.18.77.77). */
const FORGER_PY = `
import socket, struct, sys
name = sys.argv[1]
question = b''.join(bytes([len(p)]) + p.encode() for p in name.split('.')) + b'\\x00\\x00\\x01\\x00\\x01'
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
ports = [int(p) for p in sys.argv[2:]]
for _ in range(3):
    for i in range(65536):
        r = struct.pack('>HHHHHH', i, 0x8180, 1, 1, 0, 0) + question
        r += struct.pack('>HHHIH', 0xc00c, 1, 1, 60, 4) + socket.inet_aton('198.18.77.77')
        for port in ports: s.sendto(r, ('127.0.0.1', port))
`;

describe('the embedded resolver against hostile containers and local processes', { skip: NEEDS_ROOT }, () => {
  let t: TestEngine;
  let upstream: ChildProcess;
  let env: NodeJS.ProcessEnv;
  let project: string;

  before(async () => {
    t = await makeTestEngine({ debian: true });
    await writeFile(path.join(t.dir, 'upstream.py'), UPSTREAM_PY);
    await writeFile(path.join(t.dir, 'forger.py'), FORGER_PY);
    upstream = spawn('python3', [path.join(t.dir, 'upstream.py')], { stdio: ['ignore', 'pipe', 'inherit'] });
    const port = await new Promise<string>((resolve) =>
      upstream.stdout?.once('data', (data: Buffer) => resolve(data.toString().trim())),
    );
    env = { ...t.env, TSFIG_DNS_FORWARD: '1', TSFIG_DNS_UPSTREAMS: `127.0.0.1:${port}` };
    project = path.join(t.dir, 'proj');
    await mkdir(project);
    await writeFile(
      path.join(project, 'tsfig.yml'),
      [
        'services:',
        '  inside:',
        '    image: tsfig/debian:bookworm',
        '    command: ["sleep", "600"]',
        '    networks: [closed]',
        '  outside:',
        '    image: tsfig/debian:bookworm',
        '    command: ["sleep", "600"]',
        '    networks: [open]',
        'networks:',
        '  closed:',
        '    internal: true',
        '  open: {}',
        '',
      ].join('\n'),
    );
    const up = await runCli(['up', '-d'], env, { cwd: project });
    assert.equal(up.code, 0, up.stderr);
  });

  after(async () => {
    await runCli(['down', '-t', '1'], env, { cwd: project }).catch(() => undefined);
    upstream.kill('SIGKILL');
    await t.cleanup();
  });

  /** getent hosts name in service's container: the addresses, or '' when it does not resolve. */
  async function resolve(service: string, name: string): Promise<string> {
    const result = await runCli(['exec', '-T', service, 'getent', 'ahostsv4', name], env, { cwd: project });
    return [...new Set(result.stdout.split('\n').map((line) => line.split(/\s+/)[0] ?? ''))].filter(Boolean).join(' ');
  }

  test('an internal network resolves project names only; an external one forwards (control)', async () => {
    let own = '';
    for (let i = 0; i < 50 && own === ''; i++) {
      own = await resolve('inside', 'inside');
      if (own === '') await new Promise((r) => setTimeout(r, 200));
    }
    assert.match(own, /^\d+\.\d+\.\d+\.\d+$/, 'the project name resolves on the internal network');
    assert.equal(await resolve('inside', 'leak.example'), '', 'an outside name must not be forwarded');
    assert.equal(await resolve('outside', 'fine.example'), '198.18.99.99');
  });

  test("forged replies (wrong source, wrong question) are dropped; the upstream's real answer wins", async () => {
    // the resolver's forwarding socket: the UDP ports on 127.0.0.1 / 0.0.0.0 held by the dns-server process
    const pid = execFileSync('cat', [path.join(t.dir, 'run', 'dns.pid')], { encoding: 'utf8' }).trim();
    const ss = execFileSync('ss', ['-Hunap'], { encoding: 'utf8' });
    const ports = ss
      .split('\n')
      .filter((line) => line.includes(`pid=${pid},`))
      .map((line) => /(?:0\.0\.0\.0|\*|127\.0\.0\.1):(\d+)\s/.exec(line)?.[1])
      .filter((port): port is string => port !== undefined && port !== '53');
    assert.ok(ports.length > 0, `no forwarding socket of pid ${pid} in:\n${ss}`);
    const forger = spawn('python3', [path.join(t.dir, 'forger.py'), 'forged.example', ...ports], { stdio: 'ignore' });
    try {
      const answer = await resolve('outside', 'forged.example');
      assert.equal(answer, '198.18.99.99');
    } finally {
      forger.kill('SIGKILL');
    }
  });
});
