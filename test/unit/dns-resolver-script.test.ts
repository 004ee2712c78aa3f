/** Where the CLI finds the resolver it starts: from the sources, from dist/src/ and from the one-file bundle. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolverScript } from '../../engine/network/dns-process.js';

test('the resolver beside the module: .ts from the sources, .js from dist/src and from the cli.cjs bundle', () => {
  assert.equal(resolverScript('/r/engine/network/dns-process.ts'), '/r/engine/network/dns-server.ts');
  assert.equal(resolverScript('/r/dist/src/engine/network/dns-process.js'), '/r/dist/src/engine/network/dns-server.js');
  // the bundle: import.meta.url is cli.cjs's; there is no dns-server.cjs (CI's networks-aliases found it)
  assert.equal(resolverScript('/r/dist/bundle/cli.cjs'), '/r/dist/bundle/dns-server.js');
});
