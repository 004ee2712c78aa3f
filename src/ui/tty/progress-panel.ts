/**
 * The TUI's progress panel, pure: what `up` is doing before (and while) the containers come up. Per image pulled,
 * one bar per layer; per build, the current step, a bar of steps and the last output lines; the plan's ops done and
 * in flight. Finished items collapse to one line and leave once the TUI follows the stack.
 */
import { opDoing } from '../progress.js';
import { bar, clip, formatDuration, formatTransfer, spinnerFrame } from './format.js';
import type { BuildView, LayerView, PlanView, PullView, TuiState } from './state.js';

/** One line of the panel: plain text, and how it is coloured. */
export interface PanelLine {
  readonly text: string;
  readonly tone: 'normal' | 'dim' | 'ok' | 'error';
}

/** Layers shown per image; the rest are summed up on one line. */
export const MAX_LAYERS = 6;
const BAR_WIDTH = 20;

const LAYER_WORDS: Record<LayerView['state'], string> = {
  exists: 'already exists',
  waiting: 'waiting',
  downloading: 'downloading',
  verified: 'verified',
  extracting: 'extracting',
  done: 'done',
};

function layerFinished(layer: LayerView): boolean {
  return layer.state === 'done' || layer.state === 'exists';
}

/** `3f2a1b9c8d7e ████████░░░░ 1.2MiB/4.0MiB downloading`. */
export function layerLine(layer: LayerView): string {
  const fraction = layerFinished(layer) ? 1 : layer.total > 0 ? layer.current / layer.total : 0;
  const transfer = layer.state === 'exists' ? '' : ` ${formatTransfer(layer.current, layer.total)}`;
  return `${layer.id} ${bar(fraction, BAR_WIDTH)}${transfer} ${LAYER_WORDS[layer.state]}`;
}

function pullLines(pull: PullView, tick: number): PanelLine[] {
  const who = pull.services.length > 0 ? ` (${pull.services.join(', ')})` : '';
  switch (pull.status) {
    case 'downloaded':
      return [{ text: `✔ Pulled ${pull.image}${who}`, tone: 'ok' }];
    case 'up-to-date':
      return [{ text: `✔ ${pull.image}${who} is up to date`, tone: 'ok' }];
    case 'error':
      return [{ text: `✖ Pull of ${pull.image}${who} failed: ${pull.message ?? ''}`, tone: 'error' }];
    case 'pulling':
      break;
  }
  const finished = pull.layers.filter(layerFinished).length;
  const count = pull.layers.length > 0 ? ` · ${finished}/${pull.layers.length} layers` : '';
  const lines: PanelLine[] = [{ text: `${spinnerFrame(tick)} Pulling ${pull.image}${who}${count}`, tone: 'normal' }];
  // the layers moving first, then those waiting, then the finished ones; in the registry's order within each
  const rank = (layer: LayerView) => (layerFinished(layer) ? 2 : layer.state === 'waiting' ? 1 : 0);
  const shown = [0, 1, 2].flatMap((at) => pull.layers.filter((layer) => rank(layer) === at));
  for (const layer of shown.slice(0, MAX_LAYERS)) {
    lines.push({ text: `   ${layerLine(layer)}`, tone: layerFinished(layer) ? 'dim' : 'normal' });
  }
  if (shown.length > MAX_LAYERS) {
    const hiddenDone = shown.slice(MAX_LAYERS).filter(layerFinished).length;
    lines.push({ text: `   … ${shown.length - MAX_LAYERS} more layers (${hiddenDone} done)`, tone: 'dim' });
  }
  return lines;
}

function buildLines(build: BuildView, tick: number): PanelLine[] {
  if (build.status === 'done') {
    const cached = build.cachedSteps > 0 ? `, ${build.cachedSteps} cached` : '';
    const took = build.durationMs === undefined ? '' : `, ${formatDuration(build.durationMs)}`;
    return [{ text: `✔ Built ${build.service} → ${build.image} (${build.total} steps${cached}${took})`, tone: 'ok' }];
  }
  const step = build.step > 0 ? ` [${build.step}/${build.total}] ${build.text}` : '';
  const lines: PanelLine[] = [{ text: `${spinnerFrame(tick)} Building ${build.service}${step}`, tone: 'normal' }];
  if (build.total > 0) {
    lines.push({
      text: `   ${bar(build.stepsDone / build.total, BAR_WIDTH)} ${build.stepsDone}/${build.total} steps`,
      tone: 'normal',
    });
  }
  for (const output of build.output) lines.push({ text: `   │ ${output}`, tone: 'dim' });
  return lines;
}

/** `⠋ Applying plan: 7/12 ops ██████░░░░ · Creating tsfig-web-1 · Starting tsfig-db-1`. */
export function planLine(plan: PlanView, tick: number): PanelLine {
  const settled = plan.done + plan.failed + plan.skipped;
  if (plan.finished) {
    if (plan.failed > 0) {
      return {
        text: `✖ Plan failed: ${plan.failed} error(s), ${plan.skipped} skipped, ${plan.done} done`,
        tone: 'error',
      };
    }
    return { text: `✔ Plan applied: ${plan.done}/${plan.total} ops`, tone: 'ok' };
  }
  const doing = plan.running.map((op) => ` · ${opDoing(op)}`).join('');
  const failed = plan.failed > 0 ? ` (${plan.failed} failed)` : '';
  return {
    text: `${spinnerFrame(tick)} Applying plan: ${settled}/${plan.total} ops${failed} ${bar(plan.total > 0 ? settled / plan.total : 0, BAR_WIDTH)}${doing}`,
    tone: plan.failed > 0 ? 'error' : 'normal',
  };
}

/** The panel's lines, clipped to the terminal's width and at most `maxLines` of them (details go first). */
export function progressLines(state: TuiState, maxLines: number): PanelLine[] {
  const blocks = [
    ...state.pulls.map((pull) => pullLines(pull, state.tick)),
    ...state.builds.map((build) => buildLines(build, state.tick)),
    ...(state.plan === undefined ? [] : [[planLine(state.plan, state.tick)]]),
  ];
  let lines = blocks.flat();
  // too tall: keep each item's first line (the plan's is its only one), then the latest items
  if (lines.length > maxLines) lines = blocks.map((block) => block[0] as PanelLine);
  if (lines.length > maxLines) lines = lines.slice(Math.max(0, lines.length - maxLines));
  return lines.map((line) => ({ ...line, text: clip(line.text, state.columns) }));
}

/** How many rows the panel takes in a terminal of `terminalRows`: at most half of it. */
export function progressPanelLimit(terminalRows: number): number {
  return Math.max(1, Math.floor(terminalRows / 2));
}

const TONE_SGR: Record<PanelLine['tone'], [string, string]> = {
  normal: ['', ''],
  dim: ['\u001b[2m', '\u001b[22m'],
  ok: ['\u001b[32m', '\u001b[39m'],
  error: ['\u001b[31m', '\u001b[39m'],
};

/** The panel as one string with SGR colours (one text node for ink to lay out, as the log pane). */
export function progressPanelText(lines: readonly PanelLine[]): string {
  return lines
    .map((line) => {
      const [on, off] = TONE_SGR[line.tone];
      return `${on}${line.text}${off}`;
    })
    .join('\n');
}
