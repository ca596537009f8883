import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { registerCreateCreditAdjustment } from "./create-credit-adjustment.ts";
import { registerCreateCreditGrant } from "./create-credit-grant.ts";
import { registerGetCredits } from "./get-credits.ts";
import { registerListCreditTransactions } from "./list-credit-transactions.ts";
import { registerReverseCreditTransaction } from "./reverse-credit-transaction.ts";
import { registerUpdateCreditSettings } from "./update-credit-settings.ts";

export function registerCreditRoutes(api: OpenAPIHono<AppEnv>): void {
  registerGetCredits(api);
  registerListCreditTransactions(api);
  registerCreateCreditGrant(api);
  registerCreateCreditAdjustment(api);
  registerReverseCreditTransaction(api);
  registerUpdateCreditSettings(api);
}
