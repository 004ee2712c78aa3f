import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  familiarReference,
  familiarize,
  formatReference,
  parseReference,
  parseTagReference,
} from '../../engine/images/reference.js';

const HEX = 'a'.repeat(64);

describe('image references', () => {
  test('a bare name is an official docker.io image', () => {
    const ref = parseReference('busybox');
    assert.deepEqual(ref, { domain: 'docker.io', path: 'library/busybox', tag: undefined, digest: undefined });
    assert.equal(formatReference(parseTagReference('busybox')), 'docker.io/library/busybox:latest');
    assert.equal(familiarReference(parseTagReference('busybox')), 'busybox:latest');
  });

  test('user repositories keep their namespace on docker.io', () => {
    const ref = parseReference('user/app:v1.2-rc_3');
    assert.equal(ref.domain, 'docker.io');
    assert.equal(ref.path, 'user/app');
    assert.equal(ref.tag, 'v1.2-rc_3');
    assert.equal(familiarReference(ref), 'user/app:v1.2-rc_3');
  });

  test('a first component with a dot, a port or localhost is a registry', () => {
    assert.equal(parseReference('localhost/app').domain, 'localhost');
    const withPort = parseReference('localhost:5000/team/app:dev');
    assert.deepEqual([withPort.domain, withPort.path, withPort.tag], ['localhost:5000', 'team/app', 'dev']);
    const dotted = parseReference('registry.example.com/app');
    assert.equal(familiarReference(dotted), 'registry.example.com/app');
    assert.equal(parseReference('[::1]:5000/app').domain, '[::1]:5000');
  });

  test('index.docker.io is docker.io', () => {
    assert.equal(formatReference(parseReference('index.docker.io/library/busybox:1')), 'docker.io/library/busybox:1');
    assert.equal(familiarize('docker.io/library/busybox:1'), 'busybox:1');
    assert.equal(familiarize('docker.io/user/x:1'), 'user/x:1');
  });

  test('a digest may follow the tag', () => {
    const ref = parseReference(`busybox:1.36@sha256:${HEX}`);
    assert.equal(ref.tag, '1.36');
    assert.equal(ref.digest, `sha256:${HEX}`);
    assert.equal(familiarReference(ref), `busybox:1.36@sha256:${HEX}`);
  });

  test('separators inside path components follow the grammar', () => {
    for (const ok of ['a.b', 'a_b', 'a__b', 'a---b', 'a0/b-1/c.d']) assert.doesNotThrow(() => parseReference(ok));
    for (const bad of ['a..b', 'a___b', '-a', 'a-', '_a', 'a.']) {
      assert.throws(() => parseReference(bad), /path component/);
    }
  });

  test('each broken rule is named', () => {
    const cases: [string, RegExp][] = [
      ['', /it is empty/],
      ['Busybox', /must be lowercase/],
      ['busybox:', /tag ""/],
      ['busybox:.x', /tag ".x"/],
      [`busybox:${'t'.repeat(129)}`, /tag/],
      ['busybox@sha256:abc', /sha256 digest|ALGORITHM:HEX/],
      [`busybox@sha256:${'A'.repeat(64)}`, /64 lowercase hex/],
      [HEX, /64-character hexadecimal/],
      ['a//b', /empty component/],
      ['bad host:1/x', /whitespace/],
      ['host:abc/x', /not a valid registry host/],
      [`${'a'.repeat(256)}`, /longer than 255/],
      [':tag', /repository name is empty/],
    ];
    for (const [input, rule] of cases) {
      assert.throws(
        () => parseReference(input),
        (error: Error) => rule.test(error.message) && error.message.includes(`"${input}"`),
        input,
      );
    }
  });

  test('a tag reference refuses digests and defaults to latest', () => {
    assert.equal(parseTagReference('app').tag, 'latest');
    assert.throws(() => parseTagReference(`app@sha256:${HEX}`), /cannot contain a digest/);
  });
});
