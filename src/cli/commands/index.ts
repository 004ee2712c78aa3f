import type { Command } from 'commander';
import { addProjectOptions, registerConfigCommand } from './config.js';
import { registerInspectCommands } from '../compose/inspect-commands.js';
import { registerContainerCommands } from './container.js';
import { registerImageCommands } from './image.js';
import { registerNetworkCommands } from './network.js';
import { registerVolumeCommands } from './volume.js';

/** Registers every command group. Each group lives in its own module. */
export function registerCommands(program: Command): void {
  program.enablePositionalOptions();
  addProjectOptions(program);
  registerConfigCommand(program);
  registerInspectCommands(program);
  registerContainerCommands(program);
  registerImageCommands(program);
  registerNetworkCommands(program);
  registerVolumeCommands(program);
}
