/** `docker inspect`'s JSON of a container (ContainerManager.inspect), out of the manager: shape only, no I/O. */
import path from 'node:path';
import type { NetworkState } from '../network/index.js';
import type { EnginePaths } from '../state/paths.js';
import { containerFiles } from './runtime-config.js';
import type { ContainerRecord, ContainerState, MonitorStatus } from './types.js';

/**
 * `docker inspect`'s JSON of a container, for the fields tsfig has (pure): its record, its state as the monitor
 * reports it, and its endpoints on the root's networks.
 */
export function inspectJson(
  paths: EnginePaths,
  record: ContainerRecord,
  state: ContainerState,
  status: MonitorStatus | undefined,
  networks: readonly NetworkState[],
): Record<string, unknown> {
  const files = containerFiles(path.join(paths.containers, record.id));
  const health = status?.health;
  return {
    Id: record.id,
    Name: `/${record.name}`,
    Created: record.created,
    Path: record.process.argv[0],
    Args: record.process.argv.slice(1),
    State: {
      Status: state.status,
      Running: state.running,
      Restarting: state.status === 'restarting',
      Pid: state.pid,
      ExitCode: state.exitCode,
      OOMKilled: state.oomKilled,
      Error: state.error,
      StartedAt: state.startedAt,
      FinishedAt: state.finishedAt,
      ...(health !== undefined
        ? {
            Health: {
              Status: health.status,
              FailingStreak: health.failingStreak,
              Log: health.log.map((entry) => ({
                Start: entry.start,
                End: entry.end,
                ExitCode: entry.exitCode,
                Output: entry.output,
              })),
            },
          }
        : {}),
    },
    RestartCount: state.restartCount,
    Image: record.imageId,
    LogPath: files.log,
    HostnamePath: files.hostname,
    HostsPath: files.hosts,
    ResolvConfPath: files.resolvConf,
    Config: {
      Hostname: record.hostname,
      User: record.process.user,
      Env: record.process.env,
      Cmd: record.spec.cmd ?? null,
      Entrypoint: record.spec.entrypoint ?? null,
      Image: record.imageRef,
      WorkingDir: record.process.cwd,
      Labels: record.labels,
      Tty: record.spec.tty === true,
      OpenStdin: record.spec.openStdin === true,
      StopSignal: String(record.stopSignal),
      StopTimeout: record.stopTimeout,
    },
    HostConfig: {
      NetworkMode: (record.spec.networks ?? [])[0]?.name ?? record.spec.network ?? 'none',
      Privileged: record.spec.privileged === true,
      ReadonlyRootfs: record.spec.readonlyRootfs === true,
      CapAdd: record.spec.capAdd ?? null,
      CapDrop: record.spec.capDrop ?? null,
      Memory: record.spec.memory ?? 0,
      MemorySwap: record.spec.memorySwap ?? 0,
      NanoCpus: record.spec.nanoCpus ?? 0,
      PidsLimit: record.spec.pidsLimit ?? 0,
      ShmSize: record.spec.shmSize ?? 67_108_864,
      Init: record.spec.init === true,
      RestartPolicy: {
        Name: record.spec.restart?.name ?? 'no',
        MaximumRetryCount: record.spec.restart?.maxRetries ?? 0,
      },
      CgroupParent: paths.cgroupParent,
    },
    Mounts: record.mounts.map((mount) => ({
      Type: mount.volumeName !== undefined ? 'volume' : mount.type,
      Name: mount.volumeName,
      Source: mount.source,
      Destination: mount.destination,
      RW: !mount.options.includes('ro'),
    })),
    NetworkSettings: networkSettings(paths, record, networks),
    GraphDriver: { Name: 'overlay', Data: { UpperDir: files.upper, WorkDir: files.work } },
    Capabilities: record.capabilities,
  };
}

/** docker inspect's NetworkSettings: per-network addresses and the published ports. */
function networkSettings(
  paths: EnginePaths,
  record: ContainerRecord,
  all: readonly NetworkState[],
): Record<string, unknown> {
  const networks: Record<string, unknown> = {};
  const ports: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const network of all) {
    const endpoint = network.endpoints[record.id];
    if (endpoint === undefined) continue;
    networks[network.name] = {
      NetworkID: network.id,
      IPAddress: endpoint.ip,
      IPPrefixLen: Number(network.subnet.split('/')[1]),
      Gateway: network.gateway,
      MacAddress: endpoint.mac,
      Aliases: endpoint.aliases,
      DNSNames: [record.name, ...endpoint.aliases, record.hostname],
    };
    for (const port of endpoint.ports) {
      const key = `${port.containerPort}/${port.proto}`;
      (ports[key] ??= []).push({
        HostIp: port.hostIp === '' ? '0.0.0.0' : port.hostIp,
        HostPort: String(port.hostPort),
      });
    }
  }
  return { Networks: networks, Ports: ports, SandboxKey: path.join(paths.netns, record.id) };
}
