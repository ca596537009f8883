import type { CreditAccount, CreditEntry, CreditGrant, CreditPeriod } from "./credits.types.ts";

/** A debit's conditional update of the balance row: the new figures, or undefined when refused. */
export type DebitedAccount = {
  balance: string;
  overdraft: string;
  overdrawn: string;
  periodStart: Date;
  periodUsed: string;
  periodAllocation: string | null;
};

/** Why a conditional debit was refused. */
export type DebitRefusal = "insufficient_credits" | "spending_limit_reached" | "unsettled";

export type CreditsStore = {
  /** Create the account unless it exists; true when created. */
  insertAccount(account: CreditAccount): Promise<boolean>;
  findAccount(orgId: string): Promise<CreditAccount | undefined>;
  /** The account row, locked until the transaction ends: every change to an org's credits takes it first. */
  findAccountForUpdate(orgId: string): Promise<CreditAccount | undefined>;
  /**
   * One conditional UPDATE: `balance -= amount` and `period_used += amount` only while the balance stays
   * ≥ -overdraft, the period has not ended at `now`, and — when the organization's spending limit has
   * `hard_limit_action: block` — the period's use (in currency: times `creditPrice`) stays within its hard
   * limit. Undefined when
   * refused (or no account); the row stays locked otherwise.
   */
  tryDebit(
    orgId: string,
    amount: string,
    now: Date,
    /** The catalog's price of a credit, to judge hard limits set in currency; undefined: not judged. */
    creditPrice?: string | undefined,
  ): Promise<DebitedAccount | undefined>;
  updateAccount(
    orgId: string,
    values: Partial<
      Pick<
        CreditAccount,
        | "balance"
        | "overdrawn"
        | "overdraft"
        | "periodStart"
        | "periodEnd"
        | "periodUsed"
        | "periodAllocation"
      >
    > & {
      updatedAt: Date;
    },
  ): Promise<void>;

  /** Insert a grant; false when its reference (or its plan period) is already taken. */
  insertGrant(grant: CreditGrant): Promise<boolean>;
  findGrant(orgId: string, id: string): Promise<CreditGrant | undefined>;
  findGrantByReference(orgId: string, reference: string): Promise<CreditGrant | undefined>;
  /** Live grants (not closed) in consumption order. */
  listLiveGrants(orgId: string): Promise<CreditGrant[]>;
  updateGrant(
    orgId: string,
    id: string,
    values: { remaining: string; closedAt?: Date | null },
  ): Promise<void>;

  /** Insert an entry; false when it reverses an entry that is already reversed. */
  insertEntry(entry: CreditEntry): Promise<boolean>;
  findEntry(orgId: string, id: string): Promise<CreditEntry | undefined>;
  /** True when some entry reverses `entryId`. */
  findReversal(orgId: string, entryId: string): Promise<boolean>;
  /** Newest first, keyset on the id. */
  listEntries(orgId: string, limit: number, after: string | undefined): Promise<CreditEntry[]>;
  /** Credits used since `since`: debits and negative adjustments, less their reversals. */
  usedSince(orgId: string, since: Date): Promise<string>;

  /** Open a period; false when it was already opened (the exactly-once guard). */
  insertPeriod(period: CreditPeriod): Promise<boolean>;
  findPeriod(orgId: string, periodStart: Date): Promise<CreditPeriod | undefined>;
  /** Organizations whose period ended or that hold an expired grant, at most `limit`. */
  listDue(now: Date, limit: number): Promise<string[]>;
};
