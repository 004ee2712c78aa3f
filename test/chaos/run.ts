/**
 * `npm run chaos -- --cycles N --kills M [--services S] [--seed X]`: the soak/chaos run of soak.ts with a report;
 * exits 1 when a count is not 0. Needs root (real containers). The long soak of docs/reliability.md is
 * `npm run chaos -- --cycles 200 --kills 50`.
 */
import { parseArgs } from 'node:util';
import { runChaos } from './soak.js';

const { values } = parseArgs({
  options: {
    cycles: { type: 'string', default: '20' },
    kills: { type: 'string', default: '5' },
    services: { type: 'string', default: '4' },
    seed: { type: 'string' },
  },
});
const count = (name: string, value: string | undefined): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) {
    process.stderr.write(`error: --${name} must be a whole number, not ${JSON.stringify(value)}\n`);
    process.exit(64);
  }
  return n;
};
const result = await runChaos({
  cycles: count('cycles', values.cycles),
  kills: count('kills', values.kills),
  services: count('services', values.services),
  ...(values.seed !== undefined ? { seed: count('seed', values.seed) } : {}),
  log: (line) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`),
});
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
const bad = result.convergenceFailures.length + result.leftovers.length + result.dataLost.length;
process.stdout.write(
  `chaos: ${result.cycles} cycles, kills ${JSON.stringify(result.kills)}, seed ${result.seed}, ${result.seconds} s: ` +
    `${result.convergenceFailures.length} convergence failures, ${result.leftovers.length} leftovers, ` +
    `${result.dataLost.length} data lost\n`,
);
process.exit(bad === 0 ? 0 : 1);
