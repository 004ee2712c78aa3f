/**
 * `.dockerignore` with Docker's exact rules (moby/patternmatcher and its ignorefile reader):
 * - a line starting with `#` is a comment; lines are trimmed; `!` starts an exception;
 * - each pattern is cleaned like Go's filepath.Clean (`./a//b/` → `a/b`), a leading `/` is dropped;
 * - `*` matches within a path element, `?` one character, `[...]` a class (`[!...]` negated), `**` any number of
 *   elements (`**\/` may match none), `\` escapes the next character;
 * - a path is excluded when it or one of its parent directories matches, and the last matching rule wins;
 * - an excluded directory is skipped entirely unless an exception pattern starts with its path.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { isErrno } from '../errors.js';

export interface IgnorePattern {
  /** The cleaned pattern, without `!`. */
  readonly pattern: string;
  readonly exclusion: boolean;
  readonly regexp: RegExp;
}

/** Go's path.Clean for slash paths. */
export function cleanPath(input: string): string {
  if (input === '') return '.';
  const rooted = input.startsWith('/');
  const out: string[] = [];
  for (const part of input.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 0 && out.at(-1) !== '..') out.pop();
      else if (!rooted) out.push('..');
      continue;
    }
    out.push(part);
  }
  const joined = out.join('/');
  return rooted ? `/${joined}` : joined === '' ? '.' : joined;
}

const REGEXP_SPECIAL = new Set(['.', '+', '(', ')', '|', '{', '}', '$', '^']);

/** patternmatcher's compile: the pattern as an anchored regular expression. */
export function compilePattern(pattern: string): RegExp {
  let source = '^';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i] ?? '';
    if (ch === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        if (pattern[i + 1] === '/') i++;
        source += i + 1 >= pattern.length ? '.*' : '(.*/)?';
      } else source += '[^/]*';
    } else if (ch === '?') source += '[^/]';
    else if (ch === '\\') {
      const next = pattern[i + 1];
      if (next === undefined) source += '\\\\';
      else {
        source += `\\${next}`;
        i++;
      }
    } else if (ch === '[') {
      if (pattern[i + 1] === '!') {
        source += '[^';
        i++;
      } else source += '[';
    } else if (ch === ']') source += ']';
    else if (REGEXP_SPECIAL.has(ch)) source += `\\${ch}`;
    else source += ch;
  }
  return new RegExp(`${source}$`, 's');
}

export class DockerIgnore {
  readonly patterns: readonly IgnorePattern[];

  constructor(lines: readonly string[]) {
    const patterns: IgnorePattern[] = [];
    for (const raw of lines) {
      if (raw.startsWith('#')) continue;
      let text = raw.trim();
      if (text === '') continue;
      const exclusion = text.startsWith('!');
      if (exclusion) text = text.slice(1).trim();
      if (text !== '') {
        text = cleanPath(text);
        if (text.length > 1 && text.startsWith('/')) text = text.slice(1);
      }
      patterns.push({ pattern: text, exclusion, regexp: compilePattern(text) });
    }
    this.patterns = patterns;
  }

  static parse(text: string): DockerIgnore {
    return new DockerIgnore(text.replace(/^\uFEFF/, '').split(/\r?\n/));
  }

  /** True when the file (slash path relative to the context) is excluded: it or a parent matches, last rule wins. */
  matches(file: string): boolean {
    const clean = cleanPath(file);
    const parents = clean.split('/').slice(0, -1);
    let matched = false;
    for (const pattern of this.patterns) {
      if (pattern.exclusion !== matched) continue;
      let match = pattern.regexp.test(clean);
      for (let i = 1; !match && i <= parents.length; i++) {
        match = pattern.regexp.test(parents.slice(0, i).join('/'));
      }
      if (match) matched = !pattern.exclusion;
    }
    return matched;
  }

  /** For an excluded directory: true when nothing inside can be re-included, so the walk may skip it. */
  canSkipDir(dir: string): boolean {
    const prefix = `${cleanPath(dir)}/`;
    return !this.patterns.some((pattern) => pattern.exclusion && `${pattern.pattern}/`.startsWith(prefix));
  }

  get empty(): boolean {
    return this.patterns.length === 0;
  }
}

/**
 * The ignore rules of a build: `<dockerfile>.dockerignore` beside the Dockerfile when it exists (BuildKit), else
 * `<context>/.dockerignore`, else none.
 */
export async function readDockerIgnore(contextDir: string, dockerfilePath?: string): Promise<DockerIgnore> {
  const candidates = [
    ...(dockerfilePath !== undefined ? [`${dockerfilePath}.dockerignore`] : []),
    path.join(contextDir, '.dockerignore'),
  ];
  for (const candidate of candidates) {
    try {
      return DockerIgnore.parse(await fs.readFile(candidate, 'utf8'));
    } catch (error) {
      if (!isErrno(error, 'ENOENT')) throw error;
    }
  }
  return new DockerIgnore([]);
}
