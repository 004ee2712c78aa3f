/**
 * runtime.conf: the data the native runtime reads before starting a container (native/PROTOCOL.md).
 * One `key value` per line; values escape backslash, newline and tab. Repeated keys keep their order.
 */
export type ConfEntry = readonly [key: string, value: string | number | boolean];

export function escapeConfValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\t/g, '\\t');
}

const KEY = /^[a-z0-9_.]+$/;

export function renderRuntimeConf(entries: readonly ConfEntry[]): string {
  const lines = ['version 1'];
  for (const [key, value] of entries) {
    if (!KEY.test(key)) throw new Error(`invalid runtime.conf key ${JSON.stringify(key)}`);
    const text = typeof value === 'boolean' ? (value ? '1' : '0') : String(value);
    if (text.includes('\0')) throw new Error(`runtime.conf value of ${key} contains a NUL byte`);
    lines.push(`${key} ${escapeConfValue(text)}`);
  }
  return `${lines.join('\n')}\n`;
}
