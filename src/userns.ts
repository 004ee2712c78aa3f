import { TsfigError } from './errors.js';

/**
 * `--userns` (container run/create) and compose `userns_mode`: `auto` gives a container a user namespace with its own
 * range of subordinate ids (podman's `--userns=auto`), `host` (or empty: docker's `--userns=host`) the host's ids.
 * Neither given: `TSFIG_USERNS` (`auto` or `host`, as podman's PODMAN_USERNS), else the host's, as Docker.
 */
export type UsernsMode = 'host' | 'auto';

export function parseUsernsMode(value: string): UsernsMode | undefined {
  if (value === 'auto') return 'auto';
  if (value === 'host' || value === '') return 'host';
  return undefined;
}

export const USERNS_HINT = 'userns_mode / --userns is auto (a range of subordinate ids of its own) or host';

/** The mode of a container whose project or flags do not say: TSFIG_USERNS, else undefined (the host's). */
export function defaultUserns(env: NodeJS.ProcessEnv): UsernsMode | undefined {
  const value = env.TSFIG_USERNS;
  if (value === undefined) return undefined;
  const mode = parseUsernsMode(value);
  if (mode === undefined) {
    throw new TsfigError('usage', `TSFIG_USERNS: invalid user namespace mode "${value}"`, { hint: USERNS_HINT });
  }
  return mode;
}
