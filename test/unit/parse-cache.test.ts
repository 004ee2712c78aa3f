import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { DiagnosticBag } from '../../src/config/diagnostics.js';
import {
  decodeParsed,
  encodeParsed,
  fileParseCache,
  parseKey,
  parseThrough,
  type ParseCache,
} from '../../src/config/parse-cache.js';
import { locationOf, parseYaml, YamlTag } from '../../src/config/parse.js';
import { compareNatural, compareText } from '../../engine/state/index.js';

const FILE = '/p/compose.yaml';
const TEXT = `x-defaults: &defaults
  restart: always
  labels: [a, b]
services:
  web:
    <<: *defaults
    image: busybox
    command: ["sh", "-c", "echo hi"]
    environment:
      EMPTY:
      N: 0440
      F: .inf
      G: -.inf
      H: .nan
      Z: -0.0
      T: true
    ports: !reset []
    volumes: !override
      - /a:/b
  db: &db
    image: redis
  db2: *db
  "1": {}
`;

/** Every mapping and sequence of a parsed value with its recorded location, in walk order. */
function walk(value: unknown, out: { value: unknown; location: unknown }[] = []): typeof out {
  if (value instanceof YamlTag) return walk(value.value, out);
  if (typeof value !== 'object' || value === null) return out;
  const location = locationOf(value);
  out.push({
    value,
    location: location && {
      self: location.self,
      keys: [...location.keys].sort(([a], [b]) => compareText(String(a), String(b))),
      values: [...location.values].sort(([a], [b]) => compareText(String(a), String(b))),
    },
  });
  for (const child of Object.values(value)) walk(child, out);
  return out;
}

describe('parse cache: encoding', () => {
  it('gives back the same values, types, tags and positions as the parse', () => {
    const bag = new DiagnosticBag();
    const parsed = parseYaml(FILE, TEXT, bag);
    assert.equal(bag.items.length, 0);
    const encoded = encodeParsed(parsed);
    assert.ok(encoded !== undefined);
    const decoded = decodeParsed(encoded, FILE);
    assert.deepEqual(decoded, parsed);
    const env = (decoded as { services: { web: { environment: Record<string, unknown> } } }).services.web.environment;
    assert.equal(env.N, 0o440);
    assert.equal(env.F, Infinity);
    assert.equal(env.G, -Infinity);
    assert.ok(Number.isNaN(env.H));
    assert.ok(Object.is(env.Z, -0));
    assert.equal(env.EMPTY, null);
    const services = (decoded as { services: Record<string, Record<string, unknown>> }).services;
    assert.ok(services.web?.ports instanceof YamlTag && services.web.ports.tag === 'reset');
    assert.ok(services.web?.volumes instanceof YamlTag && services.web.volumes.tag === 'override');
    assert.deepEqual(Object.keys(services), Object.keys((parsed as { services: object }).services));
    const want = walk(parsed);
    const got = walk(decoded);
    assert.equal(got.length, want.length);
    got.forEach((entry, i) => assert.deepEqual(entry.location, want[i]?.location, `container ${i}`));
  });

  it('keeps one object one object', () => {
    const shared = { a: 1 };
    const decoded = decodeParsed(encodeParsed({ x: shared, y: shared }) ?? '', FILE) as { x: object; y: object };
    assert.equal(decoded.x, decoded.y);
  });

  it('refuses what parseYaml does not make, and a damaged encoding', () => {
    assert.equal(encodeParsed({ d: new Date(0) }), undefined);
    assert.equal(encodeParsed({ f: () => 1 }), undefined);
    for (const bad of ['["m",[1,1],[[1,0,0,"x"]],0]', '["r",5]', '["t","other",1]', '["q"]', '{"a":1}', '["a",0,[],3]'])
      assert.throws(() => decodeParsed(bad, FILE), bad);
  });
});

describe('parse cache: parseThrough', () => {
  const memory = (): ParseCache & { map: Map<string, string> } => {
    const map = new Map<string, string>();
    return { map, get: (key) => map.get(key), set: (key, value) => void map.set(key, value) };
  };

  it('stores a clean parse and answers the next one from the cache, with the source kept for excerpts', () => {
    const cache = memory();
    const first = parseThrough(cache, 'id', FILE, TEXT, new DiagnosticBag());
    assert.equal(cache.map.size, 1);
    // a hit does not parse: a cached value for the key is what comes back
    const key = parseKey('id', FILE, TEXT);
    cache.map.set(key, encodeParsed({ services: { marker: {} } }) ?? '');
    const bag = new DiagnosticBag();
    assert.deepEqual(parseThrough(cache, 'id', FILE, TEXT, bag), { services: { marker: {} } });
    assert.equal(bag.sources.get(FILE), TEXT);
    // another parser identity, file or text is another key
    assert.notEqual(parseKey('id2', FILE, TEXT), key);
    assert.notEqual(parseKey('id', '/q/compose.yaml', TEXT), key);
    assert.notEqual(parseKey('id', FILE, `${TEXT} `), key);
    assert.ok(first !== undefined);
  });

  it('never stores a parse with diagnostics, and parses again over a damaged entry', () => {
    const cache = memory();
    const bag = new DiagnosticBag();
    assert.equal(parseThrough(cache, 'id', FILE, 'a: 1\na: 2\n', bag), undefined);
    assert.equal(bag.errors.length, 1);
    assert.equal(cache.map.size, 0);
    const key = parseKey('id', FILE, 'b: 1\n');
    cache.map.set(key, '["m",');
    assert.deepEqual(parseThrough(cache, 'id', FILE, 'b: 1\n', new DiagnosticBag()), { b: 1 });
    assert.notEqual(cache.map.get(key), '["m",');
  });
});

describe('parse cache: files', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tsfig-parse-cache-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const key = (n: number): string => n.toString(16).padStart(64, '0');

  it('reads back what it wrote (0600 in a 0700 dir it makes), and nothing under another key', () => {
    const cache = fileParseCache(path.join(dir, 'a'));
    cache.set(key(1), '["m",[1,1],[],0]');
    assert.equal(cache.get(key(1)), '["m",[1,1],[],0]');
    assert.equal(cache.get(key(2)), undefined);
    assert.equal(cache.get('../../etc/passwd'), undefined);
    const file = path.join(dir, 'a', `${key(1)}.json`);
    assert.equal(readFileSync(file, 'utf8').split('\n')[0], key(1));
  });

  it('ignores an entry others can write, or one whose first line is another key', () => {
    const cache = fileParseCache(path.join(dir, 'b'));
    cache.set(key(1), '1');
    const file = path.join(dir, 'b', `${key(1)}.json`);
    chmodSync(file, 0o666);
    assert.equal(cache.get(key(1)), undefined);
    writeFileSync(file, `${key(2)}\n1`, { mode: 0o600 });
    chmodSync(file, 0o600);
    assert.equal(cache.get(key(1)), undefined);
  });

  it('keeps the 64 most recent entries', () => {
    const sub = path.join(dir, 'c');
    const cache = fileParseCache(sub);
    for (let n = 0; n < 64; n++) {
      cache.set(key(n), String(n));
      utimesSync(path.join(sub, `${key(n)}.json`), n + 1, n + 1);
    }
    cache.set(key(100), '100');
    const names = readdirSync(sub);
    assert.equal(names.length, 64);
    assert.ok(!names.includes(`${key(0)}.json`));
    assert.equal(cache.get(key(100)), '100');
  });
});

describe('compareText and compareNatural', () => {
  it('order as Go compares strings, and digit runs by value', () => {
    assert.deepEqual(['b', 'a', 'B', 'ab'].sort(compareText), ['B', 'a', 'ab', 'b']);
    assert.deepEqual(['eth10', 'eth2', 'eth1'].sort(compareNatural), ['eth1', 'eth2', 'eth10']);
    assert.deepEqual(['10.0.0.10', '10.0.0.9', '10.0.1.2', '9.1.1.1'].sort(compareNatural), [
      '9.1.1.1',
      '10.0.0.9',
      '10.0.0.10',
      '10.0.1.2',
    ]);
    assert.equal(compareNatural('a', 'a'), 0);
    assert.equal(compareNatural('a1', 'a'), 1);
  });
});
