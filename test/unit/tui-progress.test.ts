import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { stripVTControlCharacters } from 'node:util';
import { render } from 'ink-testing-library';
import { createElement } from 'react';
import { buildEventOf } from '../../src/cli/compose/build.js';
import type { TsfigEvent } from '../../src/events/events.js';
import { LineRenderer } from '../../src/ui/progress.js';
import { bar, formatTransfer } from '../../src/ui/tty/format.js';
import { layerLine, MAX_LAYERS, planLine, progressLines } from '../../src/ui/tty/progress-panel.js';
import { initialState, reduce, type TuiEvent, type TuiState } from '../../src/ui/tty/state.js';
import { logPaneHeight, TuiView, type ViewEnv } from '../../src/ui/tty/views.js';

const env: ViewEnv = { nowMs: Date.parse('2026-01-01T00:02:05Z'), links: false, mode: 'up' };
const MiB = 1024 * 1024;

const run = (events: readonly TuiEvent[], state: TuiState = initialState('demo', { columns: 100, rows: 24 })) =>
  events.reduce(reduce, state);

function screen(state: TuiState): string {
  const view = render(createElement(TuiView, { state, env }));
  const frame = stripVTControlCharacters(view.lastFrame() ?? '');
  view.unmount();
  return frame;
}

const op = (id: number, kind: string, service: string) => ({
  id,
  kind,
  resource: `service:${service}:1`,
  target: `demo-${service}-1`,
  reason: 'test',
});

const layer = (
  id: string,
  state: 'waiting' | 'downloading' | 'verified' | 'extracting' | 'done' | 'exists',
  current = 0,
) => ({ kind: 'pull.progress', image: 'redis:7', layer: id, state, current, total: 4 * MiB }) as const;

test('bars fill by fraction and clamp what is out of range', () => {
  assert.equal(bar(0, 10), '░░░░░░░░░░');
  assert.equal(bar(0.5, 10), '█████░░░░░');
  assert.equal(bar(1, 4), '████');
  assert.equal(bar(2, 4), '████');
  assert.equal(bar(-1, 4), '░░░░');
  assert.equal(bar(Number.NaN, 4), '░░░░');
  assert.equal(bar(0.5, 0), '');
  assert.equal(formatTransfer(1.5 * MiB, 4 * MiB), '1.5MiB/4.0MiB');
  assert.equal(formatTransfer(5 * MiB, 4 * MiB), '4.0MiB/4.0MiB');
  assert.equal(formatTransfer(512, 0), '512B');
});

test('a pull keeps one layer per digest, in order, with its latest state and bytes', () => {
  const state = run([
    { kind: 'pull.start', image: 'redis:7', services: ['cache', 'db'] },
    layer('aaaaaaaaaaaa', 'waiting'),
    layer('bbbbbbbbbbbb', 'exists', 4 * MiB),
    layer('aaaaaaaaaaaa', 'downloading', 1 * MiB),
    layer('aaaaaaaaaaaa', 'downloading', 2 * MiB),
  ]);
  assert.equal(state.pulls.length, 1);
  const pull = state.pulls[0];
  assert.deepEqual(pull?.services, ['cache', 'db']);
  assert.equal(pull?.status, 'pulling');
  assert.deepEqual(
    pull?.layers.map((l) => `${l.id}:${l.state}:${l.current}`),
    [`aaaaaaaaaaaa:downloading:${2 * MiB}`, `bbbbbbbbbbbb:exists:${4 * MiB}`],
  );
  const done = run([{ kind: 'pull.done', image: 'redis:7', services: ['cache', 'db'], status: 'downloaded' }], state);
  assert.equal(done.pulls[0]?.status, 'downloaded');
  assert.ok(done.pulls[0]?.layers.every((l) => l.state === 'done' || l.state === 'exists'));
});

test('a layer line shows its bar, bytes and state', () => {
  assert.equal(
    layerLine({ id: 'aaaaaaaaaaaa', state: 'downloading', current: 1 * MiB, total: 4 * MiB }),
    'aaaaaaaaaaaa █████░░░░░░░░░░░░░░░ 1.0MiB/4.0MiB downloading',
  );
  assert.equal(
    layerLine({ id: 'bbbbbbbbbbbb', state: 'exists', current: 0, total: 4 * MiB }),
    'bbbbbbbbbbbb ████████████████████ already exists',
  );
  assert.match(layerLine({ id: 'c', state: 'extracting', current: 4 * MiB, total: 4 * MiB }), /extracting$/);
});

test('the panel shows each image being pulled with a bar per layer, moving ones first, at most MAX_LAYERS', () => {
  const events: TuiEvent[] = [{ kind: 'pull.start', image: 'redis:7', services: ['db'] }];
  for (let i = 0; i < MAX_LAYERS + 2; i++) events.push(layer(`${i}`.repeat(12), i === 0 ? 'done' : 'waiting'));
  events.push(layer('333333333333', 'downloading', 3 * MiB));
  const lines = progressLines(run(events), 20).map((line) => line.text);
  assert.match(lines[0] ?? '', /^. Pulling redis:7 \(db\) · 1\/8 layers$/);
  assert.match(lines[1] ?? '', /^ {3}333333333333 █+░+ 3\.0MiB\/4\.0MiB downloading$/, 'the moving layer comes first');
  assert.equal(lines.length, 1 + MAX_LAYERS + 1);
  assert.equal(lines.at(-1), '   … 2 more layers (1 done)');
});

test('a failed pull is one red line and a line in the log pane', () => {
  const state = run([
    { kind: 'pull.start', image: 'app:1', services: ['app'] },
    { kind: 'pull.error', image: 'app:1', services: ['app'], message: 'HTTP 404' },
  ]);
  assert.deepEqual(progressLines(state, 10), [{ text: '✖ Pull of app:1 (app) failed: HTTP 404', tone: 'error' }]);
  assert.match(state.logs.at(-1)?.text ?? '', /pull of app:1 \(app\) failed: HTTP 404/);
});

test('a build shows its current step, a bar of steps done and the last output lines of that step', () => {
  const state = run([
    { kind: 'build.start', service: 'web', image: 'demo-web' },
    { kind: 'build.step', service: 'web', step: 1, total: 4, text: 'FROM tsfig/busybox' },
    { kind: 'build.step-done', service: 'web', step: 1, cached: true, durationMs: 0 },
    { kind: 'build.step', service: 'web', step: 2, total: 4, text: 'RUN make' },
    { kind: 'build.output', service: 'web', step: 2, stream: 'stdout', text: 'one\ntwo\n' },
    { kind: 'build.output', service: 'web', step: 2, stream: 'stderr', text: 'three\n\nfour\n' },
    { kind: 'tick' },
  ]);
  const build = state.builds[0];
  assert.equal(build?.stepsDone, 1);
  assert.equal(build?.cachedSteps, 1);
  assert.deepEqual(build?.output, ['two', 'three', 'four']);
  assert.deepEqual(
    progressLines(state, 10).map((line) => line.text),
    [
      '⠙ Building web [2/4] RUN make',
      `   ${'█'.repeat(5)}${'░'.repeat(15)} 1/4 steps`,
      '   │ two',
      '   │ three',
      '   │ four',
    ],
  );
  const next = run([{ kind: 'build.step', service: 'web', step: 3, total: 4, text: 'ENV A=1' }], state);
  assert.deepEqual(next.builds[0]?.output, [], 'a new step starts with no output');
});

test('a finished build collapses to one line; attaching drops finished pulls and builds', () => {
  const built = run([
    { kind: 'build.start', service: 'web', image: 'demo-web' },
    { kind: 'build.done', service: 'web', image: 'demo-web', steps: 4, cachedSteps: 3, durationMs: 1200 },
    { kind: 'pull.start', image: 'redis:7', services: ['db'] },
    { kind: 'pull.done', image: 'redis:7', services: ['db'], status: 'up-to-date' },
  ]);
  assert.deepEqual(
    progressLines(built, 10).map((line) => line.text),
    ['✔ redis:7 (db) is up to date', '✔ Built web → demo-web (4 steps, 3 cached, 1.2s)'],
  );
  const attached = run([{ kind: 'attached' }], built);
  assert.equal(attached.phase, 'attached');
  assert.deepEqual(progressLines(attached, 10), []);
});

test('the plan line counts ops done out of the total and names the ops in flight', () => {
  let state = run([
    { kind: 'plan.start', project: 'demo', total: 4 },
    { kind: 'op.start', op: op(1, 'network.create', 'x') },
    { kind: 'op.done', op: op(1, 'network.create', 'x') },
    { kind: 'op.start', op: op(2, 'container.create', 'web') },
    { kind: 'op.start', op: op(3, 'container.create', 'db') },
  ]);
  assert.equal(state.plan?.done, 1);
  assert.deepEqual(
    state.plan?.running.map((r) => r.id),
    [2, 3],
  );
  const line = planLine(state.plan, 0).text;
  assert.equal(
    line,
    `⠋ Applying plan: 1/4 ops ${'█'.repeat(5)}${'░'.repeat(15)} · Creating demo-web-1 · Creating demo-db-1`,
  );
  state = run(
    [
      { kind: 'op.done', op: op(2, 'container.create', 'web'), containerId: 'a' },
      {
        kind: 'op.error',
        op: op(3, 'container.create', 'db'),
        message: 'boom',
        error: new Error('boom'),
        bestEffort: false,
      },
      { kind: 'op.skipped', op: op(4, 'container.start', 'db') },
    ],
    state,
  );
  assert.deepEqual(
    [state.plan?.done, state.plan?.failed, state.plan?.skipped, state.plan?.running.length],
    [2, 1, 1, 0],
  );
  state = run([{ kind: 'plan.done', project: 'demo', ok: false, done: 2, failed: 1, skipped: 1 }], state);
  assert.deepEqual(planLine(state.plan!, 0), { text: '✖ Plan failed: 1 error(s), 1 skipped, 2 done', tone: 'error' });
  const ok = run([
    { kind: 'plan.start', project: 'demo', total: 2 },
    { kind: 'plan.done', project: 'demo', ok: true, done: 2, failed: 0, skipped: 0 },
  ]);
  assert.equal(planLine(ok.plan!, 0).text, '✔ Plan applied: 2/2 ops');
  assert.equal(run([{ kind: 'attached' }], ok).plan, undefined, 'a finished plan leaves once attached');
});

test('the screen shows the plan while it runs, with the rows it creates, and the log pane gives up the room', () => {
  const state = run([
    { kind: 'plan.start', project: 'demo', total: 3 },
    { kind: 'op.start', op: op(1, 'container.create', 'web') },
  ]);
  const frame = screen(state);
  assert.match(frame, /web-1\s+⠋ creating/);
  assert.match(frame, /Applying plan: 0\/3 ops ░+ · Creating demo-web-1/);
  assert.match(frame, / demo {2}all logs/);
  assert.equal(logPaneHeight(state), 24 - 2 - 1 - 2);
  const empty = screen(initialState('', { columns: 100, rows: 10 }));
  assert.match(empty, /preparing\.\.\./);
  assert.match(empty, / tsfig up {2}all logs/);
});

test('the panel never takes more than its limit: details go first, then the oldest items', () => {
  const events: TuiEvent[] = [];
  for (const service of ['a', 'b', 'c', 'd']) {
    events.push({ kind: 'build.start', service, image: service });
    events.push({ kind: 'build.step', service, step: 1, total: 2, text: 'RUN x' });
    events.push({ kind: 'build.output', service, step: 1, stream: 'stdout', text: 'out\n' });
  }
  const state = run(events);
  assert.equal(progressLines(state, 12).length, 12, 'all details fit');
  assert.deepEqual(
    progressLines(state, 4).map((line) => line.text.slice(2)),
    ['Building a [1/2] RUN x', 'Building b [1/2] RUN x', 'Building c [1/2] RUN x', 'Building d [1/2] RUN x'],
  );
  assert.equal(progressLines(state, 2).length, 2);
  assert.match(progressLines(state, 2)[1]?.text ?? '', /Building d/);
});

function rendered(mode: 'plain' | 'json' | 'quiet', events: readonly TsfigEvent[]): string {
  const out = new PassThrough();
  let text = '';
  out.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const renderer = new LineRenderer(mode, out);
  for (const event of events) renderer.emit(event);
  return text;
}

const imageEvents: TsfigEvent[] = [
  { kind: 'pull.start', image: 'redis:7', services: ['db'] },
  layer('aaaaaaaaaaaa', 'waiting'),
  layer('aaaaaaaaaaaa', 'downloading', 1 * MiB),
  layer('aaaaaaaaaaaa', 'downloading', 2 * MiB),
  layer('aaaaaaaaaaaa', 'verified', 4 * MiB),
  layer('aaaaaaaaaaaa', 'extracting', 4 * MiB),
  layer('aaaaaaaaaaaa', 'done', 4 * MiB),
  { kind: 'pull.done', image: 'redis:7', services: ['db'], status: 'downloaded' },
  { kind: 'build.start', service: 'web', image: 'demo-web' },
  { kind: 'build.step', service: 'web', step: 1, total: 2, text: 'FROM tsfig/busybox' },
  { kind: 'build.step-done', service: 'web', step: 1, cached: true, durationMs: 0 },
  { kind: 'build.step', service: 'web', step: 2, total: 2, text: 'RUN make' },
  { kind: 'build.output', service: 'web', step: 2, stream: 'stdout', text: 'compiling\n' },
  { kind: 'build.step-done', service: 'web', step: 2, cached: false, durationMs: 900 },
  { kind: 'build.done', service: 'web', image: 'demo-web', steps: 2, cachedSteps: 1, durationMs: 1000 },
];

test('plain progress prints a line per layer state change, per build step and per line a RUN printed, not per byte', () => {
  assert.equal(
    rendered('plain', imageEvents),
    [
      ' db Pulling',
      '  aaaaaaaaaaaa Waiting 4.0MiB',
      '  aaaaaaaaaaaa Downloading 4.0MiB',
      '  aaaaaaaaaaaa Download complete',
      '  aaaaaaaaaaaa Extracting',
      '  aaaaaaaaaaaa Pull complete',
      ' db Pulled',
      ' Image demo-web  Building',
      '[web] Step 1/2 : FROM tsfig/busybox',
      '[web] Step 2/2 : RUN make',
      '[web] compiling',
      ' Image demo-web  Built (1.0s)',
      '',
    ].join('\n'),
  );
  assert.equal(
    rendered('quiet', [...imageEvents, { kind: 'pull.error', image: 'x:1', services: ['x'], message: 'HTTP 404' }]),
    ' x Error HTTP 404\n',
  );
});

test("plain progress: a build's or a pull's op has no lines of its own (its build.* and pull.* lines say it once)", () => {
  const events: TsfigEvent[] = [
    { kind: 'op.start', op: op(1, 'image.build', 'demo-web') },
    imageEvents[8]!,
    { kind: 'op.done', op: op(1, 'image.build', 'demo-web') },
    { kind: 'op.start', op: op(2, 'image.pull', 'redis:7') },
    { kind: 'op.done', op: op(2, 'image.pull', 'redis:7') },
    { kind: 'op.start', op: op(3, 'network.create', 'x') },
  ];
  assert.equal(rendered('plain', events), ' Image demo-web  Building\n Network demo-x-1  Creating\n');
});

test('json progress is one object per event, kind included, with ms: when, since the process started', () => {
  const lines = rendered('json', imageEvents).trim().split('\n');
  assert.equal(lines.length, imageEvents.length);
  const parsed = lines.map((line) => JSON.parse(line) as { kind: string; ms: number });
  assert.deepEqual(
    parsed.map((event) => event.kind),
    imageEvents.map((event) => event.kind),
  );
  const { ms, ...rest } = parsed[2] ?? { ms: NaN };
  assert.deepEqual(rest, { ...imageEvents[2] });
  assert.ok(ms > 0 && ms <= performance.now(), `ms ${ms}`);
  for (let i = 1; i < parsed.length; i++) assert.ok((parsed[i]?.ms ?? 0) >= (parsed[i - 1]?.ms ?? 0));
});

test("the builder's events become build events; a cache hit is reported by its step-done", () => {
  const cached = new Set<number>();
  assert.deepEqual(buildEventOf('web', { kind: 'step', step: 2, total: 5, text: 'RUN make' }, cached), {
    kind: 'build.step',
    service: 'web',
    step: 2,
    total: 5,
    text: 'RUN make',
  });
  assert.equal(buildEventOf('web', { kind: 'cache-hit', step: 2 }, cached), undefined);
  assert.deepEqual(buildEventOf('web', { kind: 'step-done', step: 2, durationMs: 3, id: 'abc' }, cached), {
    kind: 'build.step-done',
    service: 'web',
    step: 2,
    cached: true,
    durationMs: 3,
  });
  assert.deepEqual(buildEventOf('web', { kind: 'warning', message: 'ARG x unused' }, cached), {
    kind: 'warning',
    message: '[web] ARG x unused',
  });
});
