import { hash, randomBytes } from "node:crypto";

/**
 * Key format: `<prefix>_<live|test>_<random><checksum>`.
 * - random: 32 base62 characters from the CSPRNG (~190 bits).
 * - checksum: 6 base62 characters of SHA-256 over everything before it, so a mistyped or truncated
 *   key is refused without a database read.
 * Only SHA-256 of the whole key is stored.
 */
export type KeyEnvironment = "live" | "test";

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const RANDOM_LENGTH = 32;
const CHECKSUM_LENGTH = 6;
const KEY_PATTERN = /^([a-z][a-z0-9]{0,15})_(live|test)_([0-9A-Za-z]{38})$/;

export const KEY_PREFIX_PATTERN = /^[a-z][a-z0-9]{0,15}$/;

function base62(bytes: Uint8Array, length: number): string {
  let out = "";
  for (const byte of bytes) {
    // 248 = 62 * 4: rejecting bytes at or above it keeps every character equally likely.
    if (byte < 248) {
      out += ALPHABET[byte % 62];
      if (out.length === length) {
        return out;
      }
    }
  }
  return out;
}

function randomBase62(length: number): string {
  let out = "";
  while (out.length < length) {
    out += base62(randomBytes(length * 2), length - out.length);
  }
  return out;
}

function checksum(body: string): string {
  const digest = hash("sha256", body, "buffer");
  let n = digest.readUInt32BE(0) * 2 ** 16 + digest.readUInt16BE(4);
  let out = "";
  for (let i = 0; i < CHECKSUM_LENGTH; i++) {
    out = ALPHABET[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}

export function generateKey(prefix: string, environment: KeyEnvironment): string {
  const body = `${prefix}_${environment}_${randomBase62(RANDOM_LENGTH)}`;
  return body + checksum(body);
}

export type ParsedKey = { prefix: string; environment: KeyEnvironment };

/** Parse a presented key; undefined when it is not a well-formed key with a valid checksum. */
export function parseKey(key: string): ParsedKey | undefined {
  if (key.length > 64) {
    return undefined;
  }
  const match = KEY_PATTERN.exec(key);
  if (!match) {
    return undefined;
  }
  const [, prefix, environment] = match;
  const body = key.slice(0, key.length - CHECKSUM_LENGTH);
  if (prefix === undefined || (environment !== "live" && environment !== "test")) {
    return undefined;
  }
  return checksum(body) === key.slice(-CHECKSUM_LENGTH) ? { prefix, environment } : undefined;
}

/** What may be shown of a key after creation: enough to recognise it, never enough to use it. */
export function keyDisplay(key: string): { keyPrefix: string; lastFour: string } {
  const envEnd = key.indexOf("_", key.indexOf("_") + 1) + 1;
  return { keyPrefix: key.slice(0, envEnd + 4), lastFour: key.slice(-4) };
}
