/**
 * The Dockerfile word lexer (moby/buildkit frontend/dockerfile/shell/lex.go): quote removal and variable
 * substitution, as Docker applies it to ADD COPY ENV EXPOSE FROM LABEL STOPSIGNAL USER VOLUME WORKDIR ARG (never to
 * RUN, CMD or ENTRYPOINT, whose shell does its own).
 *
 * - `'...'` is literal; `"..."` expands `$` and lets the escape character escape `"`, `$` and itself only;
 * - outside quotes the escape character makes the next character literal;
 * - `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`, `${VAR:?msg}`, `${VAR?msg}`;
 *   an unset variable is empty; a `$` not followed by a name is literal.
 */

/** Looks a variable up; undefined = unset. */
export type Lookup = (name: string) => string | undefined;

export class ShellLexError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShellLexError';
  }
}

export interface LexResult {
  readonly words: string[];
  /** Variables the word referred to (set or not), for the cache key and unused build-arg warnings. */
  readonly used: ReadonlySet<string>;
}

const NAME_CHAR = /[A-Za-z0-9_]/;

class Lexer {
  private pos = 0;
  private readonly words: string[] = [];
  private current = '';
  private inWord = false;
  readonly used = new Set<string>();

  private readonly input: string;
  private readonly lookup: Lookup;
  private readonly escape: string;
  private readonly split: boolean;

  constructor(input: string, lookup: Lookup, escape: string, split: boolean) {
    this.input = input;
    this.lookup = lookup;
    this.escape = escape;
    this.split = split;
  }

  private peek(offset = 0): string | undefined {
    return this.input[this.pos + offset];
  }

  private add(text: string): void {
    this.current += text;
    this.inWord = true;
  }

  /** Adds an unquoted expansion: in words mode its whitespace splits words, as in a shell. */
  private addExpanded(text: string): void {
    if (!this.split) {
      this.add(text);
      return;
    }
    for (const ch of text) {
      if (/\s/.test(ch)) this.breakWord();
      else this.add(ch);
    }
  }

  private breakWord(): void {
    if (this.inWord) this.words.push(this.current);
    this.current = '';
    this.inWord = false;
  }

  run(): LexResult {
    while (this.pos < this.input.length) {
      const ch = this.input[this.pos++] ?? '';
      if (ch === "'") this.add(this.singleQuoted());
      else if (ch === '"') this.add(this.doubleQuoted());
      else if (ch === '$') this.addExpanded(this.dollar());
      else if (ch === this.escape) {
        const next = this.input[this.pos++];
        if (next !== undefined) this.add(next);
      } else if (this.split && /\s/.test(ch)) this.breakWord();
      else this.add(ch);
    }
    if (this.split) this.breakWord();
    else this.words.push(this.current);
    return { words: this.words, used: this.used };
  }

  private singleQuoted(): string {
    const end = this.input.indexOf("'", this.pos);
    if (end < 0) throw new ShellLexError('unexpected end of statement while looking for matching single-quote');
    const text = this.input.slice(this.pos, end);
    this.pos = end + 1;
    this.inWord = true;
    return text;
  }

  private doubleQuoted(): string {
    let text = '';
    this.inWord = true;
    for (;;) {
      const ch = this.input[this.pos++];
      if (ch === undefined) {
        throw new ShellLexError('unexpected end of statement while looking for matching double-quote');
      }
      if (ch === '"') return text;
      if (ch === '$') text += this.dollar();
      else if (ch === this.escape) {
        const next = this.peek();
        if (next === '"' || next === '$' || next === this.escape) {
          text += next;
          this.pos++;
        } else text += ch;
      } else text += ch;
    }
  }

  /** A name: letters, digits and `_`; one starting with a digit is all digits (a positional parameter). */
  private name(): string {
    let name = '';
    if (/[0-9]/.test(this.peek() ?? '')) {
      while (/[0-9]/.test(this.peek() ?? '')) name += this.input[this.pos++];
      return name;
    }
    while (this.pos < this.input.length && NAME_CHAR.test(this.input[this.pos] ?? '')) name += this.input[this.pos++];
    return name;
  }

  /** After a `$`: the expansion's text. */
  private dollar(): string {
    if (this.peek() !== '{') {
      const name = this.name();
      if (name === '') return '$';
      this.used.add(name);
      return this.lookup(name) ?? '';
    }
    this.pos++;
    const name = this.name();
    if (name === '') throw new ShellLexError(`bad substitution: missing name after \${ in "${this.input}"`);
    this.used.add(name);
    const value = this.lookup(name);
    const next = this.input[this.pos++];
    if (next === '}') return value ?? '';
    if (next === undefined) throw new ShellLexError(`missing '}' in "${this.input}"`);
    let colon = false;
    let op = next;
    if (op === ':') {
      colon = true;
      op = this.input[this.pos++] ?? '';
    }
    if (op !== '-' && op !== '+' && op !== '?') {
      throw new ShellLexError(`unsupported modifier (${colon ? ':' : ''}${op}) in substitution of ${name}`);
    }
    const word = this.untilBrace();
    const isSet = colon ? value !== undefined && value !== '' : value !== undefined;
    if (op === '-') return isSet ? (value ?? '') : word;
    if (op === '+') return isSet ? word : '';
    if (!isSet) throw new ShellLexError(`${name}: ${word === '' ? 'is not allowed to be unset' : word}`);
    return value ?? '';
  }

  /** The word of a `${VAR:-word}` up to its `}`: `$` expands, the escape character escapes. */
  private untilBrace(): string {
    let text = '';
    for (;;) {
      const ch = this.input[this.pos++];
      if (ch === undefined) throw new ShellLexError(`missing '}' in "${this.input}"`);
      if (ch === '}') return text;
      if (ch === '$') text += this.dollar();
      else if (ch === this.escape) text += this.input[this.pos++] ?? '';
      else if (ch === "'") text += this.singleQuoted();
      else if (ch === '"') text += this.doubleQuoted();
      else text += ch;
    }
  }
}

/** One word: quotes removed, variables expanded, whitespace kept (ENV values, COPY paths, WORKDIR...). */
export function expandWord(word: string, lookup: Lookup, escape = '\\'): { value: string; used: ReadonlySet<string> } {
  const result = new Lexer(word, lookup, escape, false).run();
  return { value: result.words[0] ?? '', used: result.used };
}

/** Words: as expandWord, and unquoted whitespace (also from unquoted expansions) separates words (EXPOSE). */
export function expandWords(text: string, lookup: Lookup, escape = '\\'): LexResult {
  return new Lexer(text, lookup, escape, true).run();
}
