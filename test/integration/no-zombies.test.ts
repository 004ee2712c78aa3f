/**
 * Issue #20: the runtime's intermediate processes never linger as zombies, whatever reaps orphans on the host. The CLI
 * runs here under a child subreaper that never reaps an orphan (python3 with prctl(PR_SET_CHILD_SUBREAPER)): every
 * process of the runtime that is orphaned, and not waited for by its own parent, ends as a zombie child of it. Only
 * the monitors (detached on purpose, docs/reliability.md *Processes*) may: each intermediate (start's, the exit
 * command's double fork, the spawner and its children, health probes, the keeper of `exec --detach`) must be reaped
 * by tsfig itself. The keeper used to be forked by the CLI's helper and outlived it: an orphan here, a zombie once its
 * process ended; the container's monitor forks and reaps it now. (`run --rm` is left out: its exit command is
 * detached on purpose too, and its monitor's record is gone before the harness can note its pid.)
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, test } from 'node:test';
import { NEEDS_ROOT, REPO, suiteEngine } from '../helpers/engine.js';

/** Runs each command (argv lists) as its child, then prints the zombies among its children that are not monitors. */
const SUBREAPER = String.raw`
import ctypes, glob, json, os, subprocess, sys, time
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
root, commands = sys.argv[1], json.loads(sys.argv[2])
monitors, codes = set(), []
def note_monitors():
    for f in glob.glob(os.path.join(root, 'containers', '*', 'status.json')):
        try: monitors.add(int(json.load(open(f)).get('monitor', 0)))
        except Exception: pass
for argv in commands:
    codes.append(subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode)
    note_monitors()
time.sleep(1.5)
zombies = []
for stat in glob.glob('/proc/[0-9]*/stat'):
    try: text = open(stat).read()
    except OSError: continue
    pid, rest = int(text.split(' ')[0]), text[text.rindex(')') + 2:].split(' ')
    if rest[0] == 'Z' and int(rest[1]) == os.getpid() and pid not in monitors:
        zombies.append(text[:text.rindex(')') + 1])
print(json.dumps({'codes': codes, 'zombies': zombies, 'monitors': len(monitors)}))
`;

describe('no zombies of the runtime under a subreaper that never reaps (root)', { skip: NEEDS_ROOT }, () => {
  const t = suiteEngine('dir');

  test('run -d, exec, exec -d, a health check, stop, start and rm leave no zombie but the monitors', () => {
    const cli = [process.execPath, path.join(REPO, 'bin', 'tsfig.js')];
    const commands = [
      [...cli, 'container', 'run', '-d', '--name', 'z1', '--health-cmd', 'true', '--health-interval', '1s'],
      [...cli, 'container', 'exec', 'z1', 'true'],
      // one ends while the container runs, one is killed with it
      [...cli, 'container', 'exec', '-d', 'z1', 'sleep', '0.2'],
      [...cli, 'container', 'exec', '-d', 'z1', 'sleep', '600'],
      [...cli, 'container', 'exec', 'z1', 'sleep', '0.5'],
      [...cli, 'container', 'stop', '-t', '1', 'z1'],
      [...cli, 'container', 'start', 'z1'],
      [...cli, 'container', 'rm', '-f', 'z1'],
    ];
    commands[0]?.push('tsfig/busybox', 'sleep', '600');
    const out = execFileSync('python3', ['-c', SUBREAPER, t.engine.paths.root, JSON.stringify(commands)], {
      env: t.env,
      encoding: 'utf8',
      timeout: 180_000,
    });
    const result = JSON.parse(out) as { codes: number[]; zombies: string[]; monitors: number };
    assert.deepEqual(
      result.codes,
      commands.map(() => 0),
      'every command succeeded',
    );
    assert.ok(result.monitors >= 2, 'the monitors were seen (and are allowed)');
    assert.deepEqual(result.zombies, [], 'zombies of tsfig left to the subreaper');
  });
});
