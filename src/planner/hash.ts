import { createHash } from 'node:crypto';
import type { Service } from '../model/project.js';

/**
 * The config hash of a service, stored as the `io.tsfig.config-hash` label and compared to decide a recreate:
 * sha256 of the canonical JSON (sorted keys, undefined dropped) of the normalised service without the keys that
 * do not change a container (compose `hash.go` ServiceHash): scale/replicas, depends_on, build, pull_policy, profiles (and which keys took tsfig's default).
 */
export function serviceConfigHash(service: Service): string {
  const {
    scale: _scale,
    depends_on: _dependsOn,
    build: _build,
    pull_policy: _pullPolicy,
    profiles: _profiles,
    implicit: _implicit,
    ...rest
  } = service;
  const deploy = rest.deploy === undefined ? undefined : { ...rest.deploy, replicas: undefined };
  return createHash('sha256')
    .update(canonicalJson({ ...rest, deploy }))
    .digest('hex');
}

/** JSON with object keys sorted at every level and undefined values dropped; stable across runs and machines. */
export function canonicalJson(value: unknown): string {
  if (value === undefined) return 'null';
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v)).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}
