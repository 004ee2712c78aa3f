/** `tsfig graph`: the dependency graph of a loaded project and its text, DOT and Mermaid renderings (goldens). */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { loadProject } from '../../src/config/load.js';
import { projectGraph, renderGraphDot, renderGraphMermaid, renderGraphText } from '../../src/graph/graph.js';
import type { Project } from '../../src/model/project.js';

const GOLDEN_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'golden', 'graph');
const dir = mkdtempSync(path.join(tmpdir(), 'tsfig-graph-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function assertGolden(fileName: string, actual: string): void {
  const file = path.join(GOLDEN_DIR, fileName);
  if (process.env.UPDATE_GOLDEN === '1') {
    mkdirSync(GOLDEN_DIR, { recursive: true });
    writeFileSync(file, actual);
    return;
  }
  assert.equal(actual, readFileSync(file, 'utf8'), `golden ${fileName} differs (UPDATE_GOLDEN=1 to regenerate)`);
}

function load(name: string, yaml: string): Project {
  const project = path.join(dir, name);
  mkdirSync(project, { recursive: true });
  writeFileSync(path.join(project, 'compose.yaml'), yaml);
  return loadProject({
    files: [],
    projectName: undefined,
    projectDirectory: undefined,
    envFiles: [],
    profiles: [],
    services: [],
    interpolate: true,
    cwd: project,
    env: {},
  }).project;
}

/** A shop: web needs a healthy db and a finished migration, a cache it may do without, and a sidecar in its netns. */
const SHOP = `name: shop
services:
  web:
    image: web
    networks: [front, back]
    depends_on:
      db: { condition: service_healthy, restart: true }
      migrate: { condition: service_completed_successfully }
      cache: { condition: service_started, required: false }
  migrate:
    image: web
    networks: [back]
    depends_on: [db]
  db:
    image: postgres
    networks: [back]
  cache:
    image: redis
    profiles: [cache]
  proxy:
    image: nginx
    networks: [front]
    links: ["web:app"]
  sidecar:
    image: busybox
    network_mode: service:web
networks:
  front:
  back:
    name: shop-internal
  spare:
    external: true
`;

describe('tsfig graph', () => {
  const project = load('shop', SHOP);

  test('the graph lists depends_on with conditions, implicit needs by kind, and every network with its members', () => {
    const graph = projectGraph(project);
    assert.deepEqual(
      graph.services.map((service) => service.name),
      ['db', 'migrate', 'proxy', 'sidecar', 'web'],
    );
    assert.deepEqual(
      graph.edges.map((edge) => `${edge.from}->${edge.to} ${edge.kind} ${edge.condition} ${edge.required}`),
      [
        'migrate->db depends_on service_started true',
        'proxy->web links service_started true',
        'sidecar->web network_mode service_started true',
        'web->cache depends_on service_started false',
        'web->db depends_on service_healthy true',
        'web->migrate depends_on service_completed_successfully true',
      ],
    );
    assert.deepEqual(
      graph.networks.map((network) => [network.key, network.name, network.services.join(',')]),
      [
        ['back', 'shop-internal', 'db,migrate,web'],
        ['front', 'shop_front', 'proxy,web'],
        ['spare', 'spare', ''],
      ],
    );
  });

  test('text: a tree from the services nothing needs, shared needs shown once, then the networks', () => {
    const text = renderGraphText(projectGraph(project));
    assertGolden('shop.txt', text);
    assert.equal(text.match(/^\s*\S+ db \(service_healthy, restart\) \[networks: back\]$/m)?.length, 1);
    assert.match(text, /cache \(service_started, optional\) \[not an enabled service\]/);
  });

  test('dot: boxes for services, labelled arrows to what they need, dotted lines to networks', () => {
    const dot = renderGraphDot(projectGraph(project));
    assertGolden('shop.dot', dot);
    assert.match(dot, /"web" -> "db" \[label="service_healthy, restart"\];/);
    assert.match(dot, /"web" -> "cache" \[label="service_started, optional", style=dashed\];/);
  });

  test('mermaid: a flowchart with labelled arrows and network hexagons', () => {
    const mermaid = renderGraphMermaid(projectGraph(project));
    assertGolden('shop.mmd', mermaid);
    assert.match(mermaid, /^flowchart LR\n/);
  });

  test('a project with one service and no depends_on is one line plus its default network', () => {
    const text = renderGraphText(projectGraph(load('one', 'services:\n  app:\n    image: busybox\n')));
    assert.equal(text, 'app [networks: default]\n\nnetworks:\n  default  (one_default)  app\n');
  });

  test('names with quotes cannot break out of DOT or Mermaid labels', () => {
    const graph = {
      project: 'p"x',
      services: [{ name: 'a"b', networks: [], networkMode: undefined }],
      edges: [],
      networks: [],
    };
    assert.match(renderGraphDot(graph), /^digraph "p\\"x" \{\n.*\n.*\n {2}"a\\"b" \[label="a\\"b"\];/);
    assert.match(renderGraphMermaid(graph), /s0\["a#quot;b"\]/);
  });
});
