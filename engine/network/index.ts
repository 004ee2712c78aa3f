export { NetworkManager, type NetworkManagerOptions, type ReconcileReport } from './manager.js';
export type { AttachOptions, Attachment, CreateNetworkOptions, EndpointState, NetworkState } from './types.js';
export {
  expandPortSpec,
  formatPublished,
  parsePortSpec,
  type PortProto,
  type PortRequest,
  type PortSpec,
  type PublishedPort,
} from './ports.js';
export { renderHostsFile } from './hosts.js';
export { renderRuleset, type FirewallNetwork } from './nft.js';
export { linkEnv, type ExposedPort, type LinkEnvOptions } from './links.js';
export { renderResolvConf } from './dns.js';
export { describeHolder, findPortHolder, readHostSockets } from './ports.js';
