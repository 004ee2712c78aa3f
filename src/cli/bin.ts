// An ordinary user's command runs again inside the user's rootless session (src/cli/rootless-launch.ts); root's, and
// the command inside the session, run here.
const argv = process.argv.slice(2);
// A reader that went away (`tsfig logs | head`): end as a process killed by SIGPIPE would (128 + 13), quietly, as
// docker does; what runs in containers is not affected (a --rm container is removed when it exits).
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    process.exit(141);
  });
}
/** What needs no engine (the version, help) runs at once, without a session. */
const direct = argv.length === 1 && ['-v', '--version', '-h', '--help', 'help'].includes(argv[0] ?? '');
const rootless = process.getuid?.() !== 0 && process.env.TSFIG_ROOTLESS !== '1' && !direct;
process.exitCode = rootless
  ? await (await import('./rootless-launch.js')).launchRootless(argv)
  : await (await import('./main.js')).main(argv);
