import { z } from "@hono/zod-openapi";
import {
  MAX_ROTATION_OVERLAP_SECONDS,
  type UpdateApiKeyInput,
} from "../../domain/api-keys/api-keys.service.ts";
import type { ApiKey } from "../../domain/api-keys/api-keys.types.ts";
import { ORG_SCOPES } from "../../domain/auth/principal.ts";
import { BoundedJsonObject, storableText, Timestamp } from "./common.ts";

export const ScopeSchema = z.enum(ORG_SCOPES).openapi("Scope");

/** Rate-limit categories are short identifiers; 32 of them cover every preset's catalog. */
const MAX_OVERRIDES = 32;
/** 10M/min (~170k/s) is above what one deployment can serve; anything larger is a typo. */
const MAX_REQUESTS_PER_MINUTE = 10_000_000;

export const RateLimitOverrides = z
  .record(
    z
      .string()
      .regex(/^[a-z][a-z0-9_-]{0,31}$/, "a category: lower-case letter, then up to 31 of a-z 0-9 _ -"),
    z.number().int().min(1).max(MAX_REQUESTS_PER_MINUTE),
  )
  .refine((o) => Object.keys(o).length <= MAX_OVERRIDES, { message: `At most ${MAX_OVERRIDES} categories` })
  .openapi("RateLimitOverrides", {
    description: "Requests per minute by rate-limit category, overriding the plan's",
    example: { search: 600 },
  });

const keyFields = {
  name: storableText(z.string().trim().min(1).max(128)).openapi({ example: "production backend" }),
  description: storableText(z.string().trim().max(1024)).nullable(),
  scopes: z.array(ScopeSchema).max(ORG_SCOPES.length * 2),
  expires_at: Timestamp.nullable(),
};

export const CreateApiKeyBody = z
  .strictObject({
    name: keyFields.name,
    description: keyFields.description.optional(),
    environment: z.enum(["live", "test"]).optional().openapi({ description: "Defaults to live" }),
    scopes: keyFields.scopes.optional().openapi({
      description:
        "Defaults to the creator's scopes (every scope for the operator); for a project key, the project-key scopes among them. A key can only grant scopes it holds itself",
    }),
    project_id: storableText(z.string().trim().max(64)).nullable().optional().openapi({
      description:
        "A live project of the organization: the key then acts only inside it and may hold only projects:read, usage:read and usage:write",
    }),
    expires_at: keyFields.expires_at.optional().openapi({ description: "When the key stops working" }),
    rate_limit_overrides: RateLimitOverrides.optional(),
    metadata: BoundedJsonObject.optional(),
  })
  .openapi("CreateApiKey");

export const UpdateApiKeyBody = z
  .strictObject({
    name: keyFields.name.optional(),
    description: keyFields.description.optional(),
    scopes: keyFields.scopes.optional().openapi({ description: "Never above the caller's own scopes" }),
    expires_at: keyFields.expires_at.optional().openapi({ description: "null: never expires" }),
    rate_limit_overrides: RateLimitOverrides.optional().openapi({ description: "Replaces the whole map" }),
    metadata: BoundedJsonObject.optional().openapi({ description: "Replaces the whole object" }),
  })
  .openapi("UpdateApiKey");

export function toUpdateApiKeyInput(body: z.infer<typeof UpdateApiKeyBody>): UpdateApiKeyInput {
  const out: UpdateApiKeyInput = {};
  if (body.name !== undefined) out.name = body.name;
  if (body.description !== undefined) out.description = body.description;
  if (body.scopes !== undefined) out.scopes = body.scopes;
  if (body.expires_at !== undefined)
    out.expiresAt = body.expires_at === null ? null : new Date(body.expires_at);
  if (body.rate_limit_overrides !== undefined) out.rateLimitOverrides = body.rate_limit_overrides;
  if (body.metadata !== undefined) out.metadata = body.metadata;
  return out;
}

export const RotateApiKeyBody = z
  .strictObject({
    expire_previous_in_seconds: z.number().int().min(0).max(MAX_ROTATION_OVERLAP_SECONDS).optional().openapi({
      description:
        "How long the previous key keeps working (0, the default: it stops now; at most 7 days, never beyond its own expiry)",
    }),
  })
  .openapi("RotateApiKey");

export const ApiKeySchema = z
  .object({
    id: z.string().openapi({ example: "key_01jd0v4n6qf9yb5c8h2m3k7x1z" }),
    object: z.literal("api_key"),
    org_id: z.string(),
    project_id: z.string().nullable().openapi({ description: "Set for a project key" }),
    name: z.string(),
    description: z.string().nullable(),
    environment: z.enum(["live", "test"]),
    key_prefix: z.string().openapi({ example: "sk_live_AbC1" }),
    last_four: z.string(),
    scopes: z.array(ScopeSchema),
    status: z.enum(["active", "revoked", "expired"]),
    rate_limit_overrides: z.record(z.string(), z.number().int()),
    metadata: z.record(z.string(), z.unknown()),
    created_by: z.string().nullable(),
    created_at: Timestamp,
    expires_at: Timestamp.nullable(),
    revoked_at: Timestamp.nullable(),
    last_used_at: Timestamp.nullable().openapi({ description: "Kept within a minute" }),
    rotated_from: z.string().nullable().openapi({ description: "The key this one replaced by rotation" }),
  })
  .openapi("ApiKey");

export const CreatedApiKeySchema = ApiKeySchema.extend({
  key: z.string().openapi({ description: "The plaintext key. Shown once; only its SHA-256 is stored." }),
}).openapi("CreatedApiKey");

export const RotatedApiKeySchema = CreatedApiKeySchema.extend({
  previous: ApiKeySchema.openapi({ description: "The rotated key, with its new expires_at" }),
}).openapi("RotatedApiKey");

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
    project_id: key.projectId,
    name: key.name,
    description: key.description,
    environment: key.environment,
    key_prefix: key.keyPrefix,
    last_four: key.lastFour,
    scopes: key.scopes,
    status,
    rate_limit_overrides: key.rateLimitOverrides,
    metadata: key.metadata,
    created_by: key.createdBy,
    created_at: key.createdAt.toISOString(),
    expires_at: key.expiresAt?.toISOString() ?? null,
    revoked_at: key.revokedAt?.toISOString() ?? null,
    last_used_at: key.lastUsedAt?.toISOString() ?? null,
    rotated_from: key.rotatedFrom,
  };
}

export const VerifyKeyBody = z
  .strictObject({
    key: storableText(z.string().trim().min(1).max(256)).openapi({ description: "The key to check" }),
  })
  .openapi("VerifyKey");

export const VerifyKeyResultSchema = z
  .union([
    z.object({
      valid: z.literal(true),
      key_id: z.string(),
      org_id: z.string(),
      project_id: z.string().nullable(),
      scopes: z.array(ScopeSchema),
      environment: z.enum(["live", "test"]),
      expires_at: Timestamp.nullable(),
    }),
    z.object({
      valid: z.literal(false),
      reason: z.enum([
        "malformed",
        "unknown",
        "key_revoked",
        "key_expired",
        "organization_suspended",
        "organization_deleted",
        "project_deleted",
      ]),
    }),
  ])
  .openapi("VerifyKeyResult");
