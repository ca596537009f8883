import Stripe from "stripe";
import { z } from "zod";
import type {
  BillingProvider,
  ProviderEvent,
  ProviderEventData,
  WebhookVerifier,
} from "../domain/billing/billing.types.ts";
import { AppError } from "../lib/errors.ts";

/** STRIPE_* (config.ts). */
export type StripeConfig = {
  /** Outbound calls (customers, checkout and portal sessions). A secret: never logged. */
  secretKey: string | undefined;
  /** Verifies `Stripe-Signature` on `POST /v1/webhooks/stripe`. A secret: never logged. */
  webhookSecret: string | undefined;
  /** Where the Stripe API is, e.g. a local stand-in in tests; undefined: api.stripe.com. */
  apiBase: string | undefined;
};

/** A waiting user asked for a checkout or portal link: give up well before their patience does. */
const REQUEST_TIMEOUT_MS = 10_000;
/** Stripe's own default: a signature older than five minutes is refused (replayed captures). */
const SIGNATURE_TOLERANCE_SECONDS = 300;
/** Seconds a client should wait after Stripe was unreachable or overloaded. */
const RETRY_AFTER_SECONDS = 5;

// ---------------------------------------------------------------------------------------------------
// Reading events: only the fields Orgplane uses, bounded; every other field is ignored.

const Id = z.string().min(1).max(255);
const Expandable = z.union([Id, z.looseObject({ id: Id })]).nullish();
const Timestamp = z.number().int().nonnegative().nullish();
const Metadata = z.record(z.string().max(40), z.string().max(500)).nullish();

const CheckoutSession = z.looseObject({
  client_reference_id: z.string().max(255).nullish(),
  metadata: Metadata,
  customer: Expandable,
  subscription: Expandable,
});

const SubscriptionItem = z.looseObject({
  price: z.looseObject({ id: Id }).nullish(),
  quantity: z.number().int().nonnegative().nullish(),
  // Since API version 2025-03-31 the period lives on the item, not the subscription.
  current_period_start: Timestamp,
  current_period_end: Timestamp,
});

const SubscriptionObject = z.looseObject({
  id: Id,
  customer: Expandable,
  status: z.enum([
    "trialing",
    "active",
    "past_due",
    "unpaid",
    "paused",
    "canceled",
    "incomplete",
    "incomplete_expired",
  ]),
  metadata: Metadata,
  items: z.looseObject({ data: z.array(SubscriptionItem).max(100) }).nullish(),
  quantity: z.number().int().nonnegative().nullish(),
  current_period_start: Timestamp,
  current_period_end: Timestamp,
  trial_end: Timestamp,
  cancel_at_period_end: z.boolean().nullish(),
  cancel_at: Timestamp,
  canceled_at: Timestamp,
  ended_at: Timestamp,
});

const InvoiceObject = z.looseObject({
  id: Id.nullish(),
  customer: Expandable,
  created: z.number().int().nonnegative(),
  // Minor units of `currency`; told to the organization's webhook endpoints (invoice.* events).
  amount_due: z.number().int().nullish(),
  amount_paid: z.number().int().nullish(),
  currency: z.string().nullish(),
  hosted_invoice_url: z.string().nullish(),
  // Before API version 2025-03-31: `subscription`; since: `parent.subscription_details.subscription`.
  subscription: Expandable,
  parent: z
    .looseObject({ subscription_details: z.looseObject({ subscription: Expandable }).nullish() })
    .nullish(),
});

const EventEnvelope = z.looseObject({
  id: Id,
  type: z.string().min(1).max(255),
  created: z.number().int().nonnegative(),
  data: z.looseObject({ object: z.looseObject({}) }),
});

const idOf = (value: z.infer<typeof Expandable>): string | null =>
  value === null || value === undefined ? null : typeof value === "string" ? value : value.id;
const dateOf = (seconds: number | null | undefined): Date | null =>
  seconds === null || seconds === undefined ? null : new Date(seconds * 1000);

function parseObject<T extends z.ZodType>(schema: T, value: unknown, type: string): z.infer<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const path = parsed.error.issues[0]?.path.map(String).join(".") ?? "";
    throw new AppError(
      "validation_failed",
      `A '${type}' event has an unexpected shape at data.object.${path}`,
    );
  }
  return parsed.data;
}

function toEventData(type: string, object: unknown): ProviderEventData {
  switch (type) {
    case "checkout.session.completed": {
      const session = parseObject(CheckoutSession, object, type);
      return {
        kind: "checkout_completed",
        orgId: session.client_reference_id ?? session.metadata?.org_id ?? null,
        customerId: idOf(session.customer),
        subscriptionId: idOf(session.subscription),
      };
    }
    case "customer.subscription.created":
    case "customer.subscription.updated":
    case "customer.subscription.deleted": {
      const sub = parseObject(SubscriptionObject, object, type);
      const item = sub.items?.data[0];
      return {
        kind: "subscription",
        deleted: type === "customer.subscription.deleted",
        subscriptionId: sub.id,
        customerId: idOf(sub.customer),
        orgId: sub.metadata?.org_id ?? null,
        status: sub.status,
        priceId: item?.price?.id ?? null,
        quantity: item?.quantity ?? sub.quantity ?? null,
        currentPeriodStart: dateOf(item?.current_period_start ?? sub.current_period_start),
        currentPeriodEnd: dateOf(item?.current_period_end ?? sub.current_period_end),
        trialEnd: dateOf(sub.trial_end),
        cancelAtPeriodEnd: sub.cancel_at_period_end ?? false,
        cancelAt: dateOf(sub.cancel_at),
        canceledAt: dateOf(sub.canceled_at),
        endedAt: dateOf(sub.ended_at),
      };
    }
    case "invoice.created":
    case "invoice.paid":
    case "invoice.payment_failed": {
      const invoice = parseObject(InvoiceObject, object, type);
      return {
        kind:
          type === "invoice.created"
            ? "invoice_created"
            : type === "invoice.paid"
              ? "invoice_paid"
              : "invoice_payment_failed",
        customerId: idOf(invoice.customer),
        subscriptionId:
          idOf(invoice.subscription) ?? idOf(invoice.parent?.subscription_details?.subscription),
        invoiceCreatedAt: new Date(invoice.created * 1000),
        invoice: {
          id: invoice.id ?? null,
          amountDueMinor: invoice.amount_due ?? null,
          amountPaidMinor: invoice.amount_paid ?? null,
          currency: invoice.currency ?? null,
          hostedInvoiceUrl: invoice.hosted_invoice_url ?? null,
        },
      };
    }
    default:
      return { kind: "ignored" };
  }
}

/** Verifies `Stripe-Signature` with the SDK; undefined when STRIPE_WEBHOOK_SECRET is unset. */
export function createStripeWebhookVerifier(config: StripeConfig | undefined): WebhookVerifier | undefined {
  const secret = config?.webhookSecret;
  if (secret === undefined) {
    return undefined;
  }
  // Signature checks need no API key; the SDK's webhook helpers are the same on every instance.
  const webhooks = Stripe.webhooks;
  return {
    verify(rawBody, signatureHeader, receivedAt): ProviderEvent {
      if (signatureHeader === undefined || signatureHeader.length === 0) {
        throw new AppError("invalid_signature", "The Stripe-Signature header is missing");
      }
      let verified: unknown;
      try {
        verified = webhooks.constructEvent(
          Buffer.from(rawBody),
          signatureHeader.slice(0, 4096),
          secret,
          SIGNATURE_TOLERANCE_SECONDS,
          undefined,
          receivedAt.getTime(),
        );
      } catch {
        throw new AppError(
          "invalid_signature",
          "The Stripe-Signature header does not verify against this body and the webhook secret (or is too old)",
        );
      }
      const envelope = EventEnvelope.safeParse(verified);
      if (!envelope.success) {
        throw new AppError("validation_failed", "The body is not a Stripe event");
      }
      const event = envelope.data;
      return {
        id: event.id,
        type: event.type,
        createdAt: new Date(event.created * 1000),
        data: toEventData(event.type, event.data.object),
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Outbound calls

function clientOptions(apiBase: string | undefined): Stripe.StripeConfig {
  const options: Stripe.StripeConfig = { timeout: REQUEST_TIMEOUT_MS };
  if (apiBase !== undefined) {
    const url = new URL(apiBase);
    options.host = url.hostname;
    options.protocol = url.protocol === "http:" ? "http" : "https";
    if (url.port !== "") {
      options.port = Number(url.port);
    }
  }
  return options;
}

/** Stripe down or overloaded is a 503 to retry; a refusal is a 502 naming Stripe's error type, never its message. */
function providerError(err: unknown): AppError {
  if (
    err instanceof Stripe.errors.StripeConnectionError ||
    err instanceof Stripe.errors.StripeRateLimitError ||
    (err instanceof Stripe.errors.StripeError && (err.statusCode ?? 500) >= 500)
  ) {
    return new AppError("service_unavailable", "Stripe could not be reached; retry later", {
      retryAfterSeconds: RETRY_AFTER_SECONDS,
      cause: err,
    });
  }
  if (err instanceof Stripe.errors.StripeError) {
    const code = err.code === undefined ? "" : ` (${err.code.slice(0, 64)})`;
    return new AppError("billing_provider_error", `Stripe refused the request: ${err.type}${code}`, {
      cause: err,
    });
  }
  return new AppError("billing_provider_error", "Stripe returned an unexpected answer", { cause: err });
}

async function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw providerError(err);
  }
}

function requireUrl(url: string | null | undefined): { url: string } {
  if (url === null || url === undefined) {
    throw new AppError("billing_provider_error", "Stripe returned a session without a URL");
  }
  return { url };
}

/** Customers, checkout and portal sessions through the SDK; undefined when STRIPE_SECRET_KEY is unset. */
export function createStripeProvider(config: StripeConfig | undefined): BillingProvider | undefined {
  if (config?.secretKey === undefined) {
    return undefined;
  }
  const stripe = new Stripe(config.secretKey, clientOptions(config.apiBase));
  return {
    async createCustomer(input, idempotencyKey) {
      const customer = await call(() =>
        stripe.customers.create(
          {
            name: input.name,
            ...(input.email === null ? {} : { email: input.email }),
            metadata: { org_id: input.orgId },
          },
          { idempotencyKey },
        ),
      );
      return { customerId: customer.id };
    },

    async createCheckoutSession(input) {
      const metadata = { org_id: input.orgId, plan: input.planKey };
      const session = await call(() =>
        stripe.checkout.sessions.create({
          mode: "subscription",
          customer: input.customerId,
          client_reference_id: input.orgId,
          line_items: [{ price: input.priceId, quantity: 1 }],
          success_url: input.successUrl,
          cancel_url: input.cancelUrl,
          metadata,
          // The subscription's own events carry the organization, whatever order they arrive in.
          subscription_data: { metadata },
        }),
      );
      return requireUrl(session.url);
    },

    async createPortalSession(input) {
      const session = await call(() =>
        stripe.billingPortal.sessions.create({ customer: input.customerId, return_url: input.returnUrl }),
      );
      return requireUrl(session.url);
    },
  };
}
