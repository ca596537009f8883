import { addDays, anchorDayOf, periodEnd } from "../../lib/billing-period.ts";
import type { Clock } from "../../lib/clock.ts";
import { AppError } from "../../lib/errors.ts";
import { newId } from "../../lib/ids.ts";
import type { JsonValue } from "../../lib/json.ts";
import type { AuditChanges, AuditEvent } from "../audit/audit.types.ts";
import { auditEvent, diffViews } from "../audit/audit-event.ts";
import type { RequestContext } from "../auth/principal.ts";
import type { CatalogService } from "../catalog/catalog.service.ts";
import type { BillingInterval, PlanVersion } from "../catalog/catalog.types.ts";
import { loadOrg } from "../orgs/orgs.service.ts";
import type { Stores, Transactor } from "../stores.ts";
import { emitEvent, eventChanges, subscriptionSummary } from "../webhooks/event-data.ts";
import { advance, type Transition } from "./subscription-lifecycle.ts";
import type { Subscription } from "./subscriptions.types.ts";

/** What the subscription service needs from the catalog. */
export type PlanCatalog = Pick<
  CatalogService,
  "catalog" | "currentPlan" | "planVersion" | "defaultPlan" | "fallbackPlan"
>;

/** The stores a transaction that settles a subscription writes through. */
type SettleStores = Pick<Stores, "subscriptions" | "audit" | "planVersions" | "webhooks">;

/** A subscription together with the plan version it points at. */
export type CurrentSubscription = { subscription: Subscription; plan: PlanVersion };

export type ChangeSubscriptionInput = {
  /** Plan key: moves to that plan's current version (also how a subscription moves to a newer version). */
  plan?: string | undefined;
  interval?: BillingInterval | undefined;
  seats?: number | undefined;
  /** false resumes a pending cancellation; true schedules one at the period end (like DELETE). */
  cancelAtPeriodEnd?: boolean | undefined;
};

/** Subscriptions advanced per sweep transaction: short transactions, few locks held at once. */
const SWEEP_BATCH = 100;

/** The fresh subscription of an organization on `plan`, starting at `now` (anchored on today). */
export function newSubscription(orgId: string, plan: PlanVersion, now: Date): Subscription {
  const interval = plan.definition.price?.interval ?? "month";
  const anchor = anchorDayOf(now);
  const trialDays = plan.definition.trialDays;
  return {
    id: newId("sub"),
    orgId,
    planVersionId: plan.id,
    status: trialDays > 0 ? "trialing" : "active",
    interval,
    billingAnchorDay: anchor,
    currentPeriodStart: now,
    currentPeriodEnd: periodEnd(now, anchor, interval),
    trialEnd: trialDays > 0 ? addDays(now, trialDays) : null,
    cancelAt: null,
    cancelAtPeriodEnd: false,
    canceledAt: null,
    pauseReason: null,
    seats: 1,
    provider: null,
    providerCustomerId: null,
    providerSubscriptionId: null,
    providerStateAt: null,
    lastInvoiceAt: null,
    createdAt: now,
    updatedAt: now,
  };
}

function iso(d: Date | null): string | null {
  return d === null ? null : d.toISOString();
}

function auditView(s: Subscription): Record<string, JsonValue> {
  return {
    plan_version_id: s.planVersionId,
    status: s.status,
    interval: s.interval,
    billing_anchor_day: s.billingAnchorDay,
    current_period_start: s.currentPeriodStart.toISOString(),
    current_period_end: s.currentPeriodEnd.toISOString(),
    trial_end: iso(s.trialEnd),
    cancel_at: iso(s.cancelAt),
    cancel_at_period_end: s.cancelAtPeriodEnd,
    canceled_at: iso(s.canceledAt),
    seats: s.seats,
  };
}

function diff(before: Subscription | undefined, after: Subscription): AuditChanges {
  return diffViews(before === undefined ? undefined : auditView(before), auditView(after));
}

/** Time-driven changes have no request behind them: the actor is the system. */
function systemAudit(orgId: string, subscriptionId: string, action: string, changes: AuditChanges, at: Date) {
  const event: AuditEvent = {
    id: newId("aud"),
    orgId,
    actorType: "system",
    actorId: null,
    action,
    targetType: "subscription",
    targetId: subscriptionId,
    changes,
    ip: null,
    userAgent: null,
    requestId: null,
    createdAt: at,
  };
  return event;
}

const TRANSITION_ACTION: Record<Transition["kind"], string> = {
  trial_ended: "subscription.trial_ended",
  cancellation_effective: "subscription.cancellation_effective",
  period_renewed: "subscription.renewed",
};

/**
 * Start an organization's subscription inside the transaction that creates it (or lazily, for one
 * created before subscriptions existed). False when it already has one.
 */
export async function startSubscription(
  stores: Pick<Stores, "subscriptions" | "audit" | "webhooks">,
  ctx: RequestContext | null,
  orgId: string,
  plan: PlanVersion,
  clock: Clock,
): Promise<boolean> {
  const now = clock.now();
  const sub = newSubscription(orgId, plan, now);
  if (!(await stores.subscriptions.insert(sub))) {
    return false;
  }
  const record = {
    orgId,
    action: "subscription.created",
    targetType: "subscription",
    targetId: sub.id,
    changes: diff(undefined, sub),
  };
  await stores.audit.insert(
    ctx === null
      ? systemAudit(orgId, sub.id, record.action, record.changes, now)
      : auditEvent(ctx, record, clock),
  );
  await emitEvent(
    stores,
    orgId,
    "subscription.created",
    { org_id: orgId, subscription: subscriptionSummary(sub, plan.key) },
    clock,
  );
  return true;
}

/**
 * The webhook event of a subscription change written in `stores`' transaction, naming the plan the
 * subscription is on after it (read through the transaction's own connection).
 */
export async function emitSubscriptionEvent(
  stores: Pick<Stores, "planVersions" | "webhooks">,
  type: "subscription.created" | "subscription.updated" | "subscription.canceled",
  sub: Subscription,
  changes: AuditChanges,
  clock: Clock,
): Promise<void> {
  const plan = await stores.planVersions.findVersion(sub.planVersionId);
  if (plan === undefined) {
    // The catalog is synced before the server starts: a missing plan is a broken deployment.
    throw new Error(`plan ${sub.planVersionId} is not in plan_versions`);
  }
  const subscription = subscriptionSummary(sub, plan.key);
  if (type === "subscription.created") {
    await emitEvent(stores, sub.orgId, type, { org_id: sub.orgId, subscription }, clock);
    return;
  }
  await emitEvent(
    stores,
    sub.orgId,
    type,
    { org_id: sub.orgId, subscription, changes: eventChanges(changes) },
    clock,
  );
}

export function createSubscriptionsService(deps: {
  db: Transactor;
  stores: Pick<Stores, "orgs" | "subscriptions">;
  catalog: PlanCatalog;
  clock: Clock;
}) {
  /**
   * Plans read inside a transaction go through its own connection: reading them from the pool while the
   * transaction holds one (and the organization's lock) could wait on a connection that never frees up.
   */
  async function planIn(stores: Pick<Stores, "planVersions">, lookup: { id: string } | { key: string }) {
    const plan =
      "id" in lookup
        ? await stores.planVersions.findVersion(lookup.id)
        : await stores.planVersions.findCurrentByKey(lookup.key);
    if (plan === undefined) {
      // The catalog is synced before the server starts: a missing plan is a broken deployment.
      throw new Error(`plan ${"id" in lookup ? lookup.id : lookup.key} is not in plan_versions`);
    }
    return plan;
  }

  /**
   * Inside a transaction: the organization's subscription row-locked, created on the default plan when
   * missing, with every due transition applied and persisted (each one audited).
   */
  async function settleIn(stores: SettleStores, orgId: string, fallback: PlanVersion): Promise<Subscription> {
    let sub = await stores.subscriptions.findByOrgForUpdate(orgId);
    if (sub === undefined) {
      const plan = await planIn(stores, { key: deps.catalog.catalog().defaultPlan });
      await startSubscription(stores, null, orgId, plan, deps.clock);
      sub = await stores.subscriptions.findByOrgForUpdate(orgId);
      if (sub === undefined) {
        throw new Error(`subscription of ${orgId} vanished inside its transaction`);
      }
    }
    return applyDue(stores, sub, fallback);
  }

  async function applyDue(
    stores: SettleStores,
    sub: Subscription,
    fallback: PlanVersion,
  ): Promise<Subscription> {
    const now = deps.clock.now();
    const { subscription: next, transitions } = advance(sub, fallback.id, now);
    if (transitions.length === 0) {
      return sub;
    }
    const written = { ...next, updatedAt: now };
    await stores.subscriptions.updateLifecycle(written);
    const changes = diff(sub, written);
    for (const transition of transitions) {
      await stores.audit.insert(
        systemAudit(sub.orgId, sub.id, TRANSITION_ACTION[transition.kind], changes, now),
      );
    }
    // One event for everything the clock changed (a trial ended, a cancellation took effect, periods renewed).
    await emitSubscriptionEvent(stores, "subscription.updated", written, changes, deps.clock);
    return written;
  }

  async function withPlan(subscription: Subscription): Promise<CurrentSubscription> {
    return { subscription, plan: await deps.catalog.planVersion(subscription.planVersionId) };
  }

  /**
   * The organization's subscription as of now: a missed sweep never shows a stale plan. Reads without a
   * transaction or lock when nothing is due, which is the common case.
   */
  async function current(orgId: string): Promise<CurrentSubscription> {
    const [fallback, found] = await Promise.all([
      deps.catalog.fallbackPlan(),
      deps.stores.subscriptions.findByOrg(orgId),
    ]);
    if (found !== undefined && advance(found, fallback.id, deps.clock.now()).transitions.length === 0) {
      return withPlan(found);
    }
    return withPlan(await deps.db.transaction((stores) => settleIn(stores, orgId, fallback)));
  }

  /** Inside a transaction: the subscription, settled and row-locked, with the plan that applies now. */
  async function currentIn(stores: SettleStores, orgId: string): Promise<CurrentSubscription> {
    const fallback = await planIn(stores, { key: deps.catalog.catalog().fallbackPlan });
    const subscription = await settleIn(stores, orgId, fallback);
    return { subscription, plan: await planIn(stores, { id: subscription.planVersionId }) };
  }

  /** Lock the organization, settle the subscription, apply `change`, write it and its audit event. */
  async function mutate(
    ctx: RequestContext,
    orgId: string,
    action: "subscription.updated" | "subscription.canceled",
    change: (sub: Subscription, now: Date, fallback: PlanVersion) => Subscription,
  ): Promise<CurrentSubscription> {
    const fallback = await deps.catalog.fallbackPlan();
    const sub = await deps.db.transaction(async (stores) => {
      const org = await loadOrg(stores, orgId, true);
      if (org.status === "deleted") {
        throw new AppError("invalid_state_transition", `Organization '${orgId}' is deleted`);
      }
      const before = await settleIn(stores, orgId, fallback);
      const now = deps.clock.now();
      const after = change(before, now, fallback);
      const changes = diff(before, after);
      if (Object.keys(changes).length === 0) {
        return before;
      }
      const written = { ...after, updatedAt: now };
      await stores.subscriptions.updateLifecycle(written);
      await stores.audit.insert(
        auditEvent(
          ctx,
          { orgId, action, targetType: "subscription", targetId: written.id, changes },
          deps.clock,
        ),
      );
      await emitSubscriptionEvent(stores, action, written, changes, deps.clock);
      return written;
    });
    return withPlan(sub);
  }

  /** A new period starting now: what a change of interval or an immediate fallback begins. */
  function restartPeriod(sub: Subscription, now: Date, interval: BillingInterval): Subscription {
    const anchor = anchorDayOf(now);
    return {
      ...sub,
      interval,
      billingAnchorDay: anchor,
      currentPeriodStart: now,
      currentPeriodEnd: periodEnd(now, anchor, interval),
    };
  }

  function scheduleCancel(sub: Subscription, now: Date): Subscription {
    if (sub.cancelAt !== null) {
      return sub;
    }
    // A trial ends where it would have converted; a paid period holds to its end.
    const at =
      sub.status === "trialing" && sub.trialEnd !== null && sub.trialEnd < sub.currentPeriodEnd
        ? sub.trialEnd
        : sub.currentPeriodEnd;
    return { ...sub, cancelAt: at, cancelAtPeriodEnd: true, canceledAt: now };
  }

  return {
    current,

    /** Inside a create transaction with the organization locked: the plan that applies right now. */
    async planIn(stores: SettleStores, orgId: string): Promise<PlanVersion> {
      return (await currentIn(stores, orgId)).plan;
    },

    /** Like `planIn`, with the settled subscription (a quota alert needs its credit period). */
    currentIn,

    async get(orgId: string): Promise<CurrentSubscription> {
      await loadOrg(deps.stores, orgId);
      return current(orgId);
    },

    /** Change plan (effective now), interval or seats; resume or schedule a cancellation. */
    async change(
      ctx: RequestContext,
      orgId: string,
      input: ChangeSubscriptionInput,
    ): Promise<CurrentSubscription> {
      let target: PlanVersion | undefined;
      if (input.plan !== undefined) {
        try {
          target = await deps.catalog.currentPlan(input.plan);
        } catch (err) {
          if (err instanceof AppError && err.code === "not_found") {
            throw new AppError("validation_failed", `plan: no plan '${input.plan}' in the catalog`, {
              errors: [{ path: "plan", message: `no plan '${input.plan}' in the catalog` }],
            });
          }
          throw err;
        }
      }
      return mutate(ctx, orgId, "subscription.updated", (sub, now) => {
        let next = sub;
        if (target !== undefined && target.id !== sub.planVersionId) {
          // A plan change ends a trial: the new plan applies, limits and credits included, at once.
          next = {
            ...next,
            planVersionId: target.id,
            status: next.status === "trialing" ? "active" : next.status,
            trialEnd: next.status === "trialing" ? now : next.trialEnd,
          };
        }
        if (input.interval !== undefined && input.interval !== next.interval) {
          next = restartPeriod(next, now, input.interval);
        }
        if (input.seats !== undefined) {
          next = { ...next, seats: input.seats };
        }
        if (input.cancelAtPeriodEnd === false) {
          next = { ...next, cancelAt: null, cancelAtPeriodEnd: false, canceledAt: null };
        } else if (input.cancelAtPeriodEnd === true) {
          next = scheduleCancel(next, now);
        }
        return next;
      });
    },

    /**
     * Cancel: at the end of the current period (or trial) by default, the plan holding until then;
     * `immediately` moves to the fallback plan now.
     */
    cancel(ctx: RequestContext, orgId: string, immediately: boolean): Promise<CurrentSubscription> {
      return mutate(ctx, orgId, "subscription.canceled", (sub, now, fallback) => {
        if (sub.planVersionId === fallback.id) {
          throw new AppError(
            "invalid_state_transition",
            `Organization '${orgId}' is already on the fallback plan '${fallback.key}'`,
          );
        }
        if (!immediately) {
          return scheduleCancel(sub, now);
        }
        return {
          ...restartPeriod(sub, now, sub.interval),
          planVersionId: fallback.id,
          status: "active",
          trialEnd: sub.status === "trialing" ? now : sub.trialEnd,
          cancelAt: null,
          cancelAtPeriodEnd: false,
          canceledAt: now,
        };
      });
    },

    /**
     * Apply every due transition, in batches locked `FOR UPDATE SKIP LOCKED` so several processes can
     * sweep at once. Returns how many subscriptions changed.
     */
    async sweep(): Promise<number> {
      const fallback = await deps.catalog.fallbackPlan();
      let total = 0;
      for (;;) {
        const { locked, changed } = await deps.db.transaction(async (stores) => {
          const due = await stores.subscriptions.lockDue(deps.clock.now(), SWEEP_BATCH);
          let changedInBatch = 0;
          for (const sub of due) {
            if ((await applyDue(stores, sub, fallback)) !== sub) {
              changedInBatch += 1;
            }
          }
          return { locked: due.length, changed: changedInBatch };
        });
        total += changed;
        // A full batch in which nothing changed would come back unchanged: stop rather than spin.
        if (locked < SWEEP_BATCH || changed === 0) {
          return total;
        }
      }
    },
  };
}

export type SubscriptionsService = ReturnType<typeof createSubscriptionsService>;
