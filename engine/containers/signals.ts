import { constants } from 'node:os';
import { EngineError } from '../errors.js';

/** Signal number from `SIGTERM`, `TERM`, `term` or `15`, as docker accepts them. */
export function signalNumber(value: string | number, flag = 'signal'): number {
  if (typeof value === 'number') return value;
  const text = value.trim();
  if (/^\d+$/.test(text)) {
    const number = Number(text);
    if (number >= 1 && number <= 64) return number;
  } else {
    const upper = text.toUpperCase();
    const name = (upper.startsWith('SIG') ? upper : `SIG${upper}`) as keyof typeof constants.signals;
    const number = constants.signals[name];
    if (number !== undefined) return number;
  }
  throw new EngineError('invalid', `${flag}: invalid signal "${value}"`, {
    hint: 'use a name like SIGTERM or a number',
  });
}
