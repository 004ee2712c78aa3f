import type { Command } from 'commander';
import { packageVersion } from '../version.js';
import { addProjectOptions, registerConfigCommand } from './config.js';
import { registerInspectCommands } from '../compose/inspect-commands.js';
import { registerUpDown } from '../compose/up.js';
import { registerLifecycleCommands } from '../compose/lifecycle.js';
import { registerRunCommand } from '../compose/run.js';
import { Option } from 'commander';
import { registerContainerCommands } from './container.js';
import { registerImageCommands } from './image.js';
import { registerNetworkCommands } from './network.js';
import { registerVolumeCommands } from './volume.js';

/** Registers every command group. Each group lives in its own module. */
export function registerCommands(program: Command): void {
  program.enablePositionalOptions();
  addProjectOptions(program);
  program.addOption(
    new Option('--progress <mode>', 'how progress is shown')
      .choices(['auto', 'tty', 'plain', 'json', 'quiet'])
      .default('auto'),
  );
  program.option('--parallel <n>', 'maximum engine operations at once');
  registerUpDown(program);
  registerLifecycleCommands(program);
  registerRunCommand(program);
  registerConfigCommand(program);
  registerInspectCommands(program);
  program
    .command('version')
    .description('show the tsfig version information')
    .option('--short', 'shows only the version number')
    .action((flags: { short?: boolean }) => {
      process.stdout.write(flags.short === true ? `${packageVersion()}\n` : `tsfig version ${packageVersion()}\n`);
    });
  registerContainerCommands(program);
  registerImageCommands(program);
  registerNetworkCommands(program);
  registerVolumeCommands(program);
}
