import { AppError } from "../../lib/errors.ts";

/** Longer URLs are not endpoints anyone configures by hand; the bound keeps rows and logs small. */
export const MAX_ENDPOINT_URL_CHARS = 2048;

/** IPv4 ranges no webhook may reach on a public install (RFC 6890 special-purpose and friends): [base, prefix]. */
const BLOCKED_V4: readonly (readonly [string, number])[] = [
  ["0.0.0.0", 8], // "this network"
  ["10.0.0.0", 8], // private
  ["100.64.0.0", 10], // carrier-grade NAT
  ["127.0.0.0", 8], // loopback
  ["169.254.0.0", 16], // link-local, cloud metadata (169.254.169.254)
  ["172.16.0.0", 12], // private
  ["192.0.0.0", 24], // IETF protocol assignments
  ["192.0.2.0", 24], // documentation
  ["192.88.99.0", 24], // 6to4 relay anycast
  ["192.168.0.0", 16], // private
  ["198.18.0.0", 15], // benchmarking
  ["198.51.100.0", 24], // documentation
  ["203.0.113.0", 24], // documentation
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, broadcast
];

/** Parse dotted-quad IPv4 to a 32-bit number; undefined when it is not one. */
function parseV4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) {
    return undefined;
  }
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) {
      return undefined;
    }
    value = value * 256 + Number(part);
  }
  return value;
}

const BLOCKED_V4_RANGES = BLOCKED_V4.map(([base, prefix]) => {
  const start = parseV4(base) ?? 0;
  return { start, end: start + 2 ** (32 - prefix) - 1 };
});

function v4Blocked(value: number): boolean {
  return BLOCKED_V4_RANGES.some((r) => value >= r.start && value <= r.end);
}

/** Parse IPv6 text (`::` compression and a trailing dotted IPv4 allowed) to 8 hextets. */
function parseV6(text: string): number[] | undefined {
  const zone = text.indexOf("%");
  let input = zone >= 0 ? text.slice(0, zone) : text;
  let tail: number[] = [];
  const lastColon = input.lastIndexOf(":");
  if (input.slice(lastColon + 1).includes(".")) {
    const v4 = parseV4(input.slice(lastColon + 1));
    if (v4 === undefined) {
      return undefined;
    }
    tail = [Math.floor(v4 / 65536), v4 % 65536];
    input = input.slice(0, lastColon + 1);
    if (!input.endsWith("::")) {
      input = input.slice(0, -1);
    }
  }
  const halves = input.split("::");
  if (halves.length > 2) {
    return undefined;
  }
  const parse = (part: string): number[] | undefined => {
    if (part === "") {
      return [];
    }
    const out: number[] = [];
    for (const h of part.split(":")) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(h)) {
        return undefined;
      }
      out.push(Number.parseInt(h, 16));
    }
    return out;
  };
  const head = parse(halves[0] ?? "");
  const rest = halves.length === 2 ? parse(halves[1] ?? "") : [];
  if (head === undefined || rest === undefined) {
    return undefined;
  }
  const explicit = head.length + rest.length + tail.length;
  if (halves.length === 1) {
    return explicit === 8 ? [...head, ...tail] : undefined;
  }
  if (explicit > 7) {
    return undefined;
  }
  return [...head, ...new Array<number>(8 - explicit).fill(0), ...rest, ...tail];
}

function v6Blocked(h: readonly number[]): boolean {
  const [a = 0, b = 0, c = 0, d = 0, e = 0, f = 0, g = 0, last = 0] = h;
  const firstSixZero = a === 0 && b === 0 && c === 0 && d === 0 && e === 0;
  if (firstSixZero && f === 0 && g === 0 && (last === 0 || last === 1)) {
    return true; // unspecified, loopback
  }
  if (firstSixZero && f === 0xffff) {
    return v4Blocked(g * 65536 + last); // IPv4-mapped: judged as the IPv4 address it is
  }
  if (a === 0x64 && b === 0xff9b && c === 0 && d === 0 && e === 0 && f === 0) {
    return v4Blocked(g * 65536 + last); // NAT64: reaches the embedded IPv4 address
  }
  if (firstSixZero && f === 0) {
    return true; // IPv4-compatible (deprecated)
  }
  if ((a & 0xfe00) === 0xfc00) return true; // unique local fc00::/7 (incl. fd00:ec2::254 metadata)
  if ((a & 0xffc0) === 0xfe80) return true; // link-local fe80::/10
  if ((a & 0xffc0) === 0xfec0) return true; // site-local fec0::/10 (deprecated)
  if ((a & 0xff00) === 0xff00) return true; // multicast
  if (a === 0x2001 && b === 0x0db8) return true; // documentation
  if (a === 0x0100 && b === 0 && c === 0 && d === 0) return true; // discard-only 100::/64
  if (a === 0x2002) return v4Blocked(b * 65536 + c); // 6to4: reaches the embedded IPv4 address
  return false;
}

/**
 * True when `address` (an IP literal, IPv6 with or without brackets) is loopback, private, link-local,
 * unique-local, a cloud metadata address or otherwise not a public unicast address; false for a public
 * address; undefined when it is not an IP literal at all (a hostname).
 */
export function isNonPublicAddress(address: string): boolean | undefined {
  const bare = address.startsWith("[") && address.endsWith("]") ? address.slice(1, -1) : address;
  const v4 = parseV4(bare);
  if (v4 !== undefined) {
    return v4Blocked(v4);
  }
  if (!bare.includes(":")) {
    return undefined;
  }
  const v6 = parseV6(bare);
  return v6 === undefined ? undefined : v6Blocked(v6);
}

/** Hostnames that name this machine without resolving anywhere public (RFC 6761 `localhost`). */
export function isLocalHostname(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/\.$/, "");
  return h === "localhost" || h.endsWith(".localhost");
}

function invalidUrl(message: string, field: string): AppError {
  return new AppError("validation_failed", `${field} ${message}`, { errors: [{ path: field, message }] });
}

/**
 * An endpoint URL as stored: an absolute http(s) URL of at most 2048 characters without credentials; unless
 * `allowPrivate`, https only and not an IP literal outside the public unicast space nor `localhost`. A
 * hostname that resolves to such an address is refused at connect time (the sender checks every address it
 * connects to), so DNS changed after this check cannot bypass it. Answers the URL in its normalised form.
 * `field` names the input in the error (`url` unless given: integrations check `prometheus.endpoint`).
 */
export function checkEndpointUrl(raw: string, options: { allowPrivate: boolean; field?: string }): string {
  const field = options.field ?? "url";
  if (raw.length > MAX_ENDPOINT_URL_CHARS) {
    throw invalidUrl(`must be at most ${MAX_ENDPOINT_URL_CHARS} characters`, field);
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalidUrl("must be an absolute URL", field);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw invalidUrl("must be an http:// or https:// URL", field);
  }
  if (url.username !== "" || url.password !== "") {
    throw invalidUrl("must not contain credentials", field);
  }
  if (url.hostname === "") {
    throw invalidUrl("must name a host", field);
  }
  if (!options.allowPrivate) {
    if (url.protocol !== "https:") {
      throw invalidUrl("must be an https:// URL", field);
    }
    if (isLocalHostname(url.hostname) || isNonPublicAddress(url.hostname) === true) {
      throw invalidUrl("must not point to a private, loopback, link-local or metadata address", field);
    }
  }
  const normalised = url.toString();
  if (normalised.length > MAX_ENDPOINT_URL_CHARS) {
    throw invalidUrl(`must be at most ${MAX_ENDPOINT_URL_CHARS} characters`, field);
  }
  return normalised;
}
