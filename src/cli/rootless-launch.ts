/**
 * An ordinary user's tsfig: the same command, run again inside the user's rootless session (engine/rootless): its
 * user and mount namespaces, joined with nsenter. This process only relays: signals to the command, its exit status
 * back (a command killed by a signal kills this one with the same signal, so a shell sees what it would have seen).
 */
import { spawn } from 'node:child_process';
import { ensureSession, joinArgs, rootlessDirs, sessionEnv } from '../../engine/rootless/index.js';
import { isEngineError } from '../../engine/errors.js';
import { exitCodeOfKind } from './exit-codes.js';

const RELAYED = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'] as const;

export async function launchRootless(argv: readonly string[]): Promise<number> {
  const dirs = rootlessDirs();
  let session;
  try {
    session = await ensureSession(dirs);
  } catch (error) {
    if (!isEngineError(error)) throw error;
    process.stderr.write(`error: ${error.message}\n`);
    if (error.hint !== undefined) process.stderr.write(`hint: ${error.hint}\n`);
    return exitCodeOfKind(error.kind);
  }
  const entry = process.argv[1] ?? '';
  const child = spawn(
    'nsenter',
    [...joinArgs(session, process.cwd()), process.execPath, ...process.execArgv, entry, ...argv],
    { stdio: 'inherit', env: sessionEnv(session, dirs) },
  );
  const relay = (signal: NodeJS.Signals) => () => {
    // Ctrl-C reaches the whole foreground group, the command too: relaying SIGINT again would count as a second one
    if (signal !== 'SIGINT' || process.stdin.isTTY !== true) child.kill(signal);
  };
  for (const signal of RELAYED) process.on(signal, relay(signal));
  return new Promise((resolve) => {
    child.once('error', (error) => {
      process.stderr.write(`error: cannot join the rootless session: ${error.message}\n`);
      resolve(126);
    });
    child.once('exit', (code, signal) => {
      if (signal !== null) {
        for (const s of RELAYED) process.removeAllListeners(s);
        process.kill(process.pid, signal);
      }
      resolve(code ?? 128);
    });
  });
}
