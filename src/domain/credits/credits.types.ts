import type { ActorType } from "../audit/audit.types.ts";

/** Where a grant came from; `plan_allocation` is the plan's monthly credits, granted per period. */
export type GrantSource = "plan_allocation" | "purchase" | "promotional" | "adjustment";

export type EntryType = "grant" | "debit" | "adjustment" | "reversal" | "expiry";

/** What a debit was for. */
export type DebitSource = "authorize" | "usage";

/** How much of one grant an entry took (negative) or gave back (positive); exact decimal string. */
export type EntryAllocation = { grant_id: string; amount: string };

export type CreditAccount = {
  orgId: string;
  /** Exact decimal strings; balance may be negative down to -overdraft. */
  balance: string;
  overdraft: string;
  /** The part of a negative balance no grant covers (≤ overdraft). */
  overdrawn: string;
  periodStart: Date;
  periodEnd: Date;
  /** Credits used this period (debits and negative adjustments less their reversals), exact decimal. */
  periodUsed: string;
  /** This period's plan allocation; null: none (custom). */
  periodAllocation: string | null;
  createdAt: Date;
  updatedAt: Date;
};

export type CreditGrant = {
  /** `crg_…` */
  id: string;
  orgId: string;
  source: GrantSource;
  amount: string;
  remaining: string;
  priority: number;
  expiresAt: Date | null;
  closedAt: Date | null;
  periodStart: Date | null;
  reference: string | null;
  reason: string | null;
  createdAt: Date;
};

export type CreditEntry = {
  /** `crt_…` */
  id: string;
  orgId: string;
  type: EntryType;
  amount: string;
  balanceAfter: string;
  overdrawn: string;
  grantId: string | null;
  allocations: EntryAllocation[];
  source: string | null;
  reference: string | null;
  reason: string | null;
  reversesId: string | null;
  actorType: ActorType;
  actorId: string | null;
  createdAt: Date;
};

export type CreditPeriod = {
  orgId: string;
  periodStart: Date;
  periodEnd: Date;
  allocation: string | null;
  createdAt: Date;
};
