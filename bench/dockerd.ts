/**
 * The private dockerd of the benchmarks that compare with docker-compose: the conformance oracle's
 * (test/helpers/dockerd.ts), on a bridge and an address pool of its own so that both can run at once.
 */
import { startPrivateDockerd as start, type PrivateDockerd } from '../test/helpers/dockerd.js';

export { dockerdMissing, type PrivateDockerd } from '../test/helpers/dockerd.js';

/** Starts the benchmarks' dockerd and waits until it answers (30 s at most). */
export function startPrivateDockerd(): Promise<PrivateDockerd> {
  return start({
    dataPrefix: '/var/tmp/tsfig-bench-dockerd-',
    execPrefix: '/tmp/tbd-',
    bridge: 'tsfbenchbr0',
    bridgeAddress: '10.234.0.1/24',
    addressPool: '10.235.0.0/16',
    stopWaitMs: 15_000,
    // A loaded machine's dockerd can take longer than docker-compose's default 60 s to answer a stop of many.
    env: { COMPOSE_HTTP_TIMEOUT: '600' },
  });
}
