import type { Command } from 'commander';
import { createEngine } from '../../../engine/index.js';
import { checkSystem, type Finding } from '../../../engine/system/index.js';
import { TsfigError } from '../../errors.js';
import { setExitCode } from '../exit-codes.js';
import { renderTable } from '../table.js';

/** Where the system commands write; tests pass their own. */
export interface SystemCommandIo {
  /** @default process.stdout */
  readonly stdout?: { write(text: string): unknown };
}

function outcome(finding: Finding): string {
  if (finding.failed !== undefined) return `failed: ${finding.failed}`;
  return finding.repaired ?? '';
}

/** `tsfig system check [--repair]` (docs/reliability.md says which state each finding comes from). */
export function registerSystemCommands(program: Command, io: SystemCommandIo = {}): void {
  const out = io.stdout ?? process.stdout;
  const system = program.command('system').description('manage the engine as a whole');
  system
    .command('check')
    .description(
      'list inconsistencies between the state on disk and the kernel (left by a crash or kill -9); exit 1 when any',
    )
    .option('--repair', 'fix what was found (finish or undo what the interrupted command was doing)')
    .option('--format <format>', 'output format: table or json')
    .action(async (flags: { repair?: boolean; format?: string }, cmd: Command) => {
      const format = flags.format ?? 'table';
      if (format !== 'table' && format !== 'json') {
        throw new TsfigError('usage', `unsupported --format ${JSON.stringify(format)} (table or json)`);
      }
      const env = process.env;
      const forward = !['0', 'false', 'no'].includes((env.TSFIG_DNS_FORWARD ?? '').toLowerCase());
      const engine = createEngine({ dns: { forward } });
      const findings = await checkSystem(engine, { repair: flags.repair === true });
      if (format === 'json') {
        for (const finding of findings) out.write(`${JSON.stringify(finding)}\n`);
      } else if (findings.length === 0) {
        out.write('no inconsistencies found\n');
      } else {
        const header = flags.repair === true ? ['KIND', 'OBJECT', 'PROBLEM', 'REPAIR'] : ['KIND', 'OBJECT', 'PROBLEM'];
        const rows = findings.map((finding) => {
          const row = [finding.kind, finding.object, finding.problem];
          return flags.repair === true ? [...row, outcome(finding)] : row;
        });
        out.write(renderTable(header, rows));
      }
      if (findings.length > 0) setExitCode(cmd, 1);
    });
}
