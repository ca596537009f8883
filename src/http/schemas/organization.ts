import { z } from "@hono/zod-openapi";
import {
  type BillingAddress,
  EXTERNAL_ID_KEYS,
  type ExternalIdKey,
  type Organization,
  type UpdateOrgInput,
} from "../../domain/orgs/orgs.types.ts";
import type { OrganizationView } from "../../domain/quotas/quotas.service.ts";
import { BoundedJsonObject, Timestamp } from "./common.ts";
import { RateLimitChangesBody } from "./rate-limit.ts";
import {
  PlanSummarySchema,
  QuotaSchema,
  SubscriptionSummarySchema,
  toPlanSummary,
  toQuotaResponse,
  toSubscriptionSummary,
} from "./subscription.ts";

const text = (max: number) => z.string().trim().min(1).max(max);

export const SLUG_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/;

const BillingAddressInput = z
  .strictObject({
    line1: text(200).nullable().optional(),
    line2: text(200).nullable().optional(),
    city: text(120).nullable().optional(),
    postal_code: text(32).nullable().optional(),
    state: text(120).nullable().optional(),
    country: z
      .string()
      .trim()
      .regex(/^[A-Za-z]{2}$/, "ISO 3166-1 alpha-2 country code")
      .toUpperCase()
      .nullable()
      .optional(),
  })
  .openapi("BillingAddressInput");

const ExternalIdsInput = z
  .strictObject(
    Object.fromEntries(EXTERNAL_ID_KEYS.map((k) => [k, text(255).nullable().optional()])) as Record<
      ExternalIdKey,
      z.ZodOptional<z.ZodNullable<z.ZodString>>
    >,
  )
  .openapi("ExternalIdsInput", {
    description:
      "Links to this organization in other systems. On PATCH, merged key by key; null removes a link.",
  });

const orgFields = {
  name: text(128).openapi({ example: "Acme Corporation" }),
  display_name: text(128).nullable(),
  slug: z
    .string()
    .trim()
    .toLowerCase()
    .regex(SLUG_PATTERN, "lower-case letters, digits and inner hyphens, at most 64 characters")
    .openapi({ example: "acme" }),
  logo_url: z
    .url({ protocol: /^https?$/ })
    .max(2048)
    .nullable(),
  billing_email: z.email().max(254).nullable(),
  billing_name: text(200).nullable(),
  billing_address: BillingAddressInput.nullable().openapi({
    description: "Replaced whole: fields not sent become null; null removes the address",
  }),
  currency: z
    .string()
    .trim()
    .regex(/^[A-Za-z]{3}$/, "ISO 4217 currency code")
    .toLowerCase()
    .openapi({ example: "usd" }),
  metadata: BoundedJsonObject.openapi({ description: "Free-form; a PATCH replaces the whole object" }),
  is_personal: z.boolean(),
  registerable: z.boolean(),
  partner_configuration: BoundedJsonObject.openapi({ description: "White-label settings; replaced whole" }),
  external_ids: ExternalIdsInput,
};

export const CreateOrganizationBody = z
  .strictObject({
    name: orgFields.name,
    display_name: orgFields.display_name.optional(),
    slug: orgFields.slug.optional().openapi({ description: "Generated from the name when absent" }),
    logo_url: orgFields.logo_url.optional(),
    billing_email: orgFields.billing_email.optional(),
    billing_name: orgFields.billing_name.optional(),
    billing_address: orgFields.billing_address.optional(),
    currency: orgFields.currency.optional().openapi({ description: "Defaults to usd" }),
    metadata: orgFields.metadata.optional(),
    is_personal: orgFields.is_personal.optional(),
    registerable: orgFields.registerable.optional(),
    partner_configuration: orgFields.partner_configuration.optional(),
    external_ids: orgFields.external_ids.optional(),
  })
  .openapi("CreateOrganization");

export const UpdateOrganizationBody = z
  .strictObject({
    name: orgFields.name.optional(),
    display_name: orgFields.display_name.optional(),
    slug: orgFields.slug.optional(),
    logo_url: orgFields.logo_url.optional(),
    billing_email: orgFields.billing_email.optional(),
    billing_name: orgFields.billing_name.optional(),
    billing_address: orgFields.billing_address.optional(),
    currency: orgFields.currency.optional(),
    metadata: orgFields.metadata.optional(),
    is_personal: orgFields.is_personal.optional(),
    registerable: orgFields.registerable.optional(),
    partner_configuration: orgFields.partner_configuration.optional(),
    external_ids: orgFields.external_ids.optional(),
    rate_limits: RateLimitChangesBody.optional().openapi({
      description: "Rate-limit overrides, as PATCH …/rate-limits takes them; null removes one",
    }),
  })
  .openapi("UpdateOrganization", {
    description: "Only the fields present change; null clears a nullable field; metadata is replaced whole.",
  });

type OrgBody = z.infer<typeof UpdateOrganizationBody>;

function toBillingAddress(input: NonNullable<OrgBody["billing_address"]>): BillingAddress {
  return {
    line1: input.line1 ?? null,
    line2: input.line2 ?? null,
    city: input.city ?? null,
    postalCode: input.postal_code ?? null,
    state: input.state ?? null,
    country: input.country ?? null,
  };
}

/** Map a request body to domain fields, keeping absent fields absent (absent ≠ null on PATCH). */
export function fromOrganizationBody(body: OrgBody): UpdateOrgInput {
  const out: UpdateOrgInput = {};
  if (body.name !== undefined) out.name = body.name;
  if (body.display_name !== undefined) out.displayName = body.display_name;
  if (body.slug !== undefined) out.slug = body.slug;
  if (body.logo_url !== undefined) out.logoUrl = body.logo_url;
  if (body.billing_email !== undefined) out.billingEmail = body.billing_email;
  if (body.billing_name !== undefined) out.billingName = body.billing_name;
  if (body.billing_address !== undefined) {
    out.billingAddress = body.billing_address === null ? null : toBillingAddress(body.billing_address);
  }
  if (body.currency !== undefined) out.currency = body.currency;
  if (body.metadata !== undefined) out.metadata = body.metadata;
  if (body.is_personal !== undefined) out.isPersonal = body.is_personal;
  if (body.registerable !== undefined) out.registerable = body.registerable;
  if (body.partner_configuration !== undefined) out.partnerConfiguration = body.partner_configuration;
  if (body.external_ids !== undefined) {
    const ids: UpdateOrgInput["externalIds"] = {};
    for (const key of EXTERNAL_ID_KEYS) {
      const value = body.external_ids[key];
      if (value !== undefined) ids[key] = value;
    }
    out.externalIds = ids;
  }
  return out;
}

const nullableString = z.string().nullable();

export const OrganizationSchema = z
  .object({
    id: z.string().openapi({ example: "org_01jd0v4n6qf9yb5c8h2m3k7x1z" }),
    object: z.literal("organization"),
    internal_id: z.string().openapi({ description: "Stable internal id; never used in URLs" }),
    name: z.string(),
    display_name: nullableString,
    slug: z.string(),
    logo_url: nullableString,
    billing_email: nullableString,
    billing_name: nullableString,
    billing_address: z
      .object({
        line1: nullableString,
        line2: nullableString,
        city: nullableString,
        postal_code: nullableString,
        state: nullableString,
        country: nullableString,
      })
      .nullable()
      .openapi("BillingAddress"),
    currency: z.string(),
    metadata: z.record(z.string(), z.unknown()),
    is_personal: z.boolean(),
    registerable: z.boolean(),
    partner_configuration: z.record(z.string(), z.unknown()),
    external_ids: z
      .object(Object.fromEntries(EXTERNAL_ID_KEYS.map((k) => [k, z.string().optional()])))
      .openapi("ExternalIds"),
    status: z.enum(["active", "suspended", "deleted"]),
    suspended_at: Timestamp.nullable(),
    suspended_reason: nullableString,
    created_by: nullableString.openapi({ description: "Id of the credential that created it" }),
    created_at: Timestamp,
    updated_at: Timestamp,
    deleted_at: Timestamp.nullable(),
  })
  .openapi("Organization");

export function toOrganizationResponse(org: Organization): z.infer<typeof OrganizationSchema> {
  return {
    id: org.id,
    object: "organization",
    internal_id: org.internalId,
    name: org.name,
    display_name: org.displayName,
    slug: org.slug,
    logo_url: org.logoUrl,
    billing_email: org.billingEmail,
    billing_name: org.billingName,
    billing_address: org.billingAddress
      ? {
          line1: org.billingAddress.line1,
          line2: org.billingAddress.line2,
          city: org.billingAddress.city,
          postal_code: org.billingAddress.postalCode,
          state: org.billingAddress.state,
          country: org.billingAddress.country,
        }
      : null,
    currency: org.currency,
    metadata: org.metadata,
    is_personal: org.isPersonal,
    registerable: org.registerable,
    partner_configuration: org.partnerConfiguration,
    external_ids: org.externalIds,
    status: org.status,
    suspended_at: org.suspendedAt?.toISOString() ?? null,
    suspended_reason: org.suspendedReason,
    created_by: org.createdBy,
    created_at: org.createdAt.toISOString(),
    updated_at: org.updatedAt.toISOString(),
    deleted_at: org.deletedAt?.toISOString() ?? null,
  };
}

/**
 * What GET /v1/organizations/{org_id} and GET /v1/organization answer: the organization with its plan,
 * subscription and quotas in one read. Other organization routes answer the plain organization.
 */
export const OrganizationViewSchema = OrganizationSchema.extend({
  plan: PlanSummarySchema,
  subscription: SubscriptionSummarySchema,
  quotas: z.array(QuotaSchema),
}).openapi("OrganizationView");

export function toOrganizationViewResponse(view: OrganizationView): z.infer<typeof OrganizationViewSchema> {
  return {
    ...toOrganizationResponse(view.org),
    plan: toPlanSummary(view.plan),
    subscription: toSubscriptionSummary(view.subscription),
    quotas: view.quotas.map(toQuotaResponse),
  };
}
