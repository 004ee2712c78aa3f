import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { expandWord, expandWords, ShellLexError } from '../../engine/build/shell-lex.js';

const env = new Map<string, string>([
  ['A', 'alpha'],
  ['EMPTY', ''],
  ['SPACED', 'one two'],
]);
const lookup = (name: string): string | undefined => env.get(name);
const word = (text: string, escape = '\\'): string => expandWord(text, lookup, escape).value;

describe('Dockerfile variable substitution (buildkit shell lexer)', () => {
  const cases: [string, string][] = [
    ['$A', 'alpha'],
    ['${A}', 'alpha'],
    ['x${A}y', 'xalphay'],
    ['$UNSET', ''],
    ['${UNSET:-def}', 'def'],
    ['${EMPTY:-def}', 'def'],
    ['${EMPTY-def}', ''],
    ['${UNSET-def}', 'def'],
    ['${A:+alt}', 'alt'],
    ['${EMPTY:+alt}', ''],
    ['${EMPTY+alt}', 'alt'],
    ['${UNSET+alt}', ''],
    ['${UNSET:-${A}}', 'alpha'],
    ['${UNSET:-a b}', 'a b'],
    ["'$A'", '$A'],
    ['"$A"', 'alpha'],
    ['"a \\"q\\" \\$A \\n"', 'a "q" $A \\n'],
    ['\\$A', '$A'],
    ['a\\ b', 'a b'],
    ['$', '$'],
    ['$1x', 'x'],
    ['cost: $ 5', 'cost: $ 5'],
    ['${A}_${A}', 'alpha_alpha'],
  ];
  for (const [input, expected] of cases) {
    test(`${input} → ${JSON.stringify(expected)}`, () => assert.equal(word(input), expected));
  }

  test('the escape directive changes the escape character', () => {
    assert.equal(word('C:\\path`$A', '`'), 'C:\\path$A');
  });

  test('${VAR:?msg} fails when unset or empty; ${VAR?msg} only when unset', () => {
    assert.throws(() => word('${UNSET:?need it}'), /UNSET: need it/);
    assert.throws(() => word('${EMPTY:?}'), /EMPTY: is not allowed to be unset/);
    assert.equal(word('${EMPTY?x}'), '');
  });

  test('unterminated quotes and braces are errors', () => {
    assert.throws(() => word('"open'), ShellLexError);
    assert.throws(() => word("'open"), ShellLexError);
    assert.throws(() => word('${A'), ShellLexError);
    assert.throws(() => word('${A%%x}'), /unsupported modifier/);
  });

  test('words: unquoted expansions split, quoted ones do not', () => {
    assert.deepEqual(expandWords('$SPACED "$SPACED" x', lookup).words, ['one', 'two', 'one two', 'x']);
  });

  test('the variables used are reported, set or not', () => {
    assert.deepEqual([...expandWord('$A ${UNSET:-x} \\$B', lookup).used].sort(), ['A', 'UNSET']);
  });
});
