/**
 * Orders of strings without ICU. `String.prototype.localeCompare` loads ICU's collator on its first call, 8 to 20 ms
 * of a short command such as `ps` (issue 18), and its order depends on the locale data. Docker and compose sort names
 * with Go's `<` on strings (byte order), which compareText gives for the ASCII names they sort.
 */

/** Code-unit order: `B` before `a`, `a` before `ab`. */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** As compareText, but runs of digits compare as numbers: `eth2` before `eth10`, `10.0.0.9` before `10.0.0.10`. */
export function compareNatural(a: string, b: string): number {
  const left = a.match(/\d+|\D+/g) ?? [];
  const right = b.match(/\d+|\D+/g) ?? [];
  for (let i = 0; i < Math.min(left.length, right.length); i++) {
    const x = left[i] as string;
    const y = right[i] as string;
    if (x === y) continue;
    const digits = /^\d/.test(x) && /^\d/.test(y);
    if (digits) {
      const byValue = Number(x) - Number(y);
      if (byValue !== 0 && Number.isFinite(byValue)) return Math.sign(byValue);
      // equal values written differently (`01`, `1`): the shorter first, as ICU's numeric collation
      if (x.length !== y.length) return x.length - y.length < 0 ? -1 : 1;
    }
    return compareText(x, y);
  }
  return Math.sign(left.length - right.length);
}
