/** Byte sizes as docker prints them (go-units); src/cli/table.ts re-exports them for the CLI's tables. */
const DECIMAL_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
const BINARY_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** go-units' scaling: divide by base while it fits, print `precision` significant digits and the unit. */
function scaledSize(bytes: number, base: number, units: readonly string[], precision: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= base && unit < units.length - 1) {
    value /= base;
    unit++;
  }
  return `${Number(value.toPrecision(precision))}${units[unit] ?? ''}`;
}

/**
 * Docker's size format (go-units HumanSizeWithPrecision, decimal units): `4.26MB` with the default 3 significant
 * digits (image sizes); `12.29kB` with 4 (HumanSize: the space `prune` reclaims).
 */
export function humanSize(bytes: number, precision = 3): string {
  return scaledSize(bytes, 1000, DECIMAL_UNITS, precision);
}

/** go-units BytesSize (binary units, 4 significant digits), as docker stats prints memory: `1.52MiB`. */
export function bytesSize(bytes: number): string {
  return scaledSize(bytes, 1024, BINARY_UNITS, 4);
}
