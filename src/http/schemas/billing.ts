import { z } from "@hono/zod-openapi";
import { storableText } from "./common.ts";

/** Where Stripe sends the customer back to: an absolute http(s) URL. */
const ReturnUrl = z.url({ protocol: /^https?$/ }).max(2048);

export const CreateCheckoutSessionBody = z
  .strictObject({
    plan: storableText(z.string().trim().min(1).max(64)).openapi({
      description: "Key of a catalog plan that has a Stripe price id",
      example: "pro",
    }),
    success_url: ReturnUrl.openapi({ example: "https://app.example.com/billing/done" }),
    cancel_url: ReturnUrl.openapi({ example: "https://app.example.com/billing" }),
  })
  .openapi("CreateCheckoutSessionRequest");

export const CreatePortalSessionBody = z
  .strictObject({ return_url: ReturnUrl.openapi({ example: "https://app.example.com/settings" }) })
  .openapi("CreatePortalSessionRequest");

export const BillingSessionSchema = z
  .object({ url: z.string().openapi({ description: "Send the customer's browser here" }) })
  .openapi("BillingSession");
