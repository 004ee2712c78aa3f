import type { Engine } from '../../../engine/index.js';
import type { ObservedContainer } from '../../planner/observed.js';
import { relativeTime, renderTable } from '../table.js';

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

/** Rows as `docker compose ps --format json` gives them (one object per container). */
export async function psRows(engine: Engine, containers: readonly ObservedContainer[]): Promise<PsRow[]> {
  // One read of the networks for every container's published ports; the containers are read in parallel.
  const networks = containers.length === 0 ? [] : await engine.networks.list();
  return Promise.all(containers.map((container) => psRow(engine, container, networks)));
}

async function psRow(
  engine: Engine,
  container: ObservedContainer,
  networks: Awaited<ReturnType<Engine['networks']['list']>>,
): Promise<PsRow> {
  const record = await engine.containers.get(container.id);
  const state = await engine.containers.state(record);
  const ports = networks.flatMap((network) => network.endpoints[container.id]?.ports ?? []);
  const health = state.health?.status ?? '';
  const status =
    state.status === 'running'
      ? `Up ${relativeTime(state.startedAt, false)}${health !== '' ? ` (${health})` : ''}`
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
    State: state.status,
    Status: status,
    Health: health,
    ExitCode: state.exitCode,
    RestartCount: state.restartCount,
    Publishers: ports.map((port) => ({
      URL: port.hostIp === '' ? '0.0.0.0' : port.hostIp,
      TargetPort: port.containerPort,
      PublishedPort: port.hostPort,
      Protocol: port.proto,
    })),
  };
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
      row.Publishers.map((port) => `${port.URL}:${port.PublishedPort}->${port.TargetPort}/${port.Protocol}`).join(', '),
    ]),
  );
}
