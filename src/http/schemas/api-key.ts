import { z } from "@hono/zod-openapi";
import type { ApiKey } from "../../domain/api-keys/api-keys.types.ts";
import { ORG_SCOPES } from "../../domain/auth/principal.ts";
import { Timestamp } from "./common.ts";

export const ScopeSchema = z.enum(ORG_SCOPES).openapi("Scope");

export const CreateApiKeyBody = z
  .strictObject({
    name: z.string().trim().min(1).max(128).openapi({ example: "production backend" }),
    environment: z.enum(["live", "test"]).optional().openapi({ description: "Defaults to live" }),
    scopes: z
      .array(ScopeSchema)
      .max(ORG_SCOPES.length * 2)
      .optional()
      .openapi({
        description:
          "Defaults to the creator's scopes (every scope for the operator); a key can only grant scopes it holds itself",
      }),
    expires_at: Timestamp.nullable().optional().openapi({ description: "When the key stops working" }),
  })
  .openapi("CreateApiKey");

export const ApiKeySchema = z
  .object({
    id: z.string().openapi({ example: "key_01jd0v4n6qf9yb5c8h2m3k7x1z" }),
    object: z.literal("api_key"),
    org_id: z.string(),
    name: z.string(),
    environment: z.enum(["live", "test"]),
    key_prefix: z.string().openapi({ example: "sk_live_AbC1" }),
    last_four: z.string(),
    scopes: z.array(ScopeSchema),
    status: z.enum(["active", "revoked", "expired"]),
    created_by: z.string().nullable(),
    created_at: Timestamp,
    expires_at: Timestamp.nullable(),
    revoked_at: Timestamp.nullable(),
  })
  .openapi("ApiKey");

export const CreatedApiKeySchema = ApiKeySchema.extend({
  key: z.string().openapi({ description: "The plaintext key. Shown once; only its SHA-256 is stored." }),
}).openapi("CreatedApiKey");

export function toApiKeyResponse(key: ApiKey, now: Date): z.infer<typeof ApiKeySchema> {
  const status =
    key.revokedAt !== null
      ? "revoked"
      : key.expiresAt !== null && key.expiresAt.getTime() <= now.getTime()
        ? "expired"
        : "active";
  return {
    id: key.id,
    object: "api_key",
    org_id: key.orgId,
    name: key.name,
    environment: key.environment,
    key_prefix: key.keyPrefix,
    last_four: key.lastFour,
    scopes: key.scopes,
    status,
    created_by: key.createdBy,
    created_at: key.createdAt.toISOString(),
    expires_at: key.expiresAt?.toISOString() ?? null,
    revoked_at: key.revokedAt?.toISOString() ?? null,
  };
}
