import type { Command } from 'commander';
import { registerConfigCommand } from './config.js';
import { registerContainerCommands } from './container.js';
import { registerImageCommands } from './image.js';
import { registerNetworkCommands } from './network.js';
import { registerVolumeCommands } from './volume.js';

/** Registers every command group. Each group lives in its own module. */
export function registerCommands(program: Command): void {
  program.enablePositionalOptions();
  registerConfigCommand(program);
  registerContainerCommands(program);
  registerImageCommands(program);
  registerNetworkCommands(program);
  registerVolumeCommands(program);
}
