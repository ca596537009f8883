import { anchorDayOf, periodEnd } from "../../lib/billing-period.ts";
import type { Clock } from "../../lib/clock.ts";
import { AppError } from "../../lib/errors.ts";
import { isId, newId } from "../../lib/ids.ts";
import type { JsonValue } from "../../lib/json.ts";
import { creditPeriodOf } from "../alerts/alert-period.ts";
import { recordAlert } from "../alerts/alerts.service.ts";
import type { AuditChanges, AuditEvent } from "../audit/audit.types.ts";
import { diffViews } from "../audit/audit-event.ts";
import type { PlanVersion } from "../catalog/catalog.types.ts";
import type { Organization } from "../orgs/orgs.types.ts";
import type { Stores, Transactor } from "../stores.ts";
import { emitSubscriptionEvent } from "../subscriptions/subscriptions.service.ts";
import type { Subscription, SubscriptionStatus } from "../subscriptions/subscriptions.types.ts";
import { emitEvent, eventChanges, organizationSummary } from "../webhooks/event-data.ts";
import type {
  ProviderEvent,
  ProviderEventData,
  ProviderSubscriptionStatus,
  WebhookOutcome,
  WebhookVerifier,
} from "./billing.types.ts";

type SubscriptionData = Extract<ProviderEventData, { kind: "subscription" }>;
type InvoiceData = Extract<
  ProviderEventData,
  { kind: "invoice_created" | "invoice_paid" | "invoice_payment_failed" }
>;
type CheckoutData = Extract<ProviderEventData, { kind: "checkout_completed" }>;
type TxStores = Pick<Stores, "orgs" | "audit" | "billing" | "planVersions" | "alerts" | "webhooks">;

export const PAYMENT_FAILED_REASON = "payment_failed";
const PROVIDER_PAUSED_REASON = "paused_by_provider";

/** Stripe's statuses onto Orgplane's; `incomplete` (first payment pending) counts as past due. */
function mapStatus(status: ProviderSubscriptionStatus): SubscriptionStatus {
  switch (status) {
    case "incomplete":
      return "past_due";
    case "incomplete_expired":
      return "canceled";
    default:
      return status;
  }
}

function auditView(s: Subscription): Record<string, JsonValue> {
  const iso = (d: Date | null) => d?.toISOString() ?? null;
  return {
    plan_version_id: s.planVersionId,
    status: s.status,
    current_period_start: s.currentPeriodStart.toISOString(),
    current_period_end: s.currentPeriodEnd.toISOString(),
    trial_end: iso(s.trialEnd),
    cancel_at: iso(s.cancelAt),
    cancel_at_period_end: s.cancelAtPeriodEnd,
    canceled_at: iso(s.canceledAt),
    pause_reason: s.pauseReason,
    seats: s.seats,
    provider_customer_id: s.providerCustomerId,
    provider_subscription_id: s.providerSubscriptionId,
    last_invoice_at: iso(s.lastInvoiceAt),
  };
}

/** The subscription event a provider-driven change announces; undefined: none of its own. */
const SUBSCRIPTION_EVENT: Record<
  string,
  "subscription.created" | "subscription.updated" | "subscription.canceled" | undefined
> = {
  "subscription.created": "subscription.created",
  "subscription.canceled": "subscription.canceled",
  "subscription.updated": "subscription.updated",
  "subscription.linked": "subscription.updated",
  "subscription.payment_succeeded": "subscription.updated",
  "subscription.payment_failed": "subscription.updated",
  // Only `last_invoice_at` moves: the `invoice.created` event of the same Stripe event tells it.
  "subscription.invoice_created": undefined,
};

const INVOICE_EVENT = {
  invoice_created: "invoice.created",
  invoice_paid: "invoice.paid",
  invoice_payment_failed: "invoice.payment_failed",
} as const;

/** Older provider state never overwrites newer: an event created before the applied state is stale. */
function isStale(current: Subscription | undefined, event: ProviderEvent): boolean {
  // Stripe's `created` has one-second resolution, so events of the same second apply in arrival order.
  return current?.providerStateAt != null && event.createdAt.getTime() < current.providerStateAt.getTime();
}

export type StripeWebhooksDeps = {
  db: Transactor;
  clock: Clock;
  /** The plan an organization falls back to when its provider subscription ends; undefined: none. */
  fallbackPlanKey: string | undefined;
  /** undefined: no webhook secret configured, and deliveries answer 409. */
  verifier: WebhookVerifier | undefined;
};

/**
 * Applies verified Stripe events to organizations and subscriptions. Each event is recorded by id in the
 * same transaction as its effect, so a replay has no second effect and a failed one is retried whole.
 */
export function createStripeWebhooksService(deps: StripeWebhooksDeps) {
  const { clock } = deps;

  function audit(
    orgId: string,
    action: string,
    targetType: string,
    targetId: string,
    changes: AuditChanges,
    eventId: string,
  ): AuditEvent {
    return {
      id: newId("aud"),
      orgId,
      actorType: "system",
      actorId: "stripe",
      action,
      targetType,
      targetId,
      changes,
      ip: null,
      userAgent: null,
      // The provider's event id stands in for a request id: it is what an operator searches Stripe by.
      requestId: eventId,
      createdAt: clock.now(),
    };
  }

  async function resolveOrg(
    stores: TxStores,
    hints: { orgId: string | null; subscriptionId: string | null; customerId: string | null },
  ): Promise<string | undefined> {
    if (hints.orgId !== null && isId("org", hints.orgId)) {
      const org = await stores.orgs.find(hints.orgId);
      if (org !== undefined && org.status !== "deleted") {
        return org.id;
      }
    }
    if (hints.subscriptionId !== null) {
      const found = await stores.billing.findOrgIdBySubscription(hints.subscriptionId);
      if (found !== undefined) {
        return found;
      }
    }
    return hints.customerId === null ? undefined : stores.billing.findOrgIdByCustomer(hints.customerId);
  }

  function hintsOf(data: ProviderEventData) {
    switch (data.kind) {
      case "checkout_completed":
      case "subscription":
        return { orgId: data.orgId, subscriptionId: data.subscriptionId, customerId: data.customerId };
      case "invoice_created":
      case "invoice_paid":
      case "invoice_payment_failed":
        return { orgId: null, subscriptionId: data.subscriptionId, customerId: data.customerId };
      case "ignored":
        return undefined;
    }
  }

  async function write(
    stores: TxStores,
    event: ProviderEvent,
    before: Subscription | undefined,
    after: Subscription,
    action: string,
  ): Promise<WebhookOutcome> {
    const changes = diffViews(before === undefined ? undefined : auditView(before), auditView(after));
    if (before !== undefined && Object.keys(changes).length === 0) {
      if (before.providerStateAt?.getTime() !== after.providerStateAt?.getTime()) {
        await stores.billing.updateSubscription(after);
      }
      return "ignored";
    }
    if (before === undefined) {
      await stores.billing.insertSubscription(after);
    } else {
      await stores.billing.updateSubscription(after);
    }
    await stores.audit.insert(audit(after.orgId, action, "subscription", after.id, changes, event.id));
    const type = SUBSCRIPTION_EVENT[action];
    if (type !== undefined) {
      await emitSubscriptionEvent(stores, type, after, changes, clock);
    }
    return "applied";
  }

  async function linkCustomer(
    stores: TxStores,
    org: Organization,
    customerId: string,
    eventId: string,
  ): Promise<boolean> {
    // A customer already linked stays: Orgplane created it, and a signed event does not move an org's billing.
    if (org.externalIds.stripe_customer_id !== undefined) {
      return false;
    }
    const now = clock.now();
    const linked: Organization = {
      ...org,
      externalIds: { ...org.externalIds, stripe_customer_id: customerId },
      updatedAt: now,
    };
    await stores.orgs.update(linked);
    const changes: AuditChanges = { external_ids: { from: org.externalIds, to: linked.externalIds } };
    await stores.audit.insert(
      audit(org.id, "organization.updated", "organization", org.id, changes, eventId),
    );
    await emitEvent(
      stores,
      org.id,
      "organization.updated",
      { org_id: org.id, organization: organizationSummary(linked), changes: eventChanges(changes) },
      clock,
    );
    return true;
  }

  async function onCheckout(stores: TxStores, event: ProviderEvent, org: Organization, data: CheckoutData) {
    const linked =
      data.customerId === null ? false : await linkCustomer(stores, org, data.customerId, event.id);
    const current = await stores.billing.findSubscriptionForUpdate(org.id);
    // The session names no price: the subscription row itself comes from customer.subscription.* events.
    if (current === undefined || data.subscriptionId === null || isStale(current, event)) {
      return linked ? "applied" : "ignored";
    }
    const after: Subscription = {
      ...current,
      provider: "stripe",
      providerCustomerId: data.customerId ?? current.providerCustomerId,
      providerSubscriptionId: data.subscriptionId,
      updatedAt: clock.now(),
    };
    const outcome = await write(stores, event, current, after, "subscription.linked");
    return linked ? "applied" : outcome;
  }

  async function onSubscription(
    stores: TxStores,
    event: ProviderEvent,
    org: Organization,
    data: SubscriptionData,
  ): Promise<WebhookOutcome> {
    if (data.customerId !== null) {
      await linkCustomer(stores, org, data.customerId, event.id);
    }
    const current = await stores.billing.findSubscriptionForUpdate(org.id);
    if (isStale(current, event)) {
      return "stale";
    }
    // The organization follows another Stripe subscription: only a newly created one may replace it.
    const another =
      current?.providerSubscriptionId != null && current.providerSubscriptionId !== data.subscriptionId;
    if (another && event.type !== "customer.subscription.created") {
      return "ignored";
    }
    const now = clock.now();
    const status = mapStatus(data.status);
    if (data.deleted || status === "canceled") {
      if (current === undefined) {
        return "ignored";
      }
      const endedAt = data.endedAt ?? data.canceledAt ?? event.createdAt;
      const fallback =
        deps.fallbackPlanKey === undefined
          ? undefined
          : await stores.planVersions.findCurrentByKey(deps.fallbackPlanKey);
      const canceled: Subscription = {
        ...current,
        status: "canceled",
        canceledAt: data.canceledAt ?? endedAt,
        cancelAt: null,
        cancelAtPeriodEnd: false,
        trialEnd: null,
        pauseReason: null,
        providerSubscriptionId: null,
        providerStateAt: event.createdAt,
        updatedAt: now,
      };
      if (fallback === undefined) {
        return write(stores, event, current, canceled, "subscription.canceled");
      }
      // The provider subscription has ended: the fallback plan applies from the moment it ended.
      const anchor = anchorDayOf(endedAt);
      const interval = fallback.definition.price?.interval ?? "month";
      const onFallback: Subscription = {
        ...canceled,
        planVersionId: fallback.id,
        status: "active",
        interval,
        billingAnchorDay: anchor,
        currentPeriodStart: endedAt,
        currentPeriodEnd: periodEnd(endedAt, anchor, interval),
      };
      return write(stores, event, current, onFallback, "subscription.canceled");
    }

    const plan: PlanVersion | undefined =
      data.priceId === null ? undefined : await stores.billing.findPlanByStripePrice(data.priceId);
    const planVersionId = plan?.id ?? current?.planVersionId;
    if (planVersionId === undefined) {
      // Nothing to attach the state to: no subscription yet and a price no plan names.
      return "unmatched";
    }
    const start = data.currentPeriodStart ?? current?.currentPeriodStart ?? event.createdAt;
    const interval = plan?.definition.price?.interval ?? current?.interval ?? "month";
    const end =
      data.currentPeriodEnd ?? current?.currentPeriodEnd ?? periodEnd(start, anchorDayOf(start), interval);
    const pauseReason =
      status === "active" || status === "trialing"
        ? null
        : status === "paused"
          ? (current?.pauseReason ?? PROVIDER_PAUSED_REASON)
          : (current?.pauseReason ?? null);
    const after: Subscription = {
      id: current?.id ?? newId("sub"),
      orgId: org.id,
      planVersionId,
      status,
      interval,
      billingAnchorDay:
        data.currentPeriodStart === null
          ? (current?.billingAnchorDay ?? anchorDayOf(start))
          : anchorDayOf(start),
      currentPeriodStart: start,
      currentPeriodEnd: end,
      trialEnd: data.trialEnd,
      cancelAt: data.cancelAt,
      cancelAtPeriodEnd: data.cancelAtPeriodEnd,
      canceledAt: data.canceledAt,
      pauseReason,
      seats: data.quantity ?? current?.seats ?? 1,
      provider: "stripe",
      providerCustomerId: data.customerId ?? current?.providerCustomerId ?? null,
      providerSubscriptionId: data.subscriptionId,
      providerStateAt: event.createdAt,
      lastInvoiceAt: current?.lastInvoiceAt ?? null,
      createdAt: current?.createdAt ?? now,
      updatedAt: now,
    };
    return write(
      stores,
      event,
      current,
      after,
      current === undefined ? "subscription.created" : "subscription.updated",
    );
  }

  async function onInvoice(
    stores: TxStores,
    event: ProviderEvent,
    org: Organization,
    data: InvoiceData,
  ): Promise<WebhookOutcome> {
    const current = await stores.billing.findSubscriptionForUpdate(org.id);
    if (current === undefined) {
      return "ignored";
    }
    const now = clock.now();
    if (data.kind === "invoice_created") {
      // Independent of subscription state: the newest invoice date wins, in whatever order they arrive.
      if (
        current.lastInvoiceAt !== null &&
        current.lastInvoiceAt.getTime() >= data.invoiceCreatedAt.getTime()
      ) {
        return "ignored";
      }
      return write(
        stores,
        event,
        current,
        { ...current, lastInvoiceAt: data.invoiceCreatedAt, updatedAt: now },
        "subscription.invoice_created",
      );
    }
    // A payment outcome concerns the subscription it was for; an invoice of an older one changes nothing.
    if (data.subscriptionId === null || data.subscriptionId !== current.providerSubscriptionId) {
      return "ignored";
    }
    if (isStale(current, event)) {
      return "stale";
    }
    if (data.kind === "invoice_paid") {
      const recovering =
        current.status === "past_due" ||
        current.status === "unpaid" ||
        (current.status === "paused" && current.pauseReason === PAYMENT_FAILED_REASON);
      if (!recovering) {
        return "ignored";
      }
      return write(
        stores,
        event,
        current,
        { ...current, status: "active", pauseReason: null, providerStateAt: event.createdAt, updatedAt: now },
        "subscription.payment_succeeded",
      );
    }
    if (current.status === "canceled") {
      return "ignored";
    }
    const outcome = await write(
      stores,
      event,
      current,
      {
        ...current,
        // Stripe's own `unpaid` (retries exhausted) is kept; otherwise the subscription is past due.
        status: current.status === "unpaid" ? "unpaid" : "past_due",
        pauseReason: PAYMENT_FAILED_REASON,
        providerStateAt: event.createdAt,
        updatedAt: now,
      },
      "subscription.payment_failed",
    );
    // The billing contacts are emailed once per period (docs/alerts.md); the alert commits with the event.
    await recordAlert(
      stores,
      {
        orgId: org.id,
        type: "payment_failed",
        periodStart: creditPeriodOf(current, now).start,
        details: {
          stripe_event_id: event.id,
          subscription_status: current.status === "unpaid" ? "unpaid" : "past_due",
        },
      },
      clock,
    );
    return outcome;
  }

  /** Apply one verified event; safe to call again with the same event. */
  function handle(event: ProviderEvent): Promise<WebhookOutcome> {
    return deps.db.transaction(async (stores) => {
      const hints = hintsOf(event.data);
      const orgId = hints === undefined ? undefined : await resolveOrg(stores, hints);
      // Recorded first: of two concurrent deliveries the second waits on this row and then finds it.
      const first = await stores.billing.recordEvent({
        id: event.id,
        type: event.type,
        eventCreatedAt: event.createdAt,
        orgId: orgId ?? null,
        processedAt: clock.now(),
      });
      if (!first) {
        return "duplicate";
      }
      if (event.data.kind === "ignored") {
        return "ignored";
      }
      if (orgId === undefined) {
        return "unmatched";
      }
      const org = await stores.orgs.findForUpdate(orgId);
      if (org === undefined || org.status === "deleted") {
        return "unmatched";
      }
      const data = event.data;
      if (
        data.kind === "invoice_created" ||
        data.kind === "invoice_paid" ||
        data.kind === "invoice_payment_failed"
      ) {
        // Every invoice event of a known organization is told once (a replay is a duplicate above), whatever
        // it changes in the subscription: the receiver learns of each invoice and payment outcome.
        await emitEvent(
          stores,
          org.id,
          INVOICE_EVENT[data.kind],
          {
            org_id: org.id,
            invoice_id: data.invoice?.id ?? null,
            customer_id: data.customerId,
            subscription_id: data.subscriptionId,
            amount_due: data.invoice?.amountDueMinor ?? null,
            amount_paid: data.invoice?.amountPaidMinor ?? null,
            currency: data.invoice?.currency ?? null,
            hosted_invoice_url: data.invoice?.hostedInvoiceUrl ?? null,
            invoice_created_at: data.invoiceCreatedAt.toISOString(),
            stripe_event_id: event.id,
          },
          clock,
        );
      }
      switch (event.data.kind) {
        case "checkout_completed":
          return onCheckout(stores, event, org, event.data);
        case "subscription":
          return onSubscription(stores, event, org, event.data);
        default:
          return onInvoice(stores, event, org, event.data);
      }
    });
  }

  return {
    handle,
    /** Verify a delivery's signature over its raw bytes, then apply its event. */
    async receive(
      rawBody: Uint8Array,
      signatureHeader: string | undefined,
    ): Promise<{ eventId: string; type: string; outcome: WebhookOutcome }> {
      if (deps.verifier === undefined) {
        throw new AppError(
          "billing_provider_not_configured",
          "Stripe webhooks are not configured on this server (set STRIPE_WEBHOOK_SECRET)",
        );
      }
      const event = deps.verifier.verify(rawBody, signatureHeader, clock.now());
      return { eventId: event.id, type: event.type, outcome: await handle(event) };
    },
  };
}

export type StripeWebhooksService = ReturnType<typeof createStripeWebhooksService>;
