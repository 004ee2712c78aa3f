import { spawn } from 'node:child_process';
import { EngineError } from '../errors.js';

/**
 * The tar stream of a directory, for `image import DIR` and for a build's RUN layers (capture.ts). Node
 * cannot read xattrs, so GNU tar writes it: numeric owners, every xattr namespace (SCHILY.xattr.*, e.g.
 * security.capability), symlinks as links, devices, modes incl. setuid, sub-second mtimes, entries sorted by name and
 * no atime/ctime/pid in the PAX headers, so an unchanged directory always gives the same stream (and DiffID).
 */
export async function* packDirectory(dir: string): AsyncGenerator<Buffer> {
  const child = spawn(
    'tar',
    [
      '--create',
      '--file=-',
      '--directory',
      dir,
      '--numeric-owner',
      '--xattrs',
      '--xattrs-include=*',
      '--sort=name',
      '--format=posix',
      '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime',
      '.',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
  });
  exited.catch(() => undefined); // awaited below; a spawn failure must not be an unhandled rejection
  let finished = false;
  try {
    for await (const chunk of child.stdout) yield chunk as Buffer;
    finished = true;
  } finally {
    if (!finished) child.kill('SIGKILL');
  }
  let code: number | null;
  try {
    code = await exited;
  } catch (error) {
    throw new EngineError('runtime', `cannot run tar to pack ${dir}: ${(error as Error).message}`, {
      hint: 'install GNU tar',
      cause: error,
    });
  }
  if (code !== 0) {
    throw new EngineError(
      'runtime',
      `cannot pack directory ${dir}: ${stderr.trim().split('\n').at(-1) ?? `tar exited ${code}`}`,
      {
        hint: 'check that the directory exists and is readable',
      },
    );
  }
}
