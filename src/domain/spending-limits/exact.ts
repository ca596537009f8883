import { normalizeDecimal } from "../../lib/decimal.ts";

/** `used` as a whole percentage of `base` (rounded down); base must be positive. Both in 10^-18 units. */
export function percentOf(used: bigint, base: bigint): bigint {
  return (used * 100n) / base;
}

/** `1234567.5` → `1,234,567.5`: figures in emails. */
export function formatDecimal(value: string): string {
  const canonical = normalizeDecimal(value);
  const negative = canonical.startsWith("-");
  const [int = "0", frac] = (negative ? canonical.slice(1) : canonical).split(".");
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${negative ? "-" : ""}${grouped}${frac === undefined ? "" : `.${frac}`}`;
}
