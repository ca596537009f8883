import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { SecretSealer } from "../domain/integrations/integrations.types.ts";

/**
 * Secrets Orgplane must send somewhere (an organization's Prometheus and Loki tokens) are kept encrypted with
 * AES-256-GCM under ORGPLANE_SECRET_KEY: `<key-id>:<base64 of 32 bytes>`, several separated by commas, the
 * first encrypting and all decrypting (how a key is rotated, docs/integrations.md). A ciphertext names the key
 * that sealed it: `v1:<key-id>:<base64 iv>:<base64 ciphertext and tag>`.
 */

/** AES-256: a key of 32 bytes. */
const KEY_BYTES = 32;
/** The 96-bit nonce GCM is specified for (NIST SP 800-38D); random per seal, never reused with one key in practice. */
const IV_BYTES = 12;
/** GCM's full 128-bit tag: a shorter one weakens the forgery bound for nothing. */
const TAG_BYTES = 16;
const VERSION = "v1";
/** Key ids are short names an operator types (`k2026`, `prod-2`): no colon (the separator), nothing to escape. */
const KEY_ID_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;

export type SecretKey = { id: string; key: Buffer };

/** A malformed ORGPLANE_SECRET_KEY (or key file). The message never holds key material. */
export class SecretKeyError extends Error {
  override name = "SecretKeyError";
}

/** A ciphertext that does not open: malformed, sealed under an unknown key id, or altered (the GCM tag fails). */
export class SecretOpenError extends Error {
  override name = "SecretOpenError";
}

/**
 * Parse `<key-id>:<base64 of 32 bytes>[,…]`. Errors name the position and the problem, never the value, since
 * the value is the key.
 */
export function parseSecretKeys(text: string): SecretKey[] {
  const entries = text
    .split(",")
    .map((e) => e.trim())
    .filter((e) => e !== "");
  if (entries.length === 0) {
    throw new SecretKeyError("must hold at least one <key-id>:<base64 of 32 bytes>");
  }
  const keys: SecretKey[] = [];
  entries.forEach((entry, i) => {
    const position = entries.length === 1 ? "" : ` (entry ${i + 1})`;
    const colon = entry.indexOf(":");
    if (colon < 0) {
      throw new SecretKeyError(`must be <key-id>:<base64 of 32 bytes>${position}`);
    }
    const id = entry.slice(0, colon);
    const encoded = entry.slice(colon + 1);
    if (!KEY_ID_PATTERN.test(id)) {
      throw new SecretKeyError(`has a key id that is not 1–32 letters, digits, '-' or '_'${position}`);
    }
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) {
      throw new SecretKeyError(`has a key that is not base64${position}`);
    }
    const key = Buffer.from(encoded, "base64");
    if (key.length !== KEY_BYTES) {
      throw new SecretKeyError(`has a key of ${key.length} bytes; AES-256 needs ${KEY_BYTES}${position}`);
    }
    if (keys.some((k) => k.id === id)) {
      throw new SecretKeyError(`names key id '${id}' twice`);
    }
    keys.push({ id, key });
  });
  return keys;
}

/** A fresh key in ORGPLANE_SECRET_KEY's format; the id is random so two generated keys never share one. */
export function generateSecretKey(): string {
  return `local-${randomBytes(4).toString("hex")}:${randomBytes(KEY_BYTES).toString("base64")}`;
}

/**
 * The key of the embedded default: read from `path`, or generated there (mode 0600) on first start. A file
 * that exists but does not parse stops start-up: generating another key would orphan what the first sealed.
 */
export async function loadOrCreateSecretKeyFile(
  path: string,
): Promise<{ keys: SecretKey[]; generated: boolean }> {
  let text: string | undefined;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as { code?: unknown }).code !== "ENOENT") {
      throw err;
    }
  }
  if (text !== undefined) {
    try {
      return { keys: parseSecretKeys(text.trim()), generated: false };
    } catch (err) {
      const message = err instanceof SecretKeyError ? err.message : "cannot be read";
      throw new SecretKeyError(`the key file ${path} ${message}`);
    }
  }
  const generated = generateSecretKey();
  await mkdir(dirname(path), { recursive: true });
  // `wx`: two processes sharing a data directory on first start cannot both write a key; the loser reads it.
  try {
    await writeFile(path, `${generated}\n`, { mode: 0o600, flag: "wx" });
  } catch (err) {
    if ((err as { code?: unknown }).code === "EEXIST") {
      return loadOrCreateSecretKeyFile(path);
    }
    throw err;
  }
  await chmod(path, 0o600);
  return { keys: parseSecretKeys(generated), generated: true };
}

/**
 * Seal and open with the given keys (the first seals). `context` is bound to the ciphertext as GCM
 * associated data (e.g. the row it belongs to), so a ciphertext copied into another row does not open.
 */
export function createSecretBox(keys: readonly SecretKey[]): SecretSealer {
  const first = keys[0];
  if (first === undefined) {
    throw new SecretKeyError("must hold at least one key");
  }
  const byId = new Map(keys.map((k) => [k.id, k.key]));
  const aad = (keyId: string, context: string) => Buffer.from(`${VERSION}:${keyId}:${context}`, "utf8");
  return {
    currentKeyId: first.id,
    keyIds: keys.map((k) => k.id),
    seal(plaintext, context) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv("aes-256-gcm", first.key, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(aad(first.id, context));
      const sealed = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final(), cipher.getAuthTag()]);
      return `${VERSION}:${first.id}:${iv.toString("base64")}:${sealed.toString("base64")}`;
    },
    open(ciphertext, context) {
      const parts = ciphertext.split(":");
      const [version, keyId, ivText, sealedText] = parts;
      if (
        parts.length !== 4 ||
        version !== VERSION ||
        keyId === undefined ||
        ivText === undefined ||
        sealedText === undefined
      ) {
        throw new SecretOpenError("not a v1 ciphertext");
      }
      const key = byId.get(keyId);
      if (key === undefined) {
        throw new SecretOpenError(`sealed under key id '${keyId}', which ORGPLANE_SECRET_KEY does not hold`);
      }
      const iv = Buffer.from(ivText, "base64");
      const sealed = Buffer.from(sealedText, "base64");
      if (iv.length !== IV_BYTES || sealed.length < TAG_BYTES) {
        throw new SecretOpenError("not a v1 ciphertext");
      }
      try {
        const decipher = createDecipheriv("aes-256-gcm", key, iv, { authTagLength: TAG_BYTES });
        decipher.setAAD(aad(keyId, context));
        decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
        return Buffer.concat([
          decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)),
          decipher.final(),
        ]).toString("utf8");
      } catch {
        // Node's message ("Unsupported state or unable to authenticate data") says nothing more useful.
        throw new SecretOpenError(
          `does not open under key id '${keyId}': another key of that id sealed it, or it was altered`,
        );
      }
    },
    keyIdOf(ciphertext) {
      const [version, keyId] = ciphertext.split(":");
      return version === VERSION && keyId !== undefined && keyId !== "" ? keyId : undefined;
    },
  };
}
