/**
 * The credit ledger against real PostgreSQL: a seeded property test of every operation (the balance is
 * always the sum of the ledger and never below -overdraft), debits racing from two apps, and rollover
 * exactly once per organization and period.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Catalog, PlanDefinition } from "../src/domain/catalog/catalog.types.ts";
import { createCreditsService, type DebitResult } from "../src/domain/credits/credits.service.ts";
import { compareSigned, sumDecimal } from "../src/lib/decimal.ts";
import { AppError } from "../src/lib/errors.ts";
import { createServices } from "../src/services.ts";
import {
  admitEveryRequest,
  createManualClock,
  createSecondApp,
  createTestContext,
  type ManualClock,
  PREFIXES,
  type TestContext,
} from "./harness.ts";
import { testCatalog, testPlan } from "./plans.ts";
import { mulberry32 } from "./util.ts";

function plan(key: string, monthlyCredits: string | null): PlanDefinition {
  return testPlan(key, { monthlyCredits });
}

const catalog: Catalog = testCatalog([plan("free", "100"), plan("none", "0"), plan("custom", null)], {
  categories: [{ key: "metadata", description: "CRUD" }],
});

const DAY = 86_400_000;

type Figures = {
  balance: string;
  overdraft: string;
  overdrawn: string;
  ledger: string;
  grants: string;
  badGrants: number;
  /** The account's running use of the period, and the same recomputed from the ledger. */
  periodUsed: string;
  usedSince: string;
};

async function figures(t: TestContext, orgId: string): Promise<Figures> {
  const { rows } = await t.database.pool.query<{
    balance: string;
    overdraft: string;
    overdrawn: string;
    ledger: string;
    grants: string;
    bad_grants: string;
    period_used: string;
    period_start: Date;
  }>(
    `select a.balance::text, a.overdraft::text, a.overdrawn::text, a.period_used::text, a.period_start,
       (select coalesce(sum(amount), 0)::text from credit_entries where org_id = $1) as ledger,
       (select coalesce(sum(remaining), 0)::text from credit_grants where org_id = $1 and closed_at is null) as grants,
       (select count(*)::text from credit_grants where org_id = $1
          and (remaining < 0 or remaining > amount or (closed_at is not null and remaining <> 0))) as bad_grants
     from credit_accounts a where a.org_id = $1`,
    [orgId],
  );
  const row = rows[0];
  if (row === undefined) {
    throw new Error(`no credit account for ${orgId}`);
  }
  const usedSince = await t.database.stores.credits.usedSince(orgId, row.period_start);
  return {
    periodUsed: row.period_used,
    usedSince,
    balance: row.balance,
    overdraft: row.overdraft,
    overdrawn: row.overdrawn,
    ledger: row.ledger,
    grants: row.grants,
    badGrants: Number(row.bad_grants),
  };
}

function expectConsistent(f: Figures, context: string): void {
  expect(compareSigned(f.balance, f.ledger), `${context}: balance ${f.balance} ≠ ledger ${f.ledger}`).toBe(0);
  expect(
    compareSigned(f.balance, sumDecimal([f.grants, `-${f.overdrawn}`])),
    `${context}: balance ${f.balance} ≠ grants ${f.grants} − overdrawn ${f.overdrawn}`,
  ).toBe(0);
  expect(compareSigned(f.balance, `-${f.overdraft}`), `${context}: below -overdraft`).toBeGreaterThanOrEqual(
    0,
  );
  expect(
    compareSigned(f.overdrawn, f.overdraft),
    `${context}: overdrawn beyond overdraft`,
  ).toBeLessThanOrEqual(0);
  expect(f.badGrants, `${context}: grants out of bounds`).toBe(0);
  expect(
    compareSigned(f.periodUsed, f.usedSince),
    `${context}: period_used ${f.periodUsed} ≠ the period's use in the ledger ${f.usedSince}`,
  ).toBe(0);
}

/** Errors an operation may refuse with; anything else fails the test. */
function expectedRefusal(err: unknown): boolean {
  return (
    err instanceof AppError &&
    ["insufficient_credits", "already_reversed", "invalid_state_transition", "not_found"].includes(err.code)
  );
}

describe("credit ledger", () => {
  let t: TestContext;
  let clock: ManualClock;

  beforeAll(async () => {
    clock = createManualClock(new Date("2030-01-15T12:00:00Z"));
    t = await createTestContext({ clock, catalog });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("grants the period's allocation once on first read, consumes promotional first, then soonest expiry", async () => {
    clock.set(new Date("2030-01-15T12:00:00Z"));
    const org = await t.createOrg();
    const credits = t.services.credits;
    const first = await credits.get(org.id);
    expect(first.account.balance).toBe("100");
    expect(first.period.allocation).toBe("100");
    await credits.get(org.id);
    expect((await credits.get(org.id)).grants).toHaveLength(1);

    const promo = await credits.grant(t.operatorCtx, org.id, { amount: "5", source: "promotional" });
    const bought = await credits.grant(t.operatorCtx, org.id, { amount: "50", source: "purchase" });
    const r = await credits.debit(org.id, "7.5", { source: "usage" });
    expect(r).toMatchObject({ ok: true, balance: "147.5" });
    const view = await credits.get(org.id);
    const remaining = Object.fromEntries(view.grants.map((g) => [g.id, g.remaining]));
    expect(remaining[promo.grant.id]).toBe("0");
    expect(remaining[bought.grant.id]).toBe("50");
    expect(view.grants[0]?.source).toBe("promotional");
    expect(view.period.used).toBe("7.5");
    expect(view.burnRate).toBe("1.071428571428571428");
    expect(view.daysRemaining).toBe("137.66");
    expectConsistent(await figures(t, org.id), "after debit");
  });

  it("refuses a debit past the overdraft and records the overdrawn part on the entry", async () => {
    clock.set(new Date("2030-02-01T00:00:00Z"));
    const org = await t.createOrg();
    await t.setPlan(org.id, "none");
    await t.services.credits.get(org.id);
    await t.services.credits.grant(t.operatorCtx, org.id, { amount: "10", source: "purchase" });
    await t.database.pool.query("update credit_accounts set overdraft = 5 where org_id = $1", [org.id]);
    const ok = await t.services.credits.debit(org.id, "14", { source: "authorize" });
    expect(ok).toMatchObject({ ok: true, balance: "-4" });
    const refused = await t.services.credits.debit(org.id, "1.5", { source: "authorize" });
    expect(refused).toEqual({ ok: false, reason: "insufficient_credits", balance: "-4" });
    const f = await figures(t, org.id);
    expect(f.overdrawn).toBe("4.000000000000000000");
    expectConsistent(f, "overdrawn");
    // A grant repays the overdrawn part first.
    await t.services.credits.grant(t.operatorCtx, org.id, { amount: "6", source: "purchase" });
    const after = await figures(t, org.id);
    expect(after.overdrawn).toBe("0.000000000000000000");
    expect(after.grants).toBe("2.000000000000000000");
    expectConsistent(after, "repaid");
  });

  it("keeps balance = Σ ledger = Σ remaining − overdrawn ≥ −overdraft over random operations", async () => {
    const seed = Number(process.env.CREDITS_SEED ?? Date.now() % 1_000_000);
    const random = mulberry32(seed);
    const int = (n: number) => Math.floor(random() * n);
    const amount = () => `${int(40)}.${int(100)}`.replace(/^0\.0$/, "0.5");
    clock.set(new Date("2030-03-31T08:00:00Z"));
    const org = await t.createOrg();
    const credits = t.services.credits;
    await credits.get(org.id);
    const entries: string[] = [];
    const outcomes = { done: 0, refused: 0 };
    try {
      for (let step = 0; step < 120; step++) {
        const op = int(9);
        const context = `seed ${seed} step ${step} op ${op}`;
        try {
          if (op === 0 || op === 1) {
            const source = (["purchase", "promotional", "adjustment"] as const)[int(3)] ?? "purchase";
            const expires = int(2) === 0 ? new Date(clock.now().getTime() + (1 + int(40)) * DAY) : undefined;
            const g = await credits.grant(t.operatorCtx, org.id, {
              amount: amount(),
              source,
              expiresAt: expires,
              priority: int(3),
            });
            entries.push(g.entry.id);
          } else if (op === 2 || op === 3) {
            const r = await credits.debit(org.id, amount(), { source: "usage" });
            if (r.ok) {
              entries.push(r.entryId);
            }
          } else if (op === 4) {
            const e = await credits.adjust(t.operatorCtx, org.id, {
              amount: `${int(2) === 0 ? "-" : ""}${amount()}`,
              reason: "property",
            });
            entries.push(e.id);
          } else if (op === 5 && entries.length > 0) {
            const id = entries[int(entries.length)] ?? "";
            await credits.reverse(t.operatorCtx, org.id, id, "property");
          } else if (op === 6) {
            clock.advance(int(3) * DAY + int(24) * 3_600_000);
            await credits.sweep();
          } else if (op === 7) {
            clock.advance((5 + int(30)) * DAY);
            await credits.get(org.id);
          } else {
            const overdraft = int(4) * 10;
            await t.database.pool.query(
              "update credit_accounts set overdraft = greatest(overdraft, $2::numeric) where org_id = $1",
              [org.id, overdraft],
            );
          }
          outcomes.done += 1;
        } catch (err) {
          if (!expectedRefusal(err)) {
            throw err;
          }
          outcomes.refused += 1;
        }
        expectConsistent(await figures(t, org.id), context);
      }
      // Most operations must go through, or the test proves little.
      expect(outcomes.done).toBeGreaterThan(outcomes.refused);
    } catch (err) {
      process.stderr.write(`credits property test failed with CREDITS_SEED=${seed}\n`);
      throw err;
    }
  });

  it("200 parallel debits of 1 on a balance of 100 from two apps: exactly 100 succeed", async () => {
    clock.set(new Date("2030-06-10T00:00:00Z"));
    const org = await t.createOrg();
    await t.setPlan(org.id, "none");
    await t.services.credits.get(org.id);
    await t.services.credits.grant(t.operatorCtx, org.id, { amount: "100", source: "purchase" });
    const second = createSecondApp(t, { clock });
    const otherServices = createServices(second.database, {
      clock,
      prefixes: PREFIXES,
      identity: undefined,
      catalog,
      rateLimiter: admitEveryRequest,
    });
    try {
      // 200 debits, as many in flight per app as its pool has connections (10): every one of them races in
      // PostgreSQL at once with the other app's, and none waits in a pool queue long enough to time out.
      const apps = [t.services.credits, otherServices.credits];
      const outcomes: PromiseSettledResult<DebitResult>[] = [];
      let next = 0;
      await Promise.all(
        apps.flatMap((credits) =>
          Array.from({ length: 10 }, async () => {
            while (next < 200) {
              next += 1;
              const [outcome] = await Promise.allSettled([
                credits.debit(org.id, "1", { source: "authorize" }),
              ]);
              if (outcome !== undefined) {
                outcomes.push(outcome);
              }
            }
          }),
        ),
      );
      const failures = outcomes.flatMap((o) => (o.status === "rejected" ? [String(o.reason)] : []));
      expect(failures).toEqual([]);
      const results = outcomes.flatMap((o) => (o.status === "fulfilled" ? [o.value] : []));
      expect(results).toHaveLength(200);
      expect(results.filter((r) => r.ok)).toHaveLength(100);
      expect(results.filter((r) => !r.ok)).toHaveLength(100);
      const f = await figures(t, org.id);
      expect(f.balance).toBe("0.000000000000000000");
      expectConsistent(f, "after the race");
      const { rows } = await t.database.pool.query<{ n: string }>(
        "select count(*)::text as n from credit_entries where org_id = $1 and type = 'debit'",
        [org.id],
      );
      expect(rows[0]?.n).toBe("100");
    } finally {
      await second.close();
    }
  });

  it("rolls a period over exactly once with sweeps racing in two apps, and calls the period hook once", async () => {
    clock.set(new Date("2030-07-05T00:00:00Z"));
    const org = await t.createOrg();
    await t.services.credits.get(org.id);
    await t.services.credits.debit(org.id, "30", { source: "usage" });
    const second = createSecondApp(t, { clock });
    const resets: string[] = [];
    const deps = (database: typeof t.database) => {
      const services = createServices(database, {
        clock,
        prefixes: PREFIXES,
        identity: undefined,
        catalog,
        rateLimiter: admitEveryRequest,
      });
      return createCreditsService({
        db: database.transactor,
        stores: database.stores,
        subscriptions: services.subscriptions,
        catalog: services.catalog,
        clock,
        onPeriodReset: async (orgId, period) => {
          resets.push(`${orgId}@${period.start.toISOString()}`);
        },
      });
    };
    const a = deps(t.database);
    const b = deps(second.database);
    try {
      clock.set(new Date("2030-08-05T00:00:01Z"));
      await Promise.all([
        a.sweep(),
        a.sweep(),
        b.sweep(),
        b.sweep(),
        a.get(org.id),
        b.debit(org.id, "1", { source: "usage" }),
      ]);
      const { rows } = await t.database.pool.query<{ type: string; source: string | null; amount: string }>(
        "select type, source, amount::text from credit_entries where org_id = $1 order by id",
        [org.id],
      );
      const allocations = rows.filter((r) => r.type === "grant" && r.source === "plan_allocation");
      const expiries = rows.filter((r) => r.type === "expiry");
      expect(allocations).toHaveLength(2);
      expect(expiries).toHaveLength(1);
      expect(expiries[0]?.amount).toBe("-70.000000000000000000");
      expect(resets.filter((r) => r.startsWith(org.id))).toEqual([`${org.id}@2030-08-05T00:00:00.000Z`]);
      const view = await t.services.credits.get(org.id);
      expect(view.account.balance).toBe("99");
      expect(view.period.used).toBe("1");
      expectConsistent(await figures(t, org.id), "after rollover");
    } finally {
      await second.close();
    }
  });

  it("a custom allocation (null) grants nothing; an expired purchase is expired by an entry", async () => {
    clock.set(new Date("2030-09-01T00:00:00Z"));
    const org = await t.createOrg();
    await t.setPlan(org.id, "custom");
    const view = await t.services.credits.get(org.id);
    expect(view.account.balance).toBe("0");
    expect(view.period.allocation).toBeNull();
    await t.services.credits.grant(t.operatorCtx, org.id, {
      amount: "20",
      source: "purchase",
      expiresAt: new Date("2030-09-03T00:00:00Z"),
    });
    clock.set(new Date("2030-09-04T00:00:00Z"));
    expect((await t.services.credits.debit(org.id, "1", { source: "usage" })).ok).toBe(false);
    const after = await t.services.credits.get(org.id);
    expect(after.account.balance).toBe("0");
    expect(after.grants).toHaveLength(0);
    expectConsistent(await figures(t, org.id), "after expiry");
  });
});
