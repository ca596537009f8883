import { z } from "@hono/zod-openapi";
import {
  DEFAULT_THRESHOLDS,
  MAX_THRESHOLDS,
  type SpendingLimitsInput,
  type SpendingLimitsView,
} from "../../domain/spending-limits/spending-limits.types.ts";
import { compareDecimal, DECIMAL_PATTERN } from "../../lib/decimal.ts";
import { Timestamp } from "./common.ts";

const Amount = z
  .string()
  .regex(DECIMAL_PATTERN, 'an exact decimal string such as "1000" or "12.5" (at most 18 digits each side)')
  .nullable()
  .openapi({ example: "1000" });

export const UpdateSpendingLimitsBody = z
  .strictObject({
    unit: z.enum(["currency", "credits"]).openapi({
      description:
        "`credits`; `currency` (the organization's currency) is refused with 422 `spending_unit_unsupported` " +
        "while the catalog sets no price per credit",
    }),
    soft_limit: Amount.default(null).openapi({
      description: "Usage this period at which the soft_limit alert is sent; null: none",
    }),
    hard_limit: Amount.default(null).openapi({
      description:
        "Usage this period at which the hard_limit alert is sent and, with `hard_limit_action: block`, billable " +
        "requests are refused; null: none",
    }),
    thresholds: z
      .array(z.number().int().min(1).max(100))
      .max(MAX_THRESHOLDS)
      .default([...DEFAULT_THRESHOLDS])
      .refine((t) => t.every((v, i) => i === 0 || v > (t[i - 1] ?? 0)), {
        message: "must be strictly increasing (sorted, no duplicates)",
      })
      .openapi({
        description: "Percentages (1–100) of the period's allocation at which usage_<n> alerts are sent",
        example: [50, 75, 90, 100],
      }),
    hard_limit_action: z.enum(["block", "alert"]).default("block"),
  })
  .superRefine((body, ctx) => {
    if (
      body.soft_limit !== null &&
      body.hard_limit !== null &&
      compareDecimal(body.soft_limit, body.hard_limit) > 0
    ) {
      ctx.addIssue({ code: "custom", path: ["soft_limit"], message: "must not be above hard_limit" });
    }
  })
  .openapi("UpdateSpendingLimits", {
    example: {
      unit: "credits",
      soft_limit: "800",
      hard_limit: "1000",
      thresholds: [50, 75, 90, 100],
      hard_limit_action: "block",
    },
  });

export const SpendingLimitsSchema = z
  .object({
    object: z.literal("spending_limits"),
    org_id: z.string(),
    configured: z
      .boolean()
      .openapi({ description: "false: the organization never set limits; these are the defaults" }),
    unit: z.enum(["currency", "credits"]),
    soft_limit: z.string().nullable(),
    hard_limit: z.string().nullable(),
    thresholds: z.array(z.number().int()),
    hard_limit_action: z.enum(["block", "alert"]),
    updated_at: Timestamp.nullable(),
    updated_by: z.string().nullable(),
  })
  .openapi("SpendingLimits");

export function toSpendingLimitsInput(body: z.infer<typeof UpdateSpendingLimitsBody>): SpendingLimitsInput {
  return {
    unit: body.unit,
    softLimit: body.soft_limit,
    hardLimit: body.hard_limit,
    thresholds: body.thresholds,
    hardLimitAction: body.hard_limit_action,
  };
}

export function toSpendingLimitsResponse(v: SpendingLimitsView): z.infer<typeof SpendingLimitsSchema> {
  return {
    object: "spending_limits",
    org_id: v.orgId,
    configured: v.configured,
    unit: v.unit,
    soft_limit: v.softLimit,
    hard_limit: v.hardLimit,
    thresholds: v.thresholds,
    hard_limit_action: v.hardLimitAction,
    updated_at: v.updatedAt === null ? null : v.updatedAt.toISOString(),
    updated_by: v.updatedBy,
  };
}
