import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, Scalar, visit } from 'yaml';
import type { Document, Node as YamlNode, Alias } from 'yaml';
import type { DiagnosticBag, Position } from './diagnostics.js';
import { scalarText } from './values.js';

/** A file larger than this is rejected before parsing: compose files are kilobytes, not megabytes. */
export const maxFileBytes = 4 * 1024 * 1024;
/** Nodes produced by expanding aliases; past this the file is treated as an alias bomb ("billion laughs"). */
export const maxAliasExpansion = 100_000;

/** A value marked `!reset` (remove what earlier files set) or `!override` (replace instead of merging). */
export class YamlTag {
  readonly tag: 'reset' | 'override';
  readonly value: unknown;
  constructor(tag: 'reset' | 'override', value: unknown) {
    this.tag = tag;
    this.value = value;
  }
}

/** Where a mapping or sequence, its keys and its values came from. */
export interface ContainerLocation {
  readonly self: Position;
  /** Position of each key (mappings) or item (sequences). */
  readonly keys: Map<string | number, Position>;
  /** Position of each value; for a null value, its key's position. */
  readonly values: Map<string | number, Position>;
}

/**
 * Positions of every mapping and sequence built by `parseYaml`, kept beside the plain values so the rest of the
 * pipeline works on ordinary objects. Merging copies entries over (see `copyLocation`).
 */
export const locations = new WeakMap<object, ContainerLocation>();

export function locationOf(container: object): ContainerLocation | undefined {
  return locations.get(container);
}

export function setLocation(container: object, location: ContainerLocation): void {
  locations.set(container, location);
}

/** A plain mapping as parsed from YAML. */
export type RawMap = Record<string, unknown>;

export function isRawMap(value: unknown): value is RawMap {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof YamlTag);
}

interface ConvertContext {
  readonly file: string;
  readonly doc: Document.Parsed;
  readonly lineCounter: LineCounter;
  readonly bag: DiagnosticBag;
  expanded: number;
  aliasDepth: number;
  /** Anchored nodes being expanded now: an alias to one of them is recursive. */
  readonly expanding: Set<unknown>;
  aborted: boolean;
  /** The alias written in the document whose expansion is under way (where an alias bomb is reported). */
  outerAlias: Position | undefined;
  /** Anchored nodes by name, in document order; built on the first alias. */
  anchors: Map<string, { offset: number; node: YamlNode }[]> | undefined;
}

function positionAt(ctx: ConvertContext, offset: number | undefined): Position {
  const { line, col } = ctx.lineCounter.linePos(offset ?? 0);
  return { file: ctx.file, line, column: col };
}

/**
 * Parses one YAML file into plain values, recording positions. Problems (syntax, duplicate keys, alias bombs,
 * size) go into `bag`; the result is undefined when the file cannot be used at all.
 */
export function parseYaml(file: string, text: string, bag: DiagnosticBag): unknown {
  bag.sources.set(file, text);
  if (Buffer.byteLength(text) > maxFileBytes) {
    bag.error(
      `file is too large (${Buffer.byteLength(text)} bytes; the limit is ${maxFileBytes})`,
      { file, line: 1, column: 1 },
      'split it into several files with include:, or check that this is the right file',
    );
    return undefined;
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, merge: false, uniqueKeys: true, prettyErrors: false });
  const first = doc.errors[0];
  if (first !== undefined) {
    // Only the first: later YAML errors are usually consequences of it.
    const { line, col } = lineCounter.linePos(first.pos[0]);
    const position = { file, line, column: col };
    if (first.code === 'DUPLICATE_KEY') {
      const key = text.slice(first.pos[0]).split(/[:\n]/)[0]?.trim() ?? '';
      bag.error(`duplicate key "${key}" in a mapping`, position, 'remove one of them: YAML keys must be unique');
      return undefined;
    }
    const message = (first.message.split('\n')[0] ?? first.message)
      .replace(/ at line \d+, column \d+:?$/, '')
      .replace(/^./, (c) => c.toLowerCase());
    bag.error(`invalid YAML: ${message}`, position, yamlHint(first.code));
    return undefined;
  }
  const ctx: ConvertContext = {
    file,
    doc,
    lineCounter,
    bag,
    expanded: 0,
    aliasDepth: 0,
    expanding: new Set(),
    aborted: false,
    anchors: undefined,
    outerAlias: undefined,
  };
  const value = convert(doc.contents, ctx);
  return ctx.aborted ? undefined : value;
}

function yamlHint(code: string): string | undefined {
  switch (code) {
    case 'BAD_INDENT':
    case 'MISSING_CHAR':
    case 'MULTILINE_IMPLICIT_KEY':
    case 'BLOCK_AS_IMPLICIT_KEY':
      return 'check the indentation: keys of one mapping must start in the same column';
    case 'TAB_AS_INDENT':
      return 'indent with spaces, not tabs';
    default:
      return undefined;
  }
}

function tagOf(node: YamlNode): 'reset' | 'override' | undefined {
  if (node.tag === '!reset') return 'reset';
  if (node.tag === '!override') return 'override';
  return undefined;
}

function convert(node: YamlNode | null | undefined, ctx: ConvertContext): unknown {
  if (node === null || node === undefined || ctx.aborted) return null;
  if (ctx.aliasDepth > 0 && ++ctx.expanded > maxAliasExpansion) {
    ctx.aborted = true;
    ctx.bag.error(
      `aliases expand to more than ${maxAliasExpansion} nodes (a YAML "alias bomb"); refusing to load`,
      ctx.outerAlias ?? positionAt(ctx, node.range?.[0]),
      'use fewer nested aliases, or x- extension fields with merge keys (<<) at one level',
    );
    return null;
  }
  const tag = tagOf(node);
  const value = convertUntagged(node, ctx);
  return tag === undefined ? value : new YamlTag(tag, value);
}

function convertUntagged(node: YamlNode, ctx: ConvertContext): unknown {
  if (isAlias(node)) return convertAlias(node, ctx);
  if (isScalar(node)) {
    // `0440` is octal, as compose reads it (go-yaml's YAML 1.1 integers): file modes are written that way.
    if (node.type === 'PLAIN' && typeof node.source === 'string' && /^0[0-7]+$/.test(node.source)) {
      return parseInt(node.source, 8);
    }
    return node.value ?? null;
  }
  if (isSeq(node)) {
    const out: unknown[] = [];
    const location: ContainerLocation = { self: positionAt(ctx, node.range?.[0]), keys: new Map(), values: new Map() };
    node.items.forEach((item, index) => {
      const itemNode = item as YamlNode | null;
      const pos = itemNode ? positionAt(ctx, itemNode.range?.[0]) : location.self;
      location.keys.set(index, pos);
      location.values.set(index, pos);
      out.push(convert(itemNode, ctx));
    });
    locations.set(out, location);
    return out;
  }
  if (isMap(node)) return convertMap(node, ctx);
  return null;
}

function convertAlias(node: Alias, ctx: ConvertContext): unknown {
  const target = resolveAnchor(node, ctx);
  if (target !== undefined && ctx.expanding.has(target)) {
    ctx.aborted = true;
    ctx.bag.error(
      `alias *${node.source} is used inside its own anchor, which would repeat forever`,
      positionAt(ctx, node.range?.[0]),
      'move the alias out of the anchored value',
    );
    return null;
  }
  if (target === undefined) {
    ctx.bag.error(
      `unknown alias *${node.source}`,
      positionAt(ctx, node.range?.[0]),
      'define the anchor (&name) before using the alias (*name)',
    );
    return null;
  }
  if (ctx.aliasDepth === 0) ctx.outerAlias = positionAt(ctx, node.range?.[0]);
  ctx.aliasDepth++;
  ctx.expanding.add(target);
  try {
    return convert(target, ctx);
  } finally {
    ctx.aliasDepth--;
    ctx.expanding.delete(target);
  }
}

/**
 * The node an alias refers to: the last anchor of that name defined before it. yaml's `Alias.resolve` walks the whole
 * document for each alias, which is quadratic for files with hundreds of `<<: *defaults`.
 */
function resolveAnchor(alias: Alias, ctx: ConvertContext): YamlNode | undefined {
  if (ctx.anchors === undefined) {
    const anchors = new Map<string, { offset: number; node: YamlNode }[]>();
    visit(ctx.doc, (_key, node: unknown) => {
      const anchored = node as YamlNode & { anchor?: string };
      if (typeof anchored.anchor === 'string' && anchored.anchor !== '') {
        const list = anchors.get(anchored.anchor) ?? [];
        list.push({ offset: anchored.range?.[0] ?? 0, node: anchored });
        anchors.set(anchored.anchor, list);
      }
    });
    ctx.anchors = anchors;
  }
  const offset = alias.range?.[0] ?? 0;
  let found: YamlNode | undefined;
  for (const candidate of ctx.anchors.get(alias.source) ?? []) if (candidate.offset < offset) found = candidate.node;
  return found;
}

function keyString(key: unknown): string {
  if (isScalar(key)) return key.value === null ? 'null' : scalarText(key.value);
  return String(key);
}

function convertMap(node: YamlNode & { items: { key: unknown; value: unknown }[] }, ctx: ConvertContext): RawMap {
  const out: RawMap = {};
  const location: ContainerLocation = { self: positionAt(ctx, node.range?.[0]), keys: new Map(), values: new Map() };
  const merged: { source: RawMap; location: ContainerLocation | undefined }[] = [];
  for (const pair of node.items) {
    const keyNode = pair.key as YamlNode | null;
    const keyPos = positionAt(ctx, keyNode?.range?.[0]);
    if (keyNode !== null && !isScalar(keyNode)) {
      ctx.bag.error('a mapping key must be a plain value, not a list or mapping', keyPos);
      continue;
    }
    const key = keyString(keyNode);
    const valueNode = pair.value as YamlNode | null;
    if (key === '<<' && keyNode instanceof Scalar && keyNode.type === 'PLAIN') {
      collectMergeSources(valueNode, ctx, merged, keyPos);
      continue;
    }
    location.keys.set(key, keyPos);
    location.values.set(key, valueNode ? positionAt(ctx, valueNode.range?.[0]) : keyPos);
    out[key] = convert(valueNode, ctx);
  }
  // Merge keys never override keys written in the mapping itself; earlier sources win over later ones (YAML 1.1).
  for (const { source, location: sourceLocation } of merged) {
    for (const [key, value] of Object.entries(source)) {
      if (Object.hasOwn(out, key)) continue;
      out[key] = value;
      const keyPos = sourceLocation?.keys.get(key);
      const valuePos = sourceLocation?.values.get(key);
      if (keyPos) location.keys.set(key, keyPos);
      if (valuePos) location.values.set(key, valuePos);
    }
  }
  locations.set(out, location);
  return out;
}

function collectMergeSources(
  valueNode: YamlNode | null,
  ctx: ConvertContext,
  merged: { source: RawMap; location: ContainerLocation | undefined }[],
  keyPos: Position,
): void {
  const nodes = valueNode && isSeq(valueNode) ? (valueNode.items as YamlNode[]) : [valueNode];
  for (const item of nodes) {
    const value = convert(item, ctx);
    if (!isRawMap(value)) {
      ctx.bag.error('a merge key (<<) takes a mapping or a list of mappings, usually aliases like *defaults', keyPos);
      continue;
    }
    merged.push({ source: value, location: locations.get(value) });
  }
}
