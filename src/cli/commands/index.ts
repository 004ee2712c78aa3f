import type { Command } from 'commander';

/** Registers every command group. Each group lives in its own module. */
export function registerCommands(program: Command): void {
  void program;
}
