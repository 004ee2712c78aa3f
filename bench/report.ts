/**
 * BENCHMARKS.md at the repo root holds one `## <title>` section per benchmark. Each benchmark replaces its own
 * section (or appends it) and leaves every other section as it was.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const BENCHMARKS_FILE = path.join(REPO, 'BENCHMARKS.md');

const HEADER =
  '# Benchmarks\n\nMeasured figures only: every section is written by a script under `bench/` (its command is in the ' +
  'section) and names the commit and machine it ran on.\n';

/** Lines of `text` that start a level-2 heading, ignoring fenced code blocks. */
function headingLines(lines: readonly string[]): { index: number; title: string }[] {
  const found: { index: number; title: string }[] = [];
  let fence: string | undefined;
  lines.forEach((line, index) => {
    const marker = /^(```|~~~)/.exec(line)?.[1];
    if (marker !== undefined) {
      if (fence === undefined) fence = marker;
      else if (fence === marker) fence = undefined;
      return;
    }
    if (fence !== undefined) return;
    const heading = /^## (.+?)\s*#*\s*$/.exec(line);
    if (heading?.[1] !== undefined) found.push({ index, title: heading[1] });
  });
  return found;
}

/**
 * Returns `document` with the section `## title` replaced by `markdown` (its body, without the heading), or with
 * the section appended when there is none. Other sections are kept byte for byte.
 */
export function replaceSection(document: string, title: string, markdown: string): string {
  const section = `## ${title}\n\n${markdown.trim()}\n`;
  const lines = document.split('\n');
  const headings = headingLines(lines);
  const at = headings.findIndex((heading) => heading.title === title);
  if (at === -1) {
    const base = document.trimEnd();
    return `${base === '' ? HEADER.trimEnd() : base}\n\n${section}`;
  }
  const start = headings[at]?.index ?? 0;
  const end = headings[at + 1]?.index ?? lines.length;
  const before = start > 0 ? `${lines.slice(0, start).join('\n')}\n` : '';
  const after = lines.slice(end).join('\n');
  return `${before}${section}${end < lines.length ? `\n${after}` : ''}`;
}

/** Replaces or appends the section `## title` of BENCHMARKS.md (atomic rename, so a crash never leaves half a file). */
export function updateSection(title: string, markdown: string, file: string = BENCHMARKS_FILE): void {
  const current = existsSync(file) ? readFileSync(file, 'utf8') : HEADER;
  const next = replaceSection(current, title, markdown);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, next);
  renameSync(tmp, file);
}
