import { and, asc, desc, eq, isNull, lt, lte, ne, sql } from "drizzle-orm";
import type { CreditsStore } from "../domain/credits/credits.store.ts";
import type {
  CreditAccount,
  CreditEntry,
  CreditGrant,
  CreditPeriod,
} from "../domain/credits/credits.types.ts";
import { normalizeDecimal } from "../lib/decimal.ts";
import type { Executor } from "./db.ts";
import { creditAccounts } from "./schema/credit-accounts.ts";
import { creditEntries } from "./schema/credit-entries.ts";
import { creditGrants } from "./schema/credit-grants.ts";
import { creditPeriods } from "./schema/credit-periods.ts";
import { organizations } from "./schema/organizations.ts";
import { spendingLimits } from "./schema/spending-limits.ts";

type AccountRow = typeof creditAccounts.$inferSelect;
type GrantRow = typeof creditGrants.$inferSelect;
type EntryRow = typeof creditEntries.$inferSelect;
type PeriodRow = typeof creditPeriods.$inferSelect;

function toAccount(r: AccountRow): CreditAccount {
  return {
    ...r,
    balance: normalizeDecimal(r.balance),
    overdraft: normalizeDecimal(r.overdraft),
    overdrawn: normalizeDecimal(r.overdrawn),
    periodUsed: normalizeDecimal(r.periodUsed),
    periodAllocation: r.periodAllocation === null ? null : normalizeDecimal(r.periodAllocation),
  };
}

function toGrant(r: GrantRow): CreditGrant {
  return { ...r, amount: normalizeDecimal(r.amount), remaining: normalizeDecimal(r.remaining) };
}

function toEntry(r: EntryRow): CreditEntry {
  return {
    ...r,
    amount: normalizeDecimal(r.amount),
    balanceAfter: normalizeDecimal(r.balanceAfter),
    overdrawn: normalizeDecimal(r.overdrawn),
  };
}

function toPeriod(r: PeriodRow): CreditPeriod {
  return { ...r, allocation: r.allocation === null ? null : normalizeDecimal(r.allocation) };
}

/**
 * Consumption order: promotional first, then the grant expiring soonest (never-expiring last), then the
 * lower priority number, then the oldest.
 */
const CONSUMPTION_ORDER = [
  sql`(${creditGrants.source} <> 'promotional')`,
  sql`${creditGrants.expiresAt} asc nulls last`,
  asc(creditGrants.priority),
  asc(creditGrants.createdAt),
  asc(creditGrants.id),
];

export function createCreditsStore(db: Executor): CreditsStore {
  return {
    async insertAccount(account) {
      const rows = await db
        .insert(creditAccounts)
        .values(account)
        .onConflictDoNothing({ target: creditAccounts.orgId })
        .returning({ orgId: creditAccounts.orgId });
      return rows.length === 1;
    },

    async findAccount(orgId) {
      const [row] = await db.select().from(creditAccounts).where(eq(creditAccounts.orgId, orgId));
      return row === undefined ? undefined : toAccount(row);
    },

    async findAccountForUpdate(orgId) {
      const [row] = await db
        .select()
        .from(creditAccounts)
        .where(eq(creditAccounts.orgId, orgId))
        .for("update");
      return row === undefined ? undefined : toAccount(row);
    },

    async tryDebit(orgId, amount, now, creditPrice) {
      const rows = await db
        .update(creditAccounts)
        .set({
          balance: sql`${creditAccounts.balance} - ${amount}::numeric`,
          periodUsed: sql`${creditAccounts.periodUsed} + ${amount}::numeric`,
          updatedAt: now,
        })
        .where(
          and(
            eq(creditAccounts.orgId, orgId),
            sql`${creditAccounts.balance} - ${amount}::numeric >= -${creditAccounts.overdraft}`,
            sql`${creditAccounts.periodEnd} > ${now.toISOString()}::timestamptz`,
            // The hard limit, judged in the same statement: concurrent debits can never pass it together.
            // A limit in currency is judged at the catalog's credit price (none: not judged).
            sql`not exists (select 1 from ${spendingLimits} s where s.org_id = ${orgId}
              and s.hard_limit_action = 'block' and s.hard_limit is not null
              and ((s.unit = 'credits' and ${creditAccounts.periodUsed} + ${amount}::numeric > s.hard_limit)
                or (s.unit = 'currency' and ${creditPrice ?? null}::numeric is not null
                  and (${creditAccounts.periodUsed} + ${amount}::numeric) * ${creditPrice ?? null}::numeric > s.hard_limit)))`,
          ),
        )
        .returning({
          balance: creditAccounts.balance,
          overdraft: creditAccounts.overdraft,
          overdrawn: creditAccounts.overdrawn,
          periodStart: creditAccounts.periodStart,
          periodUsed: creditAccounts.periodUsed,
          periodAllocation: creditAccounts.periodAllocation,
        });
      const [row] = rows;
      return row === undefined
        ? undefined
        : {
            balance: normalizeDecimal(row.balance),
            overdraft: normalizeDecimal(row.overdraft),
            overdrawn: normalizeDecimal(row.overdrawn),
            periodStart: row.periodStart,
            periodUsed: normalizeDecimal(row.periodUsed),
            periodAllocation: row.periodAllocation === null ? null : normalizeDecimal(row.periodAllocation),
          };
    },

    async updateAccount(orgId, values) {
      await db.update(creditAccounts).set(values).where(eq(creditAccounts.orgId, orgId));
    },

    async insertGrant(grant) {
      const rows = await db
        .insert(creditGrants)
        .values(grant)
        .onConflictDoNothing()
        .returning({ id: creditGrants.id });
      return rows.length === 1;
    },

    async findGrant(orgId, id) {
      const [row] = await db
        .select()
        .from(creditGrants)
        .where(and(eq(creditGrants.orgId, orgId), eq(creditGrants.id, id)));
      return row === undefined ? undefined : toGrant(row);
    },

    async findGrantByReference(orgId, reference) {
      const [row] = await db
        .select()
        .from(creditGrants)
        .where(and(eq(creditGrants.orgId, orgId), eq(creditGrants.reference, reference)));
      return row === undefined ? undefined : toGrant(row);
    },

    async listLiveGrants(orgId) {
      const rows = await db
        .select()
        .from(creditGrants)
        .where(and(eq(creditGrants.orgId, orgId), isNull(creditGrants.closedAt)))
        .orderBy(...CONSUMPTION_ORDER);
      return rows.map(toGrant);
    },

    async updateGrant(orgId, id, values) {
      await db
        .update(creditGrants)
        .set(values)
        .where(and(eq(creditGrants.orgId, orgId), eq(creditGrants.id, id)));
    },

    async insertEntry(entry) {
      const rows = await db
        .insert(creditEntries)
        .values(entry)
        .onConflictDoNothing()
        .returning({ id: creditEntries.id });
      return rows.length === 1;
    },

    async findEntry(orgId, id) {
      const [row] = await db
        .select()
        .from(creditEntries)
        .where(and(eq(creditEntries.orgId, orgId), eq(creditEntries.id, id)));
      return row === undefined ? undefined : toEntry(row);
    },

    async findReversal(orgId, entryId) {
      const rows = await db
        .select({ id: creditEntries.id })
        .from(creditEntries)
        .where(and(eq(creditEntries.orgId, orgId), eq(creditEntries.reversesId, entryId)));
      return rows.length > 0;
    },

    async listEntries(orgId, limit, after) {
      const rows = await db
        .select()
        .from(creditEntries)
        .where(
          after === undefined
            ? eq(creditEntries.orgId, orgId)
            : and(eq(creditEntries.orgId, orgId), lt(creditEntries.id, after)),
        )
        .orderBy(desc(creditEntries.id))
        .limit(limit);
      return rows.map(toEntry);
    },

    async usedSince(orgId, since) {
      // Debits and negative adjustments count as use; a reversal of one gives it back.
      const result = await db.execute<{ used: string | null }>(sql`
        select coalesce(sum(case
          when e.type in ('debit', 'adjustment') and e.amount < 0 then -e.amount
          when e.type = 'reversal' and r.type in ('debit', 'adjustment') and r.amount < 0 then -e.amount
          else 0 end), 0)::text as used
        from ${creditEntries} e
        left join ${creditEntries} r on r.id = e.reverses_id
        where e.org_id = ${orgId} and e.created_at >= ${since.toISOString()}::timestamptz`);
      return normalizeDecimal(result.rows[0]?.used ?? "0");
    },

    async insertPeriod(period) {
      const rows = await db
        .insert(creditPeriods)
        .values(period)
        .onConflictDoNothing()
        .returning({ orgId: creditPeriods.orgId });
      return rows.length === 1;
    },

    async findPeriod(orgId, periodStart) {
      const [row] = await db
        .select()
        .from(creditPeriods)
        .where(and(eq(creditPeriods.orgId, orgId), eq(creditPeriods.periodStart, periodStart)));
      return row === undefined ? undefined : toPeriod(row);
    },

    async listDue(now, limit) {
      // A deleted organization's credits are left as they were.
      const a = await db
        .select({ orgId: creditAccounts.orgId })
        .from(creditAccounts)
        .innerJoin(organizations, eq(organizations.id, creditAccounts.orgId))
        .where(and(lte(creditAccounts.periodEnd, now), ne(organizations.status, "deleted")))
        .limit(limit);
      const b = await db
        .selectDistinct({ orgId: creditGrants.orgId })
        .from(creditGrants)
        .innerJoin(organizations, eq(organizations.id, creditGrants.orgId))
        .where(
          and(
            isNull(creditGrants.closedAt),
            lte(creditGrants.expiresAt, now),
            ne(organizations.status, "deleted"),
          ),
        )
        .limit(limit);
      return [...new Set([...a.map((r) => r.orgId), ...b.map((r) => r.orgId)])].slice(0, limit);
    },
  };
}
