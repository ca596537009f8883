import type { Clock } from "../../lib/clock.ts";
import { decodeCursor, type Page, toPage } from "../../lib/cursor.ts";
import { newId } from "../../lib/ids.ts";
import type { JsonObject } from "../../lib/json.ts";
import type { CatalogService } from "../catalog/catalog.service.ts";
import type { PlanVersion } from "../catalog/catalog.types.ts";
import { enqueueMail } from "../mail/mail.ts";
import { loadOrg } from "../orgs/orgs.service.ts";
import type { Stores, Transactor } from "../stores.ts";
import type { SubscriptionsService } from "../subscriptions/subscriptions.service.ts";
import { emitAlertEvent } from "../webhooks/event-data.ts";
import { alertEmail } from "./alert-email.ts";
import { creditPeriodOf } from "./alert-period.ts";
import type { AlertsStore } from "./alerts.store.ts";
import { type Alert, type AlertType, NAMED_ALERT_TYPES } from "./alerts.types.ts";

/** An alert still unsent this long after it was recorded is handed to the delivery job again by the sweep. */
export const REDELIVER_AFTER_MS = 60_000;
const SWEEP_BATCH = 100;

/** A trialing organization gets its `trial_ending` alert once its trial ends within this many days. */
export const TRIAL_ENDING_WINDOW_DAYS = 3;
const DAY_MS = 24 * 60 * 60 * 1000;

/** What an alert asks for: once per organization, type and billing period. */
export type AlertRequest = {
  orgId: string;
  type: AlertType;
  periodStart: Date;
  details: JsonObject;
};

/**
 * Record an alert through `stores`, bound to the caller's transaction (a Stripe webhook's, a create's):
 * the alert and the webhook event announcing it (docs/webhook-events.md) commit with what caused them.
 * Undefined when this organization, type and period already has one, and then no event is written either.
 * An alert recorded this way is delivered by the sweep (within a minute); `AlertsService.fire` also wakes the
 * delivery job at once.
 */
export async function recordAlert(
  stores: { alerts: Pick<AlertsStore, "insertIfAbsent">; webhooks: Stores["webhooks"] },
  request: AlertRequest,
  clock: Clock,
): Promise<Alert | undefined> {
  const alert = await stores.alerts.insertIfAbsent({
    id: newId("alr"),
    orgId: request.orgId,
    type: request.type,
    periodStart: request.periodStart,
    details: request.details,
    createdAt: clock.now(),
    sentAt: null,
  });
  if (alert !== undefined) {
    await emitAlertEvent(stores, alert, clock);
  }
  return alert;
}

/** Hands an alert id to the durable delivery job (pg-boss); set by `startJobs`. */
export type AlertDispatcher = {
  send(alertId: string): Promise<void>;
  onError(err: unknown, alertId: string): void;
};

/** A plan's price as the email reads it ("49.00 USD a month"), or null for a free or contract plan. */
function priceOf(plan: PlanVersion): string | null {
  const price = plan.definition.price;
  if (price === null) {
    return null;
  }
  const currency = price.currency.toUpperCase();
  let digits = 2;
  try {
    digits =
      new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits ??
      2;
  } catch {
    // Not a currency Intl knows: cents, as most have.
  }
  return `${(price.amountMinor / 10 ** digits).toFixed(digits)} ${currency} a ${price.interval}`;
}

export type DeliveryOutcome = "sent" | "already_sent" | "not_found";

/** `alert_emails`: when each alert of the current period was sent (null: not fired, or not yet sent). */
export type AlertEmails = { periodStart: Date; sent: Record<string, Date | null> };

export function createAlertsService(deps: {
  db: Transactor;
  stores: Pick<Stores, "orgs" | "alerts" | "subscriptions">;
  subscriptions: Pick<SubscriptionsService, "current">;
  /** Plan names for `trial_ending`: the plan that continues, or the fallback a cancelled trial ends in. */
  catalog: Pick<CatalogService, "planVersion" | "fallbackPlan">;
  clock: Clock;
  /** PUBLIC_URL without a trailing slash: links in the emails. */
  publicUrl: string;
}) {
  const { clock } = deps;
  let dispatcher: AlertDispatcher | undefined;

  async function dispatch(alertId: string): Promise<void> {
    if (dispatcher === undefined) {
      return;
    }
    try {
      await dispatcher.send(alertId);
    } catch (err) {
      // The alert row is the durable record: the sweep hands it to the job again.
      dispatcher.onError(err, alertId);
    }
  }

  /**
   * Record the alert unless this organization already has one of `type` in the period starting at
   * `periodStart` (INSERT … ON CONFLICT DO NOTHING, so of any number of processes, retries and racing
   * callers exactly one records it), and hand it to the delivery job. Returns the alert when this call
   * recorded it, undefined when it had already fired.
   */
  async function fire(
    orgId: string,
    type: AlertType,
    periodStart: Date,
    details: JsonObject,
  ): Promise<Alert | undefined> {
    // A transaction of its own: the alert and its webhook event commit together or not at all.
    const alert = await deps.db.transaction((stores) =>
      recordAlert(stores, { orgId, type, periodStart, details }, clock),
    );
    if (alert !== undefined) {
      await dispatch(alert.id);
    }
    return alert;
  }

  return {
    fire,

    /**
     * The delivery job: in one transaction, with the alert row locked, put one email per recipient (the
     * billing email, the owners and billing members, deduplicated) in the mail outbox and set `sent_at`.
     * A second run (a retry, a duplicate job) finds `sent_at` set and sends nothing.
     */
    async deliver(alertId: string): Promise<DeliveryOutcome> {
      return deps.db.transaction(async (stores) => {
        const alert = await stores.alerts.findForUpdate(alertId);
        if (alert === undefined) {
          return "not_found";
        }
        if (alert.sentAt !== null) {
          return "already_sent";
        }
        const recipients = await stores.alerts.recipients(alert.orgId);
        if (recipients === undefined) {
          return "not_found";
        }
        const addresses = new Map<string, string>();
        for (const email of [recipients.billingEmail, ...recipients.memberEmails]) {
          if (email !== null && email.trim() !== "") {
            addresses.set(email.trim().toLowerCase(), email.trim());
          }
        }
        const { subject, text } = alertEmail(
          alert,
          { name: recipients.orgName, displayName: recipients.orgDisplayName },
          deps.publicUrl,
        );
        for (const to of addresses.values()) {
          await enqueueMail(
            stores.mailOutbox,
            { orgId: alert.orgId, to, subject, text, kind: `alert.${alert.type}` },
            clock,
          );
        }
        await stores.alerts.markSent(alert.id, clock.now());
        return "sent";
      });
    },

    /**
     * The `trial_ending` sweep (a pg-boss cron, every minute): fire the alert for every trialing
     * organization whose trial ends within `TRIAL_ENDING_WINDOW_DAYS`, in the credit period of now.
     * Organizations told during this window are skipped by the query; `fire`'s ON CONFLICT makes any
     * number of processes and repeated runs record it once. Returns how many it recorded.
     */
    async sweepTrialsEnding(): Promise<number> {
      const now = clock.now();
      const window = TRIAL_ENDING_WINDOW_DAYS * DAY_MS;
      const query = {
        now,
        until: new Date(now.getTime() + window),
        alertedSince: new Date(now.getTime() - window),
        limit: SWEEP_BATCH,
      };
      let fallback: PlanVersion | undefined;
      let total = 0;
      for (;;) {
        const due = await deps.stores.subscriptions.listTrialsEnding(query);
        let recorded = 0;
        for (const sub of due) {
          if (sub.trialEnd === null) {
            continue;
          }
          // As `advance` decides: a trial cancelled for its end falls back, any other continues on its plan.
          const cancelled = sub.cancelAt !== null && sub.cancelAt.getTime() <= sub.trialEnd.getTime();
          const plan = await deps.catalog.planVersion(sub.planVersionId);
          fallback ??= await deps.catalog.fallbackPlan();
          const next = cancelled ? fallback : plan;
          const details: JsonObject = {
            trial_end: sub.trialEnd.toISOString(),
            trial_plan: plan.key,
            trial_plan_name: plan.definition.name,
            at_trial_end: cancelled ? "fallback" : "continues",
            next_plan: next.key,
            next_plan_name: next.definition.name,
            next_plan_price: priceOf(next),
            fallback_plan: fallback.key,
            fallback_plan_name: fallback.definition.name,
          };
          const periodStart = creditPeriodOf(sub, now).start;
          if ((await fire(sub.orgId, "trial_ending", periodStart, details)) !== undefined) {
            recorded += 1;
          }
        }
        total += recorded;
        // A batch in which nothing was recorded (another process took them) would come back the same.
        if (due.length < SWEEP_BATCH || recorded === 0) {
          return total;
        }
      }
    },

    /** Ids of alerts recorded over a minute ago and still unsent (a lost wake-up, one recorded in another transaction). */
    async undelivered(): Promise<string[]> {
      return deps.stores.alerts.listUndelivered(
        new Date(clock.now().getTime() - REDELIVER_AFTER_MS),
        SWEEP_BATCH,
      );
    },

    /** Set by the background jobs once pg-boss runs; until then alerts wait for the sweep. */
    setDispatcher(next: AlertDispatcher | undefined): void {
      dispatcher = next;
    },

    /** The organization's alerts, newest first. */
    async list(orgId: string, query: { limit: number; cursor: string | undefined }): Promise<Page<Alert>> {
      await loadOrg(deps.stores, orgId);
      const after = decodeCursor(query.cursor, "alr");
      const rows = await deps.stores.alerts.list({ orgId, limit: query.limit, after });
      return toPage(rows, query.limit);
    },

    /**
     * `alert_emails` of the reference LLM router: for the current (credit) period, each alert type → when
     * its email was sent (null: not fired, or not yet sent). Every named type is listed, plus any
     * `usage_<n>` of a custom threshold that fired.
     */
    async alertEmails(orgId: string): Promise<AlertEmails> {
      await loadOrg(deps.stores, orgId);
      const { subscription } = await deps.subscriptions.current(orgId);
      const periodStart = creditPeriodOf(subscription, clock.now()).start;
      const sent: Record<string, Date | null> = Object.fromEntries(NAMED_ALERT_TYPES.map((t) => [t, null]));
      for (const alert of await deps.stores.alerts.listForPeriod(orgId, periodStart)) {
        sent[alert.type] = alert.sentAt;
      }
      return { periodStart, sent };
    },
  };
}

export type AlertsService = ReturnType<typeof createAlertsService>;
