import type {
  DeliveryState,
  WebhookDelivery,
  WebhookEndpoint,
  WebhookEvent,
  WebhookEventType,
} from "./webhooks.types.ts";

/**
 * An organization has at most this many endpoints (as Stripe caps them at 16): each event fans out to every
 * matching one inside the causing transaction, so the fan-out is bounded.
 */
export const MAX_ENDPOINTS_PER_ORG = 20;

/** What an attempt needs, read with the claim in one round trip. */
export type ClaimedDelivery = {
  id: string;
  orgId: string;
  endpointId: string;
  /** Attempts before this one: the outcome is recorded only if it is still this (see `recordOutcomes`). */
  attempts: number;
  event: {
    id: string;
    type: WebhookEventType;
    sequence: number;
    createdAt: Date;
    /** The event's data as stored (jsonb rendered as text): spliced into the body without a parse. */
    dataJson: string;
  };
  endpoint: {
    url: string;
    secret: string;
    previousSecret: string | null;
    previousSecretExpiresAt: Date | null;
  };
};

/** The result of one attempt, as recorded on its delivery. */
export type DeliveryOutcome = {
  id: string;
  orgId: string;
  endpointId: string;
  /** The claim's attempt count: a row whose count moved on (another claimer after a lost lease) is left alone. */
  previousAttempts: number;
  state: DeliveryState;
  attempts: number;
  nextAttemptAt: Date | null;
  lastAttemptAt: Date;
  responseStatus: number | null;
  latencyMs: number;
  lastError: string | null;
  /** Set on success. */
  deliveredAt: Date | null;
};

/** An endpoint that has failed since `failingSince` and is still active. */
export type FailingEndpoint = { orgId: string; endpointId: string; failingSince: Date };

export type EndpointPatch = Partial<
  Pick<
    WebhookEndpoint,
    | "url"
    | "description"
    | "eventTypes"
    | "isActive"
    | "secret"
    | "previousSecret"
    | "previousSecretExpiresAt"
    | "disabledAt"
    | "disabledReason"
    | "failingSince"
  >
> & { updatedAt: Date };

/**
 * Webhook storage. Every query filters by `org_id`, except the workers' claim of due deliveries across
 * organizations (the delivery engine's sweep, not a tenant query). `appendEvent` is the outbox write: callers
 * run it inside the transaction of the change that causes the event (see `emitWebhookEvent`).
 */
export type WebhooksStore = {
  /**
   * Insert the event with the organization's next sequence number (the returned event carries it), create
   * one `pending` delivery due at `createdAt` for each active endpoint whose `event_types` is empty or holds
   * the type, and wake the delivery workers when the transaction commits (NOTIFY).
   */
  appendEvent(event: Omit<WebhookEvent, "sequence">): Promise<WebhookEvent>;
  /**
   * Like `appendEvent`, but the one delivery goes to `endpointId` only (whatever its state and filter),
   * already leased to the caller until `leaseUntil` so that no worker attempts it meanwhile: `webhook.test`.
   */
  appendEventFor(
    event: Omit<WebhookEvent, "sequence">,
    endpointId: string,
    deliveryId: string,
    leaseUntil: Date,
  ): Promise<WebhookEvent>;

  insertEndpoint(endpoint: WebhookEndpoint): Promise<void>;
  findEndpoint(orgId: string, endpointId: string): Promise<WebhookEndpoint | undefined>;
  /** The endpoint locked until the transaction ends (updates of one endpoint take turns). */
  findEndpointForUpdate(orgId: string, endpointId: string): Promise<WebhookEndpoint | undefined>;
  /** Newest first (by id, descending, before `before`). */
  listEndpoints(query: {
    orgId: string;
    limit: number;
    before: string | undefined;
  }): Promise<WebhookEndpoint[]>;
  updateEndpoint(
    orgId: string,
    endpointId: string,
    patch: EndpointPatch,
  ): Promise<WebhookEndpoint | undefined>;
  /** Deletes the endpoint and its deliveries; false when there was none. */
  deleteEndpoint(orgId: string, endpointId: string): Promise<boolean>;

  findDelivery(orgId: string, endpointId: string, deliveryId: string): Promise<WebhookDelivery | undefined>;
  /** Newest first (by id, descending, before `before`). */
  listDeliveries(query: {
    orgId: string;
    endpointId: string;
    limit: number;
    before: string | undefined;
    state: DeliveryState | undefined;
  }): Promise<WebhookDelivery[]>;

  /**
   * Claim up to `limit` pending deliveries due at `now` whose endpoint is active and whose lease (if any) has
   * passed, oldest due first, across organizations: each is leased until `leaseUntil`, so another claimer
   * skips it while its attempt runs and takes it again if this one dies.
   */
  claimDue(
    now: Date,
    leaseUntil: Date,
    limit: number,
    /** Endpoints to leave out of this claim (those already at their in-flight cap in the caller). */
    excludeEndpointIds?: readonly string[],
  ): Promise<ClaimedDelivery[]>;
  /** Give claimed deliveries back unattempted: claimable again at once. */
  releaseClaims(deliveryIds: readonly string[]): Promise<void>;
  /**
   * Lease one delivery for an attempt now (redeliver): back to `pending`, due at `now`, leased until
   * `leaseUntil`. Undefined when absent or another worker holds its lease at `now`.
   */
  claimOne(
    orgId: string,
    endpointId: string,
    deliveryId: string,
    now: Date,
    leaseUntil: Date,
  ): Promise<ClaimedDelivery | undefined>;
  /** The claimed form of one delivery already leased by the caller (`appendEventFor`). */
  findClaimed(orgId: string, deliveryId: string): Promise<ClaimedDelivery | undefined>;
  /**
   * Record attempts in one statement; each outcome applies only while its delivery is still pending with
   * `previousAttempts` attempts, and clears the lease. Then each endpoint's `failing_since`: cleared by a
   * success, else set to its earliest failure here when unset. Answers the active endpoints among those that
   * failed here whose `failing_since` is at or before `disableBefore` (to be disabled).
   */
  recordOutcomes(outcomes: readonly DeliveryOutcome[], disableBefore: Date): Promise<FailingEndpoint[]>;
  /**
   * Disable the endpoint if it is still active and failing since at or before `disableBefore`; the disabled
   * endpoint, or undefined when it was not (re-enabled or succeeded meanwhile).
   */
  disableEndpoint(
    orgId: string,
    endpointId: string,
    disableBefore: Date,
    at: Date,
    reason: string,
  ): Promise<WebhookEndpoint | undefined>;
  /** The earliest `next_attempt_at` (or lease end) of a pending delivery of an active endpoint, if any. */
  nextDueAt(): Promise<Date | undefined>;
  /** Finished deliveries whose last attempt is at or after `since`: how many were delivered, how many failed. */
  finishedSince(orgId: string, since: Date): Promise<{ delivered: number; failed: number }>;
  /** Email addresses of the organization's owners. */
  ownerEmails(orgId: string): Promise<string[]>;
};
