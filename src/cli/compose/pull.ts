/**
 * The compose side of registries: `tsfig pull [SERVICE...]`'s flags → `PullOptions` for src/compose/pull.ts (a plan
 * of pulls), `tsfig push [SERVICE...]`'s → `PushOptions` for src/compose/push.ts (a plan of pushes), and
 * `ensureServiceImages` (the pulls `kube play` makes before its plan, as
 * the services' pull_policy says, without a plan).
 */
import type { Command } from 'commander';
import type { Engine } from '../../../engine/index.js';
import { isEngineError } from '../../../engine/errors.js';
import { TsfigError } from '../../errors.js';
import type { EventSink } from '../../events/events.js';
import type { Project, Service } from '../../model/project.js';
import { openEngine } from '../engine.js';
import * as pull from '../../compose/pull.js';
import * as push from '../../compose/push.js';
import { LineRenderer } from '../../ui/progress.js';
import { setExitCode } from '../exit-codes.js';
import { loadForServices, progressMode, verbContext } from './context.js';
import { pullDecision as decide, policyInterval, type PullDecision } from '../../planner/images.js';
import { pullEventSink } from '../../compose/engine-port.js';

export { policyInterval };

/** The registry client (http, tls, zlib...) loads only when something is pulled or pushed, not on every `up`. */
const registry = () => import('../../../engine/registry/index.js');

/** planner/images.ts pullDecision with the last pull as a Date and the clock defaulting to now. */
export function pullDecision(
  policy: string,
  state: { present: boolean; hasBuild: boolean; lastPulled?: Date | undefined; now?: number },
): PullDecision {
  return decide(policy, {
    present: state.present,
    hasBuild: state.hasBuild,
    lastPulledMs: state.lastPulled?.getTime(),
    now: state.now ?? Date.now(),
  });
}

function imageOf(project: Project, service: Service): string {
  return service.image ?? `${project.name}-${service.name}`;
}

export interface EnsureOptions {
  /** `up --pull`: overrides every service's pull_policy. */
  readonly policy?: string | undefined;
  readonly services?: readonly string[] | undefined;
  readonly quiet?: boolean | undefined;
  readonly ignoreFailures?: boolean | undefined;
  readonly env?: NodeJS.ProcessEnv | undefined;
  /** Progress lines, when there is no `events` sink. @default stderr */
  readonly write?: ((line: string) => void) | undefined;
  /** Progress as events (`pull.*`, per layer) instead of lines: what `up` renders (plain, JSON or the TUI). */
  readonly events?: EventSink | undefined;
  /** Stops every pull (their downloads are deleted); the call then rejects, whatever ignoreFailures says. */
  readonly signal?: AbortSignal | undefined;
}

/**
 * Pulls the images of services as their pull_policy (or options.policy) says, several in parallel, each image
 * once. Services to build are left to the build. Returns the services whose pull failed (ignored failures).
 */
export async function ensureServiceImages(
  project: Project,
  engine: Engine,
  options: EnsureOptions = {},
): Promise<string[]> {
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const names =
    options.services !== undefined && options.services.length > 0
      ? options.services
      : Object.keys(project.services).sort();
  const byImage = new Map<string, string[]>();
  // Looked up once per image (50 services of one image are one lookup).
  const presence = new Map<string, Promise<boolean>>();
  for (const name of names) {
    const service = project.services[name];
    if (service === undefined) continue;
    const image = imageOf(project, service);
    if (!presence.has(image)) {
      presence.set(
        image,
        engine.images.resolve(image).then(
          () => true,
          () => false,
        ),
      );
    }
    const present = (await presence.get(image)) === true;
    const policy = options.policy ?? service.pull_policy;
    const decision = pullDecision(policy, {
      present,
      hasBuild: service.build !== undefined,
      lastPulled:
        present && policy !== undefined && policyInterval(policy) !== undefined
          ? await (await registry()).lastPulled(engine.images, image).catch(() => undefined)
          : undefined,
    });
    if (decision === 'missing-never') {
      throw new TsfigError(
        'not-found',
        `image ${image} of service ${name} is not present and its pull_policy is never`,
        {
          hint: `get it in first: tsfig image pull ${image}, tsfig image import FILE ${image}, or build it`,
        },
      );
    }
    if (decision !== 'pull') continue;
    byImage.set(image, [...(byImage.get(image) ?? []), name]);
  }
  const failed: string[] = [];
  if (byImage.size === 0) return failed;
  options.signal?.throwIfAborted();
  const { pullImage, registryClientFromEnv } = await registry();
  const client = registryClientFromEnv(options.env ?? process.env);
  try {
    // settled, not all: an interrupted or failed pull must not close the client under the others' cleanup
    const results = await Promise.allSettled(
      [...byImage].map(async ([image, services]) => {
        const label = services.join(', ');
        const { events } = options;
        if (events !== undefined) events.emit({ kind: 'pull.start', image, services });
        else if (options.quiet !== true) write(` ${label} Pulling`);
        try {
          const result = await pullImage(client, engine.images, image, {
            onEvent: events === undefined ? undefined : pullEventSink(events, image),
            signal: options.signal,
          });
          const status = result.downloaded ? 'downloaded' : 'up-to-date';
          if (events !== undefined) events.emit({ kind: 'pull.done', image, services, status });
          else if (options.quiet !== true) write(` ${label} ${result.downloaded ? 'Pulled' : 'Up to date'}`);
        } catch (error) {
          if (options.signal?.aborted === true) throw error;
          const hasBuild = services.some((s) => project.services[s]?.build !== undefined);
          if (options.ignoreFailures === true || hasBuild) {
            failed.push(...services);
            const message = isEngineError(error) || error instanceof TsfigError ? error.message : String(error);
            if (events !== undefined) events.emit({ kind: 'pull.error', image, services, message });
            else write(` ${label} Error ${message}`);
            return;
          }
          throw error;
        }
      }),
    );
    options.signal?.throwIfAborted();
    for (const result of results) if (result.status === 'rejected') throw result.reason;
  } finally {
    client.close();
  }
  return failed.sort();
}

/** Where pull and push write and which engine they use; tests pass their own. */
export interface PullPushIo {
  /** @default openEngine() */
  readonly engine?: () => Promise<Engine>;
  /** @default process.stderr */
  readonly stderr?: { write(text: string): unknown };
  /** @default process.env */
  readonly env?: NodeJS.ProcessEnv;
}

/** `pull [SERVICE...]` and `push [SERVICE...]`. */
export function registerPullPush(program: Command, io: PullPushIo = {}): void {
  const err = (text: string): unknown => (io.stderr ?? process.stderr).write(text);
  const engineOf = io.engine ?? openEngine;
  const env = io.env ?? process.env;
  program
    .command('pull')
    .description("pull the services' images")
    .argument('[services...]')
    .option('--ignore-pull-failures', 'pull what can be pulled and ignore images that cannot')
    .option('--include-deps', 'also pull the services the named ones depend on')
    .option('--policy <policy>', 'apply a pull policy: missing or always', 'always')
    .option('-q, --quiet', 'pull without printing progress')
    .option('--dry-run', 'print the plan and change nothing')
    .action(async function (this: Command, services: string[]) {
      const flags = this.opts<{
        ignorePullFailures?: boolean;
        includeDeps?: boolean;
        policy: string;
        quiet?: boolean;
        dryRun?: boolean;
      }>();
      if (flags.policy !== 'always' && flags.policy !== 'missing') {
        throw new TsfigError('usage', `invalid --policy "${flags.policy}"`, { hint: 'use missing or always' });
      }
      const { project } = loadForServices(this, services);
      const mode = progressMode(this);
      const out = { write: err } as unknown as NodeJS.WritableStream;
      const events = new LineRenderer(mode === 'json' ? 'json' : flags.quiet === true ? 'quiet' : 'plain', out);
      const ctx = await verbContext(this, events, await engineOf(), env);
      const options: pull.PullOptions = {
        project,
        services,
        includeDeps: flags.includeDeps === true,
        policy: flags.policy,
        ignoreFailures: flags.ignorePullFailures === true,
        quiet: flags.quiet === true,
        dryRun: flags.dryRun === true,
      };
      const stderr = mode === 'json' ? ctx.stderr : { write: err };
      setExitCode(this, await pull.run({ ...ctx, stderr }, options));
    });

  program
    .command('push')
    .description('push the images of services that have image: and build:')
    .argument('[services...]')
    .option('--ignore-push-failures', 'push what can be pushed and ignore the others')
    .option('--include-deps', 'also push the services the named ones depend on')
    .option('-q, --quiet', 'push without printing progress')
    .option('--dry-run', 'print the plan and change nothing')
    .action(async function (this: Command, services: string[]) {
      const flags = this.opts<{
        ignorePushFailures?: boolean;
        includeDeps?: boolean;
        quiet?: boolean;
        dryRun?: boolean;
      }>();
      const { project } = loadForServices(this, services);
      const mode = progressMode(this);
      const out = { write: err } as unknown as NodeJS.WritableStream;
      const events = new LineRenderer(mode === 'json' ? 'json' : flags.quiet === true ? 'quiet' : 'plain', out);
      const ctx = await verbContext(this, events, await engineOf(), env);
      const options: push.PushOptions = {
        project,
        services,
        includeDeps: flags.includeDeps === true,
        ignoreFailures: flags.ignorePushFailures === true,
        dryRun: flags.dryRun === true,
      };
      const stderr = mode === 'json' ? ctx.stderr : { write: err };
      setExitCode(this, await push.run({ ...ctx, stderr }, options));
    });
}
