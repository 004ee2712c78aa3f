import type { PublishedPort } from './ports.js';

/** Persisted state of one network: `<root>/networks/<id>.json`. The firewall and the host links derive from it. */
export interface NetworkState {
  readonly version: 1;
  readonly id: string;
  readonly name: string;
  readonly driver: 'bridge';
  /** ISO timestamp. */
  readonly created: string;
  /** `172.18.0.0/16` */
  readonly subnet: string;
  readonly gateway: string;
  /** Host bridge interface. */
  readonly bridge: string;
  /** No outside access, no published ports (docker `--internal`). */
  readonly internal: boolean;
  readonly labels: Readonly<Record<string, string>>;
  /** Attachments keyed by container id. */
  readonly endpoints: Readonly<Record<string, EndpointState>>;
}

export interface EndpointState {
  readonly containerId: string;
  /** Container name, for /etc/hosts and conflict messages. */
  readonly containerName: string | undefined;
  readonly hostname: string | undefined;
  /** Network-scoped aliases (`--network-alias`). */
  readonly aliases: readonly string[];
  readonly ip: string;
  readonly mac: string;
  /** Host end of the veth. */
  readonly hostVeth: string;
  /** Name inside the sandbox: eth0, eth1... */
  readonly ifname: string;
  /** Netns bind mount. */
  readonly sandbox: string;
  /** Host ports forwarded to this endpoint's address. */
  readonly ports: readonly PublishedPort[];
}

export interface CreateNetworkOptions {
  /** An IPv4 prefix; chosen from the private pool when absent. */
  subnet?: string | undefined;
  /** @default the first host address of the subnet */
  gateway?: string | undefined;
  /** @default false */
  internal?: boolean | undefined;
  labels?: Readonly<Record<string, string>> | undefined;
  /** @default 'bridge' (the only driver) */
  driver?: 'bridge' | undefined;
}

export interface AttachOptions {
  /** Fixed address inside the network's subnet. */
  ip?: string | undefined;
  aliases?: readonly string[] | undefined;
  macAddress?: string | undefined;
  containerName?: string | undefined;
  hostname?: string | undefined;
  /** `-p` specs (strings are parsed) to publish on this endpoint's address. */
  ports?: readonly string[] | undefined;
}

export interface Attachment {
  readonly ip: string;
  readonly gateway: string;
  readonly prefixLen: number;
  readonly mac: string;
  readonly interfaceName: string;
  /** Published ports, with ephemeral host ports resolved. */
  readonly ports: readonly PublishedPort[];
}
