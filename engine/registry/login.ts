/** `docker login` / `docker logout`: credentials checked against the registry, then stored config.json-style. */
import { EngineError } from '../errors.js';
import type { CredentialStore, Credentials } from './auth.js';
import type { RegistryClient } from './client.js';

/** `https://host:5000/v1/` or `host:5000` → `host:5000`; Docker Hub's names → docker.io. */
export function normalizeServer(server: string | undefined): string {
  if (server === undefined || server === '') return 'docker.io';
  const host = server.replace(/^[a-z]+:\/\//i, '').split('/')[0] ?? '';
  if (host === '') throw new EngineError('invalid', `invalid registry address "${server}"`);
  if (['index.docker.io', 'registry-1.docker.io', 'docker.io', 'registry.hub.docker.com'].includes(host)) {
    return 'docker.io';
  }
  return host.toLowerCase();
}

/**
 * Checks creds against server (GET /v2/ through the challenge: Basic, or a Bearer token with no scope), then
 * stores them. Wrong credentials change nothing.
 */
export async function login(
  client: RegistryClient,
  store: CredentialStore,
  server: string,
  creds: Credentials,
): Promise<void> {
  const domain = normalizeServer(server);
  client.useCredentials(domain, creds);
  const res = await client.request(domain, '', '/v2/', { what: `logging in as ${creds.username}`, ok: [200] });
  res.body.resume();
  await store.store(domain, creds);
}

/** Removes the credentials of server; false when there were none. */
export async function logout(store: CredentialStore, server: string): Promise<boolean> {
  return store.erase(normalizeServer(server));
}
