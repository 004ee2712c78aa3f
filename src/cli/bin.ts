// An ordinary user's command runs again inside the user's rootless session (src/cli/rootless-launch.ts); root's, and
// the command inside the session, run here.
const argv = process.argv.slice(2);
/** What needs no engine (the version, help) runs at once, without a session. */
const direct = argv.length === 1 && ['-v', '--version', '-h', '--help', 'help'].includes(argv[0] ?? '');
const rootless = process.getuid?.() !== 0 && process.env.TSFIG_ROOTLESS !== '1' && !direct;
process.exitCode = rootless
  ? await (await import('./rootless-launch.js')).launchRootless(argv)
  : await (await import('./main.js')).main(argv);
