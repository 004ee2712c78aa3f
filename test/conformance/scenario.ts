/**
 * The conformance scenarios' format (test/conformance/README.md): a project directory with a scenario.yaml holding an
 * intent sentence and a script of steps, each a compose command or an observation; and the recorded observations of
 * the oracle (expected/<scenario>.json). Pure: parsing, the normalisation of output and the comparison.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';

/** What a step expects of its exit code: an exact code, or `error` (any non-zero code). */
export type CodeRule = number | 'error';

/** A recorded or overridden observation of one step. */
export interface Observation {
  readonly code: number;
  readonly stdout: string;
}

/** A v2/v5 behaviour that replaces the 1.29 oracle's observation of a step (docs/compatibility.md). */
export interface V2Override {
  readonly code?: CodeRule;
  readonly stdout?: string;
  /** What differs, in a sentence. */
  readonly reason: string;
  /** The compose source or doc that shows the v2 behaviour. */
  readonly source: string;
}

export interface Step {
  /** Compose arguments (after the program name), a string split as a shell would (quotes only) or a list. */
  readonly compose?: readonly string[];
  /** A shell script run on the host in the project directory (to read files containers wrote into bind mounts). */
  readonly sh?: string;
  /** `PORT/path`: an HTTP GET of http://127.0.0.1:PORT/path; the observation is the status and the body. */
  readonly http?: string;
  /** Seconds to wait before the next step. */
  readonly sleep?: number;
  readonly code?: CodeRule;
  /** How stdout is compared: exactly after normalisation (default), as sorted lines, by line count, or not at all. */
  readonly stdout: 'exact' | 'sorted' | 'count' | 'ignore';
  /** Keeps only the lines matching this regular expression. */
  readonly grep?: string;
  /** Repeats the step (every 0.3 s, `timeout` seconds at most) until its normalised stdout contains this. */
  readonly until?: string;
  /** Seconds the step may take (default 60). */
  readonly timeout: number;
  readonly env: Readonly<Record<string, string>>;
  readonly stdin?: string;
  readonly v2?: V2Override;
}

export interface Scenario {
  readonly name: string;
  readonly dir: string;
  readonly intent: string;
  /** Where the scenario comes from: compose's e2e test it ports (a link), if any. */
  readonly origin?: string;
  /**
   * A divergence of tsfig not fixed yet: the scenario still runs against the oracle, but in CI its failure is
   * reported, not counted. Says why and where the fix is.
   */
  readonly known?: string;
  /** Only for the oracle (a scenario tsfig cannot run at all yet, e.g. a verb it lacks), with the reason. */
  readonly steps: readonly Step[];
}

export interface Expectation {
  /** `docker-compose X on dockerd Y`: what produced the observations. */
  readonly oracle: string;
  readonly recorded: string;
  readonly steps: readonly Observation[];
}

/** Splits a command line as sh would for words and single or double quotes (no expansions). */
export function splitWords(line: string): string[] {
  const words: string[] = [];
  let current = '';
  let inWord = false;
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const char = line[i]!;
    if (quote !== undefined) {
      if (char === quote) quote = undefined;
      else if (char === '\\' && quote === '"' && (line[i + 1] === '"' || line[i + 1] === '\\')) current += line[++i];
      else current += char;
    } else if (char === "'" || char === '"') {
      quote = char;
      inWord = true;
    } else if (char === '\\' && i + 1 < line.length) {
      current += line[++i];
      inWord = true;
    } else if (/\s/.test(char)) {
      if (inWord) words.push(current);
      current = '';
      inWord = false;
    } else {
      current += char;
      inWord = true;
    }
  }
  if (quote !== undefined) throw new Error(`unterminated ${quote} in: ${line}`);
  if (inWord) words.push(current);
  return words;
}

type Raw = Record<string, unknown>;

function codeRule(value: unknown, where: string): CodeRule | undefined {
  if (value === undefined) return undefined;
  if (value === 'error' || (typeof value === 'number' && Number.isInteger(value))) return value;
  throw new Error(`${where}: code must be an integer or "error"`);
}

function parseStep(raw: Raw, where: string): Step {
  const known = new Set([
    'compose',
    'sh',
    'http',
    'sleep',
    'code',
    'stdout',
    'grep',
    'until',
    'timeout',
    'env',
    'stdin',
    'v2',
  ]);
  for (const key of Object.keys(raw)) if (!known.has(key)) throw new Error(`${where}: unknown key ${key}`);
  const kinds = ['compose', 'sh', 'http', 'sleep'].filter((key) => raw[key] !== undefined);
  if (kinds.length !== 1) throw new Error(`${where}: exactly one of compose, sh, http, sleep`);
  const compose = raw.compose;
  let v2: V2Override | undefined;
  if (raw.v2 !== undefined) {
    const o = raw.v2 as Raw;
    if (typeof o.reason !== 'string' || typeof o.source !== 'string') {
      throw new Error(`${where}: v2 needs a reason and a source`);
    }
    v2 = {
      reason: o.reason,
      source: o.source,
      ...(o.code !== undefined ? { code: codeRule(o.code, where)! } : {}),
      ...(typeof o.stdout === 'string' ? { stdout: o.stdout } : {}),
    };
  }
  const stdout = (raw.stdout ?? 'exact') as Step['stdout'];
  if (!['exact', 'sorted', 'count', 'ignore'].includes(stdout)) throw new Error(`${where}: bad stdout mode`);
  return {
    ...(compose !== undefined
      ? {
          compose: Array.isArray(compose)
            ? compose.map((word) => String(word))
            : splitWords(typeof compose === 'string' ? compose : JSON.stringify(compose)),
        }
      : {}),
    ...(typeof raw.sh === 'string' ? { sh: raw.sh } : {}),
    ...(raw.http !== undefined
      ? { http: typeof raw.http === 'number' ? String(raw.http) : JSON.stringify(raw.http).replace(/^"|"$/g, '') }
      : {}),
    ...(typeof raw.sleep === 'number' ? { sleep: raw.sleep } : {}),
    ...(raw.code !== undefined ? { code: codeRule(raw.code, where)! } : {}),
    stdout,
    ...(typeof raw.grep === 'string' ? { grep: raw.grep } : {}),
    ...(typeof raw.until === 'string' ? { until: raw.until } : {}),
    timeout: typeof raw.timeout === 'number' ? raw.timeout : 60,
    env: (raw.env ?? {}) as Record<string, string>,
    ...(typeof raw.stdin === 'string' ? { stdin: raw.stdin } : {}),
    ...(v2 !== undefined ? { v2 } : {}),
  };
}

export function loadScenario(dir: string): Scenario {
  const name = path.basename(dir);
  if (!/^[a-z0-9][a-z0-9-]*$/.test(name)) throw new Error(`scenario name ${name}: only a-z, 0-9 and -`);
  const where = `${name}/scenario.yaml`;
  let raw: Raw;
  try {
    raw = parse(readFileSync(path.join(dir, 'scenario.yaml'), 'utf8')) as Raw;
  } catch (error) {
    throw new Error(`${where}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (typeof raw.intent !== 'string') throw new Error(`${where}: intent is required`);
  if (!Array.isArray(raw.steps) || raw.steps.length === 0) throw new Error(`${where}: steps are required`);
  return {
    name,
    dir,
    intent: raw.intent.trim(),
    ...(typeof raw.origin === 'string' ? { origin: raw.origin } : {}),
    ...(typeof raw.known === 'string' ? { known: raw.known.trim() } : {}),
    steps: (raw.steps as Raw[]).map((step, index) => parseStep(step, `${where} step ${index + 1}`)),
  };
}

/**
 * Output made comparable across the oracle and tsfig: ANSI codes, CRs and trailing blanks gone; container names in
 * compose v2's form (`<project>-<service>-<n>`, one-offs `<project>-<service>-run-<ID>`, 1.29 writes `_`); ids,
 * timestamps, container addresses and ephemeral host ports replaced by placeholders.
 */
export function normalise(text: string, project: string): string {
  const p = project.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return (
    text
      // eslint-disable-next-line no-control-regex -- ANSI escapes start with ESC
      .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
      .replace(/\r/g, '')
      .replace(new RegExp(`\\b${p}[_-]([a-z0-9]+)[_-]run[_-][0-9a-f]+\\b`, 'g'), `${project}-$1-run-<ID>`)
      .replace(new RegExp(`\\b${p}[_-]([a-z0-9]+)[_-](\\d+)\\b`, 'g'), `${project}-$1-$2`)
      .replace(/\b(sha256:)?[0-9a-f]{64}\b/g, '<ID>')
      .replace(/\b[0-9a-f]{12}\b/g, '<ID>')
      .replace(/\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?/g, '<TIME>')
      .replace(/\b(?!127\.0\.0\.1\b)(?!0\.0\.0\.0\b)\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b/g, '<IP>')
      .replace(/:(3[2-9]\d{3}|[4-6]\d{4})\b/g, ':<EPHEMERAL>')
      .split('\n')
      .map((line) => line.trimEnd())
      .join('\n')
      .replace(/\n+$/, '')
  );
}

/** The observation a step makes of its normalised stdout, as its `stdout`/`grep` ask. */
export function shape(step: Step, stdout: string): string {
  let lines = stdout === '' ? [] : stdout.split('\n');
  if (step.grep !== undefined) {
    const re = new RegExp(step.grep);
    lines = lines.filter((line) => re.test(line));
  }
  switch (step.stdout) {
    case 'ignore':
      return '';
    case 'count':
      return String(lines.filter((line) => line.trim() !== '').length);
    case 'sorted':
      return [...lines].sort().join('\n');
    case 'exact':
      return lines.join('\n');
  }
}

/** The expected observation of a step: the v2 override where there is one, else the oracle's. */
export function expected(step: Step, recorded: Observation): { code: CodeRule; stdout: string } {
  return {
    code: step.v2?.code ?? (step.code === 'error' ? 'error' : recorded.code),
    stdout: step.v2?.stdout ?? recorded.stdout,
  };
}

/** Why an observation differs from the expectation, or undefined when it matches. */
export function compare(step: Step, want: { code: CodeRule; stdout: string }, got: Observation): string | undefined {
  const codeOk = want.code === 'error' ? got.code !== 0 : got.code === want.code;
  if (!codeOk) return `exit code ${got.code}, expected ${want.code === 'error' ? 'non-zero' : want.code}`;
  if (step.stdout !== 'ignore' && got.stdout !== want.stdout) {
    return `stdout differs:\n--- expected\n${want.stdout}\n--- got\n${got.stdout}`;
  }
  return undefined;
}
