import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isEngineError } from '../../engine/errors.js';
import {
  archiveLinkTarget,
  archiveMemberName,
  detectArchiveLayout,
  isAttestation,
  parseDockerManifest,
  tagFromAnnotations,
} from '../../engine/images/archive-format.js';

describe('archive format detection and parsing', () => {
  test('manifest.json is read first, then index.json', () => {
    assert.equal(detectArchiveLayout(['blobs/sha256/ab', 'index.json', 'manifest.json', 'oci-layout']), 'docker');
    assert.equal(detectArchiveLayout(['blobs/sha256/ab', 'index.json', 'oci-layout']), 'oci');
    assert.equal(detectArchiveLayout(['layer.tar', 'json']), undefined);
  });

  test('manifest.json items are checked', () => {
    const items = parseDockerManifest(
      JSON.stringify([{ Config: 'blobs/sha256/aa', RepoTags: null, Layers: ['blobs/sha256/bb'] }]),
    );
    assert.deepEqual(items, [{ Config: 'blobs/sha256/aa', RepoTags: [], Layers: ['blobs/sha256/bb'] }]);
    for (const bad of ['{', '{}', '[1]', '[{"Layers":[]}]', '[{"Config":"x","Layers":[1]}]', '[{"Config":"x"}]']) {
      assert.throws(
        () => parseDockerManifest(bad),
        (error: unknown) => isEngineError(error, 'invalid'),
        bad,
      );
    }
  });

  test('member names are normalised; absolute and .. names are refused naming the entry', () => {
    assert.equal(archiveMemberName('./blobs/sha256/ab'), 'blobs/sha256/ab');
    assert.equal(archiveMemberName('blobs/'), 'blobs');
    for (const bad of ['../x', 'blobs/../../x', '/etc/passwd', 'a/..']) {
      assert.throws(
        () => archiveMemberName(bad),
        (error: unknown) => isEngineError(error, 'invalid') && error.message.includes(`"${bad}"`),
      );
    }
    assert.equal(archiveLinkTarget('abc/layer.tar', '../def/layer.tar', false), 'def/layer.tar');
    assert.equal(archiveLinkTarget('abc/layer.tar', 'def/layer.tar', true), 'def/layer.tar');
    assert.throws(() => archiveLinkTarget('abc/layer.tar', '../../x', false), /links outside the archive/);
    assert.throws(() => archiveLinkTarget('abc/layer.tar', '/etc/passwd', false), /links outside the archive/);
  });

  test('tags come from the containerd name, else a ref.name that is a whole reference', () => {
    assert.equal(
      tagFromAnnotations({ 'io.containerd.image.name': 'docker.io/library/busybox:1.36' }),
      'docker.io/library/busybox:1.36',
    );
    assert.equal(tagFromAnnotations({ 'org.opencontainers.image.ref.name': 'app:v1' }), 'docker.io/library/app:v1');
    assert.equal(tagFromAnnotations({ 'org.opencontainers.image.ref.name': 'latest' }), undefined);
    assert.equal(tagFromAnnotations({ 'org.opencontainers.image.ref.name': 'Bad Name:x' }), undefined);
    assert.equal(tagFromAnnotations(undefined), undefined);
    assert.ok(
      isAttestation({ mediaType: 'x', digest: 'd', size: 1, platform: { os: 'unknown', architecture: 'unknown' } }),
    );
  });
});
