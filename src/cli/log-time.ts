import { TsfigError } from '../errors.js';

const DURATION_UNITS: Readonly<Record<string, bigint>> = {
  ns: 1n,
  us: 1000n,
  µs: 1000n,
  μs: 1000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};
const DURATION = /^([+-]?)((?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?)?(Z|[+-]\d{2}:\d{2})?$/i;

/** Nanoseconds of a Go duration (`1h30m`, `2s`, `1.5m`, `300ms`), or undefined when value is not one. */
function durationNs(value: string): bigint | undefined {
  const match = DURATION.exec(value);
  if (match === null) return undefined;
  let total = 0n;
  for (const part of (match[2] ?? '').matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) {
    const [whole = '0', fraction = ''] = (part[1] ?? '0').split('.');
    const unit = DURATION_UNITS[part[2] ?? 's'] ?? 1n;
    const digits = fraction.slice(0, 18);
    total +=
      BigInt(whole === '' ? '0' : whole) * unit +
      (BigInt(digits === '' ? '0' : digits) * unit) / 10n ** BigInt(digits.length);
  }
  return match[1] === '-' ? -total : total;
}

/** `2026-01-02T03:04:05.000000006Z`: the monitor's log time format (UTC, nanoseconds), which compares as a string. */
function formatNs(ns: bigint): string {
  const seconds = ns / 1_000_000_000n - (ns < 0n && ns % 1_000_000_000n !== 0n ? 1n : 0n);
  const nanos = ns - seconds * 1_000_000_000n;
  return `${new Date(Number(seconds) * 1000).toISOString().slice(0, 19)}.${String(nanos).padStart(9, '0')}Z`;
}

/**
 * A `--since`/`--until` value as docker and compose accept it (docker's GetTimestamp): a duration before now (`2s`,
 * `10m`, `1h30m`), a Unix time (`1700000000`, `1700000000.5`), or an RFC3339-like date (`2026-01-02`,
 * `2026-01-02T15:04`, `2026-01-02T15:04:05.123+01:00`; without a zone it is local time). Returned in the log's own
 * time format; anything else is a usage error naming the flag.
 */
export function parseLogTime(value: string, flag: string, now: Date = new Date()): string {
  const nowNs = BigInt(now.getTime()) * 1_000_000n;
  const duration = value === '0' ? undefined : durationNs(value);
  if (duration !== undefined) return formatNs(nowNs - duration);
  const unix = /^(\d+)(?:\.(\d{1,9}))?$/.exec(value);
  if (unix !== null) return formatNs(BigInt(unix[1] ?? '0') * 1_000_000_000n + BigInt((unix[2] ?? '').padEnd(9, '0')));
  const date = DATE.exec(value);
  if (date !== null) {
    const [, year, month, day, hour = '00', minute = '00', second = '00', fraction = '', zone] = date;
    const fields = [
      Number(year),
      Number(month) - 1,
      Number(day),
      Number(hour),
      Number(minute),
      Number(second),
    ] as const;
    let ms: number;
    if (zone === undefined) ms = new Date(...fields).getTime();
    else {
      ms = Date.UTC(...fields);
      if (zone.toUpperCase() !== 'Z') {
        const sign = zone.startsWith('-') ? -1 : 1;
        ms -= sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6))) * 60_000;
      }
    }
    // Date rolls 2026-02-30 or 25:00 over: a field that does not come back unchanged is not a date.
    const back = new Date(Date.UTC(...fields));
    const same = [
      back.getUTCFullYear(),
      back.getUTCMonth(),
      back.getUTCDate(),
      back.getUTCHours(),
      back.getUTCMinutes(),
      back.getUTCSeconds(),
    ].every((field, index) => field === fields[index]);
    if (same && !Number.isNaN(ms)) return formatNs(BigInt(ms) * 1_000_000n + BigInt(fraction.padEnd(9, '0')));
  }
  throw new TsfigError('usage', `${flag} ${value}: not a time or a duration`, {
    hint: 'use a duration before now (2s, 10m, 1h30m), a Unix time, or an RFC3339 date (2026-01-02T15:04:05Z)',
  });
}
