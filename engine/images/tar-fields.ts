/** Fields of a 512-byte tar header block: NUL-terminated strings and octal (or base-256) numbers. */

export function readString(block: Buffer, offset: number, length: number): string {
  const slice = block.subarray(offset, offset + length);
  const end = slice.indexOf(0);
  return slice.subarray(0, end < 0 ? length : end).toString('utf8');
}

/** An octal number field, or GNU base-256 when the high bit of the first byte is set; an empty field is 0. */
export function readNumber(block: Buffer, offset: number, length: number): number {
  const slice = block.subarray(offset, offset + length);
  if (((slice[0] ?? 0) & 0x80) !== 0) {
    let value = 0;
    for (let i = 1; i < slice.length; i++) value = value * 256 + (slice[i] ?? 0);
    return value;
  }
  const text = readString(block, offset, length).trim();
  if (text === '') return 0;
  const value = parseInt(text, 8);
  if (!Number.isFinite(value)) throw new Error('malformed tar header (a number field is not octal)');
  return value;
}
