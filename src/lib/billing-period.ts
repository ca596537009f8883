/**
 * Billing periods anchored on a day of the month. Pure date math in UTC: a period that starts on the
 * anchor day ends on the same day one month (or year) later, clamped to the length of short months,
 * so an anchor of 31 gives Jan 31 → Feb 28 (29 in a leap year) → Mar 31.
 */

export type PeriodInterval = "month" | "year";

/** Days in a month; `month` is 0-based as in `Date.UTC`. */
export function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
}

/** The anchor day of a subscription that starts at `at`. */
export function anchorDayOf(at: Date): number {
  return at.getUTCDate();
}

/**
 * The end of the period that starts at `start`: `months` later on the anchor day, clamped to that
 * month's length, at the start's time of day.
 */
function addMonthsAnchored(start: Date, anchorDay: number, months: number): Date {
  const total = start.getUTCFullYear() * 12 + start.getUTCMonth() + months;
  const year = Math.floor(total / 12);
  const month = total - year * 12;
  const day = Math.min(anchorDay, daysInMonth(year, month));
  return new Date(
    Date.UTC(
      year,
      month,
      day,
      start.getUTCHours(),
      start.getUTCMinutes(),
      start.getUTCSeconds(),
      start.getUTCMilliseconds(),
    ),
  );
}

export function periodEnd(start: Date, anchorDay: number, interval: PeriodInterval): Date {
  if (!Number.isInteger(anchorDay) || anchorDay < 1 || anchorDay > 31) {
    throw new RangeError(`anchor day must be 1–31, got ${anchorDay}`);
  }
  return addMonthsAnchored(start, anchorDay, interval === "year" ? 12 : 1);
}

export type Period = { start: Date; end: Date };

/**
 * Roll a period forward until it contains `now` (start ≤ now < end). Returns the period unchanged when
 * it already does, and how many periods were skipped.
 */
export function rollPeriod(
  period: Period,
  anchorDay: number,
  interval: PeriodInterval,
  now: Date,
): Period & { rolled: number } {
  let { start, end } = period;
  let rolled = 0;
  while (end.getTime() <= now.getTime()) {
    start = end;
    end = periodEnd(start, anchorDay, interval);
    rolled += 1;
  }
  return { start, end, rolled };
}

export function addDays(at: Date, days: number): Date {
  return new Date(at.getTime() + days * 86_400_000);
}
