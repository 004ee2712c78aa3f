import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  buildAnswer,
  buildPtrAnswer,
  formatError,
  lookup,
  parseQuery,
  RCODE_NXDOMAIN,
  renderResolvConf,
  reverseLookup,
  upstreams,
} from '../../engine/network/dns.js';
import type { EndpointState, NetworkState } from '../../engine/network/types.js';

function query(name: string, type = 1, id = 0x1234): Buffer {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const header = Buffer.from([id >> 8, id & 255, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
  return Buffer.concat([header, ...labels, Buffer.from([0, 0, type, 0, 1])]);
}

function endpoint(containerId: string, ip: string, containerName: string, aliases: string[]): EndpointState {
  return {
    containerId,
    containerName,
    hostname: undefined,
    aliases,
    ip,
    mac: '',
    hostVeth: '',
    ifname: 'eth0',
    sandbox: '',
    ports: [],
  };
}

function network(gateway: string, endpoints: EndpointState[]): NetworkState {
  return {
    version: 1,
    id: gateway,
    name: gateway,
    driver: 'bridge',
    created: '',
    subnet: '',
    gateway,
    bridge: '',
    internal: false,
    labels: {},
    endpoints: Object.fromEntries(endpoints.map((e) => [e.containerId, e])),
  };
}

describe('embedded DNS wire format', () => {
  test('a query parses to a lower-case name, and an A answer has golden bytes', () => {
    const q = parseQuery(query('Web.Example'));
    assert.ok(q);
    assert.equal(q.name, 'web.example');
    assert.equal(q.type, 1);
    const answer = buildAnswer(q, ['172.18.0.2']);
    assert.equal(
      answer.toString('hex'),
      // id, QR|AA|RD|RA, 1 question, 1 answer; question; pointer to it, A, IN, TTL 600, 4 bytes, address
      '1234858000010001000000000357656207457861' + '6d706c650000010001' + 'c00c000100010000025800' + '04ac120002',
    );
    const nx = buildAnswer(q, [], RCODE_NXDOMAIN);
    assert.equal(nx.readUInt16BE(2) & 15, 3);
    assert.equal(nx.readUInt16BE(6), 0);
  });

  test('malformed messages are refused with FORMERR', () => {
    assert.equal(parseQuery(Buffer.from([1, 2, 3])), undefined);
    const response = query('a');
    response[2] = 0x81;
    assert.equal(parseQuery(response), undefined);
    assert.equal(formatError(Buffer.from([0xab, 0xcd, 0])).toString('hex'), 'abcd80810000000000000000');
  });

  test('names resolve per network: names, aliases, every replica; other networks do not see them', () => {
    const networks = [
      network('172.18.0.1', [
        endpoint('aaaaaaaaaaaaaaaa', '172.18.0.2', 'p-web-1', ['web']),
        endpoint('bbbbbbbbbbbbbbbb', '172.18.0.3', 'p-web-2', ['web']),
        endpoint('cccccccccccccccc', '172.18.0.4', 'p-db-1', ['db']),
      ]),
      network('172.19.0.1', []),
    ];
    assert.deepEqual(lookup(networks, '172.18.0.1', 'web'), ['172.18.0.2', '172.18.0.3']);
    assert.deepEqual(lookup(networks, '172.18.0.1', 'P-DB-1.'), ['172.18.0.4']);
    assert.deepEqual(lookup(networks, '172.18.0.1', 'aaaaaaaaaaaa'), ['172.18.0.2']);
    assert.equal(lookup(networks, '172.18.0.1', 'example.com'), undefined);
    assert.equal(lookup(networks, '172.19.0.1', 'web'), undefined);
  });

  test("a container resolves names of every network it is on, its queried network's first; others do not", () => {
    const networks = [
      network('172.18.0.1', [
        endpoint('aaaaaaaaaaaaaaaa', '172.18.0.2', 'p-app-1', ['app']),
        endpoint('bbbbbbbbbbbbbbbb', '172.18.0.3', 'p-web-1', ['web']),
      ]),
      network('172.19.0.1', [
        endpoint('aaaaaaaaaaaaaaaa', '172.19.0.2', 'p-app-1', ['app']),
        endpoint('cccccccccccccccc', '172.19.0.3', 'p-db-1', ['db', 'web']),
      ]),
    ];
    // app (on both) asks through its first network's gateway: db is on its second network.
    assert.deepEqual(lookup(networks, '172.18.0.1', 'db', '172.18.0.2'), ['172.19.0.3']);
    assert.equal(reverseLookup(networks, '172.18.0.1', '3.0.19.172.in-addr.arpa', '172.18.0.2'), 'p-db-1');
    // The network the query came in on wins for a name on both.
    assert.deepEqual(lookup(networks, '172.18.0.1', 'web', '172.18.0.2'), ['172.18.0.3']);
    // web is only on the first network: db stays out of its reach, and so does an unknown client.
    assert.equal(lookup(networks, '172.18.0.1', 'db', '172.18.0.3'), undefined);
    assert.equal(lookup(networks, '172.18.0.1', 'db', '10.9.9.9'), undefined);
    assert.equal(lookup(networks, '172.18.0.1', 'db'), undefined);
  });

  test('reverse lookups name the container; the PTR answer has golden bytes', () => {
    const networks = [network('172.18.0.1', [endpoint('aaaaaaaaaaaaaaaa', '172.18.0.2', 'p-web-1', ['web'])])];
    assert.equal(reverseLookup(networks, '172.18.0.1', '2.0.18.172.in-addr.arpa'), 'p-web-1');
    assert.equal(reverseLookup(networks, '172.18.0.1', '3.0.18.172.in-addr.arpa'), undefined);
    assert.equal(reverseLookup(networks, '172.19.0.1', '2.0.18.172.in-addr.arpa'), undefined);
    const q = parseQuery(query('2.0.18.172.in-addr.arpa', 12, 1));
    assert.ok(q);
    const answer = buildPtrAnswer(q, 'p-web-1');
    assert.equal(answer.readUInt16BE(6), 1);
    assert.equal(
      answer.subarray(answer.length - 21).toString('hex'),
      'c00c000c0001000002580009' + '07702d7765622d3100',
    );
  });

  test('resolv.conf points at the gateway and keeps the host search domains; upstreams from the host', () => {
    const host = 'search corp.example\nnameserver 127.0.0.53\nnameserver 10.0.0.2\noptions edns0\n';
    assert.equal(renderResolvConf('172.18.0.1', host), 'nameserver 172.18.0.1\nsearch corp.example\noptions ndots:0\n');
    assert.deepEqual(upstreams(host), ['127.0.0.53', '10.0.0.2']);
  });
});
