import { createHmac, randomBytes } from "node:crypto";

/** Standard Webhooks' secret prefix: what its libraries strip before base64-decoding the key. */
const SECRET_PREFIX = "whsec_";
/** 256 bits: the size of an HMAC-SHA256 key (Standard Webhooks asks for 24 to 64 bytes). */
const SECRET_BYTES = 32;

/** A new signing secret: `whsec_` + base64 of 32 random bytes. */
export function newWebhookSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(SECRET_BYTES).toString("base64")}`;
}

/** The HMAC key a secret stands for: the base64 after the prefix, decoded. */
function secretKey(secret: string): Buffer {
  return Buffer.from(
    secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret,
    "base64",
  );
}

/**
 * One Standard Webhooks signature: `v1,` + base64 HMAC-SHA256 of `${id}.${timestamp}.${body}` keyed with the
 * decoded secret.
 */
export function signPayload(
  secret: string,
  messageId: string,
  timestampSeconds: number,
  body: string,
): string {
  const mac = createHmac("sha256", secretKey(secret))
    .update(`${messageId}.${timestampSeconds}.${body}`)
    .digest("base64");
  return `v1,${mac}`;
}

/**
 * The `webhook-signature` header: one signature per secret in force, space-separated. During a rotation's
 * overlap the previous secret signs too, so a receiver still holding it verifies the delivery.
 */
export function signatureHeader(
  secrets: readonly string[],
  messageId: string,
  timestampSeconds: number,
  body: string,
): string {
  return secrets.map((s) => signPayload(s, messageId, timestampSeconds, body)).join(" ");
}
