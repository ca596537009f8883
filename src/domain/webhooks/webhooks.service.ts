import type { Clock } from "../../lib/clock.ts";
import { decodeCursor, type Page, toPage } from "../../lib/cursor.ts";
import { AppError, notFound } from "../../lib/errors.ts";
import { isId, newId } from "../../lib/ids.ts";
import type { JsonValue } from "../../lib/json.ts";
import { passOnWake } from "../../lib/single-flight.ts";
import { auditEvent, diffViews } from "../audit/audit-event.ts";
import type { RequestContext } from "../auth/principal.ts";
import { enqueueMail } from "../mail/mail.ts";
import { loadOrg } from "../orgs/orgs.service.ts";
import type { Stores, Transactor } from "../stores.ts";
import { emitWebhookEvent } from "./emit.ts";
import type { WebhookAttempt, WebhookSender } from "./sender.ts";
import { newWebhookSecret, signatureHeader } from "./signing.ts";
import { checkEndpointUrl } from "./url-policy.ts";
import {
  type ClaimedDelivery,
  type DeliveryOutcome,
  type FailingEndpoint,
  MAX_ENDPOINTS_PER_ORG,
  type WebhooksStore,
} from "./webhooks.store.ts";
import {
  ATTEMPT_TIMEOUT_MS,
  type DeliveryState,
  DISABLE_AFTER_MS,
  RETRY_SCHEDULE_MS,
  type WebhookDelivery,
  type WebhookEndpoint,
  type WebhookEventType,
} from "./webhooks.types.ts";

/** A rotation keeps the previous secret signing for at most a week, as API key rotation does. */
export const MAX_SECRET_OVERLAP_SECONDS = 7 * 24 * 60 * 60;

/**
 * In-flight attempts per process: enough that one slow endpoint (up to the 15 s timeout each) does not hold
 * back the rest, few enough that sockets and memory stay small.
 */
const DEFAULT_MAX_IN_FLIGHT = 64;
/**
 * In-flight attempts to one endpoint: half the process's, so an endpoint that is slow (or hangs until the
 * timeout) with a backlog leaves the other half to everyone else.
 */
const DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT = 32;
/** Deliveries claimed per round trip. */
const CLAIM_BATCH = 64;
/**
 * A claim refills the in-flight set once this many slots are free (a quarter of them when fewer), so claims
 * are batches, not single rows.
 */
const MIN_CLAIM = 8;
/**
 * A claimed delivery is hidden from other workers this long: the attempt's timeout plus time to record it.
 * A worker that dies leaves its claims to be attempted again once this passes.
 */
const LEASE_MARGIN_MS = 15_000;
/** The 7-day window of `webhook_delivery_rate_7d`. */
const RATE_WINDOW_MS = 7 * 24 * 3_600_000;
/** Wake-ups further ahead than this are left to the minute sweep (a long retry is then at most a minute late). */
const WAKE_HORIZON_MS = 60_000;
const DISABLED_REASON = "failing continuously for 5 days";

export type CreateEndpointInput = {
  url: string;
  description: string | null;
  eventTypes: WebhookEventType[];
  isActive: boolean;
};

export type UpdateEndpointInput = {
  url?: string;
  description?: string | null;
  eventTypes?: WebhookEventType[];
  isActive?: boolean;
};

/** Asks a scheduler (pg-boss) to wake the engine at `at`, in any process: the due retries of the next minute. */
export type WakeScheduler = { wakeAt(at: Date): void };

/** The client-visible, non-secret state of an endpoint, in API field names, for audit diffs. */
function auditView(endpoint: WebhookEndpoint): Record<string, JsonValue> {
  return {
    url: endpoint.url,
    description: endpoint.description,
    event_types: endpoint.eventTypes,
    is_active: endpoint.isActive,
  };
}

function normaliseTypes(types: readonly WebhookEventType[]): WebhookEventType[] {
  return [...new Set(types)].sort();
}

/** The delivery body: the envelope around the stored data, spliced as text (the data is never re-parsed). */
export function deliveryBody(event: ClaimedDelivery["event"]): string {
  return `{"id":${JSON.stringify(event.id)},"type":${JSON.stringify(event.type)},"created_at":${JSON.stringify(
    event.createdAt.toISOString(),
  )},"sequence":${event.sequence},"data":${event.dataJson}}`;
}

function succeeded(attempt: WebhookAttempt): boolean {
  return attempt.error === null && attempt.status !== null && attempt.status >= 200 && attempt.status < 300;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function createWebhooksService(deps: {
  db: Transactor;
  stores: Pick<Stores, "webhooks" | "orgs">;
  /**
   * The store the engine claims and records through: a pool of its own in the server, so that a burst of
   * API requests queued for connections cannot starve delivery (the same as `stores.webhooks` otherwise).
   */
  queue?: WebhooksStore;
  clock: Clock;
  sender: WebhookSender;
  /** WEBHOOK_ALLOW_PRIVATE: endpoint URLs may be http:// and name private or loopback addresses. */
  allowPrivate: boolean;
  /** `Orgplane-Webhooks/<version>`. */
  userAgent: string;
  /** How long one attempt waits for an answer (ATTEMPT_TIMEOUT_MS unless a test shortens it). */
  attemptTimeoutMs?: number;
  maxInFlight?: number;
  maxInFlightPerEndpoint?: number;
  /** Told of failures of background delivery work (recording an outcome, disabling an endpoint). */
  onError?: (err: unknown) => void;
  /** Told how many attempts left deliveries in each state (metrics). */
  onOutcomes?: (state: DeliveryState, count: number) => void;
}) {
  const { clock, sender } = deps;
  const store = deps.stores.webhooks;
  const queue = deps.queue ?? store;
  const timeoutMs = deps.attemptTimeoutMs ?? ATTEMPT_TIMEOUT_MS;
  const maxInFlight = deps.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
  const maxPerEndpoint = deps.maxInFlightPerEndpoint ?? DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT;
  const minClaim = Math.min(MIN_CLAIM, Math.ceil(maxInFlight / 4));
  const onError = deps.onError ?? (() => {});
  let scheduler: WakeScheduler | undefined;

  function leaseUntil(now: Date): Date {
    return new Date(now.getTime() + timeoutMs + LEASE_MARGIN_MS);
  }

  async function lockLiveOrg(stores: Stores, orgId: string): Promise<void> {
    const org = await loadOrg(stores, orgId, true);
    if (org.status === "deleted") {
      throw new AppError("invalid_state_transition", `Organization '${orgId}' is deleted`);
    }
  }

  async function findEndpoint(
    stores: Pick<Stores, "webhooks">,
    orgId: string,
    endpointId: string,
    forUpdate = false,
  ): Promise<WebhookEndpoint> {
    const endpoint = !isId("whe", endpointId)
      ? undefined
      : forUpdate
        ? await stores.webhooks.findEndpointForUpdate(orgId, endpointId)
        : await stores.webhooks.findEndpoint(orgId, endpointId);
    if (endpoint === undefined) {
      throw notFound("Webhook endpoint", endpointId);
    }
    return endpoint;
  }

  async function findDelivery(
    orgId: string,
    endpointId: string,
    deliveryId: string,
  ): Promise<WebhookDelivery> {
    const delivery = isId("whd", deliveryId)
      ? await store.findDelivery(orgId, endpointId, deliveryId)
      : undefined;
    if (delivery === undefined) {
      throw notFound("Webhook delivery", deliveryId);
    }
    return delivery;
  }

  /** One POST of a claimed delivery, and what it makes of the delivery. Never throws. */
  async function attempt(claimed: ClaimedDelivery): Promise<DeliveryOutcome> {
    const startedAt = clock.now();
    const timestamp = Math.floor(startedAt.getTime() / 1000);
    const body = deliveryBody(claimed.event);
    const { endpoint } = claimed;
    const secrets = [endpoint.secret];
    if (
      endpoint.previousSecret !== null &&
      endpoint.previousSecretExpiresAt !== null &&
      endpoint.previousSecretExpiresAt.getTime() > startedAt.getTime()
    ) {
      secrets.push(endpoint.previousSecret);
    }
    let result: WebhookAttempt;
    try {
      result = await sender.send({
        url: endpoint.url,
        headers: {
          "content-type": "application/json",
          "user-agent": deps.userAgent,
          "webhook-id": claimed.event.id,
          "webhook-timestamp": String(timestamp),
          "webhook-signature": signatureHeader(secrets, claimed.event.id, timestamp, body),
        },
        body,
        timeoutMs,
      });
    } catch (err) {
      // The sender answers failures as data; this only guards the promise it made.
      result = { status: null, error: errorMessage(err), latencyMs: 0 };
    }
    const endedAt = clock.now();
    const attempts = claimed.attempts + 1;
    const base = {
      id: claimed.id,
      orgId: claimed.orgId,
      endpointId: claimed.endpointId,
      previousAttempts: claimed.attempts,
      attempts,
      lastAttemptAt: startedAt,
      responseStatus: result.status,
      latencyMs: result.latencyMs,
    };
    if (succeeded(result)) {
      return { ...base, state: "delivered", nextAttemptAt: null, lastError: null, deliveredAt: endedAt };
    }
    const delay = RETRY_SCHEDULE_MS[attempts];
    const lastError = result.error ?? `HTTP ${result.status ?? "?"}`;
    if (delay === undefined) {
      return { ...base, state: "failed", nextAttemptAt: null, lastError, deliveredAt: null };
    }
    return {
      ...base,
      state: "pending",
      nextAttemptAt: new Date(endedAt.getTime() + delay),
      lastError,
      deliveredAt: null,
    };
  }

  /**
   * Disable an endpoint that has failed continuously for DISABLE_AFTER_MS: in one transaction, the endpoint,
   * the `webhook.endpoint_disabled` event (to the org's other endpoints: this one is inactive by then) and
   * an email to each owner. Re-checked under the update, so a success or a re-enable meanwhile wins.
   */
  async function disable(failing: FailingEndpoint): Promise<void> {
    await deps.db.transaction(async (stores) => {
      const now = clock.now();
      const disabled = await stores.webhooks.disableEndpoint(
        failing.orgId,
        failing.endpointId,
        new Date(now.getTime() - DISABLE_AFTER_MS),
        now,
        DISABLED_REASON,
      );
      if (disabled === undefined) {
        return;
      }
      const failingSince = (disabled.failingSince ?? failing.failingSince).toISOString();
      await emitWebhookEvent(
        stores,
        {
          orgId: disabled.orgId,
          type: "webhook.endpoint_disabled",
          data: {
            endpoint_id: disabled.id,
            url: disabled.url,
            failing_since: failingSince,
            disabled_at: now.toISOString(),
          },
        },
        clock,
      );
      const org = await stores.orgs.find(disabled.orgId);
      const name = org?.displayName ?? org?.name ?? disabled.orgId;
      for (const to of await stores.webhooks.ownerEmails(disabled.orgId)) {
        await enqueueMail(
          stores.mailOutbox,
          {
            orgId: disabled.orgId,
            to,
            subject: `${name}: webhook endpoint disabled after 5 days of failures`,
            text: [
              `The webhook endpoint ${disabled.url} (${disabled.id}) of ${name} has failed every delivery`,
              `attempt since ${failingSince} and was disabled on ${now.toISOString()}.`,
              "",
              "Events are no longer sent to it. Deliveries still pending are kept and are attempted again",
              "once you fix the endpoint and re-enable it (set is_active to true).",
            ].join("\n"),
            kind: "webhook_endpoint_disabled",
          },
          clock,
        );
      }
    });
  }

  /** Record outcomes in one statement, then disable the endpoints that have failed too long. */
  async function record(outcomes: readonly DeliveryOutcome[]): Promise<void> {
    if (outcomes.length === 0) {
      return;
    }
    const now = clock.now();
    const failing = await queue.recordOutcomes(outcomes, new Date(now.getTime() - DISABLE_AFTER_MS));
    if (deps.onOutcomes !== undefined) {
      for (const state of ["delivered", "pending", "failed"] as const) {
        const count = outcomes.filter((o) => o.state === state).length;
        if (count > 0) {
          deps.onOutcomes(state, count);
        }
      }
    }
    for (const f of failing) {
      await disable(f);
    }
  }

  /** Attempt `claimed` with at most `maxInFlight` requests at once; the outcomes in claim order. */
  async function attemptAll(claimed: readonly ClaimedDelivery[]): Promise<DeliveryOutcome[]> {
    const outcomes: DeliveryOutcome[] = new Array(claimed.length);
    let next = 0;
    const lane = async (): Promise<void> => {
      for (let i = next++; i < claimed.length; i = next++) {
        outcomes[i] = await attempt(claimed[i] as ClaimedDelivery);
      }
    };
    await Promise.all(Array.from({ length: Math.min(maxInFlight, claimed.length) }, lane));
    return outcomes;
  }

  /** Attempt one delivery leased to the caller now, record it, and answer it as recorded. */
  async function attemptNow(claimed: ClaimedDelivery): Promise<WebhookDelivery> {
    const outcome = await attempt(claimed);
    await record([outcome]);
    return findDelivery(claimed.orgId, claimed.endpointId, claimed.id);
  }

  /**
   * The server's delivery loop: claims due deliveries in batches while earlier attempts are still in flight
   * (up to `maxInFlight`, at most `maxPerEndpoint` of them to one endpoint), and records outcomes as they
   * finish, grouping those that finish while a record is being written into the next one. Returns once
   * nothing due is left.
   */
  async function drain(): Promise<number> {
    let total = 0;
    const inFlight = new Set<Promise<void>>();
    const perEndpoint = new Map<string, number>();
    const finished: DeliveryOutcome[] = [];
    let recording: Promise<void> | undefined;
    const flush = async (): Promise<void> => {
      while (finished.length > 0) {
        const batch = finished.splice(0);
        await record(batch).catch(onError);
      }
      recording = undefined;
    };
    const start = (c: ClaimedDelivery): void => {
      perEndpoint.set(c.endpointId, (perEndpoint.get(c.endpointId) ?? 0) + 1);
      const task: Promise<void> = attempt(c)
        .then((outcome) => {
          finished.push(outcome);
          recording ??= flush();
        }, onError)
        .finally(() => {
          inFlight.delete(task);
          const left = (perEndpoint.get(c.endpointId) ?? 1) - 1;
          if (left === 0) {
            perEndpoint.delete(c.endpointId);
          } else {
            perEndpoint.set(c.endpointId, left);
          }
        });
      inFlight.add(task);
    };
    while (!passes.stopped()) {
      const free = maxInFlight - inFlight.size;
      if (free < minClaim && inFlight.size > 0) {
        await Promise.race(inFlight);
        continue;
      }
      const saturated = [...perEndpoint].flatMap(([id, n]) => (n >= maxPerEndpoint ? [id] : []));
      const now = clock.now();
      const claimed = await queue.claimDue(now, leaseUntil(now), Math.min(free, CLAIM_BATCH), saturated);
      // A batch may hold more for one endpoint than its cap leaves room for: the surplus goes back at once,
      // and the next claims leave that endpoint out until its attempts finish.
      const surplus: string[] = [];
      for (const c of claimed) {
        if ((perEndpoint.get(c.endpointId) ?? 0) >= maxPerEndpoint) {
          surplus.push(c.id);
        } else {
          start(c);
        }
      }
      await queue.releaseClaims(surplus);
      total += claimed.length - surplus.length;
      if (claimed.length === surplus.length) {
        if (inFlight.size === 0) {
          break;
        }
        await Promise.race(inFlight);
      }
    }
    await Promise.all(inFlight);
    while (recording !== undefined) {
      await recording;
    }
    return total;
  }

  /** After a pass: the next due time within the horizon goes to the scheduler (the 5 s retry, a lease ending). */
  async function scheduleNext(): Promise<void> {
    if (scheduler === undefined) {
      return;
    }
    const next = await queue.nextDueAt();
    if (next !== undefined && next.getTime() - clock.now().getTime() <= WAKE_HORIZON_MS) {
      scheduler.wakeAt(next);
    }
  }

  // A commit during a pass may not be visible to its claims: a wake-up then makes it pass once more.
  const passes = passOnWake(() => drain().then(scheduleNext).catch(onError));
  const wake = passes.wake;

  return {
    async createEndpoint(
      ctx: RequestContext,
      orgId: string,
      input: CreateEndpointInput,
    ): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
      await loadOrg(deps.stores, orgId);
      const url = checkEndpointUrl(input.url, { allowPrivate: deps.allowPrivate });
      const now = clock.now();
      const secret = newWebhookSecret();
      const endpoint: WebhookEndpoint = {
        id: newId("whe"),
        orgId,
        url,
        description: input.description,
        eventTypes: normaliseTypes(input.eventTypes),
        isActive: input.isActive,
        secret,
        previousSecret: null,
        previousSecretExpiresAt: null,
        disabledAt: null,
        disabledReason: null,
        failingSince: null,
        createdAt: now,
        updatedAt: now,
      };
      await deps.db.transaction(async (stores) => {
        // The org lock makes the count and the insert one step: concurrent creates cannot pass the cap.
        await lockLiveOrg(stores, orgId);
        const existing = await stores.webhooks.listEndpoints({
          orgId,
          limit: MAX_ENDPOINTS_PER_ORG,
          before: undefined,
        });
        if (existing.length >= MAX_ENDPOINTS_PER_ORG) {
          throw new AppError(
            "quota_exceeded",
            `An organization has at most ${MAX_ENDPOINTS_PER_ORG} webhook endpoints`,
            {
              details: {
                quota: "webhook_endpoints",
                limit: MAX_ENDPOINTS_PER_ORG,
                current: existing.length,
              },
            },
          );
        }
        await stores.webhooks.insertEndpoint(endpoint);
        await stores.audit.insert(
          auditEvent(
            ctx,
            {
              orgId,
              action: "webhook_endpoint.created",
              targetType: "webhook_endpoint",
              targetId: endpoint.id,
              changes: diffViews(undefined, auditView(endpoint)),
            },
            clock,
          ),
        );
      });
      return { endpoint, secret };
    },

    async listEndpoints(
      orgId: string,
      input: { limit: number; cursor: string | undefined },
    ): Promise<Page<WebhookEndpoint>> {
      await loadOrg(deps.stores, orgId);
      const rows = await store.listEndpoints({
        orgId,
        limit: input.limit,
        before: decodeCursor(input.cursor, "whe"),
      });
      return toPage(rows, input.limit);
    },

    async getEndpoint(orgId: string, endpointId: string): Promise<WebhookEndpoint> {
      await loadOrg(deps.stores, orgId);
      return findEndpoint(deps.stores, orgId, endpointId);
    },

    /** Setting `isActive` true re-enables an endpoint disabled for failing: its failure record starts over. */
    async updateEndpoint(
      ctx: RequestContext,
      orgId: string,
      endpointId: string,
      patch: UpdateEndpointInput,
    ): Promise<WebhookEndpoint> {
      await loadOrg(deps.stores, orgId);
      const url =
        patch.url === undefined
          ? undefined
          : checkEndpointUrl(patch.url, { allowPrivate: deps.allowPrivate });
      return deps.db.transaction(async (stores) => {
        const before = await findEndpoint(stores, orgId, endpointId, true);
        const after: WebhookEndpoint = {
          ...before,
          ...(url === undefined ? {} : { url }),
          ...(patch.description === undefined ? {} : { description: patch.description }),
          ...(patch.eventTypes === undefined ? {} : { eventTypes: normaliseTypes(patch.eventTypes) }),
          ...(patch.isActive === undefined ? {} : { isActive: patch.isActive }),
        };
        const reEnabled = patch.isActive === true && (!before.isActive || before.disabledAt !== null);
        if (reEnabled) {
          after.disabledAt = null;
          after.disabledReason = null;
          after.failingSince = null;
        }
        const changes = diffViews(auditView(before), auditView(after));
        if (Object.keys(changes).length === 0 && !reEnabled) {
          return before;
        }
        const now = clock.now();
        const updated = await stores.webhooks.updateEndpoint(orgId, endpointId, {
          url: after.url,
          description: after.description,
          eventTypes: after.eventTypes,
          isActive: after.isActive,
          disabledAt: after.disabledAt,
          disabledReason: after.disabledReason,
          failingSince: after.failingSince,
          updatedAt: now,
        });
        if (updated === undefined) {
          throw notFound("Webhook endpoint", endpointId);
        }
        await stores.audit.insert(
          auditEvent(
            ctx,
            {
              orgId,
              action: "webhook_endpoint.updated",
              targetType: "webhook_endpoint",
              targetId: endpointId,
              changes,
            },
            clock,
          ),
        );
        return updated;
      });
    },

    /** The endpoint and its delivery log go; events already written stay (they belong to the org's sequence). */
    async deleteEndpoint(ctx: RequestContext, orgId: string, endpointId: string): Promise<void> {
      await loadOrg(deps.stores, orgId);
      await deps.db.transaction(async (stores) => {
        const before = await findEndpoint(stores, orgId, endpointId, true);
        await stores.webhooks.deleteEndpoint(orgId, endpointId);
        await stores.audit.insert(
          auditEvent(
            ctx,
            {
              orgId,
              action: "webhook_endpoint.deleted",
              targetType: "webhook_endpoint",
              targetId: endpointId,
              changes: { url: { from: before.url, to: null } },
            },
            clock,
          ),
        );
      });
    },

    /**
     * A new signing secret; the previous one keeps signing too for `expirePreviousInSeconds` (0: it stops
     * now), so receivers can switch without losing a delivery. The new secret is answered once.
     */
    async rotateSecret(
      ctx: RequestContext,
      orgId: string,
      endpointId: string,
      input: { expirePreviousInSeconds: number },
    ): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
      const seconds = input.expirePreviousInSeconds;
      if (!Number.isInteger(seconds) || seconds < 0 || seconds > MAX_SECRET_OVERLAP_SECONDS) {
        const message = `must be a whole number of seconds from 0 to ${MAX_SECRET_OVERLAP_SECONDS}`;
        throw new AppError("validation_failed", `expire_previous_in_seconds ${message}`, {
          errors: [{ path: "expire_previous_in_seconds", message }],
        });
      }
      await loadOrg(deps.stores, orgId);
      return deps.db.transaction(async (stores) => {
        const before = await findEndpoint(stores, orgId, endpointId, true);
        const now = clock.now();
        const secret = newWebhookSecret();
        const previousSecretExpiresAt = seconds === 0 ? null : new Date(now.getTime() + seconds * 1000);
        const updated = await stores.webhooks.updateEndpoint(orgId, endpointId, {
          secret,
          previousSecret: seconds === 0 ? null : before.secret,
          previousSecretExpiresAt,
          updatedAt: now,
        });
        if (updated === undefined) {
          throw notFound("Webhook endpoint", endpointId);
        }
        await stores.audit.insert(
          auditEvent(
            ctx,
            {
              orgId,
              action: "webhook_endpoint.secret_rotated",
              targetType: "webhook_endpoint",
              targetId: endpointId,
              changes: {
                previous_secret_expires_at: {
                  from: null,
                  to: previousSecretExpiresAt?.toISOString() ?? null,
                },
              },
            },
            clock,
          ),
        );
        return { endpoint: updated, secret };
      });
    },

    /**
     * A `webhook.test` event for this endpoint only (whatever its filter and state), attempted now; answers
     * the delivery after that attempt. Retries follow the schedule like any delivery.
     */
    async sendTest(_ctx: RequestContext, orgId: string, endpointId: string): Promise<WebhookDelivery> {
      await loadOrg(deps.stores, orgId);
      const endpoint = await findEndpoint(deps.stores, orgId, endpointId);
      const now = clock.now();
      const deliveryId = newId("whd");
      // One statement (event, sequence number, leased delivery): atomic without a transaction of its own.
      await store.appendEventFor(
        {
          id: newId("evt"),
          orgId,
          type: "webhook.test",
          data: { endpoint_id: endpoint.id, message: "This is a test event sent from Orgplane." },
          createdAt: now,
        },
        endpoint.id,
        deliveryId,
        leaseUntil(now),
      );
      const claimed = await queue.findClaimed(orgId, deliveryId);
      if (claimed === undefined) {
        // Deleted between the read and the write.
        throw notFound("Webhook endpoint", endpointId);
      }
      return attemptNow(claimed);
    },

    async listDeliveries(
      orgId: string,
      endpointId: string,
      input: { limit: number; cursor: string | undefined; state: DeliveryState | undefined },
    ): Promise<Page<WebhookDelivery>> {
      // A malformed cursor is a 400 whatever the endpoint: input is checked before anything is looked up.
      const before = decodeCursor(input.cursor, "whd");
      await loadOrg(deps.stores, orgId);
      await findEndpoint(deps.stores, orgId, endpointId);
      const rows = await store.listDeliveries({
        orgId,
        endpointId,
        limit: input.limit,
        before,
        state: input.state,
      });
      return toPage(rows, input.limit);
    },

    async getDelivery(orgId: string, endpointId: string, deliveryId: string): Promise<WebhookDelivery> {
      await loadOrg(deps.stores, orgId);
      await findEndpoint(deps.stores, orgId, endpointId);
      return findDelivery(orgId, endpointId, deliveryId);
    },

    /**
     * Attempt a delivery again now: a delivered or failed one goes back to pending; answers it after the
     * attempt. A failure continues the retry schedule from its attempt count (past the last: failed again).
     */
    async redeliver(
      _ctx: RequestContext,
      orgId: string,
      endpointId: string,
      deliveryId: string,
    ): Promise<WebhookDelivery> {
      await loadOrg(deps.stores, orgId);
      await findEndpoint(deps.stores, orgId, endpointId);
      await findDelivery(orgId, endpointId, deliveryId);
      const now = clock.now();
      const claimed = await queue.claimOne(orgId, endpointId, deliveryId, now, leaseUntil(now));
      if (claimed === undefined) {
        throw new AppError(
          "invalid_state_transition",
          `Webhook delivery '${deliveryId}' is being attempted right now; try again in a few seconds`,
          { retryAfterSeconds: Math.ceil((timeoutMs + LEASE_MARGIN_MS) / 1000) },
        );
      }
      return attemptNow(claimed);
    },

    /**
     * Claim up to `limit` deliveries due by the service clock, attempt them, record the outcomes; how many
     * were claimed. What tests with a manual clock call; the server runs `wake()`.
     */
    async deliverDue(limit: number = CLAIM_BATCH): Promise<number> {
      const now = clock.now();
      const claimed = await queue.claimDue(now, leaseUntil(now), limit);
      await record(await attemptAll(claimed));
      return claimed.length;
    },

    /** delivered / (delivered + failed) among deliveries finished in the last 7 days; null without any. */
    async deliveryRate7d(orgId: string): Promise<number | null> {
      const since = new Date(clock.now().getTime() - RATE_WINDOW_MS);
      const { delivered, failed } = await store.finishedSince(orgId, since);
      return delivered + failed === 0 ? null : delivered / (delivered + failed);
    },

    /**
     * Deliver everything due now, in the background, with up to `maxInFlight` attempts at once; a call
     * during a pass makes it run once more. Called on every NOTIFY of a commit, by the sweeps and at start.
     */
    wake,

    /** The pg-boss side that wakes this engine at a given time (any process); undefined at shutdown. */
    setScheduler(next: WakeScheduler | undefined): void {
      scheduler = next;
    },

    /**
     * Stop claiming; wait for the attempts in flight to be recorded, then close the sender's idle sockets.
     * Call before the pool closes.
     */
    async stop(): Promise<void> {
      scheduler = undefined;
      await passes.stop();
      sender.close();
    },
  };
}

export type WebhooksService = ReturnType<typeof createWebhooksService>;
