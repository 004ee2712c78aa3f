import { createInterface } from 'node:readline';

/** Asks a yes/no question on stderr and reads the answer from stdin; no answer (EOF, no terminal) means no. */
export function askOnStdin(question: string): Promise<boolean> {
  return new Promise((resolve) => {
    process.stderr.write(question);
    const rl = createInterface({ input: process.stdin });
    let answered = false;
    rl.once('line', (line) => {
      answered = true;
      rl.close();
      resolve(/^y(es)?$/i.test(line.trim()));
    });
    rl.once('close', () => {
      if (!answered) resolve(false);
    });
  });
}
