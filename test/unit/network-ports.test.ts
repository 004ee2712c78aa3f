import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isEngineError } from '../../engine/errors.js';
import { expandPortSpec, findPortHolder, parsePortSpec, parseProcNet } from '../../engine/network/ports.js';

describe('port specs', () => {
  test('every docker -p form parses', () => {
    assert.deepEqual(parsePortSpec('8000'), {
      hostIp: '',
      hostPorts: undefined,
      containerPorts: { start: 8000, end: 8000 },
      proto: 'tcp',
    });
    assert.deepEqual(parsePortSpec('8000:80').hostPorts, { start: 8000, end: 8000 });
    assert.deepEqual(parsePortSpec('127.0.0.1:8000:80'), {
      hostIp: '127.0.0.1',
      hostPorts: { start: 8000, end: 8000 },
      containerPorts: { start: 80, end: 80 },
      proto: 'tcp',
    });
    assert.deepEqual(parsePortSpec('127.0.0.1::80'), {
      hostIp: '127.0.0.1',
      hostPorts: undefined,
      containerPorts: { start: 80, end: 80 },
      proto: 'tcp',
    });
    assert.equal(parsePortSpec('53:53/udp').proto, 'udp');
    assert.equal(parsePortSpec('0.0.0.0:53:53/UDP').hostIp, '');
  });

  test('ranges expand to one request per container port', () => {
    const requests = expandPortSpec(parsePortSpec('8000-8001:80-81'));
    assert.deepEqual(
      requests.map((r) => [r.hostPorts, r.containerPort]),
      [
        [{ start: 8000, end: 8000 }, 80],
        [{ start: 8001, end: 8001 }, 81],
      ],
    );
    const pick = expandPortSpec(parsePortSpec('8000-8010:80'));
    assert.deepEqual(pick, [{ hostIp: '', hostPorts: { start: 8000, end: 8010 }, containerPort: 80, proto: 'tcp' }]);
    assert.equal(expandPortSpec(parsePortSpec('80-82/udp')).length, 3);
  });

  test('bad specs are invalid errors naming the spec', () => {
    for (const spec of [
      '',
      'abc',
      '0',
      '70000',
      '8000-7999:80',
      '8000-8002:80-81',
      '1.2.3:80:80',
      '80/icmp',
      'a:b:c:d',
      ':80',
    ]) {
      assert.throws(
        () => parsePortSpec(spec),
        (error: unknown) => isEngineError(error, 'invalid') && error.message.includes(`"${spec}"`),
        spec,
      );
    }
    assert.throws(
      () => parsePortSpec('80/sctp'),
      (error: unknown) => isEngineError(error, 'unsupported'),
    );
  });

  test('/proc/net tables: tcp listeners only, udp every bound socket, v4-mapped v6 unmapped', () => {
    const tcp = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1',
      '   1: 0100007F:A000 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 999 1',
    ].join('\n');
    assert.deepEqual(parseProcNet(tcp, 'tcp', false), [{ proto: 'tcp', ip: '127.0.0.1', port: 8080, inode: 12345 }]);
    const tcp6 = [
      'header',
      '   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 0:0 0:0 0 0 0 77 1',
      '   1: 0000000000000000FFFF00000100007F:0051 00000000000000000000000000000000:0000 0A 0:0 0:0 0 0 0 78 1',
    ].join('\n');
    assert.deepEqual(parseProcNet(tcp6, 'tcp', true), [
      { proto: 'tcp', ip: '', port: 80, inode: 77 },
      { proto: 'tcp', ip: '127.0.0.1', port: 81, inode: 78 },
    ]);
    const udp = ['h', '  1: 00000000:14E9 00000000:0000 07 0:0 0:0 0 0 0 55 2'].join('\n');
    assert.deepEqual(parseProcNet(udp, 'udp', false), [{ proto: 'udp', ip: '', port: 5353, inode: 55 }]);
  });

  test('a wildcard on either side conflicts; different addresses and protocols do not', () => {
    const sockets = [{ proto: 'tcp' as const, ip: '127.0.0.1', port: 8080, inode: 1 }];
    const published = [
      {
        proto: 'udp' as const,
        hostIp: '',
        hostPort: 53,
        containerPort: 53,
        containerId: 'c1',
        containerName: 'dns',
        rootId: 'r',
      },
    ];
    assert.equal(findPortHolder('tcp', '', 8080, sockets, published)?.kind, 'socket');
    assert.equal(findPortHolder('tcp', '127.0.0.1', 8080, sockets, published)?.kind, 'socket');
    assert.equal(findPortHolder('tcp', '10.1.1.1', 8080, sockets, published), undefined);
    assert.equal(findPortHolder('udp', '', 8080, sockets, published), undefined);
    assert.equal(findPortHolder('udp', '127.0.0.1', 53, sockets, published)?.kind, 'container');
    assert.equal(findPortHolder('tcp', '127.0.0.1', 53, sockets, published), undefined);
  });
});
