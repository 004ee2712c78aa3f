/**
 * `tsfig commit SERVICE [REPOSITORY[:TAG]]` and `tsfig export SERVICE`, as compose v2 has them: the service's
 * container number --index (default 1). `commit`'s flags become `CommitOptions` for src/compose/commit.ts (a plan of
 * one `image.commit`). `export` has no plan: it changes no state of the engine or the project, it only reads the
 * container's files and writes a tar archive to stdout or a host file (`-o`), as `docker export` does.
 */
import type { Command } from 'commander';
import { exportContainer } from '../../../engine/images/index.js';
import * as commit from '../../compose/commit.js';
import { TsfigError } from '../../errors.js';
import type { ObservedContainer } from '../../planner/observed.js';
import { writeBinary } from '../commands/archive.js';
import { collect, parseCount } from '../units.js';
import { setExitCode } from '../exit-codes.js';
import { composeContext, loadForServices, serviceContainers, verbContext, type ComposeContext } from './context.js';

function serviceContainer(context: ComposeContext, service: string, indexFlag: string): ObservedContainer {
  const index = parseCount(indexFlag, '--index');
  const container = serviceContainers(context.observed, [service]).find((candidate) => candidate.number === index);
  if (container === undefined) {
    throw new TsfigError('not-found', `service "${service}" has no container number ${index}`, {
      hint: 'create it with: tsfig up -d (see the containers with: tsfig ps -a)',
    });
  }
  return container;
}

export function registerComposeArchiveCommands(program: Command): void {
  program
    .command('commit')
    .description("create a new image from a service container's changes")
    .argument('<service>')
    .argument('[reference]', 'REPOSITORY[:TAG]')
    .option('-a, --author <author>', 'author (e.g. "Jane Doe <jane@example.com>")')
    .option('-c, --change <instruction>', 'apply a Dockerfile instruction to the image (repeatable)', collect)
    .option('-m, --message <message>', 'commit message')
    .option('--index <n>', 'index of the container if the service has multiple replicas', '1')
    .option('--dry-run', 'print the plan and change nothing')
    .action(async function (this: Command, service: string, reference: string | undefined) {
      const flags = this.opts<{
        author?: string;
        change?: string[];
        message?: string;
        index: string;
        dryRun?: boolean;
      }>();
      const index = parseCount(flags.index, '--index');
      const { project } = loadForServices(this, [service]);
      const ctx = await verbContext(this);
      const code = await commit.run(ctx, {
        project,
        service,
        index,
        reference,
        changes: flags.change ?? [],
        message: flags.message,
        author: flags.author,
        dryRun: flags.dryRun === true,
      });
      setExitCode(this, code);
    });

  program
    .command('export')
    .description("export a service container's filesystem as a tar archive")
    .argument('<service>')
    .option('-o, --output <file>', 'write to a file instead of stdout')
    .option('--index <n>', 'index of the container if the service has multiple replicas', '1')
    .action(async (service: string, flags: { output?: string; index: string }, command: Command) => {
      const context = await composeContext(command, [service]);
      const container = serviceContainer(context, service, flags.index);
      await writeBinary(flags.output, 'a tar archive', (out) => exportContainer(context.engine, container.id, out));
    });
}
