/**
 * docs/conformance.md: the scenarios, which oracle recorded each, whether tsfig passes, how long it took; the v2
 * overrides and known divergences named; then the account of compose's own e2e suite (e2e.md, kept by hand).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import type { Expectation, Scenario } from './scenario.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');

export interface ScenarioResult {
  readonly scenario: Scenario;
  readonly status: 'pass' | 'fail' | 'known';
  readonly ms: number;
  readonly detail?: string;
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function expectationOf(name: string): Expectation | undefined {
  const file = path.join(HERE, 'expected', `${name}.json`);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Expectation) : undefined;
}

/** The e2e account (test/conformance/e2e.yaml): compose's e2e tests and what became of each. */
interface E2eEntry {
  readonly test: string;
  readonly file: string;
  readonly status: 'ported' | 'n/a' | 'todo';
  readonly scenario?: string;
  readonly why?: string;
}

function e2eSection(results: readonly ScenarioResult[]): string[] {
  const file = path.join(HERE, 'e2e.yaml');
  if (!existsSync(file)) return [];
  const doc = parse(readFileSync(file, 'utf8')) as { commit: string; total: number; tests: E2eEntry[] };
  const byName = new Map(results.map((result) => [result.scenario.name, result]));
  const ported = doc.tests.filter((entry) => entry.status === 'ported');
  const passing = ported.filter((entry) => byName.get(entry.scenario ?? '')?.status === 'pass');
  const notApplicable = doc.tests.filter((entry) => entry.status === 'n/a');
  const reasons = new Map<string, number>();
  for (const entry of notApplicable) reasons.set(entry.why ?? '?', (reasons.get(entry.why ?? '?') ?? 0) + 1);
  const link = (entry: E2eEntry) =>
    `[${entry.test}](https://github.com/docker/compose/blob/${doc.commit}/pkg/e2e/${entry.file})`;
  return [
    "## Compose's own e2e suite",
    '',
    `docker/compose \`pkg/e2e\` at ${doc.commit.slice(0, 12)} has ${doc.total} \`Test...\` functions. ` +
      `${ported.length} are ported as scenarios (intent sentence and link kept in each scenario.yaml), ` +
      `${passing.length} of them pass on tsfig; ${notApplicable.length} do not apply; ` +
      `${doc.total - ported.length - notApplicable.length} are not ported yet (each says why below).`,
    '',
    '| why they do not apply | tests |',
    '| --- | --- |',
    ...[...reasons.entries()].sort((a, b) => b[1] - a[1]).map(([why, count]) => `| ${cell(why)} | ${count} |`),
    '',
    '| e2e test | status | scenario |',
    '| --- | --- | --- |',
    ...doc.tests.map((entry) => {
      const result = entry.scenario !== undefined ? byName.get(entry.scenario) : undefined;
      const status =
        entry.status === 'n/a'
          ? `n/a: ${entry.why ?? ''}`
          : entry.status === 'todo'
            ? `not ported yet${entry.why !== undefined ? `: ${entry.why}` : ''}`
            : `ported, ${result?.status ?? 'not run'}`;
      return `| ${link(entry)} | ${cell(status)} | ${entry.scenario ?? ''} |`;
    }),
    '',
  ];
}

const REPORT = path.join(REPO, 'docs', 'conformance.md');

/** What the report on disk says of each scenario, its last run line, and the scenarios re-run alone since. */
interface PreviousReport {
  readonly rows: ReadonlyMap<string, { status: ScenarioResult['status']; ms: number }>;
  readonly lastRun: string | undefined;
  readonly rerun: readonly string[];
}

function previousReport(): PreviousReport {
  const text = existsSync(REPORT) ? readFileSync(REPORT, 'utf8') : '';
  const rows = new Map<string, { status: ScenarioResult['status']; ms: number }>();
  for (const line of text.split('\n')) {
    const cells = /^\| ([a-z0-9-]+) \|.*\| (pass|known divergence|\*\*FAIL\*\*) \| (\d+) \|$/.exec(line);
    if (cells === null) continue;
    const status = cells[2] === 'pass' ? 'pass' : cells[2] === 'known divergence' ? 'known' : 'fail';
    rows.set(cells[1]!, { status, ms: Number(cells[3]) });
  }
  const lastRun = /^Last (?:full )?run: (.*?): \*\*/m.exec(text)?.[1];
  const rerun = /^Re-run alone since: (.*)\.$/m.exec(text)?.[1]?.split(', ') ?? [];
  return { rows, lastRun, rerun };
}

/**
 * `--only a,b --update-report`: the results of the scenarios just run, and for the others what the report on disk
 * says (a scenario it does not list counts as failed, not run); the report names the scenarios re-run alone.
 */
export function updateReport(results: readonly ScenarioResult[], all: readonly Scenario[], target: string): void {
  const previous = previousReport();
  const ran = new Map(results.map((result) => [result.scenario.name, result]));
  const merged = all.map((scenario): ScenarioResult => {
    const fresh = ran.get(scenario.name);
    if (fresh !== undefined) return fresh;
    const row = previous.rows.get(scenario.name);
    return row === undefined
      ? { scenario, status: 'fail', ms: 0, detail: 'not run since it was added (run it with --only)' }
      : { scenario, ...row };
  });
  const rerun = [...new Set([...previous.rerun, ...ran.keys()])].sort();
  writeReport(
    merged,
    target,
    merged.reduce((sum, result) => sum + result.ms, 0),
    {
      lastFullRun: previous.lastRun,
      rerun,
    },
  );
}

export function writeReport(
  results: readonly ScenarioResult[],
  target: string,
  totalMs: number,
  partial?: { readonly lastFullRun: string | undefined; readonly rerun: readonly string[] },
): void {
  const passed = results.filter((result) => result.status === 'pass').length;
  const known = results.filter((result) => result.status === 'known');
  const failed = results.filter((result) => result.status === 'fail');
  const overrides = results.filter((result) => result.scenario.steps.some((step) => step.v2 !== undefined));
  const oracles = new Set(results.map((result) => expectationOf(result.scenario.name)?.oracle ?? 'not recorded'));
  const lines = [
    '# Compose conformance',
    '',
    'Written by `npm run conformance` (test/conformance/run.ts); do not edit by hand. Each scenario is a project',
    'directory and a script of compose commands and observations (exit codes, normalised stdout, files in bind mounts,',
    'HTTP from 127.0.0.1, `config` output). `npm run conformance -- --oracle` runs them against docker-compose on a',
    'private dockerd and records its observations in test/conformance/expected/; CI (scripts/test.sh, as root) runs',
    'tsfig against those records. Where compose v2/v5 differs from 1.29 the step carries a documented v2 override',
    '(docs/compatibility.md). A known divergence is a tsfig bug whose fix has not landed: it is run and reported here,',
    'not counted as a CI failure.',
    '',
    partial === undefined
      ? `Last run: ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${target}: **${passed} of ${results.length} pass**, ` +
        `${known.length} known divergence(s), ${failed.length} failure(s), ${(totalMs / 1000).toFixed(1)} s in all.`
      : `Last full run: ${partial.lastFullRun ?? 'none'}: **${passed} of ${results.length} pass**, ` +
        `${known.length} known divergence(s), ${failed.length} failure(s), counting the scenarios re-run alone since ` +
        `(\`--only ... --update-report\`, last ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${target}; ` +
        `${(totalMs / 1000).toFixed(1)} s of scenario time in all).`,
    ...(partial === undefined ? [] : [`Re-run alone since: ${partial.rerun.join(', ')}.`]),
    `Oracle(s) of the recorded expectations: ${[...oracles].join('; ')}.`,
    '',
    '| scenario | intent | oracle | tsfig | ms |',
    '| --- | --- | --- | --- | --- |',
    ...results.map((result) => {
      const { scenario } = result;
      const oracle = scenario.steps.some((step) => step.v2 !== undefined) ? '1.29 + v2 override' : '1.29';
      const status = result.status === 'pass' ? 'pass' : result.status === 'known' ? `known divergence` : '**FAIL**';
      const origin = scenario.origin !== undefined ? ` ([e2e](${scenario.origin}))` : '';
      return `| ${scenario.name} | ${cell(scenario.intent)}${origin} | ${oracle} | ${status} | ${Math.round(result.ms)} |`;
    }),
    '',
    '## v2 overrides',
    '',
    ...(overrides.length === 0
      ? ['None.']
      : overrides.flatMap((result) =>
          result.scenario.steps
            .filter((step) => step.v2 !== undefined)
            .map((step) => `- ${result.scenario.name}: ${step.v2!.reason} ([source](${step.v2!.source}))`),
        )),
    '',
    '## Known divergences (not failing CI)',
    '',
    ...(known.length === 0 && results.every((result) => result.scenario.known === undefined)
      ? ['None.']
      : results
          .filter((result) => result.scenario.known !== undefined)
          .map(
            (result) =>
              `- ${result.scenario.name} (${result.status === 'pass' ? 'passes now' : 'fails'}): ${cell(result.scenario.known!)}`,
          )),
    '',
    ...(failed.length > 0
      ? [
          '## Failures',
          '',
          ...failed.flatMap((result) => [`### ${result.scenario.name}`, '', '```', result.detail ?? '', '```', '']),
        ]
      : []),
    ...e2eSection(results),
  ];
  writeFileSync(REPORT, `${lines.join('\n')}\n`);
}
