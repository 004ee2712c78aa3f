/**
 * The layering checks CI runs (issue #19: "the lint and dependency-cycle checks in CI, failing on a violation") reject
 * a violation: temporary files under src/ and engine/, removed whatever happens, are given to ESLint (its API, the
 * repository's eslint.config.js) and to dependency-cruiser (its CLI, .dependency-cruiser.cjs as `npm run lint:deps`):
 * a src/ module that imports an engine file instead of the area's index.ts, and two engine modules that import each
 * other. A src/ module that imports the area's index.ts is the control: neither tool names it.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ESLint } from 'eslint';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const tag = `zz-lint-probe-${process.pid}`;

/** The probes, by path relative to the repository. */
const PROBES: Record<string, string> = {
  // an engine area's own file, not its index.ts
  [`src/${tag}-deep.ts`]: `import { shortId } from '../engine/state/ids.js';\nexport const probe = shortId('sha256:0');\n`,
  // the control: through the area's index.ts
  [`src/${tag}-entry.ts`]: `import { shortId } from '../engine/state/index.js';\nexport const probe = shortId('sha256:0');\n`,
  // an import cycle inside the engine (value imports: not closed by types alone)
  [`engine/${tag}-a.ts`]: `import { b } from './${tag}-b.js';\nexport const a = (): string => \`a\${b.length}\`;\n`,
  [`engine/${tag}-b.ts`]: `import { a } from './${tag}-a.js';\nexport const b = [a];\n`,
};

/** dependency-cruiser's CLI (the package's bin), as `npm run lint:deps` runs it, on the given files only. */
async function depcruise(files: readonly string[]): Promise<{ code: number; output: string }> {
  const bin = path.join(ROOT, 'node_modules', '.bin', 'depcruise');
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      [bin, ...files, '--config', '.dependency-cruiser.cjs', '--output-type', 'err'],
      { cwd: ROOT },
    );
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, output: `${failed.stdout ?? ''}${failed.stderr ?? ''}` };
  }
}

test('ESLint and dependency-cruiser reject src/ importing an engine file and an engine import cycle', async () => {
  const files = Object.keys(PROBES);
  try {
    for (const file of files) await writeFile(path.join(ROOT, file), PROBES[file] ?? '');
    const [deep, entry, cycleA, cycleB] = files as [string, string, string, string];

    // the repository's config, its import rule alone and without type information (a TypeScript program of the
    // probes would take seconds; the rule needs none)
    const eslint = new ESLint({
      cwd: ROOT,
      overrideConfig: { languageOptions: { parserOptions: { projectService: false } } },
      ruleFilter: ({ ruleId }) => ruleId === 'no-restricted-imports',
    });
    const results = await eslint.lintFiles([deep, entry]);
    const messages = (file: string) =>
      results
        .find((result) => result.filePath === path.join(ROOT, file))
        ?.messages.map((m) => `${m.ruleId}: ${m.message}`);
    const deepMessages = messages(deep) ?? [];
    assert.equal(deepMessages.length, 1, deepMessages.join('\n'));
    assert.match(deepMessages[0] ?? '', /^no-restricted-imports: .*src\/ imports the engine through engine\/index\.ts/);
    assert.deepEqual(messages(entry), [], 'the import through index.ts is allowed');

    const cruised = await depcruise([deep, entry, cycleA, cycleB]);
    assert.notEqual(cruised.code, 0, cruised.output);
    assert.match(
      cruised.output,
      new RegExp(`error src-through-engine-entry: src/${tag}-deep\\.ts → engine/state/ids\\.ts`),
    );
    assert.match(cruised.output, new RegExp(`error no-circular: engine/${tag}-a\\.ts →`));
    assert.doesNotMatch(cruised.output, new RegExp(`${tag}-entry`), 'the import through index.ts is allowed');
  } finally {
    await Promise.all(files.map((file) => rm(path.join(ROOT, file), { force: true })));
  }
});
