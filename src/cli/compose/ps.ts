import type { ContainerRecord, ContainerState } from '../../../engine/containers/index.js';
import type { Engine } from '../../../engine/index.js';
import { TsfigError } from '../../errors.js';
import type { Project } from '../../model/project.js';
import type { ObservedContainer, ObservedState } from '../../planner/observed.js';
import { relativeTime, renderTable } from '../table.js';
import { compareText } from '../../../engine/index.js';
import { serviceContainers } from './context.js';

/** What `ps` selects on: `-a`, `--status` (repeatable) and `--filter KEY=VAL` (repeatable). */
export interface PsSelection {
  readonly all: boolean;
  readonly status: readonly string[];
  readonly filters: readonly string[];
  /** The ids of the running containers that `pause` froze: their state is `paused`, not `running` (docker's). */
  readonly paused?: ReadonlySet<string>;
}

/** compose v2's states (`ps --status`), and v1's `stopped` (any container that is not running). */
const STATUSES = ['paused', 'restarting', 'removing', 'running', 'dead', 'created', 'exited', 'stopped'];

/**
 * The containers `ps` lists, as compose v2 selects them: running service containers; `-a` adds the stopped ones and
 * the one-off containers of `run`; a status (`--status X` or `--filter status=X`) lists every container in that
 * state, one-offs included. `--filter source=image|build` (compose v1) keeps the services that have an `image:` or a
 * `build:`. A service's one-offs come after its numbered containers. Another filter, or a value compose does not know, is a usage error that changes nothing.
 */
export function selectPsContainers(
  project: Project,
  observed: Pick<ObservedState, 'containers'>,
  services: readonly string[],
  selection: PsSelection,
): ObservedContainer[] {
  const statuses = [...selection.status];
  const sources: string[] = [];
  for (const filter of selection.filters) {
    const eq = filter.indexOf('=');
    if (eq <= 0) throw new TsfigError('usage', `--filter ${filter}: arguments to --filter should be in form KEY=VAL`);
    const key = filter.slice(0, eq);
    const value = filter.slice(eq + 1);
    if (key === 'status') statuses.push(value);
    else if (key === 'source') {
      if (value !== 'image' && value !== 'build')
        throw new TsfigError('usage', `--filter source=${value}: invalid value for the source filter`, {
          hint: 'use source=image or source=build',
        });
      sources.push(value);
    } else
      throw new TsfigError('usage', `--filter ${filter}: unknown filter ${key}`, {
        hint: 'ps filters on status=<state> or source=image|build',
      });
  }
  for (const status of statuses) {
    if (!STATUSES.includes(status))
      throw new TsfigError('usage', `invalid status: ${status}`, {
        hint: `a status is one of: ${STATUSES.join(', ')}`,
      });
  }
  const stateOf = (container: ObservedContainer): string =>
    selection.paused?.has(container.id) === true ? 'paused' : container.status;
  const matches = (container: ObservedContainer, status: string): boolean =>
    status === 'stopped' ? !container.running : stateOf(container) === status;
  const sourceOf = (container: ObservedContainer): string | undefined => {
    const service = project.services[container.service] ?? project.disabled_services[container.service];
    return service === undefined ? undefined : service.build !== undefined ? 'build' : 'image';
  };
  return serviceContainers(observed, services, { includeOneoff: selection.all || statuses.length > 0 })
    .filter((container) =>
      statuses.length > 0 ? statuses.some((status) => matches(container, status)) : selection.all || container.running,
    )
    .filter((container) => sources.length === 0 || sources.includes(sourceOf(container) ?? ''))
    .sort((a, b) => compareText(a.service, b.service) || Number(a.oneoff) - Number(b.oneoff));
}

export interface PsRow {
  readonly ID: string;
  readonly Name: string;
  readonly Image: string;
  readonly Command: string;
  readonly Project: string;
  readonly Service: string;
  readonly Created: string;
  readonly State: string;
  readonly Status: string;
  readonly Health: string;
  readonly ExitCode: number;
  readonly RestartCount: number;
  readonly Publishers: readonly { URL: string; TargetPort: number; PublishedPort: number; Protocol: string }[];
}

/**
 * Rows as `docker compose ps --format json` gives them (one object per container), from the records and states the
 * containers were observed from (`observeContainers`: nothing read twice).
 */
export async function psRows(
  engine: Engine,
  containers: readonly ObservedContainer[],
  observed: readonly { readonly record: ContainerRecord; readonly state: ContainerState }[],
  paused: ReadonlySet<string> = new Set(),
): Promise<PsRow[]> {
  // One read of the networks for every container's published ports.
  const networks = containers.length === 0 ? [] : await engine.networks.list();
  const byId = new Map(observed.map((entry) => [entry.record.id, entry]));
  return Promise.all(
    containers.map(async (container) => {
      const entry = byId.get(container.id);
      const record = entry?.record ?? (await engine.containers.get(container.id));
      const state = entry?.state ?? (await engine.containers.state(record));
      return psRow(container, record, state, networks, paused.has(container.id));
    }),
  );
}

function psRow(
  container: ObservedContainer,
  record: ContainerRecord,
  state: ContainerState,
  networks: Awaited<ReturnType<Engine['networks']['list']>>,
  paused: boolean,
): PsRow {
  // docker lists the published ports of running containers only (a stopped one keeps its endpoint here, not its ports).
  const ports = state.running ? networks.flatMap((network) => network.endpoints[container.id]?.ports ?? []) : [];
  const health = state.health?.status ?? '';
  const status =
    state.status === 'running'
      ? `Up ${relativeTime(state.startedAt, false)}${paused ? ' (Paused)' : health !== '' ? ` (${health})` : ''}`
      : state.status === 'restarting'
        ? `Restarting (${state.exitCode}) ${relativeTime(state.finishedAt)}`
        : state.status === 'exited'
          ? `Exited (${state.exitCode}) ${relativeTime(state.finishedAt)}`
          : 'Created';
  return {
    ID: container.id,
    Name: container.name,
    Image: record.imageRef,
    Command: record.process.argv.join(' '),
    Project: container.project,
    Service: container.service,
    Created: record.created,
    State: paused && state.running ? 'paused' : state.status,
    Status: status,
    Health: health,
    ExitCode: state.exitCode,
    RestartCount: state.restartCount,
    Publishers: publishers(ports, state.running ? (record.spec.exposedPorts ?? []) : []),
  };
}

/**
 * The published ports, then the exposed ones not published (URL "", PublishedPort 0, as compose v2's ps JSON has
 * them), by container port: docker's PORTS column (`80/tcp, 443/tcp, 127.0.0.1:8001->8000/tcp`).
 */
function publishers(
  published: readonly { hostIp: string; hostPort: number; containerPort: number; proto: string }[],
  exposed: readonly string[],
): PsRow['Publishers'] {
  const out: { URL: string; TargetPort: number; PublishedPort: number; Protocol: string }[] = published.map((port) => ({
    URL: port.hostIp === '' ? '0.0.0.0' : port.hostIp,
    TargetPort: port.containerPort,
    PublishedPort: port.hostPort,
    Protocol: port.proto,
  }));
  for (const entry of exposed) {
    const [port = '', proto = 'tcp'] = entry.split('/');
    const target = Number(port);
    if (!Number.isInteger(target) || out.some((p) => p.TargetPort === target && p.Protocol === proto)) continue;
    out.push({ URL: '', TargetPort: target, PublishedPort: 0, Protocol: proto });
  }
  return out.sort((a, b) => a.TargetPort - b.TargetPort || (a.Protocol < b.Protocol ? -1 : 1));
}

export function renderPsTable(rows: readonly PsRow[]): string {
  return renderTable(
    ['NAME', 'IMAGE', 'COMMAND', 'SERVICE', 'CREATED', 'STATUS', 'PORTS'],
    rows.map((row) => [
      row.Name,
      row.Image,
      JSON.stringify(row.Command.length > 20 ? `${row.Command.slice(0, 19)}…` : row.Command),
      row.Service,
      relativeTime(row.Created),
      row.Status,
      row.Publishers.map((port) =>
        port.PublishedPort === 0
          ? `${port.TargetPort}/${port.Protocol}`
          : `${port.URL}:${port.PublishedPort}->${port.TargetPort}/${port.Protocol}`,
      ).join(', '),
    ]),
  );
}
