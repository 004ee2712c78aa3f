import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isEngineError } from '../../engine/errors.js';
import {
  MEDIA,
  goArch,
  layerCompression,
  parseManifest,
  parsePlatform,
  selectPlatform,
  sha256Digest,
  type Descriptor,
} from '../../engine/registry/manifest.js';

const D = (n: number): string => `sha256:${String(n).repeat(64).slice(0, 64)}`;

function entry(platform: Descriptor['platform'], n: number, annotations?: Record<string, string>): Descriptor {
  return { mediaType: MEDIA.ociManifest, digest: D(n), size: 100, platform, annotations };
}

describe('parseManifest', () => {
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA.dockerManifest,
    config: { mediaType: MEDIA.dockerConfig, digest: D(1), size: 10 },
    layers: [{ mediaType: MEDIA.dockerLayerGzip, digest: D(2), size: 20 }],
  };

  test('Docker v2 schema 2 and OCI manifests, by body mediaType or Content-Type', () => {
    const parsed = parseManifest(Buffer.from(JSON.stringify(manifest)), `${MEDIA.dockerManifest}; charset=utf-8`);
    assert.equal(parsed.kind, 'manifest');
    assert.equal(parsed.kind === 'manifest' && parsed.layers[0]?.digest, D(2));
    const { mediaType: _m, ...oci } = manifest;
    const parsedOci = parseManifest(Buffer.from(JSON.stringify(oci)), MEDIA.ociManifest);
    assert.equal(parsedOci.mediaType, MEDIA.ociManifest);
  });

  test('indexes and manifest lists', () => {
    const list = {
      schemaVersion: 2,
      mediaType: MEDIA.dockerList,
      manifests: [entry({ os: 'linux', architecture: 'amd64' }, 3)],
    };
    const parsed = parseManifest(Buffer.from(JSON.stringify(list)));
    assert.equal(parsed.kind, 'index');
    const { mediaType: _m, ...bare } = list;
    assert.equal(parseManifest(Buffer.from(JSON.stringify(bare))).kind, 'index');
  });

  test('refusals: mediaType vs Content-Type, schema 1, bad digests, not JSON', () => {
    assert.throws(
      () => parseManifest(Buffer.from(JSON.stringify(manifest)), MEDIA.ociIndex),
      /mediaType application\/vnd\.docker\.distribution\.manifest\.v2\+json differs from its Content-Type/,
    );
    assert.throws(
      () => parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 1, fsLayers: [] }))),
      (error: unknown) => isEngineError(error, 'unsupported') && /schema 1/.test(error.message),
    );
    const bad = { ...manifest, layers: [{ mediaType: MEDIA.dockerLayerGzip, digest: 'sha512:abc', size: 1 }] };
    assert.throws(
      () => parseManifest(Buffer.from(JSON.stringify(bad))),
      /layers\[0\] has an invalid or unsupported digest/,
    );
    const negative = { ...manifest, config: { ...manifest.config, size: -1 } };
    assert.throws(() => parseManifest(Buffer.from(JSON.stringify(negative))), /config has an invalid size/);
    assert.throws(() => parseManifest(Buffer.from('nope')), /not JSON/);
  });

  test('layer compressions', () => {
    assert.equal(layerCompression(MEDIA.dockerLayerGzip), 'gzip');
    assert.equal(layerCompression(MEDIA.ociLayerGzip), 'gzip');
    assert.equal(layerCompression(MEDIA.ociLayerZstd), 'zstd');
    assert.equal(layerCompression(MEDIA.ociLayer), 'none');
    assert.equal(layerCompression('application/vnd.cncf.helm.chart.content.v1.tar+gzip'), undefined);
    assert.equal(
      sha256Digest(Buffer.from('')),
      'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
  });
});

describe('platforms', () => {
  test('parsePlatform', () => {
    assert.deepEqual(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
    assert.deepEqual(parsePlatform('Linux/x86_64'), { os: 'linux', architecture: 'amd64' });
    assert.deepEqual(parsePlatform(), { os: 'linux', architecture: goArch() });
    assert.equal(goArch('x64'), 'amd64');
    assert.throws(() => parsePlatform('linux'), /invalid platform "linux": expected OS\/ARCH\[\/VARIANT\]/);
    assert.throws(() => parsePlatform('linux/arm/v7/x'), /invalid platform/);
  });

  const index = [
    entry({ os: 'unknown', architecture: 'unknown' }, 1, { 'vnd.docker.reference.type': 'attestation-manifest' }),
    entry({ os: 'linux', architecture: 'arm', variant: 'v6' }, 2),
    entry({ os: 'linux', architecture: 'arm', variant: 'v7' }, 3),
    entry({ os: 'linux', architecture: 'arm64' }, 4),
    entry({ os: 'linux', architecture: 'amd64' }, 5),
    entry({ os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763.1' }, 6),
  ];

  test('selectPlatform: os+arch, variants with defaults, attestations skipped', () => {
    assert.equal(selectPlatform(index, { os: 'linux', architecture: 'amd64' }).digest, D(5));
    assert.equal(selectPlatform(index, { os: 'windows', architecture: 'amd64' }).digest, D(6));
    assert.equal(selectPlatform(index, { os: 'linux', architecture: 'arm64', variant: 'v8' }).digest, D(4));
    assert.equal(selectPlatform(index, { os: 'linux', architecture: 'arm' }).digest, D(3));
    assert.equal(selectPlatform(index, { os: 'linux', architecture: 'arm', variant: 'v6' }).digest, D(2));
    assert.throws(
      () => selectPlatform(index.slice(0, 1), { os: 'unknown', architecture: 'unknown' }),
      (error: unknown) =>
        isEngineError(error, 'not-found') &&
        error.hint === 'the image is available for: none (choose one with --platform)',
    );
    assert.throws(
      () => selectPlatform(index, { os: 'linux', architecture: 's390x' }),
      (error: unknown) =>
        isEngineError(error, 'not-found') &&
        error.message === 'no matching manifest for linux/s390x in the manifest list entries' &&
        /linux\/arm\/v6, linux\/arm\/v7, linux\/arm64, linux\/amd64, windows\/amd64/.test(error.hint ?? ''),
    );
  });
});
