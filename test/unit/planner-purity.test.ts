import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const PLANNER = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'planner');

/** The deciding and formatting modules: same inputs, same output, no side effects (house style 9.3). */
const PURE = [
  'reconcile.ts',
  'container-spec.ts',
  'diff.ts',
  'render.ts',
  'plan.ts',
  'observed.ts',
  'watch.ts',
  'publish.ts',
];

for (const file of PURE) {
  test(`planner/${file} does no I/O and reads no clock or randomness`, () => {
    const source = readFileSync(path.join(PLANNER, file), 'utf8');
    const imports = [...source.matchAll(/^import\s+(type\s+)?[^;]*?from\s+'([^']+)';/gms)];
    assert.ok(imports.length > 0, `no imports found in ${file}`);
    for (const [statement, typeOnly, specifier = ''] of imports) {
      assert.ok(!specifier.startsWith('node:'), `${file} imports ${specifier}`);
      if (specifier.includes('/engine/')) assert.ok(typeOnly !== undefined, `${file}: ${statement} must be type-only`);
    }
    for (const forbidden of [/\bDate\b/, /Math\.random/, /\bprocess\./, /performance\.now/, /\bcrypto\./]) {
      assert.doesNotMatch(source, forbidden, `${file} uses ${String(forbidden)}`);
    }
  });
}
