import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stripVTControlCharacters } from 'node:util';
import { render } from 'ink-testing-library';
import { createElement } from 'react';
import { initialState, reduce, type TuiEvent } from '../../src/ui/tty/state.js';
import { logPaneText, TuiView, type ViewEnv } from '../../src/ui/tty/views.js';

const env: ViewEnv = { nowMs: Date.parse('2026-01-01T00:02:05Z'), links: false, mode: 'up' };

function screen(events: readonly TuiEvent[], rows = 16): string {
  const state = events.reduce(reduce, initialState('demo', { columns: 100, rows }));
  const view = render(createElement(TuiView, { state, env }));
  const frame = stripVTControlCharacters(view.lastFrame() ?? '');
  view.unmount();
  return frame;
}

const observe: TuiEvent = {
  kind: 'observe',
  atMs: 1,
  containers: [
    {
      id: 'a',
      name: 'demo-web-1',
      service: 'web',
      replica: 1,
      status: 'running',
      running: true,
      restarts: 2,
      exitCode: 0,
      ports: [8080],
      startedAt: '2026-01-01T00:00:00Z',
      memoryBytes: 3 * 1024 * 1024,
    },
    {
      id: 'b',
      name: 'demo-db-1',
      service: 'db',
      replica: 1,
      status: 'running',
      running: true,
      health: 'starting',
      restarts: 0,
      exitCode: 0,
      ports: [],
      startedAt: '2026-01-01T00:02:00Z',
    },
  ],
};

test('the status panel shows one row per container with state, restarts, uptime, memory and ports', () => {
  const frame = screen([observe]);
  const lines = frame.split('\n');
  assert.match(lines[0] ?? '', /SERVICE\s+STATE\s+HEALTH\s+RESTARTS\s+UPTIME\s+CPU\s+MEM\s+PORTS/);
  const web = lines.find((line) => line.includes('web-1')) ?? '';
  assert.match(web, /running/);
  assert.match(web, /\b2\b/);
  assert.match(web, /2m05s/);
  assert.match(web, /3\.0MiB/);
  assert.match(web, /http:\/\/127\.0\.0\.1:8080/);
  const db = lines.find((line) => line.includes('db-1')) ?? '';
  assert.match(db, /⠋ waiting/);
  assert.match(db, /starting/);
  assert.equal(frame.split('\n').length, 16, 'the view fills the terminal height');
});

test('the log pane prefixes lines with their source and the footer names the keys', () => {
  const frame = screen([
    observe,
    {
      kind: 'logs',
      lines: [
        { source: 'web-1', service: 'web', stream: 'stdout', text: 'listening on 8080' },
        { source: 'db-1', service: 'db', stream: 'stdout', text: 'ready to accept connections' },
      ],
    },
  ]);
  assert.match(frame, /web-1 \| listening on 8080/);
  assert.match(frame, /db-1\s+\| ready to accept connections/);
  assert.match(frame, /demo .*all logs · \? help · d detach · q stop/);
});

test('help lists the keys; a typed filter shows in the footer', () => {
  assert.match(screen([observe, { kind: 'help' }], 30), /d {8}detach: leave the stack running/);
  assert.match(screen([observe, { kind: 'filter.edit', text: 'err' }]), /\/err█/);
});

test('log lines carry their source colour and stderr is red', () => {
  const events: TuiEvent[] = [
    observe,
    {
      kind: 'logs',
      lines: [
        { source: 'web-1', service: 'web', stream: 'stderr', text: 'oops' },
        { source: 'tsfig', service: '', stream: 'system', text: 'note' },
      ],
    },
  ];
  const state = events.reduce(reduce, initialState('demo', { columns: 100, rows: 16 }));
  const text = logPaneText(state, 5);
  assert.equal(text, '\u001b[36mweb-1 | \u001b[39m\u001b[91moops\u001b[39m\n\u001b[90mtsfig | \u001b[39mnote');
});

test('long log lines are cut to the terminal width', () => {
  const frame = screen([
    observe,
    { kind: 'logs', lines: [{ source: 'web-1', service: 'web', stream: 'stdout', text: 'x'.repeat(500) }] },
  ]);
  for (const line of frame.split('\n')) assert.ok(line.length <= 100, `line too long: ${line.length}`);
});
