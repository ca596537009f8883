import type { Clock } from "../../lib/clock.ts";
import { decodeCursor, type Page, toPage } from "../../lib/cursor.ts";
import { AppError, notFound } from "../../lib/errors.ts";
import { isId, newId } from "../../lib/ids.ts";
import type { JsonValue } from "../../lib/json.ts";
import { SLUG_BASE_MAX, slugify, slugSuffix } from "../../lib/slug.ts";
import type { AuditChanges } from "../audit/audit.types.ts";
import { auditEvent, diffViews } from "../audit/audit-event.ts";
import type { OrgStatus, Principal, RequestContext } from "../auth/principal.ts";
import type { CatalogService } from "../catalog/catalog.service.ts";
import type { Stores, Transactor } from "../stores.ts";
import { startSubscription } from "../subscriptions/subscriptions.service.ts";
import { emitEvent, eventChanges, organizationSummary } from "../webhooks/event-data.ts";
import type { CreateOrgInput, ExternalIds, Organization, UpdateOrgInput } from "./orgs.types.ts";

/** Generated slugs that collide get a random suffix; five tries make a repeat collision ~impossible. */
const SLUG_ATTEMPTS = 5;

/** The organization's changes that are announced to its webhook endpoints, each its own event type. */
type OrgAction =
  | "organization.updated"
  | "organization.suspended"
  | "organization.unsuspended"
  | "organization.deleted";

/** The webhook event of an organization change, in the change's transaction. */
async function emitOrgEvent(
  stores: Pick<Stores, "webhooks">,
  action: OrgAction,
  org: Organization,
  changes: AuditChanges,
  clock: Clock,
): Promise<void> {
  const base = { org_id: org.id, organization: organizationSummary(org) };
  switch (action) {
    case "organization.updated":
      await emitEvent(stores, org.id, action, { ...base, changes: eventChanges(changes) }, clock);
      return;
    case "organization.suspended":
      await emitEvent(
        stores,
        org.id,
        action,
        {
          ...base,
          reason: org.suspendedReason,
          suspended_at: (org.suspendedAt ?? org.updatedAt).toISOString(),
        },
        clock,
      );
      return;
    case "organization.unsuspended":
      await emitEvent(stores, org.id, action, base, clock);
      return;
    case "organization.deleted":
      await emitEvent(
        stores,
        org.id,
        action,
        { ...base, deleted_at: (org.deletedAt ?? org.updatedAt).toISOString() },
        clock,
      );
      return;
  }
}

/** The client-visible state of an organization, in API field names, for audit diffs. */
function auditView(org: Organization): Record<string, JsonValue> {
  return {
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
    suspended_reason: org.suspendedReason,
  };
}

function diff(before: Organization | undefined, after: Organization): AuditChanges {
  return diffViews(before === undefined ? undefined : auditView(before), auditView(after));
}

function mergeExternalIds(current: ExternalIds, patch: UpdateOrgInput["externalIds"]): ExternalIds {
  const next: ExternalIds = { ...current };
  for (const [key, value] of Object.entries(patch ?? {}) as [keyof ExternalIds, string | null][]) {
    if (value === null) {
      delete next[key];
    } else {
      next[key] = value;
    }
  }
  return next;
}

export type ListOrgsInput = {
  limit: number;
  cursor: string | undefined;
  status: OrgStatus | undefined;
  slug: string | undefined;
};

/** The organization, or a 404 naming the id the caller gave (whatever its shape). */
export async function loadOrg(
  stores: Pick<Stores, "orgs">,
  id: string,
  forUpdate = false,
): Promise<Organization> {
  const org = !isId("org", id)
    ? undefined
    : forUpdate
      ? await stores.orgs.findForUpdate(id)
      : await stores.orgs.find(id);
  if (org === undefined) {
    throw notFound("Organization", id);
  }
  return org;
}

export function createOrgsService(deps: {
  db: Transactor;
  stores: Pick<Stores, "orgs">;
  clock: Clock;
  /** A new organization starts on the catalog's default plan. */
  plans: Pick<CatalogService, "defaultPlan">;
}) {
  const load = loadOrg;

  /** Lock the organization, apply `change`, write it and its audit event in one transaction. */
  async function mutate(
    ctx: RequestContext,
    id: string,
    action: OrgAction,
    change: (org: Organization, now: Date) => Organization,
    alsoIn?: (stores: Stores) => Promise<void>,
  ): Promise<Organization> {
    return deps.db.transaction(async (stores) => {
      const before = await load(stores, id, true);
      const now = deps.clock.now();
      const after = change(before, now);
      // Another change of the same request (rate limits in a PATCH): it commits or fails with this one.
      await alsoIn?.(stores);
      const changes = diff(before, after);
      if (Object.keys(changes).length === 0) {
        return before;
      }
      const written = { ...after, updatedAt: now };
      if (!(await stores.orgs.update(written))) {
        throw new AppError("slug_taken", `Slug '${written.slug}' is already taken by another organization`);
      }
      await stores.audit.insert(
        auditEvent(ctx, { orgId: id, action, targetType: "organization", targetId: id, changes }, deps.clock),
      );
      await emitOrgEvent(stores, action, written, changes, deps.clock);
      return written;
    });
  }

  function requireNotDeleted(org: Organization): void {
    if (org.status === "deleted") {
      throw new AppError("invalid_state_transition", `Organization '${org.id}' is deleted`);
    }
  }

  return {
    async create(ctx: RequestContext, input: CreateOrgInput): Promise<Organization> {
      const slugGiven = input.slug !== undefined;
      const base = input.slug ?? slugify(input.name);
      const plan = await deps.plans.defaultPlan();
      for (let attempt = 0; attempt < SLUG_ATTEMPTS; attempt++) {
        const slug = attempt === 0 ? base : `${base.slice(0, SLUG_BASE_MAX)}-${slugSuffix()}`;
        const now = deps.clock.now();
        const org: Organization = {
          id: newId("org"),
          internalId: newId("int"),
          name: input.name,
          displayName: input.displayName ?? null,
          slug,
          logoUrl: input.logoUrl ?? null,
          billingEmail: input.billingEmail ?? null,
          billingName: input.billingName ?? null,
          billingAddress: input.billingAddress ?? null,
          currency: input.currency ?? "usd",
          metadata: input.metadata ?? {},
          isPersonal: input.isPersonal ?? false,
          registerable: input.registerable ?? true,
          partnerConfiguration: input.partnerConfiguration ?? {},
          externalIds: mergeExternalIds({}, input.externalIds),
          status: "active",
          suspendedAt: null,
          suspendedReason: null,
          createdBy: ctx.principal.id,
          createdAt: now,
          updatedAt: now,
          deletedAt: null,
        };
        const created = await deps.db.transaction(async (stores) => {
          if (!(await stores.orgs.insert(org))) {
            return false;
          }
          await stores.audit.insert(
            auditEvent(
              ctx,
              {
                orgId: org.id,
                action: "organization.created",
                targetType: "organization",
                targetId: org.id,
                changes: diff(undefined, org),
              },
              deps.clock,
            ),
          );
          // A signed-in user who creates an organization owns it: without an owner nobody could run it.
          if (ctx.principal.kind === "user") {
            await stores.memberships.insert({
              orgId: org.id,
              userId: ctx.principal.id,
              role: "owner",
              projectIds: null,
              invitedBy: null,
              createdAt: now,
              updatedAt: now,
            });
            await stores.audit.insert(
              auditEvent(
                ctx,
                {
                  orgId: org.id,
                  action: "member.added",
                  targetType: "member",
                  targetId: ctx.principal.id,
                  changes: { role: { to: "owner" } },
                },
                deps.clock,
              ),
            );
            await emitEvent(
              stores,
              org.id,
              "member.added",
              {
                org_id: org.id,
                member: { user_id: ctx.principal.id, role: "owner", project_ids: null },
                source: "organization_created",
                invitation_id: null,
              },
              deps.clock,
            );
          }
          // The subscription is born with the organization: no moment exists where it has no plan.
          await startSubscription(stores, ctx, org.id, plan, deps.clock);
          return true;
        });
        if (created) {
          return org;
        }
        if (slugGiven) {
          throw new AppError("slug_taken", `Slug '${slug}' is already taken by another organization`);
        }
      }
      throw new AppError("slug_taken", `Could not find a free slug for '${base}'; pass one explicitly`);
    },

    get: (id: string): Promise<Organization> => load(deps.stores, id, false),

    /** The operator sees every organization; a signed-in user only those they are a member of. */
    async list(principal: Principal, input: ListOrgsInput): Promise<Page<Organization>> {
      const after = decodeCursor(input.cursor, "org");
      const memberUserId = principal.kind === "user" ? principal.id : undefined;
      // A deleted organization is closed to its members: they cannot list it either.
      if (memberUserId !== undefined && input.status === "deleted") {
        return { data: [], hasMore: false, nextCursor: null };
      }
      const rows = await deps.stores.orgs.list({
        limit: input.limit,
        after,
        status: input.status,
        slug: input.slug,
        memberUserId,
      });
      return toPage(rows, input.limit);
    },

    /** `alsoIn` runs in the same transaction, with the organization locked. */
    update(
      ctx: RequestContext,
      id: string,
      patch: UpdateOrgInput,
      alsoIn?: (stores: Stores) => Promise<void>,
    ): Promise<Organization> {
      return mutate(
        ctx,
        id,
        "organization.updated",
        (org) => {
          requireNotDeleted(org);
          const { externalIds, ...fields } = patch;
          return {
            ...org,
            ...fields,
            externalIds:
              externalIds === undefined ? org.externalIds : mergeExternalIds(org.externalIds, externalIds),
          };
        },
        alsoIn,
      );
    },

    /** Soft delete: the organization stops authenticating at once; its rows stay for the operator. */
    async delete(ctx: RequestContext, id: string): Promise<Organization> {
      const org = await load(deps.stores, id, false);
      if (org.status === "deleted") {
        return org;
      }
      return mutate(ctx, id, "organization.deleted", (current, now) =>
        current.status === "deleted" ? current : { ...current, status: "deleted", deletedAt: now },
      );
    },

    suspend(ctx: RequestContext, id: string, reason: string | null): Promise<Organization> {
      return mutate(ctx, id, "organization.suspended", (org, now) => {
        requireNotDeleted(org);
        if (org.status === "suspended") {
          throw new AppError("invalid_state_transition", `Organization '${id}' is already suspended`);
        }
        return { ...org, status: "suspended", suspendedAt: now, suspendedReason: reason };
      });
    },

    unsuspend(ctx: RequestContext, id: string): Promise<Organization> {
      return mutate(ctx, id, "organization.unsuspended", (org) => {
        requireNotDeleted(org);
        if (org.status !== "suspended") {
          throw new AppError("invalid_state_transition", `Organization '${id}' is not suspended`);
        }
        return { ...org, status: "active", suspendedAt: null, suspendedReason: null };
      });
    },
  };
}

export type OrgsService = ReturnType<typeof createOrgsService>;
