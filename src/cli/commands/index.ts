import type { Command } from 'commander';
import { commandName } from '../global-options.js';
import { packageVersion } from '../version.js';

type Register = (program: Command) => void;

/**
 * Command groups, loaded on demand: a command only imports the modules it needs (the engine, the project loader...),
 * which keeps `tsfig --version` and `tsfig ps` fast. Help and unknown commands load every group.
 */
const GROUPS: ReadonlyArray<{ names: readonly string[]; load: () => Promise<Register> }> = [
  { names: ['up', 'down'], load: async () => (await import('../compose/up.js')).registerUpDown },
  {
    names: ['start', 'stop', 'restart', 'kill', 'rm', 'pause', 'unpause', 'wait', 'top', 'images'],
    load: async () => (await import('../compose/lifecycle.js')).registerLifecycleCommands,
  },
  { names: ['run'], load: async () => (await import('../compose/run.js')).registerRunCommand },
  { names: ['build'], load: async () => (await import('../compose/build.js')).registerBuildCommands },
  {
    names: ['create', 'scale', 'events'],
    load: async () => (await import('../compose/more-commands.js')).registerMoreCommands,
  },
  {
    names: ['cp', 'stats', 'attach'],
    load: async () => (await import('../compose/extra-verbs.js')).registerExtraVerbs,
  },
  { names: ['watch'], load: async () => (await import('../compose/watch.js')).registerWatchCommand },
  { names: ['config'], load: async () => (await import('./config.js')).registerConfigCommand },
  { names: ['publish'], load: async () => (await import('../compose/publish.js')).registerPublishCommand },
  { names: ['graph'], load: async () => (await import('./graph.js')).registerGraphCommand },
  {
    names: ['ps', 'logs', 'port', 'exec', 'ls'],
    load: async () => (await import('../compose/inspect-commands.js')).registerInspectCommands,
  },
  { names: ['container'], load: async () => (await import('./container.js')).registerContainerCommands },
  {
    names: ['commit', 'export'],
    load: async () => (await import('../compose/archive-commands.js')).registerComposeArchiveCommands,
  },
  {
    names: ['image', 'login', 'logout'],
    load: async () => {
      const [{ registerImageCommands }, { registerBuildCommand }, { registerRegistryCommands }] = await Promise.all([
        import('./image.js'),
        import('./build.js'),
        import('./registry.js'),
      ]);
      // build and the registry add `image build|history|pull|push` to the image group, so they come after it.
      return (program) => {
        registerImageCommands(program);
        registerBuildCommand(program);
        registerRegistryCommands(program);
      };
    },
  },
  { names: ['pull', 'push'], load: async () => (await import('../compose/pull.js')).registerPullPush },
  { names: ['completion'], load: async () => (await import('./completion.js')).registerCompletionCommand },
  { names: ['network'], load: async () => (await import('./network.js')).registerNetworkCommands },
  { names: ['volume'], load: async () => (await import('./volume.js')).registerVolumeCommands },
  { names: ['kube'], load: async () => (await import('./kube.js')).registerKubeCommands },
  { names: ['system', 'info'], load: async () => (await import('./system.js')).registerSystemCommands },
  // Last: adds `image save|load` and `container export|commit` to the image and container groups loaded above.
  { names: ['image', 'container'], load: async () => (await import('./archive.js')).registerArchiveCommands },
];

/** Registers the command group argv asks for (every group for help, suggestions and unknown names). */
export async function registerCommands(program: Command, argv: readonly string[] = []): Promise<void> {
  const name = commandName(argv);
  program
    .command('version')
    .description('show the tsfig version information')
    .option('--short', 'shows only the version number')
    .action((flags: { short?: boolean }) => {
      process.stdout.write(flags.short === true ? `${packageVersion()}\n` : `tsfig version ${packageVersion()}\n`);
    });
  if (name === 'version') return;
  // `tsfig --version` / `-v` with no command: commander prints it before any command runs, so nothing else loads.
  if (name === undefined && argv.some((arg) => arg === '--version' || arg === '-v')) return;
  const wanted = GROUPS.filter((group) => name !== undefined && group.names.includes(name));
  for (const group of wanted.length > 0 ? wanted : GROUPS) (await group.load())(program);
}
