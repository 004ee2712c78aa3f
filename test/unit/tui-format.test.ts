import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  clip,
  colorOf,
  formatBytes,
  formatDuration,
  formatPercent,
  formatPorts,
  formatUptime,
  hyperlink,
  supportsHyperlinks,
} from '../../src/ui/tty/format.js';
import { wantsTui } from '../../src/ui/tty/index.js';

test('uptime is compact and grows units', () => {
  const start = '2026-01-01T00:00:00Z';
  const at = (seconds: number) => Date.parse(start) + seconds * 1000;
  assert.equal(formatUptime(start, at(42)), '42s');
  assert.equal(formatUptime(start, at(192)), '3m12s');
  assert.equal(formatUptime(start, at(2 * 3600 + 5 * 60)), '2h05m');
  assert.equal(formatUptime(start, at(3 * 86400 + 4 * 3600)), '3d04h');
  assert.equal(formatUptime('', at(1)), '');
});

test('sizes, percentages and durations', () => {
  assert.equal(formatBytes(512), '512B');
  assert.equal(formatBytes(1536), '1.5KiB');
  assert.equal(formatBytes(23 * 1024 * 1024), '23MiB');
  assert.equal(formatBytes(undefined), '');
  assert.equal(formatPercent(0.25), '0.3%');
  assert.equal(formatPercent(37.6), '38%');
  assert.equal(formatDuration(850), '850ms');
  assert.equal(formatDuration(1234), '1.2s');
});

test('ports are http://127.0.0.1 URLs, OSC 8 links only where supported', () => {
  assert.equal(formatPorts([8080, 9000], false), 'http://127.0.0.1:8080, http://127.0.0.1:9000');
  assert.equal(hyperlink('x', 'http://127.0.0.1:1', true), '\u001b]8;;http://127.0.0.1:1\u0007x\u001b]8;;\u0007');
  assert.equal(supportsHyperlinks({ TERM_PROGRAM: 'iTerm.app' }), true);
  assert.equal(supportsHyperlinks({ TERM_PROGRAM: 'iTerm.app', TMUX: '/tmp/x' }), false);
  assert.equal(supportsHyperlinks({ VTE_VERSION: '6003' }), true);
  assert.equal(supportsHyperlinks({}), false);
  assert.equal(supportsHyperlinks({ FORCE_HYPERLINK: '1' }), true);
});

test('clip strips control sequences and marks cut text', () => {
  assert.equal(clip('\u001b[31mred\u001b[0m\ttab', 20), 'red  tab');
  assert.equal(clip('abcdef', 4), 'abc…');
  assert.equal(clip('abc', 0), '');
});

test('colours are stable per source; system lines are gray', () => {
  assert.equal(colorOf('web-1'), colorOf('web-1'));
  assert.equal(colorOf('tsfig'), 'gray');
});

test('auto picks the TUI only on a TTY without CI; tty forces it; plain never', () => {
  assert.equal(wantsTui('auto', { isTTY: true }, {}), true);
  assert.equal(wantsTui('auto', { isTTY: true }, { CI: 'true' }), false);
  assert.equal(wantsTui('auto', { isTTY: false }, {}), false);
  assert.equal(wantsTui('tty', { isTTY: false }, { CI: '1' }), true);
  assert.equal(wantsTui('plain', { isTTY: true }, {}), false);
});
