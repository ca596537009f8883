import type { Clock } from "../../lib/clock.ts";
import { AppError, quoteId } from "../../lib/errors.ts";
import { auditEvent } from "../audit/audit-event.ts";
import type { RequestContext } from "../auth/principal.ts";
import { loadOrg } from "../orgs/orgs.service.ts";
import type { Organization } from "../orgs/orgs.types.ts";
import type { Stores, Transactor } from "../stores.ts";
import { emitEvent, eventChanges, organizationSummary } from "../webhooks/event-data.ts";
import type { BillingProvider } from "./billing.types.ts";

export type CheckoutSessionInput = { plan: string; successUrl: string; cancelUrl: string };

function notConfigured(): AppError {
  return new AppError(
    "billing_provider_not_configured",
    "No billing provider is configured on this server (set STRIPE_SECRET_KEY)",
  );
}

/** Outbound billing: the organization's Stripe customer (created on first need), checkout and portal links. */
export function createBillingService(deps: {
  db: Transactor;
  stores: Pick<Stores, "orgs" | "billing" | "planVersions">;
  clock: Clock;
  /** undefined: no provider configured, and every call answers 409. */
  provider: BillingProvider | undefined;
}) {
  async function liveOrg(orgId: string): Promise<Organization> {
    const org = await loadOrg(deps.stores, orgId);
    if (org.status === "deleted") {
      throw new AppError("invalid_state_transition", `Organization ${quoteId(orgId)} is deleted`);
    }
    return org;
  }

  /** The organization's customer id, created at the provider the first time it is needed. */
  async function ensureCustomer(
    ctx: RequestContext,
    provider: BillingProvider,
    org: Organization,
  ): Promise<string> {
    const known = org.externalIds.stripe_customer_id;
    if (known !== undefined) {
      return known;
    }
    // One key per organization: concurrent or retried first calls get the same customer back.
    const { customerId } = await provider.createCustomer(
      { orgId: org.id, name: org.billingName ?? org.name, email: org.billingEmail },
      `orgplane-customer-${org.id}`,
    );
    // The network call is done outside the transaction; the link is written under the org lock.
    return deps.db.transaction(async (stores) => {
      const locked = await loadOrg(stores, org.id, true);
      const raced = locked.externalIds.stripe_customer_id;
      if (raced !== undefined) {
        return raced;
      }
      const linked: Organization = {
        ...locked,
        externalIds: { ...locked.externalIds, stripe_customer_id: customerId },
        updatedAt: deps.clock.now(),
      };
      await stores.orgs.update(linked);
      const changes = { external_ids: { from: locked.externalIds, to: linked.externalIds } };
      await stores.audit.insert(
        auditEvent(
          ctx,
          {
            orgId: org.id,
            action: "organization.updated",
            targetType: "organization",
            targetId: org.id,
            changes,
          },
          deps.clock,
        ),
      );
      await emitEvent(
        stores,
        org.id,
        "organization.updated",
        { org_id: org.id, organization: organizationSummary(linked), changes: eventChanges(changes) },
        deps.clock,
      );
      return customerId;
    });
  }

  return {
    async createCheckoutSession(
      ctx: RequestContext,
      orgId: string,
      input: CheckoutSessionInput,
    ): Promise<{ url: string }> {
      const org = await liveOrg(orgId);
      const provider = deps.provider;
      if (provider === undefined) {
        throw notConfigured();
      }
      const plan = await deps.stores.planVersions.findCurrentByKey(input.plan);
      const priceId = plan?.definition.stripePriceId ?? null;
      if (plan === undefined || priceId === null) {
        const message = `no plan ${quoteId(input.plan)} with a Stripe price in the catalog`;
        throw new AppError("validation_failed", `plan: ${message}`, { errors: [{ path: "plan", message }] });
      }
      const customerId = await ensureCustomer(ctx, provider, org);
      return provider.createCheckoutSession({
        customerId,
        priceId,
        orgId: org.id,
        planKey: plan.key,
        successUrl: input.successUrl,
        cancelUrl: input.cancelUrl,
      });
    },

    async createPortalSession(
      ctx: RequestContext,
      orgId: string,
      input: { returnUrl: string },
    ): Promise<{ url: string }> {
      const org = await liveOrg(orgId);
      const provider = deps.provider;
      if (provider === undefined) {
        throw notConfigured();
      }
      const customerId = await ensureCustomer(ctx, provider, org);
      return provider.createPortalSession({ customerId, returnUrl: input.returnUrl });
    },
  };
}

export type BillingService = ReturnType<typeof createBillingService>;
