/**
 * The subset of Go's text/template that docker's `--format` users write against inspect output (`docker inspect -f
 * '{{.State.Status}}'`, `{{index .Config.Labels "x"}}`, `{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}`,
 * `{{json .Mounts}}`): field paths on the JSON value, `$` and `$var := ...`, pipelines with `|`, `if`/`range`/`with`
 * with `else` and `end`, `{{-`/`-}}` trimming, and docker's functions (json, index, len, join, split, upper, lower,
 * title, println, print, printf with %s %d %v %q). Anything else is refused naming the flag, before any output.
 */
import { TsfigError } from '../errors.js';

type Value = unknown;
type Node =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'action'; readonly pipe: Pipeline }
  | {
      readonly kind: 'if' | 'range' | 'with';
      readonly pipe: Pipeline;
      readonly body: Node[];
      readonly otherwise: Node[];
    };
interface Pipeline {
  readonly declare?: string | undefined;
  readonly commands: readonly (readonly Term[])[];
}
type Term =
  /** root: `.` for dot, else a variable (`$`, `$name`). */
  | { readonly kind: 'field'; readonly root: string; readonly path: readonly string[] }
  | { readonly kind: 'string' | 'number'; readonly value: string | number }
  | { readonly kind: 'ident'; readonly name: string };

const FUNCTIONS = new Set([
  'json',
  'index',
  'len',
  'join',
  'split',
  'upper',
  'lower',
  'title',
  'println',
  'print',
  'printf',
  'not',
  'eq',
  'ne',
  'and',
  'or',
]);

function fail(format: string, why: string): never {
  throw new TsfigError('usage', `--format: ${why} in template "${format}"`, {
    hint: `docker's Go template forms: {{.Field.Sub}}, {{json .Field}}, {{index .Map "key"}}, {{range .List}}...{{end}}`,
  });
}

/** Parses `format` once (throws a usage error for what it cannot do) and returns a renderer. */
export function compileGoTemplate(format: string): (value: Value) => string {
  const source = format.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  const tokens: ({ kind: 'text'; text: string } | { kind: 'action'; body: string })[] = [];
  let rest = source;
  while (rest.length > 0) {
    const open = rest.indexOf('{{');
    if (open < 0) {
      tokens.push({ kind: 'text', text: rest });
      break;
    }
    let text = rest.slice(0, open);
    const close = rest.indexOf('}}', open + 2);
    if (close < 0) fail(format, 'unclosed action');
    let body = rest.slice(open + 2, close);
    if (body.startsWith('-')) {
      text = text.replace(/\s+$/, '');
      body = body.slice(1);
    }
    let after = rest.slice(close + 2);
    if (body.endsWith('-')) {
      body = body.slice(0, -1);
      after = after.replace(/^\s+/, '');
    }
    if (text !== '') tokens.push({ kind: 'text', text });
    tokens.push({ kind: 'action', body: body.trim() });
    rest = after;
  }
  let position = 0;
  const parseList = (enders: readonly string[]): { nodes: Node[]; ender: string } => {
    const nodes: Node[] = [];
    while (position < tokens.length) {
      const token = tokens[position++]!;
      if (token.kind === 'text') {
        nodes.push(token);
        continue;
      }
      const word = /^(\w+)\b/.exec(token.body)?.[1] ?? '';
      if (enders.includes(token.body) || (word === 'else' && enders.includes('else'))) {
        return { nodes, ender: token.body };
      }
      if (word === 'if' || word === 'range' || word === 'with') {
        const pipe = parsePipeline(format, token.body.slice(word.length).trim());
        const body = parseList(['else', 'end']);
        let otherwise: Node[] = [];
        if (body.ender === 'else') otherwise = parseList(['end']).nodes;
        nodes.push({ kind: word, pipe, body: body.nodes, otherwise });
        continue;
      }
      if (word === 'end' || word === 'else') fail(format, `unexpected {{${word}}}`);
      if (['define', 'template', 'block', 'break', 'continue'].includes(word))
        fail(format, `{{${word}}} is not supported`);
      if (token.body.startsWith('/*')) continue;
      nodes.push({ kind: 'action', pipe: parsePipeline(format, token.body) });
    }
    if (enders.length > 0) fail(format, 'missing {{end}}');
    return { nodes, ender: '' };
  };
  const root = parseList([]).nodes;
  return (value: Value) => {
    const out: string[] = [];
    execute(format, root, value, new Map([['$', value]]), out);
    return out.join('');
  };
}

function parsePipeline(format: string, text: string): Pipeline {
  let declare: string | undefined;
  const assign = /^(\$\w+)\s*:?=\s*/.exec(text);
  if (assign !== null) {
    declare = assign[1];
    text = text.slice(assign[0].length);
  }
  const words = lex(format, text);
  const commands: Term[][] = [[]];
  for (const word of words) {
    if (word === '|') {
      commands.push([]);
      continue;
    }
    commands[commands.length - 1]!.push(term(format, word));
  }
  if (commands.some((command) => command.length === 0)) fail(format, 'empty command');
  return { declare, commands };
}

function lex(format: string, text: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '"' || c === '`') {
      let j = i + 1;
      while (j < text.length && text[j] !== c) j += c === '"' && text[j] === '\\' ? 2 : 1;
      if (j >= text.length) fail(format, 'unterminated string');
      words.push(text.slice(i, j + 1));
      i = j + 1;
    } else if (c === '|') {
      words.push('|');
      i++;
    } else if (c === '(' || c === ')') {
      fail(format, 'parentheses are not supported');
    } else {
      let j = i;
      while (j < text.length && !/[\s|()]/.test(text[j]!)) j++;
      words.push(text.slice(i, j));
      i = j;
    }
  }
  return words;
}

function term(format: string, word: string): Term {
  if (word.startsWith('"')) return { kind: 'string', value: JSON.parse(word) as string };
  if (word.startsWith('`')) return { kind: 'string', value: word.slice(1, -1) };
  if (/^-?\d+(\.\d+)?$/.test(word)) return { kind: 'number', value: Number(word) };
  if (word === '.') return { kind: 'field', root: '.', path: [] };
  if (word.startsWith('.')) return { kind: 'field', root: '.', path: word.slice(1).split('.') };
  if (word.startsWith('$')) {
    const [name = '$', ...path] = word.split('.');
    return { kind: 'field', root: name, path };
  }
  if (FUNCTIONS.has(word)) return { kind: 'ident', name: word };
  return fail(format, `function "${word}" not defined`);
}

function execute(format: string, nodes: readonly Node[], dot: Value, vars: Map<string, Value>, out: string[]): void {
  for (const node of nodes) {
    if (node.kind === 'text') {
      out.push(node.text);
    } else if (node.kind === 'action') {
      const value = evaluate(format, node.pipe, dot, vars);
      if (node.pipe.declare === undefined) out.push(print(value));
    } else {
      const value = evaluate(format, node.pipe, dot, vars);
      if (node.kind === 'range') {
        const items = Array.isArray(value)
          ? value
          : value !== null && typeof value === 'object'
            ? Object.keys(value)
                .sort()
                .map((k) => (value as Record<string, Value>)[k])
            : [];
        if (items.length === 0) execute(format, node.otherwise, dot, vars, out);
        for (const item of items) execute(format, node.body, item, vars, out);
      } else if (truthy(value)) {
        execute(format, node.body, node.kind === 'with' ? value : dot, vars, out);
      } else {
        execute(format, node.otherwise, dot, vars, out);
      }
    }
  }
}

function evaluate(format: string, pipe: Pipeline, dot: Value, vars: Map<string, Value>): Value {
  let previous: Value;
  let first = true;
  for (const command of pipe.commands) {
    const args = first ? [] : [previous];
    previous = call(format, command, dot, vars, args);
    first = false;
  }
  if (pipe.declare !== undefined) vars.set(pipe.declare, previous);
  return previous;
}

function call(format: string, command: readonly Term[], dot: Value, vars: Map<string, Value>, piped: Value[]): Value {
  const [head, ...rest] = command;
  const value = (t: Term): Value => {
    if (t.kind === 'ident') return fail(format, `function "${t.name}" needs arguments here`);
    if (t.kind !== 'field') return t.value;
    if (t.root !== '.' && !vars.has(t.root)) fail(format, `undefined variable "${t.root}"`);
    const base = t.root === '.' ? dot : vars.get(t.root);
    let v = base;
    for (const key of t.path) {
      v = v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, Value>)[key] : undefined;
    }
    return v;
  };
  if (head === undefined) return undefined;
  if (head.kind !== 'ident') {
    if (rest.length > 0 || piped.length > 0) fail(format, 'a value cannot be called with arguments');
    return value(head);
  }
  const args = [...rest.map(value), ...piped];
  const str = (v: Value) => (typeof v === 'string' ? v : print(v));
  switch (head.name) {
    case 'json':
      return JSON.stringify(args[0] ?? null);
    case 'index': {
      let v = args[0];
      for (const key of args.slice(1)) {
        v = Array.isArray(v)
          ? v[Number(key)]
          : v !== null && typeof v === 'object'
            ? (v as Record<string, Value>)[String(key)]
            : undefined;
      }
      return v;
    }
    case 'len': {
      const v = args[0];
      return Array.isArray(v) || typeof v === 'string'
        ? v.length
        : v !== null && typeof v === 'object'
          ? Object.keys(v).length
          : 0;
    }
    case 'join':
      return (Array.isArray(args[0]) ? args[0] : []).map(str).join(str(args[1] ?? ''));
    case 'split':
      return str(args[0]).split(str(args[1] ?? ''));
    case 'upper':
      return str(args[0]).toUpperCase();
    case 'lower':
      return str(args[0]).toLowerCase();
    case 'title':
      return str(args[0]).replace(/\b\w/g, (c) => c.toUpperCase());
    case 'print':
      return args.map(str).join('');
    case 'println':
      return `${args.map(str).join(' ')}\n`;
    case 'printf': {
      let i = 1;
      return str(args[0]).replace(/%[sdvq%]/g, (spec) => {
        if (spec === '%%') return '%';
        const v = args[i++];
        return spec === '%q' ? JSON.stringify(str(v)) : str(v);
      });
    }
    case 'not':
      return !truthy(args[0]);
    case 'eq':
      return args.slice(1).some((v) => v === args[0]);
    case 'ne':
      return args[0] !== args[1];
    case 'and':
      return args.find((v) => !truthy(v)) ?? args.at(-1);
    case 'or':
      return args.find((v) => truthy(v)) ?? args.at(-1);
    default:
      return fail(format, `function "${head.name}" not defined`);
  }
}

function truthy(v: Value): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

/** Go's default formatting (fmt %v) of a JSON value, as docker's templates print them. */
function print(v: Value): string {
  if (v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map(print).join(' ')}]`;
  const entries = Object.keys(v)
    .sort()
    .map((k) => `${k}:${print((v as Record<string, Value>)[k])}`);
  return `map[${entries.join(' ')}]`;
}

/**
 * docker's `inspect -f`: without a format (or `json`) the objects as an indented JSON array, else the template once
 * per object, each followed by a newline. Compile it first (`inspectFormatter`) so a bad template fails before
 * anything is read.
 */
export function inspectFormatter(format: string | undefined): (values: readonly unknown[]) => string {
  if (format === undefined || format === '' || format === 'json') {
    return (values) => `${JSON.stringify(values, null, 4)}\n`;
  }
  const render = compileGoTemplate(format);
  return (values) => values.map((value) => `${render(value)}\n`).join('');
}
