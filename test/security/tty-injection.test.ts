// Item 1 of issue #15: a container must never get an fd of the operator's terminal. The operator is an interactive
// bash in a real terminal (tmux); a hostile process in the container pushes "touch <file>" into its terminal's input
// queue with TIOCSTI, through its stdin and through /dev/tty, while `exec` (without and with -t), compose `exec -T`
// and attached `run` are in the foreground. Had it reached the operator's terminal, bash would run the line after the
// command returned and the file would exist. A control run of the same program on the host shows the attack works in
// this terminal (the kernel allows TIOCSTI).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeTestEngine, NEEDS_ROOT, REPO, type TestEngine } from '../helpers/engine.js';
import { shellQuote, Terminal } from './helpers.js';

/** Perl that types `touch <file>-stdin` through its stdin and `touch <file>-devtty` through /dev/tty. */
function injector(file: string): string {
  const line = (suffix: string) => `touch ${file}-${suffix}\\n`;
  return (
    `ioctl(STDIN, 0x5412, $_) for split //, "${line('stdin')}"; ` +
    `if (open(my $t, "+<", "/dev/tty")) { ioctl($t, 0x5412, $_) for split //, "${line('devtty')}" } ` +
    `print -t STDIN ? "stdin-is-a-tty\\n" : "stdin-is-not-a-tty\\n";`
  );
}

describe('terminal injection from a container (TIOCSTI)', { skip: NEEDS_ROOT }, () => {
  let t: TestEngine;
  let terminal: Terminal;
  let project: string;
  let cli: string;

  before(async () => {
    t = await makeTestEngine({ debian: true });
    terminal = new Terminal(path.join(t.dir, 'tmux.sock'));
    project = path.join(t.dir, 'proj');
    await mkdir(project);
    await writeFile(
      path.join(project, 'tsfig.yml'),
      'services:\n  box:\n    image: tsfig/debian:bookworm\n    command: ["sleep", "600"]\n    init: true\n',
    );
    const run = await t.cli([
      'container',
      'run',
      '-d',
      '--init',
      '--name',
      'victim',
      'tsfig/debian:bookworm',
      'sleep',
      '600',
    ]);
    assert.equal(run.code, 0, run.stderr);
    const up = await t.cli(['up', '-d'], { cwd: project });
    assert.equal(up.code, 0, up.stderr);
    cli = `${shellQuote(process.execPath)} ${shellQuote(path.join(REPO, 'bin', 'tsfig.js'))}`;
    const env: Record<string, string> = {};
    for (const key of ['TSFIG_ROOT', 'TSFIG_RUN_ROOT', 'TSFIG_DNS_FORWARD', 'TSFIG_REGISTRY_LOOPBACK_ONLY', 'PATH']) {
      env[key] = t.env[key] ?? '';
    }
    terminal.start({ ...env, PS1: '$ ', HISTFILE: '/dev/null' }, project);
  });

  after(async () => {
    terminal.stop();
    await t.cli(['down', '-t', '1'], { cwd: project }).catch(() => undefined);
    await t.cleanup();
  });

  /** Runs command (its words already quoted) in the operator's shell; asserts nothing was typed into it. */
  async function attack(name: string, command: (perl: string) => string, expectControlled = false): Promise<string> {
    const file = path.join(t.dir, `injected-${name}`);
    await terminal.run(command(shellQuote(injector(file))));
    const screen = terminal.capture();
    for (const suffix of ['stdin', 'devtty']) {
      assert.equal(
        existsSync(`${file}-${suffix}`),
        expectControlled,
        `${name}: ${suffix} ${expectControlled ? 'did not reach' : 'typed into'} the operator's shell\n${screen}`,
      );
    }
    return screen;
  }

  test('control: the same program run on the host types into the terminal', async () => {
    await attack('control', (perl) => `perl -e ${perl}`, true);
  });

  test('container exec without -t: the process gets pipes and no controlling terminal', async () => {
    const screen = await attack('exec', (perl) => `${cli} container exec victim perl -e ${perl}`);
    assert.match(screen, /^stdin-is-not-a-tty$/m);
  });

  test('container exec -i without -t: stdin relayed through a pipe', async () => {
    await attack('exec-i', (perl) => `${cli} container exec -i victim perl -e ${perl}`);
  });

  test('compose exec -T', async () => {
    await attack('compose-exec', (perl) => `${cli} exec -T box perl -e ${perl}`);
  });

  test('container exec -t: a new pty, its master held on the host side only', async () => {
    const screen = await attack('exec-t', (perl) => `${cli} container exec -it victim perl -e ${perl}`);
    assert.match(screen, /^stdin-is-a-tty\r?$/m);
    // no process of the container holds a pty master (/dev/ptmx or /dev/pts/ptmx) while an exec -t runs
    const masters = await t.cli([
      'container',
      'exec',
      'victim',
      'sh',
      '-c',
      'ls -l /proc/[0-9]*/fd/ 2>/dev/null | grep -c ptmx || true',
    ]);
    assert.equal(masters.stdout.trim(), '0', masters.stdout + masters.stderr);
  });

  test('attached container run, with and without -i', async () => {
    await attack('run', (perl) => `${cli} container run --rm tsfig/debian:bookworm perl -e ${perl}`);
    await attack('run-i', (perl) => `${cli} container run --rm -i tsfig/debian:bookworm perl -e ${perl}`);
  });
});
