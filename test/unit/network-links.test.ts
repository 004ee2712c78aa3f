import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { linkEnv } from '../../engine/network/links.js';

describe('fig-style link environment', () => {
  test("a redis link gives exactly Docker's variables", () => {
    assert.deepEqual(
      linkEnv({
        name: '/web/redis',
        ip: '172.17.0.4',
        exposedPorts: [{ port: 6379, proto: 'tcp' }],
        env: ['PATH=/usr/bin', 'REDIS_VERSION=7.2', 'HOME=/root', 'HOSTNAME=4f1a2b3c4d5e', 'EMPTY='],
      }),
      [
        'REDIS_PORT=tcp://172.17.0.4:6379',
        'REDIS_PORT_6379_TCP=tcp://172.17.0.4:6379',
        'REDIS_PORT_6379_TCP_ADDR=172.17.0.4',
        'REDIS_PORT_6379_TCP_PORT=6379',
        'REDIS_PORT_6379_TCP_PROTO=tcp',
        'REDIS_NAME=/web/redis',
        'REDIS_ENV_REDIS_VERSION=7.2',
        'REDIS_ENV_EMPTY=',
      ],
    );
  });

  test('tcp first, consecutive ports become a range, aliases are upper-cased with _', () => {
    const env = linkEnv({
      name: '/app/my-db',
      ip: '10.0.0.2',
      exposedPorts: [
        { port: 53, proto: 'udp' },
        { port: 8001, proto: 'tcp' },
        { port: 8000, proto: 'tcp' },
      ],
    });
    assert.deepEqual(env, [
      'MY_DB_PORT=tcp://10.0.0.2:8000',
      'MY_DB_PORT_8000_TCP=tcp://10.0.0.2:8000',
      'MY_DB_PORT_8000_TCP_ADDR=10.0.0.2',
      'MY_DB_PORT_8000_TCP_PORT=8000',
      'MY_DB_PORT_8000_TCP_PROTO=tcp',
      'MY_DB_PORT_8001_TCP=tcp://10.0.0.2:8001',
      'MY_DB_PORT_8001_TCP_ADDR=10.0.0.2',
      'MY_DB_PORT_8001_TCP_PORT=8001',
      'MY_DB_PORT_8001_TCP_PROTO=tcp',
      'MY_DB_PORT_53_UDP=udp://10.0.0.2:53',
      'MY_DB_PORT_53_UDP_ADDR=10.0.0.2',
      'MY_DB_PORT_53_UDP_PORT=53',
      'MY_DB_PORT_53_UDP_PROTO=udp',
      'MY_DB_PORT_8000_TCP_START=tcp://10.0.0.2:8000',
      'MY_DB_PORT_8000_TCP_PORT_START=8000',
      'MY_DB_PORT_8000_TCP_END=tcp://10.0.0.2:8001',
      'MY_DB_PORT_8000_TCP_PORT_END=8001',
      'MY_DB_NAME=/app/my-db',
    ]);
    assert.deepEqual(linkEnv({ name: '/a/b', ip: '1.2.3.4', exposedPorts: [] }), ['B_NAME=/a/b']);
  });
});
