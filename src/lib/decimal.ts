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

/**
 * Signed exact arithmetic for credit amounts: a decimal string is held as a bigint of 10^-18 units
 * ("units"), so sums and differences of amounts with at most 18 fraction digits are exact.
 */
const SCALE_DIGITS = 18;
const SCALE = 10n ** 18n;
/** A signed decimal as PostgreSQL numeric renders it ("-12.500000000000000000") or a client sends it. */
const SIGNED_DECIMAL = /^-?[0-9]+(\.[0-9]+)?$/;
const SIGNED_INTEGER = /^-?[0-9]+$/;

/** The decimal string (signed, up to 18 fraction digits) as a bigint of 10^-18 units. */
export function toUnits(value: string): bigint {
  // Most amounts read back from rollups are whole numbers (and many are zero): no fraction to scale.
  if (value === "0") {
    return 0n;
  }
  if (SIGNED_INTEGER.test(value)) {
    return BigInt(value) * SCALE;
  }
  if (!SIGNED_DECIMAL.test(value)) {
    throw new RangeError(`not a decimal: ${value}`);
  }
  const negative = value.startsWith("-");
  const [int = "0", frac = ""] = (negative ? value.slice(1) : value).split(".");
  if (frac.length > SCALE_DIGITS && /[1-9]/.test(frac.slice(SCALE_DIGITS))) {
    throw new RangeError(`more than ${SCALE_DIGITS} fraction digits: ${value}`);
  }
  const units = BigInt(int) * SCALE + BigInt(frac.slice(0, SCALE_DIGITS).padEnd(SCALE_DIGITS, "0"));
  return negative ? -units : units;
}

/** Units back to the shortest decimal string: "12.5", "100", "-0.25". */
export function fromUnits(units: bigint): string {
  const negative = units < 0n;
  const abs = negative ? -units : units;
  const int = abs / SCALE;
  const frac = (abs % SCALE).toString().padStart(SCALE_DIGITS, "0").replace(/0+$/, "");
  const text = frac === "" ? int.toString() : `${int}.${frac}`;
  return negative ? `-${text}` : text;
}

/** The canonical form of a decimal string (trailing zeros trimmed, "-0" → "0"). */
export function normalizeDecimal(value: string): string {
  return fromUnits(toUnits(value));
}

export function addDecimal(a: string, b: string): string {
  return fromUnits(toUnits(a) + toUnits(b));
}

export function subDecimal(a: string, b: string): string {
  return fromUnits(toUnits(a) - toUnits(b));
}

export function negateDecimal(a: string): string {
  return fromUnits(-toUnits(a));
}

/** Sum of any number of decimal strings; "0" for none. */
export function sumDecimal(values: readonly string[]): string {
  return fromUnits(values.reduce((total, v) => total + toUnits(v), 0n));
}

/** Signed comparison: -1, 0 or 1 as `a` is less than, equal to or greater than `b`. */
export function compareSigned(a: string, b: string): -1 | 0 | 1 {
  const x = toUnits(a);
  const y = toUnits(b);
  return x === y ? 0 : x < y ? -1 : 1;
}

/** `a / b` truncated toward zero to `digits` fraction digits (≤ 18); `b` must not be zero. */
export function divideDecimal(a: string, b: string, digits = SCALE_DIGITS): string {
  const divisor = toUnits(b);
  if (divisor === 0n) {
    throw new RangeError("division by zero");
  }
  const quotient = (toUnits(a) * SCALE) / divisor;
  const step = 10n ** BigInt(SCALE_DIGITS - Math.min(Math.max(digits, 0), SCALE_DIGITS));
  return fromUnits((quotient / step) * step);
}

/** `a × n` for an integer n. */
export function multiplyDecimal(a: string, n: number): string {
  return fromUnits(toUnits(a) * BigInt(n));
}

/**
 * `a × b` of two decimal strings, to 18 fraction digits: `up` rounds away from zero (a charge never
 * loses its last fraction), `half_up` to the nearest.
 */
export function multiplyDecimals(a: string, b: string, rounding: "up" | "half_up" = "half_up"): string {
  const product = toUnits(a) * toUnits(b);
  const negative = product < 0n;
  const abs = negative ? -product : product;
  let units = abs / SCALE;
  const rest = abs % SCALE;
  if (rest !== 0n && (rounding === "up" || rest * 2n >= SCALE)) {
    units += 1n;
  }
  return fromUnits(negative ? -units : units);
}

/**
 * A finite non-negative JSON number as an exact decimal string with at most 18 fraction digits (what
 * the number prints as, without an exponent); undefined when it cannot be one.
 */
export function decimalOfNumber(n: number): string | undefined {
  if (!Number.isFinite(n) || n < 0) {
    return undefined;
  }
  if (Number.isInteger(n)) {
    return n <= Number.MAX_SAFE_INTEGER ? String(n) : BigInt(n).toString();
  }
  const text = String(n);
  if (!text.includes("e") && (text.split(".")[1] ?? "").length <= SCALE_DIGITS) {
    return text;
  }
  // Tiny or long fractions: rounded to 18 digits (toFixed is exact for |n| < 1e21).
  const fixed = n.toFixed(SCALE_DIGITS).replace(/0+$/, "").replace(/\.$/, "");
  return fixed;
}
