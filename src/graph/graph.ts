/**
 * `tsfig graph`: the project's dependency graph as data (pure, from the normalised Project), and its three
 * renderings: a text tree for the terminal, Graphviz DOT and Mermaid. Nothing here reads the engine or the disk.
 */
import type { Project, Service } from '../model/project.js';

/** Why one service needs another. */
export type EdgeKind = 'depends_on' | 'links' | 'volumes_from' | 'network_mode' | 'ipc' | 'pid';

export interface GraphEdge {
  /** The dependent service. */
  readonly from: string;
  /** The service it needs. */
  readonly to: string;
  readonly kind: EdgeKind;
  /** depends_on's condition; implicit dependencies (links...) wait for the start only, as compose does. */
  readonly condition: 'service_started' | 'service_healthy' | 'service_completed_successfully';
  /** @default true */
  readonly required: boolean;
  /** depends_on `restart: true`. */
  readonly restart: boolean;
}

export interface GraphService {
  readonly name: string;
  /** Project-level network keys the service joins, sorted. */
  readonly networks: readonly string[];
  /** `network_mode` when set (`host`, `none`, `service:db`...). */
  readonly networkMode: string | undefined;
}

export interface GraphNetwork {
  readonly key: string;
  /** Name on the host (`<project>_<key>` or `name:`). */
  readonly name: string;
  readonly external: boolean;
  /** Services on it, sorted. */
  readonly services: readonly string[];
}

export interface ProjectGraph {
  readonly project: string;
  /** Enabled services, sorted by name. */
  readonly services: readonly GraphService[];
  /** Every dependency, sorted by (from, to). A target that is not an enabled service is kept (optional or off). */
  readonly edges: readonly GraphEdge[];
  /** Networks used by at least one service or declared, sorted by key. */
  readonly networks: readonly GraphNetwork[];
}

const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function implicitEdges(service: Service): GraphEdge[] {
  const edge = (to: string, kind: EdgeKind): GraphEdge => ({
    from: service.name,
    to,
    kind,
    condition: 'service_started',
    required: true,
    restart: false,
  });
  const out: GraphEdge[] = [];
  for (const link of service.links) out.push(edge(link.split(':')[0] ?? link, 'links'));
  for (const entry of service.volumes_from) {
    if (!entry.startsWith('container:')) out.push(edge(entry.split(':')[0] ?? entry, 'volumes_from'));
  }
  const modes: ReadonlyArray<[EdgeKind, unknown]> = [
    ['network_mode', service.network_mode],
    ['ipc', service.other.ipc],
    ['pid', service.other.pid],
  ];
  for (const [kind, mode] of modes) {
    if (typeof mode === 'string' && mode.startsWith('service:')) out.push(edge(mode.slice('service:'.length), kind));
  }
  return out;
}

/** The graph of a project: services, their dependencies (depends_on first, then implicit ones) and networks. */
export function projectGraph(project: Project): ProjectGraph {
  const names = Object.keys(project.services).sort(byName);
  const services: GraphService[] = [];
  const edges: GraphEdge[] = [];
  const members = new Map<string, string[]>();
  for (const name of names) {
    const service = project.services[name] as Service;
    const networks = Object.keys(service.networks).sort(byName);
    services.push({ name, networks, networkMode: service.network_mode });
    for (const key of networks) members.set(key, [...(members.get(key) ?? []), name]);
    const seen = new Set<string>();
    for (const to of Object.keys(service.depends_on).sort(byName)) {
      const dep = service.depends_on[to];
      if (dep === undefined) continue;
      seen.add(to);
      edges.push({ from: name, to, kind: 'depends_on', ...dep });
    }
    for (const edge of implicitEdges(service)) {
      if (seen.has(edge.to)) continue;
      seen.add(edge.to);
      edges.push(edge);
    }
  }
  edges.sort((a, b) => byName(a.from, b.from) || byName(a.to, b.to));
  const keys = new Set([...Object.keys(project.networks), ...members.keys()]);
  const networks = [...keys].sort(byName).map((key) => ({
    key,
    name: project.networks[key]?.name ?? `${project.name}_${key}`,
    external: project.networks[key]?.external ?? false,
    services: members.get(key) ?? [],
  }));
  return { project: project.name, services, edges, networks };
}

/** How an edge is described: `service_healthy`, `links`, `service_started, optional, restart`... */
export function edgeLabel(edge: GraphEdge): string {
  const parts: string[] = [edge.kind === 'depends_on' ? edge.condition : edge.kind];
  if (!edge.required) parts.push('optional');
  if (edge.restart) parts.push('restart');
  return parts.join(', ');
}

function serviceNetworks(service: GraphService | undefined): string {
  if (service === undefined) return '';
  if (service.networkMode !== undefined) return `network_mode: ${service.networkMode}`;
  return service.networks.length === 0 ? '' : `networks: ${service.networks.join(', ')}`;
}

/**
 * The text tree: each service that nothing depends on is a root, its dependencies below it with their conditions.
 * A service already expanded elsewhere is named again with `(see above)` instead of its subtree; then the networks
 * with their members.
 */
export function renderGraphText(graph: ProjectGraph): string {
  const services = new Map(graph.services.map((service) => [service.name, service]));
  const needs = new Map<string, GraphEdge[]>();
  for (const edge of graph.edges) needs.set(edge.from, [...(needs.get(edge.from) ?? []), edge]);
  const needed = new Set(graph.edges.filter((edge) => services.has(edge.to)).map((edge) => edge.to));
  const expanded = new Set<string>();
  const lines: string[] = [];
  const describe = (name: string, label: string | undefined): string => {
    const service = services.get(name);
    const parts = [name];
    if (label !== undefined) parts.push(`(${label})`);
    if (service === undefined) parts.push('[not an enabled service]');
    else if (expanded.has(name)) parts.push('(see above)');
    else {
      const networks = serviceNetworks(service);
      if (networks !== '') parts.push(`[${networks}]`);
    }
    return parts.join(' ');
  };
  const visit = (name: string, prefix: string, path: readonly string[]): void => {
    expanded.add(name);
    const children = needs.get(name) ?? [];
    children.forEach((edge, index) => {
      const last = index === children.length - 1;
      const cycle = path.includes(edge.to);
      const line = describe(edge.to, edgeLabel(edge)) + (cycle ? ' (cycle)' : '');
      lines.push(`${prefix}${last ? '└── ' : '├── '}${line}`);
      if (!cycle && services.has(edge.to) && !expanded.has(edge.to)) {
        visit(edge.to, `${prefix}${last ? '    ' : '│   '}`, [...path, edge.to]);
      }
    });
  };
  const roots = graph.services.filter((service) => !needed.has(service.name)).map((service) => service.name);
  // Only a cycle (which the loader refuses) leaves services unreached from the roots; they are shown anyway.
  for (const name of [...roots, ...graph.services.map((service) => service.name)]) {
    if (expanded.has(name)) continue;
    lines.push(describe(name, undefined));
    visit(name, '', [name]);
  }
  if (graph.networks.length > 0) {
    lines.push('', 'networks:');
    const hostName = (network: GraphNetwork) => `(${network.name}${network.external ? ', external' : ''})`;
    const keyWidth = Math.max(...graph.networks.map((network) => network.key.length));
    const nameWidth = Math.max(...graph.networks.map((network) => hostName(network).length));
    for (const network of graph.networks) {
      const members = network.services.length === 0 ? '(no services)' : network.services.join(', ');
      lines.push(`  ${network.key.padEnd(keyWidth)}  ${hostName(network).padEnd(nameWidth)}  ${members}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

const dotQuote = (text: string): string =>
  `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;

/** Graphviz DOT: services are boxes, networks ellipses; an arrow points from a service to what it needs. */
export function renderGraphDot(graph: ProjectGraph): string {
  const services = new Set(graph.services.map((service) => service.name));
  const lines = [`digraph ${dotQuote(graph.project)} {`, '  rankdir=LR;', '  node [shape=box];'];
  for (const service of graph.services) {
    const networkMode = service.networkMode === undefined ? '' : `\nnetwork_mode: ${service.networkMode}`;
    lines.push(`  ${dotQuote(service.name)} [label=${dotQuote(service.name + networkMode)}];`);
  }
  for (const target of new Set(graph.edges.map((edge) => edge.to))) {
    if (!services.has(target))
      lines.push(`  ${dotQuote(target)} [style=dashed, label=${dotQuote(`${target}\n(not enabled)`)}];`);
  }
  for (const edge of graph.edges) {
    const style = edge.required ? '' : ', style=dashed';
    lines.push(`  ${dotQuote(edge.from)} -> ${dotQuote(edge.to)} [label=${dotQuote(edgeLabel(edge))}${style}];`);
  }
  for (const network of graph.networks) {
    const id = dotQuote(`network:${network.key}`);
    lines.push(`  ${id} [shape=ellipse, label=${dotQuote(`${network.key}\n(${network.name})`)}];`);
    for (const member of network.services) lines.push(`  ${dotQuote(member)} -> ${id} [arrowhead=none, style=dotted];`);
  }
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

const mermaidText = (text: string): string => `"${text.replace(/"/g, '#quot;')}"`;

/** Mermaid flowchart: services as boxes, networks as hexagons joined by dotted links; optional needs are dotted. */
export function renderGraphMermaid(graph: ProjectGraph): string {
  const ids = new Map<string, string>();
  const lines = ['flowchart LR'];
  const serviceId = (name: string): string => {
    let id = ids.get(name);
    if (id === undefined) {
      id = `s${ids.size}`;
      ids.set(name, id);
      const enabled = graph.services.some((service) => service.name === name);
      lines.push(`  ${id}[${mermaidText(enabled ? name : `${name} (not enabled)`)}]`);
    }
    return id;
  };
  for (const service of graph.services) serviceId(service.name);
  for (const edge of graph.edges) serviceId(edge.to);
  for (const edge of graph.edges) {
    const arrow = edge.required ? '-->' : '-.->';
    lines.push(`  ${serviceId(edge.from)} ${arrow}|${mermaidText(edgeLabel(edge))}| ${serviceId(edge.to)}`);
  }
  graph.networks.forEach((network, index) => {
    lines.push(`  n${index}{{${mermaidText(`network ${network.key}`)}}}`);
    for (const member of network.services) lines.push(`  ${serviceId(member)} -.- n${index}`);
  });
  return `${lines.join('\n')}\n`;
}
