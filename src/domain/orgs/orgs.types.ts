import type { JsonObject } from "../../lib/json.ts";
import type { OrgStatus } from "../auth/principal.ts";

export type BillingAddress = {
  line1: string | null;
  line2: string | null;
  city: string | null;
  postalCode: string | null;
  state: string | null;
  /** ISO 3166-1 alpha-2, upper case. */
  country: string | null;
};

/**
 * Links to the organization in the systems around it (billing, identity, marketplaces, CRM), as one
 * typed map rather than a column per vendor.
 */
export const EXTERNAL_ID_KEYS = [
  "stripe_customer_id",
  "polar_customer_id",
  "hubspot_company_id",
  "clerk_organization_id",
  "clerk_organization_slug",
  "auth0_organization_id",
  "workos_organization_id",
  "vercel_installation_id",
  "cloudflare_account_id",
  "aws_marketplace_customer_id",
] as const;
export type ExternalIdKey = (typeof EXTERNAL_ID_KEYS)[number];
export type ExternalIds = Partial<Record<ExternalIdKey, string>>;

export type Organization = {
  id: string;
  internalId: string;
  name: string;
  displayName: string | null;
  slug: string;
  logoUrl: string | null;
  billingEmail: string | null;
  billingName: string | null;
  billingAddress: BillingAddress | null;
  /** ISO 4217, lower case (as Stripe spells it). */
  currency: string;
  metadata: JsonObject;
  isPersonal: boolean;
  registerable: boolean;
  partnerConfiguration: JsonObject;
  externalIds: ExternalIds;
  status: OrgStatus;
  suspendedAt: Date | null;
  suspendedReason: string | null;
  createdBy: string | null;
  createdAt: Date;
  updatedAt: Date;
  deletedAt: Date | null;
};

/** Fields a client may set. On create, absent means default; on update, absent means unchanged. */
export type OrgFields = {
  name: string;
  displayName: string | null;
  slug: string;
  logoUrl: string | null;
  billingEmail: string | null;
  billingName: string | null;
  billingAddress: BillingAddress | null;
  currency: string;
  metadata: JsonObject;
  isPersonal: boolean;
  registerable: boolean;
  partnerConfiguration: JsonObject;
  /** On update, merged key by key: a `null` value removes that link. */
  externalIds: Partial<Record<ExternalIdKey, string | null>>;
};

export type CreateOrgInput = Pick<OrgFields, "name"> & Partial<Omit<OrgFields, "name">>;
export type UpdateOrgInput = Partial<OrgFields>;

export type ListOrgsQuery = {
  limit: number;
  after: string | undefined;
  status: OrgStatus | undefined;
  slug: string | undefined;
  /** Only the organizations this user is a member of (a signed-in user listing theirs). */
  memberUserId: string | undefined;
};
