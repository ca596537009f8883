import type { PlanVersion } from "../catalog/catalog.types.ts";
import type { Subscription } from "../subscriptions/subscriptions.types.ts";

/**
 * A billing provider event, already verified and reduced to what Orgplane reads from it. The adapter
 * (src/infra/stripe.ts) owns the provider's payload shapes; the domain sees only these.
 */
export type ProviderEvent = {
  id: string;
  type: string;
  /** The provider's creation time of the event: the order in which states are applied. */
  createdAt: Date;
  data: ProviderEventData;
};

export type ProviderSubscriptionStatus =
  | "trialing"
  | "active"
  | "past_due"
  | "unpaid"
  | "paused"
  | "canceled"
  | "incomplete"
  | "incomplete_expired";

export type ProviderEventData =
  | {
      kind: "checkout_completed";
      orgId: string | null;
      customerId: string | null;
      subscriptionId: string | null;
    }
  | {
      kind: "subscription";
      /** customer.subscription.deleted: the subscription has ended. */
      deleted: boolean;
      subscriptionId: string;
      customerId: string | null;
      orgId: string | null;
      status: ProviderSubscriptionStatus;
      priceId: string | null;
      quantity: number | null;
      currentPeriodStart: Date | null;
      currentPeriodEnd: Date | null;
      trialEnd: Date | null;
      cancelAtPeriodEnd: boolean;
      cancelAt: Date | null;
      canceledAt: Date | null;
      endedAt: Date | null;
    }
  | {
      kind: "invoice_created" | "invoice_paid" | "invoice_payment_failed";
      customerId: string | null;
      subscriptionId: string | null;
      invoiceCreatedAt: Date;
      /** What the organization's webhook endpoints are told of the invoice; absent: the adapter read none. */
      invoice?: InvoiceFacts;
    }
  /** An event type Orgplane does not act on: recorded, answered 200. */
  | { kind: "ignored" };

/** An invoice's identity and amounts as the provider states them (amounts in minor units of `currency`). */
export type InvoiceFacts = {
  id: string | null;
  amountDueMinor: number | null;
  amountPaidMinor: number | null;
  currency: string | null;
  hostedInvoiceUrl: string | null;
};

/** Checks a webhook's signature and reads its event; throws `invalid_signature` when it does not verify. */
export type WebhookVerifier = {
  verify(rawBody: Uint8Array, signatureHeader: string | undefined, receivedAt: Date): ProviderEvent;
};

export type CheckoutSessionRequest = {
  customerId: string;
  priceId: string;
  orgId: string;
  planKey: string;
  successUrl: string;
  cancelUrl: string;
};

/** Calls to the billing provider. Failures surface as `service_unavailable` or `billing_provider_error`. */
export type BillingProvider = {
  /** `idempotencyKey`: the same key creates one customer however often it is retried. */
  createCustomer(
    input: { orgId: string; name: string; email: string | null },
    idempotencyKey: string,
  ): Promise<{ customerId: string }>;
  createCheckoutSession(input: CheckoutSessionRequest): Promise<{ url: string }>;
  createPortalSession(input: { customerId: string; returnUrl: string }): Promise<{ url: string }>;
};

/** What happened to a webhook event, returned to Stripe (and to whoever reads the log). */
export type WebhookOutcome =
  /** The event changed state. */
  | "applied"
  /** This event id was processed before: nothing done. */
  | "duplicate"
  /** Newer provider state was already applied: nothing changed. */
  | "stale"
  /** Nothing to change (unknown type, or the state already matched). */
  | "ignored"
  /** No organization (or plan) matched the event. */
  | "unmatched";

/** The subscriptions-table access the Stripe sync needs, every read and write filtered by org. */
export type BillingSyncStore = {
  /** Records the event id; false when it was recorded before (a replay). */
  recordEvent(event: {
    id: string;
    type: string;
    eventCreatedAt: Date;
    orgId: string | null;
    processedAt: Date;
  }): Promise<boolean>;
  findOrgIdBySubscription(providerSubscriptionId: string): Promise<string | undefined>;
  /** A live (not deleted) organization whose external_ids.stripe_customer_id is this customer. */
  findOrgIdByCustomer(customerId: string): Promise<string | undefined>;
  findSubscriptionForUpdate(orgId: string): Promise<Subscription | undefined>;
  insertSubscription(subscription: Subscription): Promise<void>;
  updateSubscription(subscription: Subscription): Promise<void>;
  /** The current plan version whose definition names this Stripe price. */
  findPlanByStripePrice(priceId: string): Promise<PlanVersion | undefined>;
};
