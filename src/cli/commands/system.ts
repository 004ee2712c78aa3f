import type { Command } from 'commander';
import { createEngine } from '../../../engine/index.js';
import { checkSystem, type Finding } from '../../../engine/system/index.js';
import { inRootlessSession, modeInfo, stopSession, type ModeInfo } from '../../../engine/rootless/index.js';
import { enginePaths } from '../../../engine/state/index.js';
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

function renderInfo(info: ModeInfo): string {
  const lines = [
    `Mode: ${info.mode}`,
    `State root: ${info.stateRoot}`,
    `Run root: ${info.runRoot}`,
    `User namespace: ${info.uidMap.length === 1 && info.uidMap[0] === '0 0 4294967295' ? 'host (none)' : info.uidMap.join(', ')}`,
    `Cgroups: v${info.cgroups.version}, ${
      info.cgroups.usable
        ? 'usable (limits, stats, pause)'
        : 'not delegated to this user: no limits, no memory/CPU stats, no pause'
    }`,
  ];
  if (info.session !== undefined) {
    lines.push(
      `Session: holder pid ${info.session.holderPid}, runtime dir ${info.session.runtimeDir}`,
      `Network: ${info.session.network}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/**
 * `tsfig info` / `tsfig system info` (the mode and where things are), `tsfig system shutdown` (rootless: end the
 * session), `tsfig system check [--repair]` (docs/reliability.md says which state each finding comes from).
 */
export function registerSystemCommands(program: Command, io: SystemCommandIo = {}): void {
  const out = io.stdout ?? process.stdout;
  const info = async (flags: { format?: string }) => {
    const format = flags.format ?? 'text';
    if (format !== 'text' && format !== 'json') {
      throw new TsfigError('usage', `unsupported --format ${JSON.stringify(format)} (text or json)`);
    }
    const result = await modeInfo(enginePaths());
    out.write(format === 'json' ? `${JSON.stringify(result)}\n` : renderInfo(result));
  };
  program
    .command('info')
    .description('show the mode (root or rootless) and where the engine keeps things')
    .option('--format <format>', 'output format: text or json')
    .action(info);
  const system = program.command('system').description('manage the engine as a whole');
  system
    .command('info')
    .description('show the mode (root or rootless) and where the engine keeps things')
    .option('--format <format>', 'output format: text or json')
    .action(info);
  system
    .command('shutdown')
    .description(
      'rootless: end your session (its namespaces, slirp4netns); refused while containers run, unless --force',
    )
    .option('--force', 'also kill the containers that still run')
    .action(async (flags: { force?: boolean }) => {
      if (!inRootlessSession()) {
        out.write('root mode: there is no session to end\n');
        return;
      }
      const running = await createEngine({ dns: false }).containers.list();
      if (running.length > 0 && flags.force !== true) {
        throw new TsfigError('conflict', `${running.length} container(s) still run in your session`, {
          hint: 'stop them first (tsfig down, tsfig container stop), or pass --force to kill them',
        });
      }
      out.write((await stopSession()) ? 'session ended\n' : 'no session was running\n');
    });
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
