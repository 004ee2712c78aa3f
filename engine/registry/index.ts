/**
 * The registry client of the engine (OCI distribution): pull, push, credentials. See client.ts for transport and
 * auth, pull.ts and push.ts for the flows.
 */
import { readFileSync } from 'node:fs';
import { CredentialStore } from './auth.js';
import { RegistryClient, type RegistryClientOptions } from './client.js';

export { CredentialStore, DOCKER_HUB_AUTH_KEY, authKey, dockerConfigPath, parseWwwAuthenticate } from './auth.js';
export type { Challenge, Credentials, DockerConfigFile } from './auth.js';
export { EMPTY_JSON_MEDIA_TYPE, pullArtifact, pushArtifact } from './artifact.js';
export type { ArtifactLayer, PulledArtifact, PushArtifactOptions, PushArtifactResult } from './artifact.js';
export { BlobCache } from './blobcache.js';
export { RegistryClient, apiHost, isLoopback } from './client.js';
export type { RegistryClientOptions } from './client.js';
export { MEDIA, formatPlatform, parseManifest, parsePlatform, selectPlatform, sha256Digest } from './manifest.js';
export type { Descriptor, ParsedManifest, Platform } from './manifest.js';
export { fetchManifest, lastPulled, pullImage, resolveManifest } from './pull.js';
export type { PullEvent, PullOptions, PullResult } from './pull.js';
export { blobExists, pushImage, uploadBlob } from './push.js';
export type { PushEvent, PushOptions, PushResult } from './push.js';
export { zstdDecompress } from './zstd.js';

/**
 * A client configured from the environment: TSFIG_INSECURE_REGISTRIES (comma-separated host[:port] allowed over
 * plain HTTP), TSFIG_REGISTRY_CA (a PEM file of extra trusted CAs; NODE_EXTRA_CA_CERTS works too), DOCKER_CONFIG
 * (where config.json is).
 */
export function registryClientFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  overrides: RegistryClientOptions = {},
): RegistryClient {
  const insecure = (env.TSFIG_INSECURE_REGISTRIES ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const caFile = env.TSFIG_REGISTRY_CA;
  return new RegistryClient({
    insecureRegistries: insecure,
    ...(caFile !== undefined && caFile !== '' ? { ca: readFileSync(caFile, 'utf8') } : {}),
    credentials: new CredentialStore({ env }),
    ...overrides,
  });
}
export { login, logout, normalizeServer } from './login.js';
