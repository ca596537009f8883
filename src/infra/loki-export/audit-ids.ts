/*
 * Audit event ids are TypeIDs over UUIDv7 (src/lib/ids.ts): after `aud_`, the first 10 of the 26 base32
 * characters are exactly the two zero bits and the 48-bit Unix milliseconds of the id's minting. So ids can be
 * turned into times and times into id bounds, and the exporter reads audit events by time ranges on the
 * primary key alone.
 */

const BASE32 = "0123456789abcdefghjkmnpqrstvwxyz";
const PREFIX = "aud_";
/** Characters of the suffix holding the milliseconds. */
const MS_CHARS = 10;
/** The rest of the suffix: the version nibble makes every real id's rest greater than this. */
const ZERO_REST = "0".repeat(26 - MS_CHARS);

/** The Unix milliseconds an audit id was minted at; NaN when it is not one. */
export function auditIdMs(id: string): number {
  if (!id.startsWith(PREFIX) || id.length !== PREFIX.length + 26) {
    return Number.NaN;
  }
  let ms = 0;
  for (let i = 0; i < MS_CHARS; i++) {
    const digit = BASE32.indexOf(id.charAt(PREFIX.length + i));
    if (digit < 0) {
      return Number.NaN;
    }
    // 50 bits at most: exact in a double.
    ms = ms * 32 + digit;
  }
  return ms;
}

/**
 * The id just below every id minted at `ms` and above every id minted before: `id > auditIdFloor(t)` holds
 * exactly for ids minted at `t` or later, `id < auditIdFloor(t)` for those minted before. (No real id equals
 * it: its version nibble is 7.)
 */
export function auditIdFloor(ms: number): string {
  let value = Math.max(0, Math.floor(ms));
  let chars = "";
  for (let i = 0; i < MS_CHARS; i++) {
    chars = (BASE32[value % 32] as string) + chars;
    value = Math.floor(value / 32);
  }
  return `${PREFIX}${chars}${ZERO_REST}`;
}
