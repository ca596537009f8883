import type { Clock } from "../../lib/clock.ts";
import type { IntegrationsStore } from "./integrations.store.ts";
import { type SecretSealer, tokenContext } from "./integrations.types.ts";

/** The known plaintext of a canary: what opening one must give back. */
const CANARY_PLAINTEXT = "orgplane secret key canary";
const CANARY_CONTEXT = "secret_key_canaries";
/** Tokens re-sealed per round trip at start (a table of at most two rows per organization). */
const RESEAL_BATCH = 500;

/** ORGPLANE_SECRET_KEY does not match what the database holds: start-up stops with this one line. */
export class SecretKeyMismatchError extends Error {
  override name = "SecretKeyMismatchError";
}

/**
 * At start, before anything is served: the configured keys must open what the database holds. For each key
 * id a canary was written under, a key of that id must open it (the same id with other key material is
 * caught before it seals anything); a key id that stored tokens are sealed under must be configured, and
 * one of its tokens must open. Then this key's canary is written (once per key id), and tokens sealed under
 * an older key are re-sealed under the current one, so the old key can be dropped after a rotation.
 * Messages name key ids, never key material.
 */
export async function checkSecretKeys(
  store: IntegrationsStore,
  sealer: SecretSealer,
  clock: Clock,
): Promise<{ resealed: number }> {
  const known = new Set(sealer.keyIds);
  for (const canary of await store.listCanaries()) {
    if (!known.has(canary.keyId)) {
      continue; // A retired key: only what is still sealed under it matters (checked below).
    }
    let opened: string | undefined;
    try {
      opened = sealer.open(canary.ciphertext, CANARY_CONTEXT);
    } catch {
      opened = undefined;
    }
    if (opened !== CANARY_PLAINTEXT) {
      throw new SecretKeyMismatchError(
        `ORGPLANE_SECRET_KEY: key id '${canary.keyId}' is not the key that id had when the database's secrets ` +
          "were sealed; set the original key (or a new key id for a new key)",
      );
    }
  }
  for (const sample of await store.sealedKeySamples()) {
    if (!known.has(sample.keyId)) {
      throw new SecretKeyMismatchError(
        `ORGPLANE_SECRET_KEY does not hold key id '${sample.keyId}', which integration tokens in the database ` +
          `are sealed under; add it back (after the new key: '${sealer.currentKeyId}:…,${sample.keyId}:…')`,
      );
    }
    try {
      sealer.open(sample.tokenCiphertext, tokenContext(sample.orgId, sample.kind));
    } catch {
      throw new SecretKeyMismatchError(
        `ORGPLANE_SECRET_KEY: key id '${sample.keyId}' does not open the integration tokens sealed under it; ` +
          "it is not the key they were sealed with",
      );
    }
  }
  await store.insertCanary(sealer.currentKeyId, sealer.seal(CANARY_PLAINTEXT, CANARY_CONTEXT), clock.now());
  let resealed = 0;
  for (;;) {
    const stale = await store.listSealedWithout(sealer.currentKeyId, RESEAL_BATCH);
    let progressed = false;
    for (const row of stale) {
      const context = tokenContext(row.orgId, row.kind);
      let token: string;
      try {
        token = sealer.open(row.tokenCiphertext, context);
      } catch {
        continue; // Left as it is: the exporters skip it and GET still shows it; a PUT of its token fixes it.
      }
      const next = sealer.seal(token, context);
      if (await store.replaceCiphertext(row.orgId, row.kind, row.tokenCiphertext, next)) {
        resealed += 1;
        progressed = true;
      }
    }
    // A batch none of which could be replaced: others are re-sealing them (another process starting).
    if (stale.length < RESEAL_BATCH || !progressed) {
      return { resealed };
    }
  }
}
