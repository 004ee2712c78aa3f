import { inspectFormatter } from '../go-template.js';
import type { Command } from 'commander';
import { ContainerManager } from '../../../engine/containers/index.js';
import type { ContainerRecord } from '../../../engine/containers/index.js';
import { isEngineError } from '../../../engine/errors.js';
import { ImageStore } from '../../../engine/images/index.js';
import { NetworkManager, type NetworkState } from '../../../engine/network/index.js';
import { enginePaths, type EnginePaths } from '../../../engine/state/index.js';
import { TsfigError } from '../../errors.js';
import { askOnStdin } from '../prompt.js';
import { renderTable } from '../table.js';
import { collect } from '../units.js';

/** Where the network commands read and write; tests pass their own. */
export interface NetworkCommandIo {
  /** @default enginePaths() (TSFIG_ROOT) */
  readonly paths?: () => EnginePaths;
  /** @default process.stdout */
  readonly stdout?: { write(text: string): unknown };
  /** @default process.stderr */
  readonly stderr?: { write(text: string): unknown };
  /** Answers the prune confirmation. @default one line read from process.stdin */
  readonly confirm?: (question: string) => Promise<boolean>;
}

function labels(values: readonly string[]): Record<string, string> {
  const result: Record<string, string> = {};
  for (const value of values) {
    const eq = value.indexOf('=');
    if (eq === 0) throw new TsfigError('usage', `--label ${JSON.stringify(value)}: the key is empty`);
    if (eq < 0) result[value] = '';
    else result[value.slice(0, eq)] = value.slice(eq + 1);
  }
  return result;
}

function labelText(network: NetworkState): string {
  return Object.entries(network.labels)
    .map(([key, value]) => `${key}=${value}`)
    .join(',');
}

/** `docker network ls --format json` line. */
function lsLine(network: NetworkState): string {
  return JSON.stringify({
    CreatedAt: network.created,
    Driver: network.driver,
    ID: network.id.slice(0, 12),
    IPv6: 'false',
    Internal: String(network.internal),
    Labels: labelText(network),
    Name: network.name,
    Scope: 'local',
  });
}

/** `docker network inspect` object. */
export function inspectObject(network: NetworkState): Record<string, unknown> {
  return {
    Name: network.name,
    Id: network.id,
    Created: network.created,
    Scope: 'local',
    Driver: network.driver,
    EnableIPv6: false,
    IPAM: { Driver: 'default', Options: {}, Config: [{ Subnet: network.subnet, Gateway: network.gateway }] },
    Internal: network.internal,
    Attachable: false,
    Ingress: false,
    Containers: Object.fromEntries(
      Object.values(network.endpoints).map((ep) => [
        ep.containerId,
        {
          Name: ep.containerName ?? '',
          MacAddress: ep.mac,
          IPv4Address: `${ep.ip}/${network.subnet.split('/')[1] ?? ''}`,
          IPv6Address: '',
          Aliases: ep.aliases,
          Ports: ep.ports,
        },
      ]),
    ),
    Options: { 'com.docker.network.bridge.name': network.bridge },
    Labels: network.labels,
  };
}

/** Keeps only the networks matching every `--filter` (name=, id=, label=KEY[=VALUE], driver=, dangling=). */
function filterNetworks(networks: readonly NetworkState[], filters: readonly string[]): NetworkState[] {
  return networks.filter((n) =>
    filters.every((filter) => {
      const eq = filter.indexOf('=');
      const key = eq < 0 ? filter : filter.slice(0, eq);
      const value = eq < 0 ? '' : filter.slice(eq + 1);
      switch (key) {
        case 'name':
          return n.name.includes(value);
        case 'id':
          return n.id.startsWith(value);
        case 'driver':
          return n.driver === value;
        case 'dangling':
          return (Object.keys(n.endpoints).length === 0) === (value === 'true' || value === '1');
        case 'label': {
          const leq = value.indexOf('=');
          const lkey = leq < 0 ? value : value.slice(0, leq);
          return leq < 0 ? lkey in n.labels : n.labels[lkey] === value.slice(leq + 1);
        }
        default:
          throw new TsfigError('usage', `invalid filter "${filter}"`, {
            hint: 'filters: name=, id=, label=KEY[=VALUE], driver=, dangling=true|false',
          });
      }
    }),
  );
}

/**
 * Why a container cannot be connected to another network, in docker's words (daemon/container_operations.go);
 * undefined when it can: it has a network sandbox, which a container on tsfig networks keeps from create to rm.
 */
export function connectRefusal(record: ContainerRecord): string | undefined {
  if ((record.spec.networks ?? []).length > 0) return undefined;
  const mode = record.spec.network ?? 'none';
  if (mode === 'host') return 'container cannot be disconnected from host network or connected to host network';
  if (mode.startsWith('container:')) {
    return 'container sharing network namespace with another container or host cannot be connected to any other network';
  }
  return 'container cannot be connected to multiple networks with one of the networks in private (none) mode';
}

/** The endpoint ids of a network matching a container reference (name, id or id prefix): `disconnect -f`. */
function endpointsOf(network: NetworkState, ref: string): string[] {
  return Object.values(network.endpoints)
    .filter(
      (ep) =>
        ep.containerName === ref ||
        ep.containerId === ref ||
        (/^[0-9a-f]+$/.test(ref) && ep.containerId.startsWith(ref)),
    )
    .map((ep) => ep.containerId);
}

/** `tsfig network create|ls|inspect|rm|prune|connect|disconnect` (engine-level, Docker's flags and output). */
export function registerNetworkCommands(program: Command, io: NetworkCommandIo = {}): void {
  const out = io.stdout ?? process.stdout;
  const err = io.stderr ?? process.stderr;
  const paths = (): EnginePaths => (io.paths ?? (() => enginePaths()))();
  // As createEngine: TSFIG_DNS_FORWARD=0 makes the embedded resolver answer NXDOMAIN for names it does not know.
  const forward = !['0', 'false', 'no'].includes((process.env.TSFIG_DNS_FORWARD ?? '').toLowerCase());
  const manager = () => new NetworkManager(paths(), { dns: { forward } });
  /** The container manager over the same network manager (connect/disconnect resolve containers, rewrite hosts). */
  const containersOf = (networks: NetworkManager): ContainerManager => {
    const p = paths();
    return new ContainerManager(p, new ImageStore(p), networks);
  };
  /**
   * Mutating commands first repair what an interrupted command may have left (kill -9 mid-setup): endpoints of
   * containers that are gone or were staged by a creator that died do not keep a network in use.
   */
  const repaired = async (): Promise<NetworkManager> => {
    const m = manager();
    await containersOf(m).repairNetworking();
    return m;
  };

  const network = program.command('network').description('manage networks');

  network
    .command('create')
    .description('create a network')
    .argument('<name>', 'network name')
    .option('-d, --driver <driver>', 'network driver', 'bridge')
    .option('--subnet <cidr>', 'subnet in CIDR form (chosen from a private pool when omitted)')
    .option('--gateway <ip>', 'gateway address of the subnet (first host address when omitted)')
    .option('--internal', 'restrict external access to the network')
    .option('--label <key=value>', 'set a label on the network', collect)
    .action(
      async (
        name: string,
        flags: { driver: string; subnet?: string; gateway?: string; internal?: boolean; label?: string[] },
      ) => {
        if (flags.driver !== 'bridge') {
          throw new TsfigError('usage', `network driver "${flags.driver}" is not supported`, {
            hint: 'tsfig only has the bridge driver',
          });
        }
        const created = await (
          await repaired()
        ).create(name, {
          subnet: flags.subnet,
          gateway: flags.gateway,
          internal: flags.internal === true,
          labels: labels(flags.label ?? []),
        });
        out.write(`${created.id}\n`);
      },
    );

  network
    .command('ls')
    .alias('list')
    .description('list networks')
    .option('-q, --quiet', 'only display network IDs')
    .option('-f, --filter <filter>', 'filter output (name=, id=, label=KEY[=VALUE], driver=, dangling=)', collect)
    .option('--no-trunc', 'do not truncate the output')
    .option('--format <format>', 'output format: table or json')
    .action(async (flags: { quiet?: boolean; filter?: string[]; trunc: boolean; format?: string }) => {
      if (flags.format !== undefined && flags.format !== 'json' && flags.format !== 'table') {
        throw new TsfigError('usage', `unsupported --format ${JSON.stringify(flags.format)} (table or json)`);
      }
      const networks = filterNetworks(await manager().list(), flags.filter ?? []);
      const id = (n: NetworkState): string => (flags.trunc ? n.id.slice(0, 12) : n.id);
      if (flags.quiet === true) {
        for (const n of networks) out.write(`${id(n)}\n`);
      } else if (flags.format === 'json') {
        for (const n of networks) out.write(`${lsLine(n)}\n`);
      } else {
        out.write(
          renderTable(
            ['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE'],
            networks.map((n) => [id(n), n.name, n.driver, 'local']),
          ),
        );
      }
    });

  network
    .command('inspect')
    .description('display detailed information on one or more networks')
    .argument('<network...>', 'network names or ids')
    .option('-f, --format <format>', "json (default), or a Go template as docker's (e.g. '{{.IPAM.Config}}')")
    .action(async (names: string[], flags: { format?: string }) => {
      const format = inspectFormatter(flags.format);
      const m = manager();
      const found: Record<string, unknown>[] = [];
      for (const name of names) found.push(inspectObject(await m.inspect(name)));
      out.write(format(found));
    });

  network
    .command('rm')
    .alias('remove')
    .description('remove one or more networks')
    .argument('<network...>', 'network names or ids')
    .option('-f, --force', 'do not error if the network does not exist')
    .action(async (names: string[], flags: { force?: boolean }) => {
      const m = await repaired();
      let failed: unknown;
      for (const name of names) {
        try {
          await m.remove(name);
          out.write(`${name}\n`);
        } catch (error) {
          if (flags.force === true && error instanceof Error && /not found/.test(error.message)) continue;
          if (names.length === 1) throw error;
          err.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
          failed = error;
        }
      }
      if (failed !== undefined) throw new TsfigError('runtime', 'some networks could not be removed');
    });

  network
    .command('prune')
    .description('remove all networks without containers')
    .option('-f, --force', 'do not prompt for confirmation')
    .option('--filter <filter>', 'filter (label=KEY[=VALUE])', collect)
    .action(async (flags: { force?: boolean; filter?: string[] }) => {
      if (flags.force !== true) {
        const confirm = io.confirm ?? askOnStdin;
        const ok = await confirm(
          'WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ',
        );
        if (!ok) return;
      }
      const m = await repaired();
      const keep = new Set(filterNetworks(await m.list(), flags.filter ?? []).map((n) => n.id));
      const removed = await m.prune((n) => keep.has(n.id));
      if (removed.length > 0) out.write(`Deleted Networks:\n${removed.map((name) => `${name}\n`).join('')}`);
    });

  network
    .command('connect')
    .description('connect a container to a network')
    .argument('<network>', 'network name or id')
    .argument('<container>', 'container name or id')
    .option('--ip <address>', 'IPv4 address of the container on the network')
    .option('--alias <name>', 'add a network-scoped alias for the container', collect)
    .action(async (networkRef: string, containerRef: string, flags: { ip?: string; alias?: string[] }) => {
      const networks = manager();
      const containers = containersOf(networks);
      const record = await containers.get(containerRef);
      const target = await networks.inspect(networkRef);
      const refusal = connectRefusal(record);
      if (refusal !== undefined) throw new TsfigError('conflict', refusal);
      if (target.endpoints[record.id] !== undefined) {
        throw new TsfigError('conflict', `endpoint with name ${record.name} already exists in network ${target.name}`);
      }
      await networks.attach(record.id, target.id, {
        ip: flags.ip,
        aliases: flags.alias ?? [],
        containerName: record.name,
        hostname: record.hostname,
      });
      // The embedded resolver reads the network state live; /etc/hosts files are snapshots to rewrite.
      await containers.refreshNetworkHosts([record.id]);
    });

  network
    .command('disconnect')
    .description('disconnect a container from a network')
    .argument('<network>', 'network name or id')
    .argument('<container>', 'container name or id')
    .option('-f, --force', 'force the container to disconnect from a network (also one that no longer exists)')
    .action(async (networkRef: string, containerRef: string, flags: { force?: boolean }) => {
      const networks = manager();
      const containers = containersOf(networks);
      let record: ContainerRecord | undefined;
      try {
        record = await containers.get(containerRef);
      } catch (error) {
        if (flags.force !== true || !isEngineError(error) || error.kind !== 'not-found') throw error;
      }
      const target = await networks.inspect(networkRef);
      let ids: string[];
      if (record !== undefined) {
        if (target.endpoints[record.id] === undefined) {
          throw new TsfigError('conflict', `container ${record.name} is not connected to network ${target.name}`);
        }
        ids = [record.id];
      } else {
        // docker's force: the container is gone, its endpoint on the network is not.
        ids = endpointsOf(target, containerRef);
        if (ids.length === 0) {
          throw new TsfigError('not-found', `container ${containerRef} is not connected to network ${target.name}`);
        }
        if (ids.length > 1) {
          throw new TsfigError(
            'conflict',
            `container id prefix "${containerRef}" is ambiguous in network ${target.name}`,
          );
        }
      }
      for (const id of ids) await networks.detach(id, target.id);
      await containers.refreshNetworkHosts(ids);
    });
}
