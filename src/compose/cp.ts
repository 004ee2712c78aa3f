/**
 * `cp`: copies files between a service's containers and the host, over the engine's copy (engine/containers/copy.ts),
 * as compose v2 does (pkg/compose/cp.go): into the service, to every container of the service (one-offs too with
 * `--all`); out of it, from the first one; `--index N` picks one replica. A service without a container is an error
 * that names it, before anything is copied.
 */
import { Readable, type Writable } from 'node:stream';
import { humanSize } from '../ui/size.js';
import { ExitCode } from '../exit-code.js';
import { TsfigError } from '../errors.js';
import type { Project } from '../model/project.js';
import type { ObservedContainer, ObservedState } from '../planner/observed.js';
import { serviceContainers, type ComposeContext } from './context.js';

export interface CpOptions {
  readonly project: Project;
  readonly service: string;
  /** 'from': SERVICE:SRC DEST; 'to': SRC SERVICE:DEST. */
  readonly direction: 'from' | 'to';
  /** The path in the container. */
  readonly containerPath: string;
  /** The host path, or '-' for a tar stream on stdin/stdout. */
  readonly hostPath: string;
  /** --index: this replica only (one-offs included, as compose). */
  readonly index?: number | undefined;
  /** --all: one-off containers (`run`) too. */
  readonly all?: boolean;
  readonly archive?: boolean;
  readonly followLink?: boolean;
  /** The tar stream for `cp - SERVICE:DEST`. */
  readonly input?: AsyncIterable<Uint8Array>;
  /** Where `cp SERVICE:SRC -` writes its tar stream. */
  readonly output?: Writable;
}

/** The containers a copy goes to or comes from (compose's listContainersTargetedForCopy). */
export function copyTargets(
  observed: ObservedState,
  options: Pick<CpOptions, 'service' | 'direction' | 'index' | 'all'>,
): ObservedContainer[] {
  const { service, index } = options;
  if (index !== undefined) {
    const found = serviceContainers(observed, [service], { includeOneoff: true }).filter(
      (container) => container.number === index,
    );
    // a service's replica before a one-off with the same number
    const chosen = found.find((container) => !container.oneoff) ?? found[0];
    if (chosen === undefined) {
      throw new TsfigError('not-found', `service "${service}" has no container with index ${index}`, {
        hint: `see its containers with: tsfig ps -a ${service}`,
      });
    }
    return [chosen];
  }
  const containers = serviceContainers(observed, [service], { includeOneoff: options.all === true });
  if (containers.length === 0) {
    throw new TsfigError('not-found', `no container found for service "${service}"`, {
      hint: `create it first: tsfig up -d ${service}${options.all === true ? '' : ' (or --all for one-off containers)'}`,
    });
  }
  return options.direction === 'from' ? containers.slice(0, 1) : containers;
}

async function collectStream(input: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of input) chunks.push(chunk);
  return chunks;
}

/** How one copy treats links, owners and warnings (engine copyFromContainer / copyToContainer options). */
export interface CopyFlags {
  readonly archive: boolean;
  readonly followLink: boolean;
  readonly onWarning: (message: string) => void;
}

/**
 * One copy between a container and the host, as `container cp` and compose's `cp` make it: `hostPath` `-` is a tar
 * stream (written to `out`, or read from `input`). Returns the bytes copied; undefined for a tar stream.
 */
export async function copyOne(
  engine: NonNullable<ComposeContext['port']['engine']>,
  container: string,
  direction: 'from' | 'to',
  containerPath: string,
  hostPath: string,
  flags: CopyFlags & { readonly out?: Writable; readonly input?: Readable | AsyncIterable<Uint8Array> },
): Promise<number | undefined> {
  const { copyFromContainer, copyToContainer } = await import('../../engine/index.js');
  const { out, input, ...options } = flags;
  if (direction === 'from') {
    if (hostPath !== '-') {
      return copyFromContainer(engine, container, containerPath, { kind: 'path', path: hostPath }, options);
    }
    if (out === undefined) throw new TsfigError('internal', 'no output for the tar stream');
    await copyFromContainer(engine, container, containerPath, { kind: 'tar' }, { ...options, out });
    return undefined;
  }
  if (hostPath !== '-') {
    return copyToContainer(engine, container, { kind: 'path', path: hostPath }, containerPath, options);
  }
  await copyToContainer(engine, container, { kind: 'tar' }, containerPath, {
    ...options,
    input: input instanceof Readable ? input : Readable.from(input ?? []),
  });
  return undefined;
}

export async function run(ctx: ComposeContext, options: CpOptions): Promise<ExitCode> {
  const engine = ctx.port.engine;
  if (engine === undefined) throw new TsfigError('internal', 'cp needs the engine');
  const targets = copyTargets(await ctx.port.observe(options.project), options);
  const flags: CopyFlags = {
    archive: options.archive === true,
    followLink: options.followLink === true,
    onWarning: (message: string) => ctx.stderr.write(`warning: ${message}\n`),
  };
  const { containerPath, hostPath } = options;
  if (options.direction === 'from') {
    const [container] = targets;
    if (container === undefined) return ExitCode.failure;
    const bytes = await copyOne(engine, container.id, 'from', containerPath, hostPath, {
      ...flags,
      ...(options.output !== undefined ? { out: options.output } : {}),
    });
    if (bytes !== undefined) {
      ctx.stderr.write(`${container.name} copied ${humanSize(bytes)} from ${containerPath} to ${hostPath}\n`);
    }
    return ExitCode.ok;
  }
  // a tar stream on stdin is read once, then given to every target
  const tar = hostPath === '-' ? await collectStream(options.input ?? Readable.from([])) : undefined;
  for (const container of targets) {
    const bytes = await copyOne(engine, container.id, 'to', containerPath, hostPath, {
      ...flags,
      ...(tar !== undefined ? { input: Readable.from(tar) } : {}),
    });
    ctx.stderr.write(
      bytes === undefined
        ? `${container.name} copied a tar stream to ${containerPath}\n`
        : `${container.name} copied ${humanSize(bytes)} from ${hostPath} to ${containerPath}\n`,
    );
  }
  return ExitCode.ok;
}
