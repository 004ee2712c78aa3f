/** Left-aligned columns separated by three spaces, as docker prints its tables. */
export function renderTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join('   ')
      .trimEnd();
  return [line(header), ...rows.map(line)].map((text) => `${text}\n`).join('');
}

/** "3 seconds ago", "About a minute ago", "2 hours ago" (docker's HumanDuration), or without "ago". */
export function relativeTime(iso: string, ago = true, now = Date.now()): string {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return '';
  const seconds = Math.max(0, Math.round((now - then) / 1000));
  let text: string;
  if (seconds < 1) text = 'Less than a second';
  else if (seconds === 1) text = '1 second';
  else if (seconds < 60) text = `${seconds} seconds`;
  else if (seconds < 120) text = 'About a minute';
  else if (seconds < 3600) text = `${Math.floor(seconds / 60)} minutes`;
  else if (seconds < 7200) text = 'About an hour';
  else if (seconds < 172800) text = `${Math.floor(seconds / 3600)} hours`;
  else text = `${Math.floor(seconds / 86400)} days`;
  return ago ? `${text} ago` : text;
}
