import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Hono, MiddlewareHandler } from "hono";
import { AppError } from "../../../lib/errors.ts";
import type { AppEnv } from "../../env.ts";
import { limitBody, requireJsonBody } from "../../middleware/body.ts";
import { errorResponses, storableText } from "../../schemas/common.ts";

export const STRIPE_WEBHOOK_PATH = "/v1/webhooks/stripe";

/** Stripe's longest free-text fields (descriptions, footers) hold 5,000 characters; this leaves room. */
const MAX_TEXT_CHARS = 20_000;
const MAX_KEY_CHARS = 255;

/** Why a Stripe object is out of bounds (over-long text or key, or NUL, which nothing here stores), if it is. */
function outOfBounds(value: unknown): string | undefined {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const node = stack.pop();
    if (typeof node === "string") {
      if (node.length > MAX_TEXT_CHARS) {
        return `text longer than ${MAX_TEXT_CHARS} characters`;
      }
      if (node.includes("\u0000")) {
        return "may not contain NUL characters";
      }
    } else if (node !== null && typeof node === "object") {
      for (const [key, child] of Object.entries(node)) {
        if (key.length > MAX_KEY_CHARS || key.includes("\u0000")) {
          return `a key longer than ${MAX_KEY_CHARS} characters or containing NUL`;
        }
        stack.push(child);
      }
    }
  }
  return undefined;
}

const StripeObject = z
  .looseObject({})
  .superRefine((o, ctx) => {
    const problem = outOfBounds(o);
    if (problem !== undefined) {
      ctx.addIssue({ code: "custom", message: problem });
    }
  })
  .openapi({ type: "object", additionalProperties: true });

/**
 * The fields Orgplane reads. The envelope accepts whatever else Stripe sends; `data` is closed because its
 * shape (`object`, `previous_attributes`) is fixed for every API version.
 */
const StripeEventBody = z
  .looseObject({
    id: storableText(z.string().min(1).max(255)).openapi({ example: "evt_1QxYz2AbCdEfGhIj" }),
    type: storableText(z.string().min(1).max(255)).openapi({ example: "customer.subscription.updated" }),
    created: z.number().int().nonnegative().openapi({ description: "Unix seconds", example: 1_764_000_000 }),
    data: z.strictObject({ object: StripeObject, previous_attributes: StripeObject.optional() }),
  })
  .openapi("StripeEvent");

const StripeWebhookResult = z
  .object({
    received: z.literal(true),
    event_id: z.string(),
    outcome: z.enum(["applied", "duplicate", "stale", "ignored", "unmatched"]).openapi({
      description:
        "`duplicate`: this event id was processed before; `stale`: newer Stripe state was already applied; " +
        "`ignored`: nothing to change or an event type Orgplane does not use; `unmatched`: no organization " +
        "(or no plan for the price) matched",
    }),
  })
  .openapi("StripeWebhookResult");

/** Published in OpenAPI only: the handler is mounted by `mountStripeWebhook`, outside the /v1 credential check. */
const route = createRoute({
  operationId: "receiveStripeWebhook",
  method: "post",
  path: STRIPE_WEBHOOK_PATH,
  tags: ["Billing"],
  summary: "Receive a Stripe webhook event",
  description:
    "Called by Stripe, not by clients: no credential; the `Stripe-Signature` header, checked over the raw " +
    "body with STRIPE_WEBHOOK_SECRET, is the authentication. Idempotent by event id; an event older than " +
    "the state already applied changes nothing. 409 `billing_provider_not_configured` without the secret.",
  security: [],
  request: {
    headers: z.object({
      "stripe-signature": z
        .string()
        .max(4096)
        .optional()
        .openapi({ description: "Stripe's `t=…,v1=…` signature header" }),
    }),
    body: { required: true, content: { "application/json": { schema: StripeEventBody } } },
  },
  responses: {
    200: {
      description: "Received (applied, or recorded without effect)",
      content: { "application/json": { schema: StripeWebhookResult } },
    },
    ...errorResponses(409, 413, 415),
  },
});

export function documentStripeWebhook(api: OpenAPIHono<AppEnv>): void {
  api.openAPIRegistry.registerPath(route);
}

/**
 * Reads the body as bytes before anything else does: the signature covers the exact bytes Stripe sent,
 * and later readers (the JSON check, the handler) get them from Hono's body cache.
 */
const keepRawBody: MiddlewareHandler<AppEnv> = async (c, next) => {
  await c.req.arrayBuffer();
  await next();
};

/**
 * Mounted before the /v1 middleware (app.ts): Stripe presents no Orgplane credential and its body must
 * reach the signature check untouched. The same body limit and JSON checks as every /v1 route still apply.
 */
export function mountStripeWebhook(app: Hono<AppEnv>): void {
  app.post(STRIPE_WEBHOOK_PATH, limitBody, keepRawBody, requireJsonBody, async (c) => {
    // The documented envelope is checked first, like every /v1 body: what fails it could not verify anyway.
    const text = await c.req.text();
    const envelope = StripeEventBody.safeParse(text.trim().length === 0 ? undefined : JSON.parse(text));
    if (!envelope.success) {
      const errors = envelope.error.issues
        .slice(0, 50)
        .map((issue) => ({ path: issue.path.map(String).join("."), message: issue.message }));
      const first = errors[0];
      throw new AppError(
        "validation_failed",
        first === undefined ? "The body is not a Stripe event" : `${first.path || "body"}: ${first.message}`,
        { errors },
      );
    }
    const raw = new Uint8Array(await c.req.arrayBuffer());
    const result = await c.var.services.stripeWebhooks.receive(raw, c.req.header("Stripe-Signature"));
    return c.json({ received: true, event_id: result.eventId, outcome: result.outcome }, 200);
  });
}
