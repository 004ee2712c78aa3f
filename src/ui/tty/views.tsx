/** Ink components: they render a TuiState and nothing else (no I/O, no timers). */
import { Box, Text } from 'ink';
import type { ReactElement } from 'react';
import { clip, colorOf, formatBytes, formatPercent, formatPorts, formatUptime, spinnerFrame } from './format.js';
import { progressLines, progressPanelLimit, progressPanelText } from './progress-panel.js';
import { rowLabel, visibleLogs, type ContainerRow, type TuiState } from './state.js';

/** Rendering context that is not state: the clock and whether links are supported. */
export interface ViewEnv {
  readonly nowMs: number;
  readonly links: boolean;
  /** `up` (q stops the stack) or `logs` (q only leaves). */
  readonly mode: 'up' | 'logs';
}

const SPINNING = new Set(['creating', 'starting', 'waiting', 'stopping', 'removing']);

const STATE_COLOR: Record<string, string> = {
  running: 'green',
  exited: 'gray',
  error: 'red',
  restarting: 'yellow',
  paused: 'yellow',
};

/** The state column: a spinner while something is in flight, the exit code once exited. */
export function stateText(row: ContainerRow, tick: number): string {
  if (SPINNING.has(row.state)) return `${spinnerFrame(tick)} ${row.state}`;
  if (row.state === 'exited' && row.exitCode !== undefined) return `exited (${row.exitCode})`;
  return row.state;
}

const COLUMNS = [
  { title: 'SERVICE', width: 16 },
  { title: 'STATE', width: 14 },
  { title: 'HEALTH', width: 10 },
  { title: 'RESTARTS', width: 9 },
  { title: 'UPTIME', width: 8 },
  { title: 'CPU', width: 7 },
  { title: 'MEM', width: 9 },
] as const;

function cell(text: string, width: number): string {
  return clip(text, width - 1).padEnd(width);
}

export function StatusPanel({ state, env }: { state: TuiState; env: ViewEnv }): ReactElement {
  const header = COLUMNS.map((column) => cell(column.title, column.width)).join('') + 'PORTS';
  const none = state.phase === 'preparing' ? 'preparing...' : 'no containers';
  return (
    <Box flexDirection="column">
      <Text bold>{clip(header, state.columns)}</Text>
      {state.rows.length === 0 ? <Text dimColor>{none}</Text> : null}
      {state.rows.map((row, index) => {
        const selected = index === state.selected;
        const label = `${selected ? '›' : ' '}${rowLabel(row)}`;
        const fixed = [
          cell(label, COLUMNS[0].width),
          cell(stateText(row, state.tick), COLUMNS[1].width),
          cell(row.health ?? '', COLUMNS[2].width),
          cell(String(row.restarts), COLUMNS[3].width),
          cell(formatUptime(row.startedAt, env.nowMs), COLUMNS[4].width),
          cell(formatPercent(row.cpuPercent), COLUMNS[5].width),
          cell(formatBytes(row.memoryBytes), COLUMNS[6].width),
        ];
        const used = COLUMNS.reduce((sum, column) => sum + column.width, 0);
        const portsPlain = formatPorts(row.ports, false);
        const ports =
          portsPlain.length <= Math.max(0, state.columns - used)
            ? formatPorts(row.ports, env.links)
            : clip(portsPlain, state.columns - used);
        return (
          <Text key={row.name} inverse={selected} wrap="truncate">
            <Text color={colorOf(rowLabel(row))}>{fixed[0]}</Text>
            <Text color={STATE_COLOR[row.state]}>{fixed[1]}</Text>
            {fixed.slice(2).join('')}
            {ports}
          </Text>
        );
      })}
    </Box>
  );
}

const SGR: Record<string, number> = {
  cyan: 36,
  yellow: 33,
  green: 32,
  magenta: 35,
  blue: 34,
  redBright: 91,
  greenBright: 92,
  yellowBright: 93,
  gray: 90,
};

/**
 * The log pane's text: one string with SGR colours rather than a component per line, so a full pane costs ink one
 * text node to lay out (the pane is redrawn up to 20 times a second under heavy logging).
 */
export function logPaneText(state: TuiState, height: number): string {
  const lines = visibleLogs(state, Math.max(0, height));
  const width = Math.max(...state.rows.map((row) => rowLabel(row).length), 5);
  return lines
    .map((line) => {
      const prefix = `\u001b[${SGR[colorOf(line.source)] ?? 39}m${line.source.padEnd(width)} | \u001b[39m`;
      const text = clip(line.text, state.columns - width - 3);
      return line.stream === 'stderr' ? `${prefix}\u001b[91m${text}\u001b[39m` : `${prefix}${text}`;
    })
    .join('\n');
}

export function LogPane({ state, height }: { state: TuiState; height: number }): ReactElement {
  return (
    <Box flexDirection="column" height={Math.max(0, height)} overflow="hidden">
      <Text wrap="truncate">{logPaneText(state, height)}</Text>
    </Box>
  );
}

export const HELP_LINES = [
  '↑/↓ j/k  select a service',
  'enter    show only its logs (solo)',
  'a        show all logs',
  '/        filter logs by text (enter to keep, esc to clear)',
  'r        restart the selected service',
  's        stop the selected service',
  'd        detach: leave the stack running',
  'q ^C     stop the stack (^C twice kills)',
  '?        toggle this help',
] as const;

export function Help(): ReactElement {
  return (
    <Box flexDirection="column" borderStyle="round" paddingX={1}>
      <Text bold>Keys</Text>
      {HELP_LINES.map((line) => (
        <Text key={line}>{line}</Text>
      ))}
    </Box>
  );
}

export function Footer({ state, env }: { state: TuiState; env: ViewEnv }): ReactElement {
  if (state.filterDraft !== undefined) return <Text>{`/${state.filterDraft}█`}</Text>;
  const view = [
    state.solo === undefined ? 'all logs' : `solo: ${state.solo}`,
    state.filter === '' ? '' : `filter: ${state.filter}`,
  ]
    .filter((part) => part !== '')
    .join(' · ');
  const keys = env.mode === 'up' ? '? help · d detach · q stop' : '? help · q quit';
  return (
    <Text wrap="truncate">
      <Text inverse>{` ${state.project === '' ? 'tsfig up' : state.project} `}</Text>
      <Text>{` ${view} · ${keys}`}</Text>
      {state.status === '' ? null : <Text dimColor>{` · ${clip(state.status, state.columns)}`}</Text>}
    </Text>
  );
}

/** Pulls, builds and the plan while `up` prepares the stack; nothing once there is nothing to show. */
export function ProgressPanel({ state }: { state: TuiState }): ReactElement | null {
  const lines = progressLines(state, progressPanelLimit(state.terminalRows));
  if (lines.length === 0) return null;
  return <Text wrap="truncate">{progressPanelText(lines)}</Text>;
}

/** How many terminal rows the log pane gets: what the panels, the separator and the footer leave. */
export function logPaneHeight(state: TuiState): number {
  const panel = 1 + Math.max(1, state.rows.length);
  const progress = progressLines(state, progressPanelLimit(state.terminalRows)).length;
  const help = state.help ? HELP_LINES.length + 3 : 0;
  return Math.max(0, state.terminalRows - panel - progress - help - 2);
}

/** The whole screen. */
export function TuiView({ state, env }: { state: TuiState; env: ViewEnv }): ReactElement {
  return (
    <Box flexDirection="column" width={state.columns} height={state.terminalRows} overflow="hidden">
      <StatusPanel state={state} env={env} />
      <ProgressPanel state={state} />
      {state.help ? <Help /> : null}
      <Text dimColor>{'─'.repeat(Math.max(0, state.columns))}</Text>
      <LogPane state={state} height={logPaneHeight(state)} />
      <Footer state={state} env={env} />
    </Box>
  );
}
