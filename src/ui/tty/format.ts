/** Pure formatting for the TUI: durations, sizes, percentages, links, spinner frames and per-source colours. */

export const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'] as const;

export function spinnerFrame(tick: number): string {
  return SPINNER[tick % SPINNER.length] ?? '-';
}

/** `45s`, `3m12s`, `2h05m`, `3d04h`: how long since `startedAt` (ISO); '' when not started. */
export function formatUptime(startedAt: string, nowMs: number): string {
  if (startedAt === '') return '';
  const started = Date.parse(startedAt);
  if (Number.isNaN(started)) return '';
  const seconds = Math.max(0, Math.floor((nowMs - started) / 1000));
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${String(seconds % 60).padStart(2, '0')}s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours}h${String(minutes % 60).padStart(2, '0')}m`;
  return `${Math.floor(hours / 24)}d${String(hours % 24).padStart(2, '0')}h`;
}

/** `512B`, `1.5KiB`, `23.4MiB`; '' when unknown. */
export function formatBytes(bytes: number | undefined): string {
  if (bytes === undefined) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value}B` : `${value.toFixed(value < 10 ? 1 : 0)}${units[unit]}`;
}

/** `0.3%`, `12%`; '' when unknown. */
export function formatPercent(percent: number | undefined): string {
  if (percent === undefined) return '';
  return percent < 10 ? `${percent.toFixed(1)}%` : `${Math.round(percent)}%`;
}

/** Milliseconds as `850ms` or `1.2s`. */
export function formatDuration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)}ms` : `${(ms / 1000).toFixed(1)}s`;
}

/**
 * Whether the terminal renders OSC 8 hyperlinks. Terminals that do not know OSC 8 mostly ignore it, but some print
 * garbage, so only known ones get links; `FORCE_HYPERLINK=1|0` overrides.
 */
export function supportsHyperlinks(env: NodeJS.ProcessEnv): boolean {
  if (env.FORCE_HYPERLINK !== undefined) return env.FORCE_HYPERLINK !== '0' && env.FORCE_HYPERLINK !== '';
  if (env.TMUX !== undefined || env.TERM === 'linux' || env.TERM === 'dumb') return false;
  if (env.WT_SESSION !== undefined || env.KITTY_WINDOW_ID !== undefined || env.WEZTERM_PANE !== undefined) return true;
  if (['iTerm.app', 'WezTerm', 'vscode', 'ghostty'].includes(env.TERM_PROGRAM ?? '')) return true;
  const vte = Number(env.VTE_VERSION ?? '0');
  return vte >= 5000;
}

/** `text` as an OSC 8 link to `url` when supported, else the plain text. */
export function hyperlink(text: string, url: string, supported: boolean): string {
  return supported ? `\u001b]8;;${url}\u0007${text}\u001b]8;;\u0007` : text;
}

/** Published ports as `http://127.0.0.1:PORT` (links where supported), comma-separated. */
export function formatPorts(ports: readonly number[], links: boolean): string {
  return ports
    .map((port) => {
      const url = `http://127.0.0.1:${port}`;
      return hyperlink(url, url, links);
    })
    .join(', ');
}

const COLORS = ['cyan', 'yellow', 'green', 'magenta', 'blue', 'redBright', 'greenBright', 'yellowBright'] as const;
export type SourceColor = (typeof COLORS)[number] | 'gray';

/** A stable colour per log source (the same `web-1` always gets the same colour); system lines are gray. */
export function colorOf(source: string): SourceColor {
  if (source === 'tsfig') return 'gray';
  let hash = 0;
  for (const char of source) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return COLORS[hash % COLORS.length] ?? 'cyan';
}

/** Cuts `text` to `width` columns (one column per code point; control characters dropped). */
export function clip(text: string, width: number): string {
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '').replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '');
  const chars = [...clean.replace(/\t/g, '  ')];
  if (width <= 0) return '';
  return chars.length <= width ? chars.join('') : `${chars.slice(0, Math.max(0, width - 1)).join('')}…`;
}

/** A progress bar `width` cells wide: `████░░░░`; a fraction outside 0..1 (or NaN) is clamped. */
export function bar(fraction: number, width: number): string {
  if (width <= 0) return '';
  const clamped = Number.isFinite(fraction) ? Math.max(0, Math.min(1, fraction)) : 0;
  const full = Math.floor(clamped * width);
  return '█'.repeat(full) + '░'.repeat(width - full);
}

/** `1.2MiB/4.0MiB`; only the total when nothing is known of progress. */
export function formatTransfer(current: number, total: number): string {
  if (total <= 0) return formatBytes(current);
  return `${formatBytes(Math.min(current, total))}/${formatBytes(total)}`;
}
