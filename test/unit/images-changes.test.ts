import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { applyChanges, splitWords } from '../../engine/images/changes.js';
import type { ContainerConfig } from '../../engine/images/types.js';

function config(...changes: string[]): ContainerConfig {
  return applyChanges({}, changes);
}

describe('image import --change', () => {
  test('CMD and ENTRYPOINT take the JSON (exec) form or the shell form', () => {
    assert.deepEqual(config('CMD ["/bin/sh", "-c", "echo hi"]').Cmd, ['/bin/sh', '-c', 'echo hi']);
    assert.deepEqual(config('CMD echo "$HOME" && ls').Cmd, ['/bin/sh', '-c', 'echo "$HOME" && ls']);
    assert.deepEqual(config('ENTRYPOINT ["/app"]').Entrypoint, ['/app']);
    assert.deepEqual(config('entrypoint /app --flag').Entrypoint, ['/bin/sh', '-c', '/app --flag']);
    assert.deepEqual(config('CMD [not json').Cmd, ['/bin/sh', '-c', '[not json']);
  });

  test('ENTRYPOINT resets a CMD set earlier in another change set, not one in the same batch', () => {
    const base: ContainerConfig = { Cmd: ['old'] };
    assert.equal(applyChanges(base, ['ENTRYPOINT ["/x"]']).Cmd, undefined);
    assert.deepEqual(config('CMD ["a"]', 'ENTRYPOINT ["/x"]').Cmd, ['a']);
  });

  test('ENV accepts several pairs with quotes, the legacy form, and expands earlier variables', () => {
    const env = config('ENV A=1 B="two words" C=\'$A\'', 'ENV D=${A}x E=$B', 'ENV LEGACY some value here').Env;
    assert.deepEqual(env, ['A=1', 'B=two words', 'C=$A', 'D=1x', 'E=two words', 'LEGACY=some value here']);
    assert.deepEqual(config('ENV A=1', 'ENV A=2').Env, ['A=2']);
    assert.deepEqual(config('ENV A "x  y" $HOME', 'ENV HOME=/h', 'ENV B $HOME/b').Env, [
      'A=x  y ',
      'HOME=/h',
      'B=/h/b',
    ]);
    assert.deepEqual(config('ENV X=${MISSING:-dflt}', 'ENV Y=${X:+set}').Env, ['X=dflt', 'Y=set']);
    // As Docker: one instruction sees the variables as they were before it.
    assert.deepEqual(config('ENV abc=hello', 'ENV abc=bye def=$abc').Env, ['abc=bye', 'def=hello']);
  });

  test('LABEL, EXPOSE, VOLUME, USER, WORKDIR and STOPSIGNAL', () => {
    const result = config(
      'LABEL a=b "c d"="e f"',
      'EXPOSE 80 53/udp 8000-8002/tcp',
      'VOLUME ["/data", "/logs"]',
      'VOLUME /cache',
      'USER nobody:nogroup',
      'WORKDIR /app',
      'WORKDIR sub',
      'STOPSIGNAL SIGINT',
    );
    assert.deepEqual(result.Labels, { a: 'b', 'c d': 'e f' });
    assert.deepEqual(Object.keys(result.ExposedPorts ?? {}), ['80/tcp', '53/udp', '8000/tcp', '8001/tcp', '8002/tcp']);
    assert.deepEqual(Object.keys(result.Volumes ?? {}), ['/data', '/logs', '/cache']);
    assert.equal(result.User, 'nobody:nogroup');
    assert.equal(result.WorkingDir, '/app/sub');
    assert.equal(result.StopSignal, 'SIGINT');
  });

  test('unsupported or malformed instructions are refused with the instruction named', () => {
    assert.throws(() => config('RUN echo hi'), /RUN is not supported by import/);
    assert.throws(() => config('ONBUILD RUN x'), /ONBUILD is not supported/);
    assert.throws(() => config('EXPOSE http'), /"http" is not PORT/);
    assert.throws(() => config('EXPOSE 70000'), /out of 1-65535/);
    assert.throws(() => config('ENV'), /ENV needs an argument/);
    assert.throws(() => config('ENV A="unterminated'), /unterminated double quote/);
    assert.throws(() => config('STOPSIGNAL ter m'), /not a signal/);
    assert.throws(() => config('"CMD" x'), /does not start with an instruction/);
  });

  test('words split like the Dockerfile lexer', () => {
    assert.deepEqual(splitWords(`a 'b c' "d \\"e\\"" f\\ g`, 'x'), ['a', 'b c', 'd "e"', 'f g']);
    assert.deepEqual(splitWords('$A "$A" \'$A\' \\$A', 'x', new Map([['A', 'v']])), ['v', 'v', '$A', '$A']);
  });
});
