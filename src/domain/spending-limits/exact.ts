import { DECIMAL_PATTERN } from "../../lib/decimal.ts";

/**
 * Exact decimal arithmetic for spending figures: a decimal string with up to 18 fractional digits is a
 * bigint of 10^-18 units, so comparisons and percentages never touch floating point.
 */
const SCALE = 18;
const ONE = 10n ** BigInt(SCALE);

/** A non-negative decimal string (`12.5`, `0`, `100.000000`) as a bigint of 10^-18 units. */
export function toUnits(value: string): bigint {
  if (!DECIMAL_PATTERN.test(value)) {
    throw new RangeError(`not an exact non-negative decimal: '${value}'`);
  }
  const [int = "0", frac = ""] = value.split(".");
  return BigInt(int) * ONE + BigInt(frac.padEnd(SCALE, "0"));
}

/** A possibly negative decimal string (a balance in overdraft) as 10^-18 units. */
export function toSignedUnits(value: string): bigint {
  return value.startsWith("-") ? -toUnits(value.slice(1)) : toUnits(value);
}

/** 10^-18 units back to the shortest decimal string (`100`, `12.5`, `-3`). */
export function fromUnits(units: bigint): string {
  const negative = units < 0n;
  const abs = negative ? -units : units;
  const int = abs / ONE;
  const frac = (abs % ONE).toString().padStart(SCALE, "0").replace(/0+$/, "");
  return `${negative ? "-" : ""}${int}${frac.length > 0 ? `.${frac}` : ""}`;
}

/** The canonical spelling of a decimal string (PostgreSQL numeric(36,18) pads with zeros). */
export function canonicalDecimal(value: string): string {
  return fromUnits(toSignedUnits(value));
}

/** `used` as a whole percentage of `base` (rounded down); base must be positive. */
export function percentOf(used: bigint, base: bigint): bigint {
  return (used * 100n) / base;
}

/** `1234567.5` → `1,234,567.5`: figures in emails. */
export function formatDecimal(value: string): string {
  const canonical = canonicalDecimal(value);
  const negative = canonical.startsWith("-");
  const [int = "0", frac] = (negative ? canonical.slice(1) : canonical).split(".");
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${negative ? "-" : ""}${grouped}${frac === undefined ? "" : `.${frac}`}`;
}
