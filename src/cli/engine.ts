import { createEngine, type Engine } from '../../engine/index.js';
import { TsfigError } from '../errors.js';

/** The engine for this invocation (TSFIG_ROOT decides the state root). Engine commands need root. */
export function openEngine(): Promise<Engine> {
  if (process.getuid?.() !== 0) {
    return Promise.reject(
      new TsfigError('permission', "tsfig's engine needs root: it creates namespaces, mounts and cgroups", {
        hint: 'run it as an ordinary user (rootless mode: needs a range in /etc/subuid), or as root',
      }),
    );
  }
  return Promise.resolve(createEngine());
}
