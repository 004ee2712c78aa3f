import { checkUserns } from '../../engine/containers/index.js';
import { defaultUserns } from '../userns.js';
import { stat } from 'node:fs/promises';
import type { Engine } from '../../engine/index.js';
import { describeHolder, findPortHolder, readHostSockets } from '../../engine/network/index.js';
import { TsfigError } from '../errors.js';
import type { Plan } from '../planner/plan.js';

/** True when path exists (a dangling symlink counts as missing, as the bind mount would). */
async function pathExists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

/**
 * Checks what would make the plan fail half-way, before anything changes: fixed host ports held by a process or by
 * a container the plan does not remove, bind sources that must exist and do not (missing images are refused by the
 * planner itself). Throws with every problem at once.
 */
export async function preflight(engine: Engine, plan: Plan, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const problems: string[] = [];
  const hints = new Set<string>();
  const creates = plan.operations.flatMap((op) => (op.kind === 'container.create' ? [op.spec] : []));
  // userns auto without subordinate ids (or rootless) is refused before any volume or network is made
  if (creates.some((spec) => (spec.container.userns ?? defaultUserns(env)) === 'auto')) await checkUserns(env);

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
  for (const spec of creates) {
    for (const mount of spec.mounts) {
      if (mount.type !== 'bind' || mount.createHostPath || (await pathExists(mount.source))) continue;
      problems.push(`${mount.origin}: bind source path does not exist: ${mount.source}`);
      hints.add(`create it first (mkdir -p ${mount.source}), or set bind.create_host_path: true`);
    }
  }
  if (problems.length === 0) return;
  throw new TsfigError(
    'conflict',
    problems.length === 1 ? (problems[0] ?? '') : `cannot apply the plan:\n  - ${problems.join('\n  - ')}`,
    { hint: [...hints].join('; ') },
  );
}
