import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { specFromFlags } from '../../src/cli/commands/container.js';
import { relativeTime, renderTable } from '../../src/cli/table.js';
import { parseBytes, parseCpus } from '../../src/cli/units.js';

describe('container flags', () => {
  test('docker run flags become a container spec', () => {
    process.env.TSFIG_TEST_PASSTHROUGH = 'from-host';
    const spec = specFromFlags(
      'tsfig/busybox',
      ['sh', '-c', 'true'],
      {
        env: ['A=1', 'TSFIG_TEST_PASSTHROUGH', 'TSFIG_TEST_UNSET_VARIABLE'],
        memory: '64m',
        cpus: '0.5',
        pidsLimit: '20',
        ulimit: ['nofile=100:200'],
        label: ['a=b'],
        securityOpt: ['no-new-privileges'],
        logOpt: ['max-size=1k', 'max-file=3'],
        init: true,
        tty: true,
      },
      [],
    );
    assert.deepEqual(spec.cmd, ['sh', '-c', 'true']);
    assert.deepEqual(spec.env, ['A=1', 'TSFIG_TEST_PASSTHROUGH=from-host']);
    assert.equal(spec.memory, 64 * 1024 * 1024);
    assert.equal(spec.nanoCpus, 5e8);
    assert.equal(spec.pidsLimit, 20);
    assert.deepEqual(spec.ulimits, [{ name: 'nofile', soft: 100, hard: 200 }]);
    assert.deepEqual(spec.labels, { a: 'b' });
    assert.equal(spec.noNewPrivileges, true);
    assert.equal(spec.logMaxSize, 1024);
    assert.equal(spec.logMaxFiles, 3);
    assert.equal(spec.network, 'none');
    assert.equal(spec.init, true);
  });

  test('bad flag values name the flag', () => {
    assert.throws(() => specFromFlags('i', [], { memory: 'lots' }, []), /--memory: invalid size "lots"/);
    assert.throws(() => specFromFlags('i', [], { ulimit: ['nofile'] }, []), /--ulimit: invalid value/);
    assert.throws(() => specFromFlags('i', [], { securityOpt: ['apparmor=x'] }, []), /--security-opt: unsupported/);
    assert.throws(
      () => specFromFlags('i', [], { publish: ['80'] }, []),
      /ports cannot be published with --network none/,
    );
    assert.throws(
      () => specFromFlags('i', [], { network: 'host', ip: '10.0.0.2' }, []),
      /--ip and --network-alias need/,
    );
    assert.throws(() => specFromFlags('i', [], { addHost: ['nocolon'] }, []), /--add-host: invalid value/);
    assert.throws(() => parseCpus('-1'), /--cpus: invalid value/);
  });

  test('a named network carries ip, aliases and published ports; -P publishes the exposed ones', () => {
    const spec = specFromFlags(
      'i',
      [],
      {
        network: 'front',
        ip: '172.30.0.9',
        networkAlias: ['db'],
        publish: ['127.0.0.1:8080:80'],
        publishAll: true,
        addHost: ['gw:10.1.1.1'],
      },
      [],
      ['6379/tcp'],
    );
    assert.deepEqual(spec.networks, [{ name: 'front', ip: '172.30.0.9', aliases: ['db'] }]);
    assert.deepEqual(spec.ports, ['127.0.0.1:8080:80', '6379/tcp']);
    assert.deepEqual(spec.extraHosts, ['10.1.1.1\tgw']);
    assert.equal(spec.network, undefined);
  });

  test('sizes use binary units', () => {
    assert.equal(parseBytes('1g', '-m'), 1024 ** 3);
    assert.equal(parseBytes('512k', '-m'), 512 * 1024);
    assert.equal(parseBytes('100', '-m'), 100);
    assert.equal(parseBytes('1.5m', '-m'), 1572864);
  });
});

describe('tables', () => {
  test('columns are padded to the widest cell', () => {
    assert.equal(renderTable(['A', 'BB'], [['xxx', 'y']]), 'A     BB\nxxx   y\n');
  });

  test('relative times read like docker', () => {
    const now = Date.parse('2026-01-01T01:00:00Z');
    assert.equal(relativeTime('2026-01-01T00:59:57Z', true, now), '3 seconds ago');
    assert.equal(relativeTime('2026-01-01T00:59:00Z', true, now), 'About a minute ago');
    assert.equal(relativeTime('2026-01-01T00:00:00Z', false, now), 'About an hour');
  });
});
