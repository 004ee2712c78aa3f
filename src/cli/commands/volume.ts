import { inspectFormatter } from '../go-template.js';
import type { Command } from 'commander';
import { setExitCode } from '../exit-codes.js';
import { isEngineError } from '../../../engine/errors.js';
import type { EnginePaths } from '../../../engine/state/index.js';
import { enginePaths } from '../../../engine/state/index.js';
import { VolumeStore, parseFilterArgs, type VolumeInfo } from '../../../engine/volumes/index.js';
import { containerRecordUsers } from '../../../engine/volumes/index.js';
import { TsfigError } from '../../errors.js';
import { askOnStdin } from '../prompt.js';
import { humanSize, renderTable } from '../table.js';
import { collect } from '../units.js';

/** Where the volume commands read and write; tests pass their own. */
export interface VolumeCommandIo {
  /** @default enginePaths() (TSFIG_ROOT) */
  readonly paths?: () => EnginePaths;
  /** @default process.stdout */
  readonly stdout?: { write(text: string): unknown };
  /** @default process.stderr */
  readonly stderr?: { write(text: string): unknown };
  /** Answers the prune confirmation. @default one line read from process.stdin */
  readonly confirm?: (question: string) => Promise<boolean>;
}

function keyValues(values: readonly string[], flag: string): Record<string, string> {
  const result: Record<string, string> = {};
  for (const value of values) {
    const eq = value.indexOf('=');
    if (eq === 0) throw new TsfigError('usage', `${flag} ${JSON.stringify(value)}: the key is empty`);
    if (eq < 0) result[value] = '';
    else result[value.slice(0, eq)] = value.slice(eq + 1);
  }
  return result;
}

function lsLine(volume: VolumeInfo): string {
  const labels = Object.entries(volume.Labels)
    .map(([key, value]) => `${key}=${value}`)
    .join(',');
  return JSON.stringify({
    Driver: volume.Driver,
    Labels: labels,
    Mountpoint: volume.Mountpoint,
    Name: volume.Name,
    Scope: volume.Scope,
    CreatedAt: volume.CreatedAt,
  });
}

/** `tsfig volume create|ls|inspect|rm|prune` (engine-level, Docker's flags and output). */
export function registerVolumeCommands(program: Command, io: VolumeCommandIo = {}): void {
  const out = io.stdout ?? process.stdout;
  const err = io.stderr ?? process.stderr;
  const paths = io.paths ?? (() => enginePaths());
  const store = () => new VolumeStore(paths());
  const usersOf = () => containerRecordUsers(paths());

  const volume = program.command('volume').description('manage volumes');

  volume
    .command('create')
    .description('create a volume')
    .argument('[name]', 'volume name (a random one when omitted)')
    .option('-d, --driver <name>', 'volume driver', 'local')
    .option(
      '-o, --opt <key=value>',
      'driver option (type=tmpfs,device=tmpfs,o=size=100m or type=none,o=bind,device=PATH)',
      collect,
    )
    .option('--label <key=value>', 'set a label on the volume', collect)
    .action(async (name: string | undefined, flags: { driver: string; opt?: string[]; label?: string[] }) => {
      const info = await store().create(name, {
        driver: flags.driver,
        driverOpts: keyValues(flags.opt ?? [], '--opt'),
        labels: keyValues(flags.label ?? [], '--label'),
      });
      out.write(`${info.Name}\n`);
    });

  volume
    .command('ls')
    .alias('list')
    .description('list volumes')
    .option('-q, --quiet', 'only display volume names')
    .option(
      '-f, --filter <filter>',
      'filter output (label=KEY[=VALUE], dangling=true|false, driver=local, name=PART)',
      collect,
    )
    .option('--format <format>', 'output format: table or json')
    .action(async (flags: { quiet?: boolean; filter?: string[]; format?: string }) => {
      if (flags.format !== undefined && flags.format !== 'json' && flags.format !== 'table') {
        throw new TsfigError('usage', `unsupported --format ${JSON.stringify(flags.format)} (table or json)`);
      }
      const { volumes, warnings } = await store().list({
        filters: parseFilterArgs(flags.filter ?? []),
        usersOf: usersOf(),
      });
      for (const warning of warnings) err.write(`warning: ${warning}\n`);
      if (flags.quiet === true) {
        for (const v of volumes) out.write(`${v.Name}\n`);
      } else if (flags.format === 'json') {
        for (const v of volumes) out.write(`${lsLine(v)}\n`);
      } else {
        out.write(
          renderTable(
            ['DRIVER', 'VOLUME NAME'],
            volumes.map((v) => [v.Driver, v.Name]),
          ),
        );
      }
    });

  volume
    .command('inspect')
    .description('display detailed information on one or more volumes')
    .argument('<name...>', 'volume names')
    .option('-f, --format <format>', "json (default), or a Go template as docker's (e.g. '{{.Mountpoint}}')")
    .action(async (names: string[], flags: { format?: string }, cmd: Command) => {
      const format = inspectFormatter(flags.format);
      const volumes = store();
      const found: VolumeInfo[] = [];
      let failed: unknown;
      for (const name of names) {
        try {
          found.push(await volumes.inspect(name));
        } catch (error) {
          if (!isEngineError(error) || names.length === 1) throw error;
          err.write(`error: ${error.message}\n`);
          failed = error;
        }
      }
      out.write(format(found));
      if (failed !== undefined) setExitCode(cmd, 1);
    });

  volume
    .command('rm')
    .alias('remove')
    .description('remove one or more volumes (never one in use)')
    .argument('<name...>', 'volume names')
    .option('-f, --force', 'no error for volumes that do not exist')
    .action(async (names: string[], flags: { force?: boolean }, cmd: Command) => {
      const volumes = store();
      const users = usersOf();
      let failed: unknown;
      for (const name of names) {
        try {
          if (await volumes.remove(name, { force: flags.force === true, usersOf: users })) out.write(`${name}\n`);
        } catch (error) {
          if (!isEngineError(error) || names.length === 1) throw error;
          err.write(`error: ${error.message}\n`);
          failed = error;
        }
      }
      if (failed !== undefined) setExitCode(cmd, 1);
    });

  volume
    .command('prune')
    .description('remove unused anonymous volumes (all unused volumes with --all)')
    .option('-a, --all', 'remove all unused volumes, not just anonymous ones')
    .option('-f, --force', 'do not prompt for confirmation')
    .option('--filter <filter>', 'label=KEY[=VALUE] or label!=KEY[=VALUE]', collect)
    .action(async (flags: { all?: boolean; force?: boolean; filter?: string[] }) => {
      const filters = parseFilterArgs(flags.filter ?? []);
      if (flags.force !== true) {
        const what = flags.all === true ? 'all local volumes' : 'anonymous local volumes';
        const ok = await (io.confirm ?? askOnStdin)(
          `WARNING! This will remove ${what} not used by at least one container.\nAre you sure you want to continue? [y/N] `,
        );
        if (!ok) {
          err.write('nothing removed\n');
          return;
        }
      }
      const result = await store().prune({ all: flags.all === true, filters, usersOf: usersOf() });
      for (const warning of result.warnings) err.write(`warning: ${warning}\n`);
      if (result.deleted.length > 0) out.write(`Deleted Volumes:\n${result.deleted.map((n) => `${n}\n`).join('')}\n`);
      out.write(`Total reclaimed space: ${humanSize(result.spaceReclaimed)}\n`);
    });
}
