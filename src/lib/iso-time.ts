/** The last second formatted, as `YYYY-MM-DDTHH:MM:SS.`: the instants of one answer batch share it. */
let cachedSecond = Number.NaN;
let cachedPrefix = "";
/** The instants whose ISO form is `YYYY-MM-DDTHH:MM:SS.mmmZ` (years 0000 to 9999). */
const FOUR_DIGIT_YEARS_END_MS = 253_402_300_800_000;

/**
 * `date.toISOString()`, without formatting the whole date for each call: V8 formats an ISO string through
 * its C++ date printer, which cost the authorize hot path about 5 % of its time for the one `reset_at`
 * of each answer. The part down to the second is kept for the last second asked; only the milliseconds
 * are written per call. Anything outside four-digit years, or an invalid date, goes to `toISOString`
 * itself (which throws for the invalid one). src/lib/iso-time.test.ts holds the two equal.
 */
export function isoString(date: Date): string {
  const ms = date.getTime();
  if (!(ms >= 0 && ms < FOUR_DIGIT_YEARS_END_MS)) {
    return date.toISOString();
  }
  const fraction = ms % 1000;
  const second = ms - fraction;
  if (second !== cachedSecond) {
    cachedPrefix = new Date(second).toISOString().slice(0, 20);
    cachedSecond = second;
  }
  return `${cachedPrefix}${fraction < 10 ? "00" : fraction < 100 ? "0" : ""}${fraction}Z`;
}
