import { z } from "@hono/zod-openapi";
import type { CreditsView } from "../../domain/credits/credits.service.ts";
import type { CreditEntry, CreditGrant } from "../../domain/credits/credits.types.ts";
import { DECIMAL_PATTERN } from "../../lib/decimal.ts";
import { storableText, Timestamp } from "./common.ts";

/** An exact decimal string, as every amount is rendered: trailing zeros trimmed, "-" when negative. */
const Amount = z.string().openapi({ example: "100", description: "Exact decimal string" });

const SIGNED_DECIMAL = new RegExp(`^-?${DECIMAL_PATTERN.source.slice(1, -1)}$`);

const PositiveAmount = z
  .string()
  .regex(DECIMAL_PATTERN, 'a decimal string such as "100" or "12.5" (≤ 18 digits each side of the point)')
  .refine((s) => /[1-9]/.test(s), { message: "must be greater than 0" })
  .openapi({ example: "100", description: "Exact decimal string, greater than 0" });

const SignedAmount = z
  .string()
  .regex(
    SIGNED_DECIMAL,
    'a signed decimal string such as "100" or "-12.5" (≤ 18 digits each side of the point)',
  )
  .refine((s) => /[1-9]/.test(s), { message: "must not be 0" })
  .openapi({
    example: "-25",
    description: "Exact signed decimal string: positive adds credits, negative takes them",
  });

const Reason = storableText(z.string().trim().min(1).max(500)).openapi({
  example: "Goodwill credit for the outage",
});

export const CreditGrantSchema = z
  .object({
    id: z.string().openapi({ example: "crg_01jd0v4n6qf9yb5c8h2m3k7x1z" }),
    object: z.literal("credit_grant"),
    source: z.enum(["plan_allocation", "purchase", "promotional", "adjustment"]),
    amount: Amount,
    remaining: Amount,
    priority: z.number().int(),
    expires_at: Timestamp.nullable(),
    reference: z.string().nullable(),
    reason: z.string().nullable(),
    created_at: Timestamp,
  })
  .openapi("CreditGrant");

export const CreditGrantCreatedSchema = CreditGrantSchema.extend({
  transaction_id: z.string().openapi({ description: "The ledger entry that added the grant" }),
  plan_upgraded_to: z.string().nullable().openapi({
    description: "The plan key a purchase moved the organization to (the plan's auto_upgrade rules)",
  }),
}).openapi("CreditGrantCreated");

export const CreditsSchema = z
  .object({
    object: z.literal("credits"),
    org_id: z.string(),
    balance: Amount.openapi({ description: "The sum of the ledger; may be negative down to -overdraft" }),
    overdraft: Amount,
    overdrawn: Amount.openapi({ description: "The part of a negative balance no grant covers" }),
    grants: z
      .array(CreditGrantSchema)
      .openapi({ description: "Live grants, in the order they are consumed" }),
    period: z.object({
      start: Timestamp,
      end: Timestamp,
      allocation: Amount.nullable().openapi({ description: "The plan's monthly credits (null: custom)" }),
      used: Amount,
    }),
    burn_rate: Amount.openapi({ description: "Credits used per day over the last 7 days" }),
    estimated_days_remaining: z
      .string()
      .nullable()
      .openapi({ description: "balance ÷ burn_rate, to 2 decimals; null when nothing was used in 7 days" }),
  })
  .openapi("Credits");

export const CreditTransactionSchema = z
  .object({
    id: z.string().openapi({ example: "crt_01jd0v4n6qf9yb5c8h2m3k7x1z" }),
    object: z.literal("credit_transaction"),
    type: z.enum(["grant", "debit", "adjustment", "reversal", "expiry"]),
    amount: Amount,
    balance_after: Amount,
    overdrawn: Amount.openapi({
      description: "Change of the overdrawn part (+ went past every grant, − repaid)",
    }),
    grant_id: z.string().nullable(),
    allocations: z.array(z.object({ grant_id: z.string(), amount: Amount })),
    source: z.string().nullable(),
    reference: z.string().nullable(),
    reason: z.string().nullable(),
    reverses_id: z.string().nullable(),
    actor_type: z.enum(["operator", "api_key", "user", "system"]),
    actor_id: z.string().nullable(),
    created_at: Timestamp,
  })
  .openapi("CreditTransaction");

export const CreateCreditGrantBody = z
  .strictObject({
    amount: PositiveAmount,
    source: z.enum(["purchase", "promotional", "adjustment"]).openapi({ example: "purchase" }),
    expires_at: Timestamp.optional().openapi({ description: "When unused credits of the grant expire" }),
    priority: z.number().int().min(0).max(100).optional().openapi({
      description: "Among grants alike in source and expiry, lower is consumed first (default 0)",
    }),
    reason: Reason.optional(),
    reference: storableText(z.string().trim().min(1).max(255)).optional().openapi({
      example: "pi_3PqX",
      description: "A payment id: unique per organization (409 when reused)",
    }),
  })
  .openapi("CreateCreditGrant");

export const CreateCreditAdjustmentBody = z
  .strictObject({ amount: SignedAmount, reason: Reason })
  .openapi("CreateCreditAdjustment");

export const ReverseCreditTransactionBody = z
  .strictObject({ reason: Reason })
  .openapi("ReverseCreditTransaction");

export function toCreditGrant(g: CreditGrant): z.infer<typeof CreditGrantSchema> {
  return {
    id: g.id,
    object: "credit_grant",
    source: g.source,
    amount: g.amount,
    remaining: g.remaining,
    priority: g.priority,
    expires_at: g.expiresAt?.toISOString() ?? null,
    reference: g.reference,
    reason: g.reason,
    created_at: g.createdAt.toISOString(),
  };
}

export function toCreditTransaction(e: CreditEntry): z.infer<typeof CreditTransactionSchema> {
  return {
    id: e.id,
    object: "credit_transaction",
    type: e.type,
    amount: e.amount,
    balance_after: e.balanceAfter,
    overdrawn: e.overdrawn,
    grant_id: e.grantId,
    allocations: e.allocations,
    source: e.source,
    reference: e.reference,
    reason: e.reason,
    reverses_id: e.reversesId,
    actor_type: e.actorType,
    actor_id: e.actorId,
    created_at: e.createdAt.toISOString(),
  };
}

export function toCredits(orgId: string, v: CreditsView): z.infer<typeof CreditsSchema> {
  return {
    object: "credits",
    org_id: orgId,
    balance: v.account.balance,
    overdraft: v.account.overdraft,
    overdrawn: v.account.overdrawn,
    grants: v.grants.map(toCreditGrant),
    period: {
      start: v.period.start.toISOString(),
      end: v.period.end.toISOString(),
      allocation: v.period.allocation,
      used: v.period.used,
    },
    burn_rate: v.burnRate,
    estimated_days_remaining: v.daysRemaining,
  };
}

export const UpdateCreditSettingsBody = z
  .strictObject({
    overdraft: z
      .string()
      .regex(DECIMAL_PATTERN, 'a decimal string such as "0" or "50" (≤ 18 digits each side of the point)')
      .openapi({ example: "50", description: "How far below zero the balance may go (default 0)" }),
  })
  .openapi("UpdateCreditSettings");

export const CreditSettingsSchema = z
  .object({ object: z.literal("credit_settings"), org_id: z.string(), overdraft: Amount })
  .openapi("CreditSettings");
