import { Option, type Command } from 'commander';
import { compareText, isFrozen } from '../../../engine/index.js';
import { setExitCode } from '../exit-codes.js';
import { TsfigError } from '../../errors.js';
import { openEngine } from '../engine.js';
import { collect, expandEnvFlags, parseCount } from '../units.js';
import { composeContext, loadForServices, progressMode, serviceContainers, verbContext } from './context.js';
import { stackControl } from '../../compose/attach.js';
import { nullSink } from '../../events/events.js';
import { parseLogTime } from '../log-time.js';
import { printLogs } from './logs.js';
import { runTui, wantsTui } from '../../ui/tty/index.js';
import { psRows, renderPsTable, selectPsContainers } from './ps.js';
import { observe, observeContainers, PROJECT_LABEL } from '../../planner/observe.js';
import { renderTable } from '../table.js';

/** `ps`, `logs`, `port`, `exec`, `ls`: compose verbs that read or join what is running. */
export function registerInspectCommands(program: Command): void {
  program
    .command('ps')
    .description('list containers of the project')
    .argument('[services...]')
    .option('-a, --all', 'show all stopped containers')
    .option('-q, --quiet', 'only display ids')
    .option('--services', 'display services')
    .option('--status <status>', 'filter services by status (created, running, exited, restarting...)', collect)
    .option('--filter <KEY=VAL>', 'filter services by a property (status=<state>, source=image|build)', collect)
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .action(
      async (
        services: string[],
        flags: {
          all?: boolean;
          quiet?: boolean;
          services?: boolean;
          status?: string[];
          filter?: string[];
          format: string;
        },
        command: Command,
      ) => {
        // Only the project's containers, each record and status read once (not observe's networks, volumes, images).
        const { project } = loadForServices(command, services);
        const engine = await openEngine();
        const listed = await observeContainers(engine, project.name);
        const observed = { containers: listed.map(({ container }) => container) };
        const paused = new Set(observed.containers.filter((container) => container.paused).map(({ id }) => id));
        const containers = selectPsContainers(project, observed, services, {
          all: flags.all === true,
          status: flags.status ?? [],
          filters: flags.filter ?? [],
          paused,
        });
        if (flags.services === true) {
          for (const service of [...new Set(containers.map((container) => container.service))])
            process.stdout.write(`${service}\n`);
          return;
        }
        if (flags.quiet === true) {
          for (const container of containers) process.stdout.write(`${container.id}\n`);
          return;
        }
        const rows = await psRows(engine, containers, listed, paused);
        if (flags.format === 'json') {
          for (const row of rows) process.stdout.write(`${JSON.stringify(row)}\n`);
          return;
        }
        process.stdout.write(renderPsTable(rows));
      },
    );

  program
    .command('logs')
    .description('view output from containers')
    .argument('[services...]')
    .option('-f, --follow', 'follow log output')
    .option('-n, --tail <lines>', 'number of lines to show from the end of the logs for each container', 'all')
    .option('-t, --timestamps', 'show timestamps')
    .option('--since <timestamp>', 'show logs since timestamp (e.g. 2026-01-02T13:23:37Z) or relative (e.g. 42m)')
    .option('--until <timestamp>', 'show logs before a timestamp (e.g. 2026-01-02T13:23:37Z) or relative (e.g. 42m)')
    .option('--no-color', 'produce monochrome output')
    .option('--no-log-prefix', "don't print prefix in logs")
    .option('--index <n>', 'index of the container if the service has multiple replicas')
    .action(
      async (
        services: string[],
        flags: {
          follow?: boolean;
          tail: string;
          timestamps?: boolean;
          since?: string;
          until?: string;
          color: boolean;
          logPrefix: boolean;
          index?: string;
        },
        command: Command,
      ) => {
        const context = await composeContext(command, services);
        const index = flags.index === undefined ? undefined : parseCount(flags.index, '--index');
        const containers = serviceContainers(context.observed, services).filter(
          (container) => index === undefined || container.number === index,
        );
        const tail = flags.tail === 'all' ? undefined : parseCount(flags.tail, '--tail');
        if (flags.follow === true && index === undefined && wantsTui(progressMode(command))) {
          // the keys stop and restart services through the verbs' plans; their progress is the TUI's to show
          const ctx = await verbContext(command, nullSink, context.engine);
          const control = stackControl(ctx, context.project, services);
          const tui = { engine: context.engine, project: context.project, services, mode: 'logs' as const, control };
          setExitCode(command, (await runTui({ ...tui, ...(tail !== undefined ? { tail } : {}) })).exitCode);
          return;
        }
        await printLogs(context.engine, containers, {
          follow: flags.follow === true,
          ...(tail !== undefined ? { tail } : {}),
          timestamps: flags.timestamps === true,
          ...(flags.since !== undefined ? { since: parseLogTime(flags.since, '--since') } : {}),
          ...(flags.until !== undefined ? { until: parseLogTime(flags.until, '--until') } : {}),
          color: flags.color && process.stdout.isTTY === true && process.env.NO_COLOR === undefined,
          prefix: flags.logPrefix,
          discover: async () =>
            serviceContainers(await observe(context.engine, context.project.name), services).filter(
              (container) => index === undefined || container.number === index,
            ),
        });
      },
    );

  program
    .command('port')
    .description('print the public port for a port binding')
    .argument('<service>')
    .argument('<private_port>')
    .option('--protocol <proto>', 'tcp or udp', 'tcp')
    .option('--index <n>', 'index of the container if the service has multiple replicas', '1')
    .action(
      async (service: string, privatePort: string, flags: { protocol: string; index: string }, command: Command) => {
        const context = await composeContext(command, [service]);
        const index = parseCount(flags.index, '--index');
        const container = serviceContainers(context.observed, [service]).find(
          (candidate) => candidate.number === index,
        );
        if (container === undefined)
          throw new TsfigError('not-found', `no container found for ${service}-${index}`, {
            hint: 'start it with: tsfig up -d',
          });
        const mapping = (await context.engine.containers.ports(container.id)).find(
          (port) => String(port.containerPort) === privatePort && port.proto === flags.protocol,
        );
        if (mapping === undefined)
          throw new TsfigError('not-found', `no port ${privatePort}/${flags.protocol} published for ${container.name}`);
        process.stdout.write(`${mapping.hostIp === '' ? '0.0.0.0' : mapping.hostIp}:${mapping.hostPort}\n`);
      },
    );

  program
    .command('exec')
    .description('execute a command in a running container')
    .argument('<service>')
    .argument('<command...>')
    .option('-d, --detach', 'detached mode: run the command in the background')
    .option('-e, --env <KEY=VALUE>', 'set environment variables', collect)
    .option('-u, --user <user>', 'run the command as this user')
    .option('-w, --workdir <dir>', 'path to workdir directory for this command')
    .option('-T, --no-tty', 'disable pseudo-TTY allocation (default: auto-detected)')
    .option('-i, --interactive', 'keep STDIN open (default: true)')
    .option('--index <n>', 'index of the container if the service has multiple replicas', '1')
    .passThroughOptions()
    .action(
      async (
        service: string,
        argv: string[],
        flags: { detach?: boolean; env?: string[]; user?: string; workdir?: string; tty: boolean; index: string },
        command: Command,
      ) => {
        const context = await composeContext(command, [service]);
        const index = parseCount(flags.index, '--index');
        // the service's container; with none running, a running one-off of it (compose v2's exec does the same)
        const candidates = serviceContainers(context.observed, [service], { includeOneoff: true });
        const container =
          candidates.find((candidate) => !candidate.oneoff && candidate.number === index && candidate.running) ??
          (index === 1 ? candidates.find((candidate) => candidate.oneoff && candidate.running) : undefined);
        if (container === undefined) {
          throw new TsfigError('not-found', `service "${service}" is not running`, {
            hint: `start it with: tsfig up -d ${service}`,
          });
        }
        // a process cannot join a frozen cgroup: it would hang until unpause (docker refuses too)
        if (await isFrozen(context.engine.paths, container.id)) {
          throw new TsfigError('conflict', `container ${container.name} is paused`, {
            hint: `unpause it first: tsfig unpause ${service}`,
          });
        }
        const detach = flags.detach === true;
        const result = await context.engine.containers.exec(container.id, {
          argv,
          // -e NAME: the value from this command's environment, dropped when unset (compose v2, docker exec)
          env: expandEnvFlags(flags.env),
          ...(flags.user !== undefined ? { user: flags.user } : {}),
          ...(flags.workdir !== undefined ? { workingDir: flags.workdir } : {}),
          // -d: no stdio, back at once (exit 0 once the process runs); it stays after this command, as docker's
          tty: !detach && flags.tty && process.stdin.isTTY === true && process.stdout.isTTY === true,
          stdio: detach ? 'pipe' : 'inherit',
          detach,
        });
        setExitCode(command, result.exitCode);
      },
    );

  program
    .command('ls')
    .description('list running projects')
    .option('-a, --all', 'show all stopped projects')
    .option('-q, --quiet', 'only display project names')
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .action(async (flags: { all?: boolean; quiet?: boolean; format: string }) => {
      const engine = await openEngine();
      const projects = new Map<string, { running: number; total: number; files: string }>();
      for (const { record, state } of await engine.containers.listRecords({ [PROJECT_LABEL]: undefined })) {
        const name = record.labels[PROJECT_LABEL] ?? '';
        const entry = projects.get(name) ?? {
          running: 0,
          total: 0,
          files: record.labels['io.tsfig.project.config_files'] ?? '',
        };
        entry.total++;
        if (state.running) entry.running++;
        projects.set(name, entry);
      }
      const list = [...projects.entries()]
        .filter(([, entry]) => flags.all === true || entry.running > 0)
        .sort(([a], [b]) => compareText(a, b));
      if (flags.quiet === true) {
        for (const [name] of list) process.stdout.write(`${name}\n`);
        return;
      }
      const status = (entry: { running: number; total: number }) =>
        entry.running === entry.total
          ? `running(${entry.running})`
          : `running(${entry.running}), exited(${entry.total - entry.running})`;
      if (flags.format === 'json') {
        process.stdout.write(
          `${JSON.stringify(list.map(([name, entry]) => ({ Name: name, Status: status(entry), ConfigFiles: entry.files })))}\n`,
        );
        return;
      }
      process.stdout.write(
        renderTable(
          ['NAME', 'STATUS', 'CONFIG FILES'],
          list.map(([name, entry]) => [name, status(entry), entry.files]),
        ),
      );
    });
}
