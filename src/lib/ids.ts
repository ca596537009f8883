import { randomFillSync } from "node:crypto";
import { TypeID } from "typeid-js";

/** Every id prefix Orgplane mints. One generator, typed prefixes: `newId("org")` → `org_01h…`. */
export type IdPrefix =
  | "org"
  | "int"
  | "key"
  | "opk"
  | "aud"
  | "req"
  | "usr"
  | "prj"
  | "inv"
  | "msg"
  | "pln"
  | "sub"
  | "crg"
  | "crt"
  | "alr"
  | "evt"
  | "whe"
  | "whd";

/** TypeID's base32 (Crockford's, lower case). */
const BASE32 = "0123456789abcdefghjkmnpqrstvwxyz";
/** Random bytes are drawn from the CSPRNG in blocks: one call per 512 ids instead of one each. */
const POOL_BYTES = 4096;
const pool = Buffer.alloc(POOL_BYTES);
let poolOffset = POOL_BYTES;
const uuid = new Uint8Array(16);
/** The last id's millisecond and 12-bit sequence: ids minted in one millisecond still sort in order. */
let lastMs = 0;
let sequence = 0;

function randomBytes8(): number {
  if (poolOffset + 8 > POOL_BYTES) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const at = poolOffset;
  poolOffset += 8;
  return at;
}

/**
 * `<prefix>_<26 base32 characters>`: a UUIDv7 in TypeID's encoding — 48-bit Unix milliseconds, a 12-bit
 * sequence (RFC 9562 §6.2 method 1: random at each new millisecond, then counted up, so ids of one process
 * sort in creation order), 62 random bits. Written here rather than through typeid-js because a request id
 * is minted on every request, the hot path included; src/lib/ids.test.ts checks that typeid-js parses them.
 */
export function newId(prefix: IdPrefix): string {
  const now = Date.now();
  const at = randomBytes8();
  if (now > lastMs) {
    lastMs = now;
    // Random, below 2048: at least 2048 more ids fit in this millisecond before it must be borrowed.
    sequence = (((pool[at] as number) << 8) | (pool[at + 1] as number)) & 0x7ff;
  } else {
    sequence += 1;
    if (sequence > 0xfff) {
      // 4,096 ids in one millisecond (or a clock that stepped back): continue in the next one.
      lastMs += 1;
      sequence = 0;
    }
  }
  const ms = lastMs;
  // 48 bits of milliseconds, big-endian (2^48 ms is the year 10889).
  const high = Math.floor(ms / 2 ** 32);
  uuid[0] = (high >>> 8) & 0xff;
  uuid[1] = high & 0xff;
  uuid[2] = (ms >>> 24) & 0xff;
  uuid[3] = (ms >>> 16) & 0xff;
  uuid[4] = (ms >>> 8) & 0xff;
  uuid[5] = ms & 0xff;
  uuid[6] = 0x70 | (sequence >>> 8); // version 7, then the sequence's top 4 bits
  uuid[7] = sequence & 0xff;
  uuid[8] = 0x80 | ((pool[at + 2] as number) & 0x3f); // RFC 9562 variant
  for (let i = 9; i < 14; i++) {
    uuid[i] = pool[at + i - 6] as number;
  }
  const tail = randomBytes8();
  uuid[14] = pool[tail] as number;
  uuid[15] = pool[tail + 1] as number;
  // 26 characters of 5 bits over 130 bits: two zero bits, then the 128 of the UUID.
  let suffix = BASE32[(uuid[0] as number) >>> 5] as string;
  for (let i = 1; i < 26; i++) {
    const bit = i * 5 - 2;
    const byte = bit >>> 3;
    const window = ((uuid[byte] as number) << 8) | (uuid[byte + 1] ?? 0);
    suffix += BASE32[(window >>> (11 - (bit & 7))) & 31];
  }
  return `${prefix}_${suffix}`;
}

/**
 * True when `value` is a well-formed TypeID with the given prefix. Used to turn ids of the wrong
 * shape into a 404 before any database read.
 */
export function isId(prefix: IdPrefix, value: string): boolean {
  // A TypeID is the prefix, "_", and 26 base32 characters; anything longer cannot be one.
  if (value.length !== prefix.length + 27 || !value.startsWith(`${prefix}_`)) {
    return false;
  }
  try {
    return TypeID.fromString(value).getType() === prefix;
  } catch {
    return false;
  }
}
