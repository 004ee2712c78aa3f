/**
 * The compose side of registries: `tsfig pull [SERVICE...]`'s flags → `PullOptions` for src/compose/pull.ts (a plan
 * of pulls), and `tsfig push [SERVICE...]`'s → `PushOptions` for src/compose/push.ts (a plan of pushes).
 */
import type { Command } from 'commander';
import type { Engine } from '../../../engine/index.js';
import { TsfigError } from '../../errors.js';
import { openEngine } from '../engine.js';
import * as pull from '../../compose/pull.js';
import * as push from '../../compose/push.js';
import { LineRenderer } from '../../ui/progress.js';
import { setExitCode } from '../exit-codes.js';
import { loadForServices, progressMode, verbContext } from './context.js';
import { pullDecision as decide, policyInterval, type PullDecision } from '../../planner/images.js';

export { policyInterval };

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
