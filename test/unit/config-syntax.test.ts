/** The scalar syntaxes of compose files: interpolation, dotenv, durations, sizes, ports, volumes, commands. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { didYouMean } from '../../src/config/diagnostics.js';
import { parseDotenv } from '../../src/config/dotenv.js';
import { interpolateString, InterpolationError } from '../../src/config/interpolate.js';
import {
  normalizeProjectName,
  parseBoolean,
  parseBytes,
  parseDuration,
  parsePortSpec,
  parseVolumeSpec,
  shellSplit,
  ValueError,
} from '../../src/config/values.js';

const env: Record<string, string> = { SET: 'v', EMPTY: '', B: 'b' };
const lookup = (name: string) => env[name];
const sub = (text: string) => interpolateString(text, lookup).value;

describe('interpolation', () => {
  const cases: [string, string][] = [
    ['$SET', 'v'],
    ['${SET}', 'v'],
    ['a${SET}b$SET.c', 'avbv.c'],
    ['${EMPTY:-d}', 'd'],
    ['${EMPTY-d}', ''],
    ['${UNSET-d}', 'd'],
    ['${UNSET:-d}', 'd'],
    ['${SET:+alt}', 'alt'],
    ['${EMPTY:+alt}', ''],
    ['${EMPTY+alt}', 'alt'],
    ['${UNSET+alt}', ''],
    ['${SET:?err}', 'v'],
    ['${EMPTY?err}', ''],
    ['${UNSET:-${B}}', 'b'],
    ['${UNSET:-${UNSET2:-${B}x}}', 'bx'],
    ['${UNSET:-a b:c}', 'a b:c'],
    ['$$SET', '$SET'],
    ['$${SET}', '${SET}'],
    ['cost: 5$$', 'cost: 5$'],
    ['no variables', 'no variables'],
  ];
  for (const [input, expected] of cases)
    test(`${input} → ${JSON.stringify(expected)}`, () => assert.equal(sub(input), expected));

  test('unset variables are reported and become empty', () => {
    assert.deepEqual(interpolateString('$UNSET-${UNSET}-${OTHER}', lookup), {
      value: '--',
      unset: ['UNSET', 'UNSET', 'OTHER'],
    });
  });

  test('required variables fail with their message', () => {
    assert.throws(() => sub('${UNSET:?please set it}'), /required variable UNSET is missing a value: please set it/);
    assert.throws(() => sub('${EMPTY:?x}'), InterpolationError);
    assert.throws(() => sub('${UNSET?}'), /required variable UNSET is missing a value$/);
  });

  test('malformed forms are errors', () => {
    for (const bad of ['${', '${}', '${1A}', '${A:x}', '${A']) {
      assert.throws(() => sub(bad), InterpolationError, bad);
    }
  });

  test('a "$" that starts no name, "{" or "$$" is kept as written (compose v2; 1.29 refused it)', () => {
    for (const literal of ['$', 'a $ b', 'echo "built at $(date)"', 'awk "{print $1}"', 'cost: 5$', '$-x']) {
      assert.equal(sub(literal), literal);
    }
    assert.equal(sub('$(echo $SET) $$ ${B}'), '$(echo v) $ b');
  });
});

describe('dotenv', () => {
  test('the project .env: the shell environment wins inside values over earlier lines (compose v2)', () => {
    const text = 'WHEREAMI=EnvFile\nIMAGE=default_env:${WHEREAMI}\nOTHER=${UNSET:-dflt}/${EARLIER}\nBARE\n';
    const shell: Record<string, string> = { WHEREAMI: 'shell', BARE: 'from-shell' };
    const earlier = (name: string) => (name === 'EARLIER' ? 'earlier-file' : undefined);
    const { values } = parseDotenv(text, earlier, { first: (name) => shell[name] });
    assert.equal(values.get('IMAGE'), 'default_env:shell');
    assert.equal(values.get('OTHER'), 'dflt/earlier-file');
    assert.equal(values.get('BARE'), 'from-shell');
    // without the shell, the file's own earlier line
    assert.equal(parseDotenv(text, earlier).values.get('IMAGE'), 'default_env:EnvFile');
  });

  test('reads compose dotenv syntax', () => {
    const text = [
      '# comment',
      '',
      'A=1',
      'export B = spaced ',
      "C='single $A'",
      'D="double\\n$A"',
      'E=unquoted # comment',
      'F=${A}-${MISSING:-x}',
      'G="multi',
      'line"',
      'H',
      'I=',
      'J:colon',
      'K=a#b',
    ].join('\n');
    const { values, problems } = parseDotenv(text, (name) => (name === 'H' ? 'from-shell' : undefined));
    assert.deepEqual(problems, []);
    assert.deepEqual(Object.fromEntries(values), {
      A: '1',
      B: 'spaced',
      C: 'single $A',
      D: 'double\n1',
      E: 'unquoted',
      F: '1-x',
      G: 'multi\nline',
      H: 'from-shell',
      I: '',
      J: 'colon',
      K: 'a#b',
    });
  });

  test('reports bad lines with their number', () => {
    const { problems } = parseDotenv('OK=1\nNOT OK=2\n"quoted"=3\nU="open', () => undefined);
    assert.deepEqual(
      problems.map((p) => p.line),
      [2, 3, 4],
    );
  });
});

describe('values', () => {
  test('durations in milliseconds', () => {
    assert.equal(parseDuration('1m30s'), 90_000);
    assert.equal(parseDuration('1.5s'), 1500);
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('1h'), 3_600_000);
    assert.equal(parseDuration('100us'), 0.1);
    assert.equal(parseDuration(10), 10_000);
    for (const bad of ['', '10 s', '1x', 's', '-1s']) assert.throws(() => parseDuration(bad), ValueError, bad);
  });

  test('sizes in bytes', () => {
    assert.equal(parseBytes('512m'), 512 * 1024 ** 2);
    assert.equal(parseBytes('1g'), 1024 ** 3);
    assert.equal(parseBytes('1GB'), 1024 ** 3);
    assert.equal(parseBytes('1.5k'), 1536);
    assert.equal(parseBytes('100'), 100);
    assert.equal(parseBytes(4096), 4096);
    for (const bad of ['1x', 'm', '1 gigabyte', '']) assert.throws(() => parseBytes(bad), ValueError, bad);
  });

  test('booleans, including interpolated strings', () => {
    assert.equal(parseBoolean('true'), true);
    assert.equal(parseBoolean('FALSE'), false);
    assert.equal(parseBoolean(true), true);
    assert.throws(() => parseBoolean('maybe'), ValueError);
  });

  test('ports', () => {
    assert.deepEqual(parsePortSpec(80), [{ target: 80, published: undefined, host_ip: undefined, protocol: 'tcp' }]);
    assert.deepEqual(parsePortSpec('127.0.0.1:8080:80/udp'), [
      { target: 80, published: '8080', host_ip: '127.0.0.1', protocol: 'udp' },
    ]);
    assert.deepEqual(parsePortSpec('[::1]:53:53'), [{ target: 53, published: '53', host_ip: '::1', protocol: 'tcp' }]);
    assert.deepEqual(
      parsePortSpec('9000-9001:80-81').map((p) => `${p.published}:${p.target}`),
      ['9000:80', '9001:81'],
    );
    assert.deepEqual(parsePortSpec('8000-8010:80'), [
      { target: 80, published: '8000-8010', host_ip: undefined, protocol: 'tcp' },
    ]);
    for (const bad of ['70000', '80/xyz', 'a:b', '1:2:3:4', '81-80', '9000-9002:80-81'])
      assert.throws(() => parsePortSpec(bad), ValueError, bad);
  });

  test('volumes', () => {
    assert.deepEqual(parseVolumeSpec('/data'), {
      type: 'volume',
      source: undefined,
      target: '/data',
      read_only: false,
      selinux: undefined,
      propagation: undefined,
      nocopy: false,
    });
    assert.equal(parseVolumeSpec('data:/data:ro').read_only, true);
    assert.equal(parseVolumeSpec('./src:/src').type, 'bind');
    assert.equal(parseVolumeSpec('~/x:/x').type, 'bind');
    assert.equal(parseVolumeSpec('/data:ro').target, '/data');
    assert.deepEqual(
      [parseVolumeSpec('/a:/b:z,rslave').selinux, parseVolumeSpec('/a:/b:z,rslave').propagation],
      ['z', 'rslave'],
    );
    for (const bad of ['a', 'x:y', '/a:/b:bad', '/a:/b:ro:extra', ':/b'])
      assert.throws(() => parseVolumeSpec(bad), ValueError, bad);
  });

  test('commands split like a shell', () => {
    assert.deepEqual(shellSplit(`sh -c 'echo "a b"' x\\ y "q\\"uote"`), ['sh', '-c', 'echo "a b"', 'x y', 'q"uote']);
    assert.deepEqual(shellSplit(''), []);
    assert.deepEqual(shellSplit(`a ''`), ['a', '']);
    assert.throws(() => shellSplit(`echo 'open`), ValueError);
  });

  test('project names derived from directories', () => {
    assert.equal(normalizeProjectName('My App.v2'), 'myappv2');
    assert.equal(normalizeProjectName('__x-Y'), 'x-y');
  });

  test('did-you-mean', () => {
    assert.equal(didYouMean('prots', ['ports', 'image']), 'ports');
    assert.equal(didYouMean('imgae', ['ports', 'image']), 'image');
    assert.equal(didYouMean('zzzzzz', ['ports', 'image']), undefined);
    assert.equal(didYouMean('db_pass', ['db_password', 'api']), 'db_password');
  });
});
