import type { Command } from 'commander';
import { registerContainerCommands } from './container.js';
import { registerVolumeCommands } from './volume.js';

/** Registers every command group. Each group lives in its own module. */
export function registerCommands(program: Command): void {
  program.enablePositionalOptions();
  registerContainerCommands(program);
  registerVolumeCommands(program);
}
