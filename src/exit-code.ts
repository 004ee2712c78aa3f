/**
 * The exit codes, documented in docs/exit-codes.md: what the compose verbs (src/compose) return and what
 * src/cli/main.ts makes the process's. Here, not in src/cli, because the application layer returns them and never
 * imports the CLI (a dependency rule in .dependency-cruiser.cjs); src/cli/exit-codes.ts re-exports them.
 */
export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 64,
  config: 65,
  permission: 77,
  runtimeFailure: 125,
  notExecutable: 126,
  notFound: 127,
  interrupted: 130,
} as const;
/** What a verb returns: one of the codes above, or a container's own exit code (`run`, `up --exit-code-from`). */
export type ExitCode = number;
