/**
 * The CLI's start: what `bin.ts` (the ES module entry of the tsc output and the split bundle) and the CommonJS bundle
 * that bin/tsfig.js loads with a code cache (scripts/bundle.js) both run. Returns the exit code.
 */
export async function start(argv: readonly string[]): Promise<number> {
  // A reader that went away (`tsfig logs | head`): end as a process killed by SIGPIPE would (128 + 13), quietly, as
  // docker does; what runs in containers is not affected (a --rm container is removed when it exits).
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
      process.exit(141);
    });
  }
  // An ordinary user's command runs again inside the user's rootless session (src/cli/rootless-launch.ts); root's,
  // and the command inside the session, run here. What needs no engine (the version, help) runs at once, without a
  // session.
  const direct = argv.length === 1 && ['-v', '--version', '-h', '--help', 'help'].includes(argv[0] ?? '');
  const rootless = process.getuid?.() !== 0 && process.env.TSFIG_ROOTLESS !== '1' && !direct;
  return rootless
    ? (await import('./rootless-launch.js')).launchRootless(argv)
    : (await import('./main.js')).main(argv);
}
