/**
 * The loader never crashes: random mutations of the valid fixtures (text-level and value-level) end in a project or
 * in a TsfigError with diagnostics, never in another exception. YAML alias bombs and oversized files are refused
 * quickly with a clear message.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { ConfigError } from '../../src/config/diagnostics.js';
import { loadProject } from '../../src/config/load.js';
import { maxFileBytes } from '../../src/config/parse.js';
import { TsfigError } from '../../src/errors.js';

const validDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'config', 'valid');
/** Rounds per fixture and kind; raise it (FUZZ_ROUNDS=500) for a longer local run. */
const rounds = Number(process.env.FUZZ_ROUNDS ?? 25);
const scratch = mkdtempSync(path.join(tmpdir(), 'tsfig-config-fuzz-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** A small deterministic PRNG (mulberry32), so a failure can be replayed from its seed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const fragments = [
  ':',
  '-',
  ' ',
  '\n',
  '{',
  '}',
  '[',
  ']',
  '&a',
  '*a',
  '$',
  '${',
  '!reset',
  '!override',
  '<<: ',
  '"',
  "'",
  '#',
  '\t',
  '|',
  '>',
  '?',
  ',',
  'x',
  '0',
  '\u0000',
  '~',
];
const values: unknown[] = [
  null,
  0,
  -1,
  1e9,
  '',
  [],
  {},
  '${',
  '$$',
  'a:b:c:d:e',
  true,
  'x',
  [null],
  { a: null },
  '../..',
  '/',
  'ro',
  '1m',
  '-1',
];

function mutateText(text: string, next: () => number): string {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T;
  const at = Math.floor(next() * (text.length + 1));
  const lines = text.split('\n');
  switch (Math.floor(next() * 5)) {
    case 0:
      return text.slice(0, at) + text.slice(at + 1 + Math.floor(next() * 3));
    case 1:
      return text.slice(0, at) + pick(fragments) + text.slice(at);
    case 2: {
      const i = Math.floor(next() * lines.length);
      lines.splice(i, 0, lines[i] ?? '');
      return lines.join('\n');
    }
    case 3: {
      const i = Math.floor(next() * lines.length);
      const j = Math.floor(next() * lines.length);
      [lines[i], lines[j]] = [lines[j] ?? '', lines[i] ?? ''];
      return lines.join('\n');
    }
    default:
      return text.slice(0, at) + pick(fragments) + pick(fragments) + text.slice(at + 1);
  }
}

/** Replaces one randomly chosen value of the parsed document by a value of another type. */
function mutateValue(text: string, next: () => number): string {
  const doc = parse(text) as unknown;
  const containers: { parent: Record<string, unknown> | unknown[]; key: string | number }[] = [];
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) {
      value.forEach((item, i) => {
        containers.push({ parent: value, key: i });
        walk(item);
      });
    } else if (value && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) {
        containers.push({ parent: value as Record<string, unknown>, key: k });
        walk(v);
      }
    }
  };
  walk(doc);
  const target = containers[Math.floor(next() * containers.length)];
  if (!target) return text;
  const replacement = values[Math.floor(next() * values.length)];
  (target.parent as Record<string | number, unknown>)[target.key] = structuredClone(replacement);
  return stringify(doc);
}

function mainFile(dir: string): string | undefined {
  return readdirSync(dir).find((f) => /\.ya?ml$/.test(f) && !f.includes('override'));
}

function loadSafely(dir: string, label: string, text: string): void {
  try {
    loadProject({ cwd: dir, env: { HOME: '/home/user' } });
  } catch (error) {
    if (error instanceof TsfigError) {
      assert.ok(!error.message.includes('    at '), `${label}: a stack trace in a user error`);
      return;
    }
    assert.fail(`${label}: the loader crashed on:\n${text}\n${String(error)}\n${(error as Error).stack ?? ''}`);
  }
}

describe('fuzzing the loader with mutated valid files', () => {
  const fixtures = readdirSync(validDir).sort();
  for (const [kind, mutate] of [
    ['text', mutateText],
    ['value', mutateValue],
  ] as const) {
    test(`${kind} mutations never crash the loader`, () => {
      let seed = kind === 'text' ? 1 : 100_000;
      for (const name of fixtures) {
        const source = path.join(validDir, name);
        const file = mainFile(source);
        if (file === undefined) continue;
        const dir = path.join(scratch, `${kind}-${name}`);
        cpSync(source, dir, { recursive: true });
        const original = readFileSync(path.join(source, file), 'utf8');
        for (let round = 0; round < rounds; round++) {
          const next = random(seed++);
          let text = original;
          const times = 1 + Math.floor(next() * 3);
          for (let i = 0; i < times; i++) text = mutate(text, next);
          writeFileSync(path.join(dir, file), text);
          loadSafely(dir, `${name} (seed ${seed - 1})`, text);
        }
      }
    });
  }
});

describe('resource limits', () => {
  test('a YAML alias bomb is refused quickly', () => {
    const dir = mkdtempSync(path.join(scratch, 'bomb-'));
    const levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (let i = 1; i < 10; i++) {
      const prev = String.fromCharCode(96 + i);
      const name = String.fromCharCode(97 + i);
      levels.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(',')}]`);
    }
    writeFileSync(
      path.join(dir, 'compose.yaml'),
      `x-bomb:\n${levels.map((l) => `  ${l}`).join('\n')}\nservices:\n  web:\n    image: nginx\n`,
    );
    const start = performance.now();
    assert.throws(
      () => loadProject({ cwd: dir, env: {} }),
      (error: unknown) => error instanceof ConfigError && /alias bomb/.test(error.message),
    );
    assert.ok(performance.now() - start < 2000, 'took too long');
  });

  test('a file over the size limit is refused before parsing', () => {
    const dir = mkdtempSync(path.join(scratch, 'big-'));
    const line = `# ${'x'.repeat(98)}\n`;
    writeFileSync(
      path.join(dir, 'compose.yaml'),
      `services:\n  web:\n    image: nginx\n${line.repeat(Math.ceil(maxFileBytes / line.length) + 10)}`,
    );
    const start = performance.now();
    assert.throws(
      () => loadProject({ cwd: dir, env: {} }),
      (error: unknown) => error instanceof ConfigError && /file is too large/.test(error.message),
    );
    assert.ok(performance.now() - start < 1000, 'took too long');
  });

  test('deeply nested flow collections do not overflow the stack', () => {
    const dir = mkdtempSync(path.join(scratch, 'deep-'));
    writeFileSync(
      path.join(dir, 'compose.yaml'),
      `services:\n  web:\n    image: nginx\n    x-deep: ${'['.repeat(5000)}${']'.repeat(5000)}\n`,
    );
    loadSafely(dir, 'deep nesting', 'x-deep: [[[[...]]]]');
  });
});
