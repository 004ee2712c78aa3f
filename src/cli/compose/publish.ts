/** `tsfig publish REPO[:TAG]`: its flags → `PublishOptions` for src/compose/publish.ts (a plan of one artifact push). */
import { Option, type Command } from 'commander';
import * as publish from '../../compose/publish.js';
import { askOnStdin } from '../prompt.js';
import { setExitCode } from '../exit-codes.js';
import { loadForServices, verbContext } from './context.js';

interface PublishFlags {
  readonly withEnv?: boolean;
  readonly yes?: boolean;
  readonly ociVersion?: '1.0' | '1.1';
  readonly dryRun?: boolean;
}

/** `publish`. */
export function registerPublishCommand(program: Command): void {
  program
    .command('publish')
    .description('publish the project as an OCI artifact to a registry (load it with -f oci://REPOSITORY[:TAG])')
    .argument('<repository>', 'REPOSITORY[:TAG]')
    .option('--with-env', 'include the env files in the published artifact')
    .option('-y, --yes', 'answer yes to the questions (bind mounts, env files)')
    .addOption(
      new Option('--oci-version <version>', 'OCI image/artifact specification version').choices(['1.0', '1.1']),
    )
    .option('--dry-run', 'print the plan (the files published) and push nothing')
    .action(async function (this: Command, repository: string) {
      const flags = this.opts<PublishFlags>();
      const { project } = loadForServices(this, []);
      const ctx = await verbContext(this);
      const code = await publish.run(ctx, {
        project,
        repository,
        withEnv: flags.withEnv === true,
        yes: flags.yes === true,
        ociVersion: flags.ociVersion,
        dryRun: flags.dryRun === true,
        confirm: askOnStdin,
      });
      setExitCode(this, code);
    });
}
