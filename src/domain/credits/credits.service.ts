import { anchorDayOf, type Period, periodEnd, rollPeriod } from "../../lib/billing-period.ts";
import type { Clock } from "../../lib/clock.ts";
import { decodeCursor, type Page, toPage } from "../../lib/cursor.ts";
import {
  compareSigned,
  DECIMAL_PATTERN,
  divideDecimal,
  fromUnits,
  normalizeDecimal,
  toUnits,
} from "../../lib/decimal.ts";
import { AppError, notFound } from "../../lib/errors.ts";
import { isId, newId } from "../../lib/ids.ts";
import type { AuditEvent } from "../audit/audit.types.ts";
import { auditEvent } from "../audit/audit-event.ts";
import type { RequestContext } from "../auth/principal.ts";
import type { CatalogService } from "../catalog/catalog.service.ts";
import { loadOrg } from "../orgs/orgs.service.ts";
import type { Stores, Transactor } from "../stores.ts";
import type { SubscriptionsService } from "../subscriptions/subscriptions.service.ts";
import { emitEvent } from "../webhooks/event-data.ts";
import type {
  CreditAccount,
  CreditEntry,
  CreditGrant,
  DebitSource,
  EntryAllocation,
  EntryType,
  GrantSource,
} from "./credits.types.ts";

/** The stores a credits transaction writes through. */
type TxStores = Pick<Stores, "credits" | "audit" | "orgs" | "webhooks">;

export type DebitResult =
  | {
      ok: true;
      balance: string;
      entryId: string;
      /** The period the debit counts in, its use after the debit and its plan allocation. */
      periodStart: Date;
      periodUsed: string;
      periodAllocation: string | null;
    }
  | { ok: false; reason: "insufficient_credits" | "spending_limit_reached"; balance: string };

export type DebitOptions = { source: DebitSource; reference?: string | undefined };

export type GrantInput = {
  amount: string;
  source: Exclude<GrantSource, "plan_allocation">;
  expiresAt?: Date | undefined;
  priority?: number | undefined;
  reason?: string | undefined;
  reference?: string | undefined;
};

export type CreditsView = {
  account: CreditAccount;
  grants: CreditGrant[];
  period: { start: Date; end: Date; allocation: string | null; used: string };
  /** Credits per day over the last 7 days. */
  burnRate: string;
  /** Balance ÷ burn rate, truncated to 2 digits; null when nothing was used. */
  daysRemaining: string | null;
};

/** The credit period an organization is in now and what it is allocated. */
export type CreditPeriodTarget = Period & { allocation: string | null };

/** Called after a period opened (rollover) has committed: the `usage_reset` alert seam. */
export type PeriodResetHook = (orgId: string, period: Period) => Promise<void>;

/** Organizations rolled over per sweep run. */
const SWEEP_BATCH = 100;
const BURN_DAYS = 7;
const DAY_MS = 86_400_000;

/** A debit found an expired grant still live: the transaction rolls back and the org is settled first. */
class SettleFirst extends Error {}

function unitsMin(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

function isExpired(g: CreditGrant, now: Date): boolean {
  return g.expiresAt !== null && g.expiresAt.getTime() <= now.getTime();
}

/** `amount` of a request body: a positive exact decimal. */
function positiveAmount(amount: string, field = "amount"): bigint {
  if (!DECIMAL_PATTERN.test(amount) || toUnits(amount) === 0n) {
    throw new AppError(
      "validation_failed",
      `${field}: must be a positive decimal string such as "100" or "12.5"`,
      {
        errors: [{ path: field, message: "must be a positive decimal string" }],
      },
    );
  }
  return toUnits(amount);
}

/** The monthly credit period containing `now`, anchored on `anchorDay`, rolled forward from `start`. */
function monthlyPeriod(start: Date, anchorDay: number, now: Date): Period {
  const rolled = rollPeriod({ start, end: periodEnd(start, anchorDay, "month") }, anchorDay, "month", now);
  return { start: rolled.start, end: rolled.end };
}

export function createCreditsService(deps: {
  db: Transactor;
  stores: Pick<Stores, "credits" | "orgs" | "subscriptions">;
  subscriptions: Pick<SubscriptionsService, "get" | "change">;
  catalog: Pick<CatalogService, "defaultPlan">;
  clock: Clock;
  /** Optional: told after each committed rollover (wired to the alerts service's `usage_reset`). */
  onPeriodReset?: PeriodResetHook | undefined;
  /** The catalog's price of a credit (major units): a debit judges hard limits set in currency with it. */
  creditPrice?: string | undefined;
}) {
  const { clock } = deps;

  /**
   * The period the organization is in now: monthly periods anchored on its subscription (a yearly
   * subscription still gets its credits month by month), or on its creation date when it has none.
   */
  async function targetPeriod(orgId: string): Promise<CreditPeriodTarget> {
    if (!isId("org", orgId)) {
      throw notFound("Organization", orgId);
    }
    const now = clock.now();
    const found = await deps.stores.subscriptions.findByOrg(orgId);
    if (found !== undefined) {
      const { subscription, plan } = await deps.subscriptions.get(orgId);
      const period = monthlyPeriod(subscription.currentPeriodStart, subscription.billingAnchorDay, now);
      return { ...period, allocation: plan.definition.monthlyCredits };
    }
    const org = await loadOrg(deps.stores, orgId);
    const plan = await deps.catalog.defaultPlan();
    const period = monthlyPeriod(org.createdAt, anchorDayOf(org.createdAt), now);
    return { ...period, allocation: plan.definition.monthlyCredits };
  }

  function entry(
    orgId: string,
    type: EntryType,
    values: Partial<Omit<CreditEntry, "id" | "orgId" | "type">> & { amount: string; balanceAfter: string },
    ctx: RequestContext | null,
    now: Date,
  ): CreditEntry {
    return {
      id: newId("crt"),
      orgId,
      type,
      overdrawn: "0",
      grantId: null,
      allocations: [],
      source: null,
      reference: null,
      reason: null,
      reversesId: null,
      actorType: ctx === null ? "system" : ctx.principal.kind === "member" ? "user" : ctx.principal.kind,
      actorId: ctx === null ? null : ctx.principal.id,
      createdAt: now,
      ...values,
    };
  }

  function systemAudit(
    orgId: string,
    action: string,
    targetType: string,
    targetId: string,
    to: Record<string, string | null>,
    at: Date,
  ): AuditEvent {
    return {
      id: newId("aud"),
      orgId,
      actorType: "system",
      actorId: null,
      action,
      targetType,
      targetId,
      changes: Object.fromEntries(Object.entries(to).map(([k, v]) => [k, { to: v }])),
      ip: null,
      userAgent: null,
      requestId: null,
      createdAt: at,
    };
  }

  /** Take `units` from the live grants in consumption order; what no grant covers is overdrawn. */
  async function consume(
    stores: TxStores,
    orgId: string,
    units: bigint,
    now: Date,
    exclude?: string,
  ): Promise<{ allocations: EntryAllocation[]; overdrawn: bigint }> {
    let left = units;
    const allocations: EntryAllocation[] = [];
    for (const g of await stores.credits.listLiveGrants(orgId)) {
      if (left === 0n) {
        break;
      }
      if (g.id === exclude) {
        continue;
      }
      if (isExpired(g, now)) {
        throw new SettleFirst(`grant ${g.id} expired before it was settled`);
      }
      const remaining = toUnits(g.remaining);
      const take = unitsMin(left, remaining);
      if (take === 0n) {
        continue;
      }
      await stores.credits.updateGrant(orgId, g.id, { remaining: fromUnits(remaining - take) });
      allocations.push({ grant_id: g.id, amount: fromUnits(-take) });
      left -= take;
    }
    return { allocations, overdrawn: left };
  }

  /** Add a grant to a locked account: it first repays any overdrawn part, then holds the rest. */
  async function addGrant(
    stores: TxStores,
    account: CreditAccount,
    grant: Omit<CreditGrant, "remaining" | "closedAt">,
    entryType: EntryType,
    ctx: RequestContext | null,
    now: Date,
    extra: Partial<CreditEntry> = {},
  ): Promise<{ grant: CreditGrant; entry: CreditEntry; account: CreditAccount } | undefined> {
    const amount = toUnits(grant.amount);
    const repay = unitsMin(toUnits(account.overdrawn), amount);
    const written: CreditGrant = { ...grant, remaining: fromUnits(amount - repay), closedAt: null };
    if (!(await stores.credits.insertGrant(written))) {
      return undefined;
    }
    const balance = fromUnits(toUnits(account.balance) + amount);
    const overdrawn = fromUnits(toUnits(account.overdrawn) - repay);
    const e = entry(
      account.orgId,
      entryType,
      {
        amount: grant.amount,
        balanceAfter: balance,
        overdrawn: fromUnits(-repay),
        grantId: grant.id,
        allocations: [{ grant_id: grant.id, amount: written.remaining }],
        source: grant.source,
        reference: grant.reference,
        reason: grant.reason,
        ...extra,
      },
      ctx,
      now,
    );
    await stores.credits.insertEntry(e);
    await stores.credits.updateAccount(account.orgId, { balance, overdrawn, updatedAt: now });
    return { grant: written, entry: e, account: { ...account, balance, overdrawn, updatedAt: now } };
  }

  /** Close a grant whose time has come: its remaining credits leave the balance in an expiry entry. */
  async function expireGrant(
    stores: TxStores,
    account: CreditAccount,
    g: CreditGrant,
    now: Date,
  ): Promise<CreditAccount> {
    await stores.credits.updateGrant(account.orgId, g.id, { remaining: "0", closedAt: now });
    const remaining = toUnits(g.remaining);
    if (remaining === 0n) {
      return account;
    }
    const balance = fromUnits(toUnits(account.balance) - remaining);
    await stores.credits.insertEntry(
      entry(
        account.orgId,
        "expiry",
        {
          amount: fromUnits(-remaining),
          balanceAfter: balance,
          grantId: g.id,
          allocations: [{ grant_id: g.id, amount: fromUnits(-remaining) }],
          source: g.source,
        },
        null,
        now,
      ),
    );
    await stores.credits.updateAccount(account.orgId, { balance, updatedAt: now });
    return { ...account, balance, updatedAt: now };
  }

  /**
   * Inside a transaction: the account locked (created on first use), its period rolled to `target`
   * exactly once (the credit_periods row is inserted first; a conflict means another process did it),
   * and every grant past its expiry closed by an entry. Returns the period opened, if any.
   */
  async function settleIn(
    stores: TxStores,
    orgId: string,
    target: CreditPeriodTarget,
  ): Promise<{ account: CreditAccount; opened: Period | undefined }> {
    const now = clock.now();
    const created = await stores.credits.insertAccount({
      orgId,
      balance: "0",
      overdraft: "0",
      overdrawn: "0",
      periodStart: target.start,
      periodEnd: target.end,
      periodUsed: "0",
      periodAllocation: target.allocation,
      createdAt: now,
      updatedAt: now,
    });
    let account = await stores.credits.findAccountForUpdate(orgId);
    if (account === undefined) {
      throw new Error(`credit account of ${orgId} vanished inside its transaction`);
    }
    let opened: Period | undefined;
    if (created || account.periodStart.getTime() < target.start.getTime()) {
      const first = await stores.credits.insertPeriod({
        orgId,
        periodStart: target.start,
        periodEnd: target.end,
        allocation: target.allocation,
        createdAt: now,
      });
      if (first) {
        // The old period's allocation ends with it, used or not.
        for (const g of await stores.credits.listLiveGrants(orgId)) {
          if (g.source === "plan_allocation" && (g.periodStart?.getTime() ?? 0) < target.start.getTime()) {
            account = await expireGrant(stores, account, g, now);
          }
        }
        if (target.allocation !== null && toUnits(target.allocation) > 0n) {
          const granted = await addGrant(
            stores,
            account,
            {
              id: newId("crg"),
              orgId,
              source: "plan_allocation",
              amount: target.allocation,
              priority: 0,
              expiresAt: target.end,
              periodStart: target.start,
              reference: null,
              reason: null,
              createdAt: now,
            },
            "grant",
            null,
            now,
          );
          if (granted !== undefined) {
            account = granted.account;
          }
        }
        await stores.audit.insert(
          systemAudit(
            orgId,
            "credits.period_opened",
            "credit_period",
            orgId,
            {
              period_start: target.start.toISOString(),
              period_end: target.end.toISOString(),
              allocation: target.allocation,
            },
            now,
          ),
        );
        // Once per organization and period, as the credit_periods row above: the rollover's own event. An
        // account's first period is no reset (nothing was used before it): it opens without one.
        if (!created) {
          await emitEvent(
            stores,
            orgId,
            "usage.period_reset",
            {
              org_id: orgId,
              period_start: target.start.toISOString(),
              period_end: target.end.toISOString(),
              allocation: target.allocation,
            },
            clock,
          );
        }
        opened = { start: target.start, end: target.end };
      }
      // A new period: its use starts at nothing (the spending limits judge it afresh).
      await stores.credits.updateAccount(orgId, {
        periodStart: target.start,
        periodEnd: target.end,
        periodUsed: "0",
        periodAllocation: target.allocation,
        updatedAt: now,
      });
      account = {
        ...account,
        periodStart: target.start,
        periodEnd: target.end,
        periodUsed: "0",
        periodAllocation: target.allocation,
      };
    }
    for (const g of await stores.credits.listLiveGrants(orgId)) {
      if (isExpired(g, now)) {
        account = await expireGrant(stores, account, g, now);
      }
    }
    return { account, opened };
  }

  /** Move the locked account's use of the period by `units` (negative: given back). */
  async function addPeriodUse(stores: TxStores, account: CreditAccount, units: bigint, now: Date) {
    await stores.credits.updateAccount(account.orgId, {
      periodUsed: fromUnits(toUnits(account.periodUsed) + units),
      updatedAt: now,
    });
  }

  async function announce(orgId: string, opened: Period | undefined): Promise<void> {
    if (opened !== undefined && deps.onPeriodReset !== undefined) {
      await deps.onPeriodReset(orgId, opened);
    }
  }

  /** Bring an organization's credits up to date (period, allocation, expiries) in its own transaction. */
  async function settle(orgId: string): Promise<CreditAccount> {
    const target = await targetPeriod(orgId);
    const { account, opened } = await deps.db.transaction((stores) => settleIn(stores, orgId, target));
    await announce(orgId, opened);
    return account;
  }

  /** Nothing to do: the account exists, its period is current and no live grant has expired. */
  async function isSettled(orgId: string): Promise<boolean> {
    const account = await deps.stores.credits.findAccount(orgId);
    if (account === undefined) {
      return false;
    }
    const now = clock.now();
    if (account.periodEnd.getTime() <= now.getTime()) {
      return false;
    }
    const target = await targetPeriod(orgId);
    if (account.periodStart.getTime() < target.start.getTime()) {
      return false;
    }
    const grants = await deps.stores.credits.listLiveGrants(orgId);
    return !grants.some((g) => isExpired(g, now));
  }

  async function ensureSettled(orgId: string): Promise<void> {
    if (!(await isSettled(orgId))) {
      await settle(orgId);
    }
  }

  /**
   * A mutation by the operator: the organization checked, the account settled and locked, `fn` run and
   * the period hook called after the commit.
   */
  async function mutate<T>(
    orgId: string,
    fn: (stores: TxStores, account: CreditAccount, now: Date) => Promise<T>,
  ): Promise<T> {
    const target = await targetPeriod(orgId);
    const { result, opened } = await deps.db.transaction(async (stores) => {
      const org = await loadOrg(stores, orgId);
      if (org.status === "deleted") {
        throw new AppError("invalid_state_transition", `Organization '${orgId}' is deleted`);
      }
      const settled = await settleIn(stores, orgId, target);
      return { result: await fn(stores, settled.account, clock.now()), opened: settled.opened };
    });
    await announce(orgId, opened);
    return result;
  }

  /** Take `units` from a locked account like a debit, refusing below -overdraft. */
  async function take(
    stores: TxStores,
    account: CreditAccount,
    units: bigint,
    now: Date,
    exclude?: string,
  ): Promise<{ allocations: EntryAllocation[]; overdrawn: bigint; account: CreditAccount }> {
    const balance = toUnits(account.balance) - units;
    if (balance < -toUnits(account.overdraft)) {
      throw new AppError(
        "insufficient_credits",
        `The balance of ${account.balance} cannot cover ${fromUnits(units)} (overdraft ${account.overdraft})`,
        { details: { balance: account.balance, overdraft: account.overdraft, required: fromUnits(units) } },
      );
    }
    const { allocations, overdrawn } = await consume(stores, account.orgId, units, now, exclude);
    const next = {
      ...account,
      balance: fromUnits(balance),
      overdrawn: fromUnits(toUnits(account.overdrawn) + overdrawn),
      updatedAt: now,
    };
    await stores.credits.updateAccount(account.orgId, {
      balance: next.balance,
      overdrawn: next.overdrawn,
      updatedAt: now,
    });
    return { allocations, overdrawn, account: next };
  }

  /**
   * Give `units` back to a locked account: first repay the overdrawn part, then refill the grants the
   * original entry took from (while they are live), and hold the rest in a new `adjustment` grant.
   */
  async function giveBack(
    stores: TxStores,
    account: CreditAccount,
    units: bigint,
    from: EntryAllocation[],
    reason: string,
    now: Date,
  ): Promise<{
    allocations: EntryAllocation[];
    repaid: bigint;
    grantId: string | null;
    account: CreditAccount;
  }> {
    const repaid = unitsMin(toUnits(account.overdrawn), units);
    let left = units - repaid;
    const allocations: EntryAllocation[] = [];
    const live = new Map((await stores.credits.listLiveGrants(account.orgId)).map((g) => [g.id, g]));
    for (const a of [...from].reverse()) {
      const g = live.get(a.grant_id);
      if (left === 0n || g === undefined || isExpired(g, now)) {
        continue;
      }
      const room = toUnits(g.amount) - toUnits(g.remaining);
      const give = unitsMin(unitsMin(left, -toUnits(a.amount)), room);
      if (give <= 0n) {
        continue;
      }
      await stores.credits.updateGrant(account.orgId, g.id, {
        remaining: fromUnits(toUnits(g.remaining) + give),
      });
      allocations.push({ grant_id: g.id, amount: fromUnits(give) });
      left -= give;
    }
    let grantId: string | null = null;
    if (left > 0n) {
      grantId = newId("crg");
      const grant: CreditGrant = {
        id: grantId,
        orgId: account.orgId,
        source: "adjustment",
        amount: fromUnits(left),
        remaining: fromUnits(left),
        priority: 0,
        expiresAt: null,
        closedAt: null,
        periodStart: null,
        reference: null,
        reason,
        createdAt: now,
      };
      await stores.credits.insertGrant(grant);
      allocations.push({ grant_id: grantId, amount: fromUnits(left) });
    }
    const next = {
      ...account,
      balance: fromUnits(toUnits(account.balance) + units),
      overdrawn: fromUnits(toUnits(account.overdrawn) - repaid),
      updatedAt: now,
    };
    await stores.credits.updateAccount(account.orgId, {
      balance: next.balance,
      overdrawn: next.overdrawn,
      updatedAt: now,
    });
    return { allocations, repaid, grantId, account: next };
  }

  /** The plan a purchase moved the organization to under its plan's `auto_upgrade` rules, if any. */
  async function autoUpgrade(
    ctx: RequestContext,
    orgId: string,
    before: string,
    after: string,
  ): Promise<string | null> {
    const { plan } = await deps.subscriptions.get(orgId);
    const reached = (plan.definition.autoUpgrade ?? [])
      .filter(
        (r) =>
          compareSigned(before, r.whenBalanceAtLeast) < 0 && compareSigned(after, r.whenBalanceAtLeast) >= 0,
      )
      .sort((a, b) => compareSigned(b.whenBalanceAtLeast, a.whenBalanceAtLeast))[0];
    if (reached === undefined || reached.plan === plan.key) {
      return null;
    }
    await deps.subscriptions.change(ctx, orgId, { plan: reached.plan });
    return reached.plan;
  }

  async function debitOnce(
    orgId: string,
    units: bigint,
    options: DebitOptions,
  ): Promise<DebitResult | "settle"> {
    return deps.db.transaction((stores) => debitWithin(stores, orgId, units, options));
  }

  /** The debit inside the caller's transaction; "settle": the period must be settled first (outside it). */
  async function debitWithin(
    stores: TxStores,
    orgId: string,
    units: bigint,
    options: DebitOptions,
  ): Promise<DebitResult | "settle"> {
    const amount = fromUnits(units);
    {
      const now = clock.now();
      let updated = await stores.credits.tryDebit(orgId, amount, now, deps.creditPrice);
      for (let recheck = 0; updated === undefined; recheck++) {
        const account = await stores.credits.findAccount(orgId);
        if (account === undefined || account.periodEnd.getTime() <= now.getTime()) {
          return "settle";
        }
        // Refused with the balance enough: the spending limit's hard limit was the condition that failed —
        // unless the account was created by another transaction after the UPDATE looked (it found no row):
        // then the UPDATE is tried once more, now that the row is there.
        const covered = toUnits(account.balance) - units >= -toUnits(account.overdraft);
        if (!covered || recheck > 0) {
          return {
            ok: false,
            reason: covered ? "spending_limit_reached" : "insufficient_credits",
            balance: account.balance,
          };
        }
        updated = await stores.credits.tryDebit(orgId, amount, now, deps.creditPrice);
      }
      // The row is locked by the UPDATE until commit: grants change under it, one debit at a time.
      const { allocations, overdrawn } = await consume(stores, orgId, units, now);
      if (overdrawn > 0n) {
        await stores.credits.updateAccount(orgId, {
          overdrawn: fromUnits(toUnits(updated.overdrawn) + overdrawn),
          updatedAt: now,
        });
      }
      const e = entry(
        orgId,
        "debit",
        {
          amount: fromUnits(-units),
          balanceAfter: updated.balance,
          overdrawn: fromUnits(overdrawn),
          allocations,
          source: options.source,
          reference: options.reference ?? null,
        },
        null,
        now,
      );
      await stores.credits.insertEntry(e);
      return {
        ok: true,
        balance: updated.balance,
        entryId: e.id,
        periodStart: updated.periodStart,
        periodUsed: updated.periodUsed,
        periodAllocation: updated.periodAllocation,
      };
    }
  }

  return {
    /** Bring the organization's credits up to date now (period, allocation, expiries). */
    settle,

    /**
     * Take `amount` credits now, exactly, across processes: one transaction, one conditional UPDATE of the
     * balance row (refused below -overdraft), the grants consumed in order and one ledger entry. Once this
     * resolves `ok`, the debit is committed.
     */
    async debit(orgId: string, amount: string, options: DebitOptions): Promise<DebitResult> {
      const units = positiveAmount(amount);
      if (!isId("org", orgId)) {
        throw notFound("Organization", orgId);
      }
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          const result = await debitOnce(orgId, units, options);
          if (result !== "settle") {
            return result;
          }
        } catch (err) {
          if (!(err instanceof SettleFirst)) {
            throw err;
          }
        }
        await settle(orgId);
      }
      throw new Error(`credits of ${orgId} could not be settled for a debit`);
    },

    /**
     * The debit of `debit`, inside the caller's transaction, so what it pays for commits with it (a usage
     * batch). "settle": the credit period has ended; roll the transaction back, `settle(orgId)`, retry.
     * An expired grant met on the way throws; the same remedy applies (`isSettleFirst`).
     */
    async debitIn(
      stores: TxStores,
      orgId: string,
      amount: string,
      options: DebitOptions,
    ): Promise<DebitResult | "settle"> {
      return debitWithin(stores, orgId, positiveAmount(amount), options);
    },

    async get(orgId: string): Promise<CreditsView> {
      await loadOrg(deps.stores, orgId);
      await ensureSettled(orgId);
      const account = await deps.stores.credits.findAccount(orgId);
      if (account === undefined) {
        throw new Error(`credit account of ${orgId} missing after settling`);
      }
      const now = clock.now();
      const grants = (await deps.stores.credits.listLiveGrants(orgId)).filter((g) => !isExpired(g, now));
      const period = await deps.stores.credits.findPeriod(orgId, account.periodStart);
      const used = await deps.stores.credits.usedSince(orgId, account.periodStart);
      const week = await deps.stores.credits.usedSince(orgId, new Date(now.getTime() - BURN_DAYS * DAY_MS));
      const burnRate = divideDecimal(week, String(BURN_DAYS));
      const daysRemaining =
        toUnits(burnRate) === 0n
          ? null
          : toUnits(account.balance) <= 0n
            ? "0"
            : divideDecimal(account.balance, burnRate, 2);
      return {
        account,
        grants,
        period: {
          start: account.periodStart,
          end: account.periodEnd,
          allocation: period?.allocation ?? null,
          used,
        },
        burnRate,
        daysRemaining,
      };
    },

    async listTransactions(
      orgId: string,
      options: { limit: number; cursor: string | undefined },
    ): Promise<Page<CreditEntry>> {
      const after = decodeCursor(options.cursor, "crt");
      await loadOrg(deps.stores, orgId);
      await ensureSettled(orgId);
      return toPage(await deps.stores.credits.listEntries(orgId, options.limit + 1, after), options.limit);
    },

    /**
     * Add a grant. A purchase that brings the balance to a threshold of the plan's `auto_upgrade` rules then
     * moves the organization to that plan (after the grant commits, through the subscription service).
     */
    async grant(
      ctx: RequestContext,
      orgId: string,
      input: GrantInput,
    ): Promise<{ grant: CreditGrant; entry: CreditEntry; upgradedTo: string | null }> {
      const amount = fromUnits(positiveAmount(input.amount));
      const result = await mutate(orgId, async (stores, account, now) => {
        if (input.reference !== undefined) {
          const existing = await stores.credits.findGrantByReference(orgId, input.reference);
          if (existing !== undefined) {
            throw referenceTaken(input.reference, existing.id);
          }
        }
        const result = await addGrant(
          stores,
          account,
          {
            id: newId("crg"),
            orgId,
            source: input.source,
            amount,
            priority: input.priority ?? 0,
            expiresAt: input.expiresAt ?? null,
            periodStart: null,
            reference: input.reference ?? null,
            reason: input.reason ?? null,
            createdAt: now,
          },
          "grant",
          ctx,
          now,
        );
        if (result === undefined) {
          // Another request took the reference between the look and the insert.
          const existing =
            input.reference === undefined
              ? undefined
              : await stores.credits.findGrantByReference(orgId, input.reference);
          throw referenceTaken(input.reference ?? "", existing?.id ?? null);
        }
        await stores.audit.insert(
          auditEvent(
            ctx,
            {
              orgId,
              action: "credits.granted",
              targetType: "credit_grant",
              targetId: result.grant.id,
              changes: {
                amount: { to: result.grant.amount },
                source: { to: result.grant.source },
                expires_at: { to: result.grant.expiresAt?.toISOString() ?? null },
                priority: { to: result.grant.priority },
                reference: { to: result.grant.reference },
                reason: { to: result.grant.reason },
              },
            },
            clock,
          ),
        );
        await emitEvent(
          stores,
          orgId,
          "credits.granted",
          {
            org_id: orgId,
            grant: {
              id: result.grant.id,
              amount: result.grant.amount,
              source: result.grant.source,
              priority: result.grant.priority,
              expires_at: result.grant.expiresAt?.toISOString() ?? null,
              reference: result.grant.reference,
              reason: result.grant.reason,
            },
            transaction_id: result.entry.id,
            balance: result.entry.balanceAfter,
          },
          clock,
        );
        return { grant: result.grant, entry: result.entry, before: account.balance };
      });
      const upgradedTo =
        input.source === "purchase"
          ? await autoUpgrade(ctx, orgId, result.before, result.entry.balanceAfter)
          : null;
      return { grant: result.grant, entry: result.entry, upgradedTo };
    },

    /** A signed operator adjustment: positive adds an `adjustment` grant, negative takes like a debit. */
    async adjust(
      ctx: RequestContext,
      orgId: string,
      input: { amount: string; reason: string },
    ): Promise<CreditEntry> {
      const negative = input.amount.startsWith("-");
      const units = positiveAmount(negative ? input.amount.slice(1) : input.amount);
      return mutate(orgId, async (stores, account, now) => {
        let e: CreditEntry;
        if (!negative) {
          const result = await addGrant(
            stores,
            account,
            {
              id: newId("crg"),
              orgId,
              source: "adjustment",
              amount: fromUnits(units),
              priority: 0,
              expiresAt: null,
              periodStart: null,
              reference: null,
              reason: input.reason,
              createdAt: now,
            },
            "adjustment",
            ctx,
            now,
          );
          if (result === undefined) {
            throw new Error("an adjustment grant without a reference cannot conflict");
          }
          e = result.entry;
        } else {
          const taken = await take(stores, account, units, now);
          // A negative adjustment counts as use, as a debit does.
          await addPeriodUse(stores, account, units, now);
          e = entry(
            orgId,
            "adjustment",
            {
              amount: fromUnits(-units),
              balanceAfter: taken.account.balance,
              overdrawn: fromUnits(taken.overdrawn),
              allocations: taken.allocations,
              reason: input.reason,
            },
            ctx,
            now,
          );
          await stores.credits.insertEntry(e);
        }
        await stores.audit.insert(
          auditEvent(
            ctx,
            {
              orgId,
              action: "credits.adjusted",
              targetType: "credit_transaction",
              targetId: e.id,
              changes: { amount: { to: e.amount }, reason: { to: input.reason } },
            },
            clock,
          ),
        );
        return e;
      });
    },

    /** Reverse one entry, exactly once: a grant (while live) is taken back, a debit is given back. */
    async reverse(ctx: RequestContext, orgId: string, entryId: string, reason: string): Promise<CreditEntry> {
      return mutate(orgId, async (stores, account, now) => {
        const original = isId("crt", entryId) ? await stores.credits.findEntry(orgId, entryId) : undefined;
        if (original === undefined) {
          throw notFound("Transaction", entryId);
        }
        if (await stores.credits.findReversal(orgId, original.id)) {
          throw new AppError("already_reversed", `Transaction '${entryId}' is already reversed`);
        }
        if (original.type === "reversal" || original.type === "expiry") {
          throw new AppError("invalid_state_transition", `A ${original.type} entry cannot be reversed`);
        }
        const amount = toUnits(original.amount);
        let e: CreditEntry;
        if (amount > 0n) {
          // A grant or a positive adjustment: its grant closes and the whole amount leaves the balance.
          const grant =
            original.grantId === null ? undefined : await stores.credits.findGrant(orgId, original.grantId);
          if (grant === undefined || grant.closedAt !== null) {
            throw new AppError(
              "invalid_state_transition",
              `The grant of transaction '${entryId}' has expired or was reversed; adjust instead`,
            );
          }
          const remaining = toUnits(grant.remaining);
          await stores.credits.updateGrant(orgId, grant.id, { remaining: "0", closedAt: now });
          const rest = amount - remaining;
          const afterGrant = { ...account, balance: fromUnits(toUnits(account.balance) - remaining) };
          // The part of the grant already spent (or that repaid an overdraft) is taken from the others.
          const taken =
            rest > 0n
              ? await take(stores, afterGrant, rest, now, grant.id)
              : { allocations: [], overdrawn: 0n, account: afterGrant };
          if (rest <= 0n) {
            await stores.credits.updateAccount(orgId, { balance: afterGrant.balance, updatedAt: now });
          }
          e = entry(
            orgId,
            "reversal",
            {
              amount: fromUnits(-amount),
              balanceAfter: taken.account.balance,
              overdrawn: fromUnits(taken.overdrawn),
              grantId: grant.id,
              allocations: [{ grant_id: grant.id, amount: fromUnits(-remaining) }, ...taken.allocations],
              reason,
              reversesId: original.id,
            },
            ctx,
            now,
          );
        } else {
          const given = await giveBack(stores, account, -amount, original.allocations, reason, now);
          // A debit or negative adjustment given back is use given back (as `usedSince` counts it).
          await addPeriodUse(stores, account, amount, now);
          e = entry(
            orgId,
            "reversal",
            {
              amount: fromUnits(-amount),
              balanceAfter: given.account.balance,
              overdrawn: fromUnits(-given.repaid),
              grantId: given.grantId,
              allocations: given.allocations,
              reason,
              reversesId: original.id,
            },
            ctx,
            now,
          );
        }
        if (!(await stores.credits.insertEntry(e))) {
          throw new AppError("already_reversed", `Transaction '${entryId}' is already reversed`);
        }
        await stores.audit.insert(
          auditEvent(
            ctx,
            {
              orgId,
              action: "credits.reversed",
              targetType: "credit_transaction",
              targetId: original.id,
              changes: { reversed_by: { to: e.id }, amount: { to: e.amount }, reason: { to: reason } },
            },
            clock,
          ),
        );
        return e;
      });
    },

    /** Set how far below zero the balance may go (operator). Refused while the balance is already below it. */
    async setOverdraft(ctx: RequestContext, orgId: string, overdraft: string): Promise<CreditAccount> {
      if (!DECIMAL_PATTERN.test(overdraft)) {
        throw new AppError("validation_failed", 'overdraft: must be a decimal string such as "0" or "50"', {
          errors: [{ path: "overdraft", message: "must be a decimal string" }],
        });
      }
      const value = normalizeDecimal(overdraft);
      return mutate(orgId, async (stores, account, now) => {
        if (value === account.overdraft) {
          return account;
        }
        if (toUnits(account.balance) < -toUnits(value)) {
          throw new AppError(
            "insufficient_credits",
            `The balance of ${account.balance} is below -${value}; grant credits before lowering the overdraft`,
            { details: { balance: account.balance, overdraft: account.overdraft, required: value } },
          );
        }
        await stores.credits.updateAccount(orgId, { overdraft: value, updatedAt: now });
        await stores.audit.insert(
          auditEvent(
            ctx,
            {
              orgId,
              action: "credits.settings_updated",
              targetType: "credit_account",
              targetId: orgId,
              changes: { overdraft: { from: account.overdraft, to: value } },
            },
            clock,
          ),
        );
        return { ...account, overdraft: value, updatedAt: now };
      });
    },

    /**
     * Roll over every organization whose period ended or that holds an expired grant, a batch at a time;
     * each in its own transaction. Safe to run from several processes at once.
     */
    async sweep(): Promise<number> {
      let settled = 0;
      const due = await deps.stores.credits.listDue(clock.now(), SWEEP_BATCH);
      for (const orgId of due) {
        await settle(orgId);
        settled += 1;
      }
      return settled;
    },
  };
}

function referenceTaken(reference: string, grantId: string | null): AppError {
  return new AppError("reference_taken", `A grant with reference '${reference}' already exists`, {
    details: { grant_id: grantId },
  });
}

export type CreditsService = ReturnType<typeof createCreditsService>;

/** A debit inside a caller's transaction met an expired grant: roll back, settle, retry. */
export function isSettleFirst(err: unknown): boolean {
  return err instanceof SettleFirst;
}
