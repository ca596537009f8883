/** Exact decimal strings such as `12.50` (no sign, no exponent), compared without floating point. */
export const DECIMAL_PATTERN = /^(0|[1-9][0-9]{0,17})(\.[0-9]{1,18})?$/;

/** -1, 0 or 1 as `a` is less than, equal to or greater than `b`; both must match DECIMAL_PATTERN. */
export function compareDecimal(a: string, b: string): -1 | 0 | 1 {
  const [aInt = "", aFrac = ""] = a.split(".");
  const [bInt = "", bFrac = ""] = b.split(".");
  if (aInt.length !== bInt.length) {
    return aInt.length < bInt.length ? -1 : 1;
  }
  const width = Math.max(aFrac.length, bFrac.length);
  const x = aInt + aFrac.padEnd(width, "0");
  const y = bInt + bFrac.padEnd(width, "0");
  return x === y ? 0 : x < y ? -1 : 1;
}
