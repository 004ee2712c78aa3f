/**
 * zstd decompression through Debian's `zstd` binary as a streaming child process (Node 20's zlib has no zstd).
 */
import { spawn } from 'node:child_process';
import { Readable } from 'node:stream';
import { EngineError } from '../errors.js';

/** The decompressed bytes of a zstd stream. */
export async function* zstdDecompress(source: AsyncIterable<Uint8Array>, binary = 'zstd'): AsyncGenerator<Buffer> {
  const child = spawn(binary, ['-d', '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
  });
  exited.catch(() => undefined);
  child.stdin.on('error', () => undefined);
  const input = Readable.from(source);
  input.on('error', (error) => child.stdin.destroy(error));
  input.pipe(child.stdin);
  let finished = false;
  try {
    for await (const chunk of child.stdout) yield chunk as Buffer;
    finished = true;
  } finally {
    if (!finished) {
      input.destroy();
      child.kill('SIGKILL');
    }
  }
  let code: number | null;
  try {
    code = await exited;
  } catch (error) {
    throw new EngineError(
      'unsupported',
      `cannot run ${binary} to decompress a zstd layer: ${(error as Error).message}`,
      {
        hint: 'install zstd (apt-get install zstd)',
        cause: error,
      },
    );
  }
  if (code !== 0) {
    throw new EngineError('invalid', `the zstd layer is corrupt: ${stderr.trim() || `zstd exited ${code}`}`, {
      hint: 'nothing was added to the store; pull again',
    });
  }
}
