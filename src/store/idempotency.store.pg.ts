import { and, eq, lt, sql } from "drizzle-orm";
import type { IdempotencyStore } from "../domain/idempotency/idempotency.store.ts";
import type { Executor } from "./db.ts";
import { idempotencyKeys } from "./schema/idempotency-keys.ts";

export function createIdempotencyStore(db: Executor): IdempotencyStore {
  return {
    async claim(input) {
      const t = idempotencyKeys;
      // One statement decides the race: of two requests with the same key, exactly one inserts (or takes
      // over an expired record); the other sees the row the winner wrote.
      const claimed = await db
        .insert(t)
        .values({
          scope: input.scope,
          key: input.key,
          fingerprint: input.fingerprint,
          state: "processing",
          lockedUntil: input.lockedUntil,
          createdAt: input.now,
        })
        .onConflictDoUpdate({
          target: [t.scope, t.key],
          set: {
            fingerprint: input.fingerprint,
            state: "processing",
            lockedUntil: input.lockedUntil,
            responseStatus: null,
            responseContentType: null,
            responseBody: null,
            createdAt: input.now,
          },
          setWhere: sql`${t.createdAt} < ${input.expiredBefore.toISOString()}
            or (${t.state} = 'processing' and ${t.lockedUntil} < ${input.now.toISOString()}
                and ${t.fingerprint} = ${input.fingerprint})`,
        })
        .returning({ key: t.key });
      if (claimed.length === 1) {
        return undefined;
      }
      const [row] = await db
        .select()
        .from(t)
        .where(and(eq(t.scope, input.scope), eq(t.key, input.key)));
      if (row === undefined) {
        // The record was swept between the two statements: the key is free, but to keep the claim a
        // single decision we report it as in use and let the client retry.
        return {
          fingerprint: input.fingerprint,
          state: "processing",
          lockedUntil: input.now,
          response: null,
        };
      }
      return {
        fingerprint: row.fingerprint,
        state: row.state,
        lockedUntil: row.lockedUntil,
        response:
          row.responseStatus !== null && row.responseContentType !== null && row.responseBody !== null
            ? { status: row.responseStatus, contentType: row.responseContentType, body: row.responseBody }
            : null,
      };
    },

    async complete(scope, key, response) {
      await db
        .update(idempotencyKeys)
        .set({
          state: "completed",
          responseStatus: response.status,
          responseContentType: response.contentType,
          responseBody: response.body,
        })
        .where(and(eq(idempotencyKeys.scope, scope), eq(idempotencyKeys.key, key)));
    },

    async release(scope, key) {
      await db
        .delete(idempotencyKeys)
        .where(
          and(
            eq(idempotencyKeys.scope, scope),
            eq(idempotencyKeys.key, key),
            eq(idempotencyKeys.state, "processing"),
          ),
        );
    },

    async deleteOlderThan(before) {
      const rows = await db
        .delete(idempotencyKeys)
        .where(lt(idempotencyKeys.createdAt, before))
        .returning({ key: idempotencyKeys.key });
      return rows.length;
    },
  };
}
