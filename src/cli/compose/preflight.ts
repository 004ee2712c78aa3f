import type { Engine } from '../../../engine/index.js';
import { describeHolder, findPortHolder, readHostSockets } from '../../../engine/network/ports.js';
import { TsfigError } from '../../errors.js';
import type { Plan } from '../../planner/plan.js';
import type { ObservedState } from '../../planner/observed.js';

/**
 * Checks what would make the plan fail half-way, before anything changes: images that are not in the store and
 * fixed host ports held by a process or a container the plan does not remove. Throws with every problem at once.
 */
export async function preflight(engine: Engine, observed: ObservedState, plan: Plan): Promise<void> {
  const problems: string[] = [];
  const hints = new Set<string>();
  const creates = plan.operations.flatMap((op) => (op.kind === 'container.create' ? [op.spec] : []));

  const missing = new Map<string, string[]>();
  for (const spec of creates) {
    const reference = spec.container.image;
    if (observed.images[reference] !== undefined) continue;
    const present = await engine.images.resolve(reference).then(
      () => true,
      () => false,
    );
    if (!present) missing.set(reference, [...(missing.get(reference) ?? []), spec.service]);
  }
  for (const [reference, services] of missing) {
    problems.push(`image "${reference}" (service ${[...new Set(services)].join(', ')}) is not in the image store`);
    hints.add(
      `registries are not reachable from tsfig yet: bring the image in with tsfig image import FILE ${reference}`,
    );
  }

  const removed = new Set(plan.operations.flatMap((op) => (op.kind === 'container.remove' ? [op.spec.container] : [])));
  const published = (await engine.networks.publishedPorts()).filter(
    (port) => !removed.has(port.containerId) && !removed.has(port.containerName ?? ''),
  );
  const sockets = await readHostSockets();
  for (const spec of creates) {
    for (const port of spec.ports) {
      if (port.hostPorts === undefined || port.hostPorts.start !== port.hostPorts.end) continue;
      const holder = findPortHolder(port.proto, port.hostIp, port.hostPorts.start, sockets, published);
      if (holder === undefined) continue;
      const address = `${port.hostIp === '' ? '0.0.0.0' : port.hostIp}:${port.hostPorts.start}/${port.proto}`;
      problems.push(
        `service ${spec.service}: host port ${address} is already in use by ${await describeHolder(holder)}`,
      );
      hints.add('stop what holds the port, or publish another one in the project file (ports:)');
    }
  }
  if (problems.length === 0) return;
  throw new TsfigError(
    'conflict',
    problems.length === 1 ? (problems[0] ?? '') : `cannot apply the plan:\n  - ${problems.join('\n  - ')}`,
    { hint: [...hints].join('; ') },
  );
}
