import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { humanDuration, humanSize, imageRows, renderImageTable } from '../../src/cli/commands/image.js';
import type { ImageRecord } from '../../engine/images/types.js';

function image(id: string, repoTags: string[], created: string, size: number): ImageRecord {
  return {
    id: `sha256:${id.repeat(64).slice(0, 64)}`,
    repoTags,
    created,
    config: { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } },
    diffIds: [],
    chainIds: [],
    size,
  };
}

describe('image commands output', () => {
  test('sizes read like docker (3 significant digits, decimal units)', () => {
    assert.equal(humanSize(0), '0B');
    assert.equal(humanSize(512), '512B');
    assert.equal(humanSize(20480), '20.5kB');
    assert.equal(humanSize(1523712), '1.52MB');
    assert.equal(humanSize(4_261_000), '4.26MB');
    assert.equal(humanSize(1_000_000_000), '1GB');
  });

  test('ages read like docker', () => {
    assert.equal(humanDuration(500), 'Less than a second');
    assert.equal(humanDuration(1000), '1 second');
    assert.equal(humanDuration(45_000), '45 seconds');
    assert.equal(humanDuration(90_000), 'About a minute');
    assert.equal(humanDuration(30 * 60_000), '30 minutes');
    assert.equal(humanDuration(3_600_000), 'About an hour');
    assert.equal(humanDuration(5 * 3_600_000), '5 hours');
    assert.equal(humanDuration(3 * 86_400_000), '3 days');
    assert.equal(humanDuration(21 * 86_400_000), '3 weeks');
    assert.equal(humanDuration(90 * 86_400_000), '3 months');
    assert.equal(humanDuration(800 * 86_400_000), '2 years');
  });

  test('one row per tag, <none> for an untagged image, registry ports kept in the repository', () => {
    const now = Date.parse('2026-01-01T01:00:00Z');
    const rows = imageRows(
      [
        image('a', ['busybox:latest', 'localhost:5000/team/app:v1'], '2026-01-01T00:00:00Z', 2_130_000),
        image('b', [], '2025-12-31T00:00:00Z', 100),
      ],
      now,
    );
    assert.deepEqual(
      rows.map((row) => [row.Repository, row.Tag, row.ID, row.CreatedSince, row.Size]),
      [
        ['busybox', 'latest', 'aaaaaaaaaaaa', 'About an hour ago', '2.13MB'],
        ['localhost:5000/team/app', 'v1', 'aaaaaaaaaaaa', 'About an hour ago', '2.13MB'],
        ['<none>', '<none>', 'bbbbbbbbbbbb', '25 hours ago', '100B'],
      ],
    );
    assert.equal(
      renderImageTable(rows).split('\n')[0],
      'REPOSITORY                TAG      IMAGE ID       CREATED             SIZE',
    );
  });
});
