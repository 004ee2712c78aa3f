import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cleanPath, compilePattern, DockerIgnore } from '../../engine/build/dockerignore.js';

function excluded(rules: string, file: string): boolean {
  return DockerIgnore.parse(rules).matches(file);
}

describe('.dockerignore (moby/patternmatcher rules)', () => {
  const cases: [string, string, boolean][] = [
    ['*.md', 'README.md', true],
    ['*.md', 'docs/README.md', false],
    ['**/*.md', 'docs/deep/README.md', true],
    ['**/*.md', 'README.md', true],
    ['docs/**', 'docs/a/b', true],
    ['docs/**', 'docs', false],
    ['a/**/b', 'a/b', true],
    ['a/**/b', 'a/x/y/b', true],
    ['a/**/b', 'a/x/y/c', false],
    ['node_modules', 'node_modules/pkg/index.js', true],
    ['/node_modules', 'node_modules', true],
    ['./build', 'build/out.o', true],
    ['build/', 'build/out.o', true],
    ['a//b/../c', 'a/c/file', true],
    ['?.txt', 'a.txt', true],
    ['?.txt', 'ab.txt', false],
    ['[a-c].txt', 'b.txt', true],
    ['[!a-c].txt', 'b.txt', false],
    ['[!a-c].txt', 'd.txt', true],
    ['file.\\*', 'file.*', true],
    ['file.\\*', 'file.x', false],
    ['a.b', 'aXb', false],
    ['*', 'anything/below', true],
    ['# comment', '# comment', false],
    [' spaced.txt ', 'spaced.txt', true],
    ['*\n!keep.md', 'keep.md', false],
    ['*.md\n!README.md', 'README.md', false],
    ['*.md\n!README.md', 'CHANGES.md', true],
    ['!README.md\n*.md', 'README.md', true],
    ['docs\n!docs/keep', 'docs/keep', false],
    ['docs\n!docs/keep', 'docs/other', true],
    ['docs\n!docs/keep\ndocs/keep', 'docs/keep', true],
    ['*/temp*', 'somedir/temporary.txt', true],
    ['*/*/temp*', 'somedir/subdir/temporary.txt', true],
    ['temp?', 'tempa', true],
  ];
  for (const [rules, file, expected] of cases) {
    test(`${JSON.stringify(rules)} ${expected ? 'excludes' : 'keeps'} ${file}`, () =>
      assert.equal(excluded(rules, file), expected));
  }

  test('patterns are cleaned like filepath.Clean and lose a leading slash', () => {
    assert.deepEqual(
      DockerIgnore.parse('/a/b/\n./c\n!/d//e\n').patterns.map((p) => `${p.exclusion ? '!' : ''}${p.pattern}`),
      ['a/b', 'c', '!d/e'],
    );
    assert.equal(cleanPath('a/./b/../../..'), '..');
    assert.equal(cleanPath('/../a'), '/a');
  });

  test('** compiles as patternmatcher does', () => {
    assert.equal(compilePattern('**/x').source, '^(.*\\/)?x$');
    assert.equal(compilePattern('x/**').source, '^x\\/.*$');
  });

  test('an excluded directory is skipped unless an exception starts with its path', () => {
    assert.equal(DockerIgnore.parse('docs').canSkipDir('docs'), true);
    assert.equal(DockerIgnore.parse('docs\n!docs/keep').canSkipDir('docs'), false);
    assert.equal(DockerIgnore.parse('docs\n!*.md').canSkipDir('docs'), true);
  });
});
