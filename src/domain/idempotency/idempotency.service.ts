import type { Clock } from "../../lib/clock.ts";
import { AppError } from "../../lib/errors.ts";
import type { IdempotencyStore, StoredResponse } from "./idempotency.store.ts";

/** Stripe's window: a key is remembered for 24 hours. */
const RETENTION_MS = 24 * 60 * 60 * 1000;
/**
 * How long a claim stays exclusive while its request runs. Long enough for any request here (they
 * finish in milliseconds); short enough that a crashed process does not block a retry for long.
 */
const LOCK_MS = 60 * 1000;

export type IdempotencyOutcome = { kind: "proceed" } | { kind: "replay"; response: StoredResponse };

export function createIdempotencyService(deps: { store: IdempotencyStore; clock: Clock }) {
  return {
    async begin(scope: string, key: string, fingerprint: string): Promise<IdempotencyOutcome> {
      const now = deps.clock.now();
      const existing = await deps.store.claim({
        scope,
        key,
        fingerprint,
        now,
        lockedUntil: new Date(now.getTime() + LOCK_MS),
        expiredBefore: new Date(now.getTime() - RETENTION_MS),
      });
      if (existing === undefined) {
        return { kind: "proceed" };
      }
      if (existing.fingerprint !== fingerprint) {
        throw new AppError(
          "idempotency_key_reused",
          "This Idempotency-Key was used with a different request; use a new key for a new request",
        );
      }
      if (existing.state === "completed" && existing.response !== null) {
        return { kind: "replay", response: existing.response };
      }
      const waitSeconds = Math.max(1, Math.ceil((existing.lockedUntil.getTime() - now.getTime()) / 1000));
      throw new AppError(
        "idempotency_key_in_use",
        "A request with this Idempotency-Key is still in progress",
        {
          retryAfterSeconds: Math.min(waitSeconds, 5),
        },
      );
    },
    complete: (scope: string, key: string, response: StoredResponse) =>
      deps.store.complete(scope, key, response),
    release: (scope: string, key: string) => deps.store.release(scope, key),
    sweep: () => deps.store.deleteOlderThan(new Date(deps.clock.now().getTime() - RETENTION_MS)),
  };
}

export type IdempotencyService = ReturnType<typeof createIdempotencyService>;
