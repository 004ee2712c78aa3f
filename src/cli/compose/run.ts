import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { withAutoRemoveHold } from '../../../engine/containers/cleanup.js';
import { isEngineError, type Engine } from '../../../engine/index.js';
import { parsePortSpec } from '../../../engine/network/ports.js';
import { containerRecordUsers, parseVolumeFlag } from '../../../engine/volumes/index.js';
import { TsfigError } from '../../errors.js';
import { Label, implicitDependencies, serviceContainerSpec } from '../../planner/container-spec.js';
import { serviceConfigHash } from '../../planner/hash.js';
import { observe } from '../../planner/observe.js';
import type { ContainerCreateSpec } from '../../planner/plan.js';
import { plan } from '../../planner/reconcile.js';
import { attachStdin } from '../attach.js';
import { openEngine } from '../engine.js';
import { collect } from '../units.js';
import { loadForServices } from './context.js';
import { EnginePort } from './engine-port.js';
import { printLogs } from './logs.js';
import { applyPlan, withProjectLock } from './up.js';

interface RunFlags {
  detach?: boolean;
  rm?: boolean;
  name?: string;
  entrypoint?: string;
  env?: string[];
  label?: string[];
  user?: string;
  workdir?: string;
  publish?: string[];
  servicePorts?: boolean;
  volume?: string[];
  deps: boolean;
  tty: boolean;
  interactive?: boolean;
}

/** The one-off container's spec: the service's, with `run`'s overrides (compose's rules: no ports, no restart). */
export function oneOffSpec(
  base: ContainerCreateSpec,
  name: string,
  command: readonly string[],
  flags: RunFlags,
): ContainerCreateSpec {
  const labels = Object.fromEntries(
    (flags.label ?? []).map((entry) => {
      const index = entry.indexOf('=');
      return index < 0 ? [entry, ''] : [entry.slice(0, index), entry.slice(index + 1)];
    }),
  );
  const tty = flags.tty && process.stdin.isTTY === true && flags.detach !== true;
  return {
    ...base,
    name,
    container: {
      ...base.container,
      name,
      labels: { ...base.container.labels, ...labels, [Label.Oneoff]: 'True', [Label.ContainerNumber]: '1' },
      ...(command.length > 0 ? { cmd: [...command] } : {}),
      ...(flags.entrypoint !== undefined ? { entrypoint: flags.entrypoint === '' ? [] : [flags.entrypoint] } : {}),
      env: [...(base.container.env ?? []), ...(flags.env ?? [])],
      ...(flags.user !== undefined ? { user: flags.user } : {}),
      ...(flags.workdir !== undefined ? { workingDir: flags.workdir } : {}),
      tty,
      openStdin: flags.interactive === true || tty,
      // removed by its monitor once it exits, even detached or with this CLI gone (and by this CLI when attached)
      ...(flags.rm === true ? { autoRemove: true } : {}),
    },
    mounts: [...base.mounts, ...(flags.volume ?? []).map((spec) => parseVolumeFlag(spec))],
    ports: flags.servicePorts === true ? base.ports : (flags.publish ?? []).map(parsePortSpec),
    restart: { name: 'no', maxRetries: undefined },
  };
}

export function registerRunCommand(program: Command): void {
  program
    .command('run')
    .description('run a one-off command on a service')
    .argument('<service>')
    .argument('[command...]')
    .option('-d, --detach', 'run container in background and print container ID')
    .option('--rm', 'automatically remove the container when it exits')
    .option('--name <name>', 'assign a name to the container')
    .option('--entrypoint <cmd>', 'override the entrypoint of the image')
    .option('-e, --env <KEY=VAL>', 'set environment variables', collect)
    .option('-l, --label <KEY=VAL>', 'add or override a label', collect)
    .option('-u, --user <user>', 'run as specified username or uid')
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('-p, --publish <spec>', "publish a container's port(s) to the host", collect)
    .option('-P, --service-ports', "run command with all service's ports enabled and mapped to the host")
    .option('-v, --volume <spec>', 'bind mount a volume', collect)
    .option('--no-deps', "don't start linked services")
    .option('-T, --no-TTY', 'disable pseudo-TTY allocation (default: auto-detected)')
    .option('-i, --interactive', 'keep STDIN open even if not attached')
    .passThroughOptions()
    .action(async (service: string, command: string[], flags: RunFlags & { TTY: boolean }, cmd: Command) => {
      const runFlags: RunFlags = { ...flags, tty: flags.TTY };
      const load = loadForServices(cmd, [service]);
      const project = load.project;
      const serviceDef = project.services[service];
      if (serviceDef === undefined) throw new TsfigError('usage', `no such service: ${service}`);
      const engine = await openEngine();
      const name = flags.name ?? `${project.name}-${service}-run-${randomBytes(6).toString('hex')}`;
      const base = serviceContainerSpec(project, serviceDef, 1, { configHash: serviceConfigHash(serviceDef) }).spec;
      const spec = oneOffSpec(base, name, command, runFlags);
      const id = await withProjectLock(engine, project.name, async () => {
        const dependencies = [...new Set([...Object.keys(serviceDef.depends_on), ...implicitDependencies(serviceDef)])];
        if (runFlags.deps && dependencies.length > 0) {
          const observed = await observe(engine, project.name, project);
          await applyPlan(engine, plan(project, observed, { services: dependencies, noRecreate: true }), cmd);
        }
        const port = new EnginePort(engine);
        const created = await port.createContainer(spec);
        await port.flush();
        return created;
      });
      // attached --rm: this CLI reads the exit code and removes the container; its monitor's cleanup waits for it
      // (and removes it alone if this CLI is killed)
      const attachedRm = flags.rm === true && flags.detach !== true;
      const hold = (fn: () => Promise<void>) => (attachedRm ? withAutoRemoveHold(engine.paths, id, fn) : fn());
      await hold(async () => {
        try {
          await engine.containers.start(id);
        } catch (error) {
          if (flags.rm === true) await removeWithAnonymousVolumes(engine, id);
          throw error;
        }
        if (flags.detach === true) {
          process.stdout.write(`${name}\n`);
          return;
        }
        const detachStdin =
          spec.container.openStdin === true ? attachStdin(engine.paths, id, spec.container.tty === true) : undefined;
        try {
          const observed = await observe(engine, project.name, project);
          const self = observed.containers.filter((container) => container.id === id);
          await printLogs(engine, self, { follow: true, timestamps: false, color: false, prefix: false });
          process.exitCode = await engine.containers.wait(id);
        } finally {
          detachStdin?.();
        }
        if (flags.rm === true) await removeWithAnonymousVolumes(engine, id);
      });
    });
}

/**
 * `run --rm`: the one-off container goes, and with it the anonymous volumes no other container uses; unless its
 * monitor's cleanup (which does the same) was first.
 */
async function removeWithAnonymousVolumes(engine: Engine, id: string): Promise<void> {
  let record;
  try {
    record = await engine.containers.remove(id, { force: true });
  } catch (error) {
    if (isEngineError(error, 'not-found')) return;
    throw error;
  }
  await engine.volumes.removeAnonymous(record.mounts, { usersOf: containerRecordUsers(engine.paths) });
}
