/**
 * `cp`, `stats`: compose v2's verbs over the engine's copy and stats, for the project's containers only.
 */
import type { Command } from 'commander';
import * as cp from '../../compose/cp.js';
import { serviceContainers } from '../../compose/context.js';
import { TsfigError } from '../../errors.js';
import { observe } from '../../planner/observe.js';
import { renderStats, splitCpArg, statsRows, statsWarning, type StatsRow } from '../commands/container-verbs.js';
import { attachOptionsOf, attachSession, withAttachFlags, type AttachFlags } from '../attach-session.js';
import { setExitCode } from '../exit-codes.js';
import { renderTable } from '../table.js';
import { parseCount } from '../units.js';
import { composeContext, loadForServices, verbContext } from './context.js';

// ---- cp -------------------------------------------------------------------------------------------------------

function registerCp(program: Command): void {
  program
    .command('cp')
    .description('copy files/folders between a service container and the local filesystem')
    .usage('[options] SERVICE:SRC_PATH DEST_PATH|-\n       tsfig cp [options] SRC_PATH|- SERVICE:DEST_PATH')
    .argument('<source>')
    .argument('<destination>')
    .option('--all', 'include containers created by the run command')
    .option('-a, --archive', 'archive mode (copy all uid/gid information)')
    .option('-L, --follow-link', 'always follow symbol link in SRC_PATH')
    .option('--index <n>', 'index of the container if the service has multiple replicas')
    .action(
      async (
        sourceArg: string,
        destArg: string,
        flags: { all?: boolean; archive?: boolean; followLink?: boolean; index?: string },
        command: Command,
      ) => {
        const source = splitCpArg(sourceArg);
        const dest = splitCpArg(destArg);
        if (source.container !== undefined && dest.container !== undefined) {
          throw new TsfigError('usage', 'copying between services is not supported');
        }
        if (source.container === undefined && dest.container === undefined) {
          throw new TsfigError('usage', 'must specify at least one container source', {
            hint: 'tsfig cp SERVICE:SRC_PATH DEST_PATH, or SRC_PATH SERVICE:DEST_PATH',
          });
        }
        if (source.path === '') throw new TsfigError('usage', 'source can not be empty');
        if (dest.path === '') throw new TsfigError('usage', 'destination can not be empty');
        const index = flags.index === undefined ? undefined : parseCount(flags.index, '--index');
        if (index === 0) throw new TsfigError('usage', '--index starts at 1');
        const from = source.container !== undefined;
        const service = (from ? source.container : dest.container) ?? '';
        const hostPath = from ? dest.path : source.path;
        if (from && hostPath === '-' && process.stdout.isTTY === true) {
          throw new TsfigError('usage', 'refusing to write a tar stream to a terminal', {
            hint: 'redirect the output (> FILE, | tar x)',
          });
        }
        if (!from && hostPath === '-' && process.stdin.isTTY === true) {
          throw new TsfigError('usage', 'requested a tar stream from stdin, but stdin is a terminal', {
            hint: `pipe a tar stream in: tar c DIR | tsfig cp - ${service}:DEST`,
          });
        }
        const { project } = loadForServices(command, [service]);
        const options: cp.CpOptions = {
          project,
          service,
          direction: from ? 'from' : 'to',
          containerPath: from ? source.path : dest.path,
          hostPath,
          index,
          all: flags.all === true,
          archive: flags.archive === true,
          followLink: flags.followLink === true,
          input: process.stdin,
          output: process.stdout,
        };
        setExitCode(command, await cp.run(await verbContext(command), options));
      },
    );
}

// ---- stats ----------------------------------------------------------------------------------------------------

/** docker's headers for the stats fields a template may name. */
const STATS_HEADERS: Readonly<Record<keyof StatsRow, string>> = {
  BlockIO: 'BLOCK I/O',
  CPUPerc: 'CPU %',
  Container: 'CONTAINER',
  ID: 'CONTAINER ID',
  MemPerc: 'MEM %',
  MemUsage: 'MEM USAGE / LIMIT',
  Name: 'NAME',
  NetIO: 'NET I/O',
  PIDs: 'PIDS',
};

const FIELD = /\{\{\s*(json\s+)?\.(\w*)\s*\}\}/g;

/**
 * The subset of docker's Go templates that stats formats use: `{{.Field}}`, `{{json .Field}}`, `{{json .}}`, `\t`
 * and `\n` escapes; `table TEMPLATE` adds the header row and aligns the tab-separated columns. Anything else in
 * `{{ }}`, or an unknown field, is a usage error naming --format.
 */
export function renderStatsTemplate(rows: readonly StatsRow[], format: string): string {
  const table = format.startsWith('table ');
  const template = (table ? format.slice('table '.length) : format).replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  const leftover = template.replace(FIELD, '');
  if (leftover.includes('{{') || leftover.includes('}}')) {
    throw new TsfigError('usage', `--format: unsupported template "${format}"`, {
      hint: 'use table, json, or fields such as {{.Name}}\\t{{.CPUPerc}}\\t{{.MemUsage}} (and {{json .}})',
    });
  }
  const known = Object.keys(STATS_HEADERS);
  for (const match of template.matchAll(FIELD)) {
    const field = match[2] ?? '';
    if (field === '' ? match[1] === undefined : !known.includes(field)) {
      throw new TsfigError('usage', `--format: no field "${field}" in stats`, { hint: `fields: ${known.join(', ')}` });
    }
  }
  const fill = (row: StatsRow | undefined) =>
    template.replace(FIELD, (_all, json: string | undefined, field: string) => {
      if (row === undefined) return STATS_HEADERS[field as keyof StatsRow];
      if (field === '') return JSON.stringify(row); // `{{json .}}`: `{{.}}` alone was refused above
      const value = row[field as keyof StatsRow];
      return json === undefined ? value : JSON.stringify(value);
    });
  if (!table) return rows.map((row) => `${fill(row)}\n`).join('');
  const split = (text: string) => text.split('\t');
  return renderTable(
    split(fill(undefined)),
    rows.map((row) => split(fill(row))),
  );
}

function formatStats(rows: readonly StatsRow[], format: string): string {
  if (format === 'table' || format === 'json') return renderStats(rows, format);
  return renderStatsTemplate(rows, format);
}

function registerStats(program: Command): void {
  program
    .command('stats')
    .description("display a live stream of the project's containers' resource usage statistics")
    .argument('[services...]')
    .option('-a, --all', 'show all containers (default shows just running)')
    .option('--no-stream', 'disable streaming stats and only pull the first result')
    .option('--no-trunc', 'do not truncate output')
    .option('--format <format>', "format output: 'table', 'json', 'table TEMPLATE' or 'TEMPLATE'", 'table')
    .action(
      async (
        services: string[],
        flags: { all?: boolean; stream: boolean; trunc: boolean; format: string },
        command: Command,
      ) => {
        // a bad template fails before anything is read
        if (flags.format !== 'table' && flags.format !== 'json') renderStatsTemplate([], flags.format);
        const context = await composeContext(command, services);
        const { engine, project } = context;
        const targets = async () => {
          const observed = await observe(engine, project.name, project);
          const result = [];
          for (const container of serviceContainers(observed, services, { includeOneoff: true })) {
            if (flags.all !== true && !container.running) continue;
            const record = await engine.containers.get(container.id).catch(() => undefined);
            if (record === undefined) continue; // removed since the observation
            result.push({ record, state: await engine.containers.state(record), ref: container.name });
          }
          return result;
        };
        const rows = async () => {
          const list = await targets();
          // --no-trunc: the whole id (statsRows gives the rows in the targets' order)
          return (await statsRows(engine, list, 1000)).map((row, index) =>
            flags.trunc ? row : { ...row, ID: list[index]?.record.id ?? row.ID },
          );
        };
        const warning = statsWarning();
        if (warning !== undefined) process.stderr.write(`WARNING: ${warning}\n`);
        if (!flags.stream) {
          process.stdout.write(formatStats(await rows(), flags.format));
          return;
        }
        for (;;) {
          const current = await rows();
          if (process.stdout.isTTY === true && flags.format === 'table') process.stdout.write('\x1b[2J\x1b[H');
          process.stdout.write(formatStats(current, flags.format));
        }
      },
    );
}

// ---- attach ---------------------------------------------------------------------------------------------------

function registerAttach(program: Command): void {
  withAttachFlags(
    program
      .command('attach')
      .description("attach local standard input, output, and error streams to a service's running container")
      .argument('<service>')
      .option('--index <n>', 'index of the container if the service has multiple replicas', '1'),
  ).action(async (service: string, flags: AttachFlags & { index: string }, command: Command) => {
    const index = parseCount(flags.index, '--index');
    const context = await composeContext(command, [service]);
    const container = serviceContainers(context.observed, [service]).find((candidate) => candidate.number === index);
    if (container === undefined) {
      throw new TsfigError('not-found', `no container found for service "${service}" with index ${index}`, {
        hint: `create it first: tsfig up -d ${service}`,
      });
    }
    const what = `service "${service}" (${container.name})`;
    const code = await attachSession(context.engine, container.id, attachOptionsOf(flags, what));
    setExitCode(command, code);
  });
}

/** `cp`, `stats` and `attach` at the top level. */
export function registerExtraVerbs(program: Command): void {
  registerCp(program);
  registerStats(program);
  registerAttach(program);
}
