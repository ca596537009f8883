import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import { AppError, notFound } from "../../../lib/errors.ts";
import { isId } from "../../../lib/ids.ts";
import type { AppEnv } from "../../env.ts";
import { access, guarded } from "../../middleware/access.ts";
import { rateLimit } from "../../middleware/rate-limit.ts";
import { errorResponses } from "../../schemas/common.ts";
import {
  IngestUsageBody,
  IngestUsageResultSchema,
  parseUsageBatch,
  toIngestResponse,
  toUsageEvents,
} from "../../schemas/usage.ts";
import { validationFailed } from "../../validation.ts";

const RULE = { kind: "org", scope: "usage:write" } as const;
const CATEGORY = "data";

const route = createRoute({
  operationId: "ingestUsageEvents",
  method: "post",
  path: "/v1/usage/events",
  tags: ["Usage"],
  summary: "Report a batch of usage events (up to 1,000)",
  description:
    "Each event is counted exactly once per organization and `id` (ids are remembered for at least 35 days); " +
    "events more than 5 minutes ahead of the server's clock or older than the late window are rejected, as " +
    "are events naming an unknown meter, project or key — each with its reason, while the rest of the batch " +
    "is accepted. A malformed batch is refused whole (422). The batch is durable when answered: its events, " +
    "hourly rollups and the debit of their credit cost commit in one transaction. When the balance or the hard " +
    "spending limit cannot cover the batch's credit cost, its costed events are rejected " +
    "(`insufficient_credits` / `spending_limit_reached`); an organization already blocked by its hard limit " +
    "gets 402. An org or project key reports for its own organization; the operator names `org_id`.",
  ...guarded(RULE, CATEGORY),
  request: {
    body: { required: true, content: { "application/json": { schema: IngestUsageBody } } },
  },
  responses: {
    200: {
      description: "What was accepted, what was a duplicate, what was rejected and why",
      content: { "application/json": { schema: IngestUsageResultSchema } },
    },
    ...errorResponses(402, 403, 404, 413, 415, 422),
  },
});

/**
 * The body is checked by hand (parseUsageBatch) rather than by the route's zod schema: a batch of 1,000
 * events is the largest body Orgplane takes, on its busiest write path. What the hand check does not
 * accept goes through the schema, so a refusal is the same 400 as on every route.
 */
function batchOf(c: Context<AppEnv>) {
  const body: unknown = c.var.jsonBody;
  const fast = parseUsageBatch(body);
  if (fast.ok) {
    return fast.value;
  }
  const parsed = IngestUsageBody.safeParse(body);
  if (!parsed.success) {
    throw validationFailed("json", parsed.error.issues);
  }
  return parsed.data;
}

export function registerIngestUsageEvents(api: OpenAPIHono<AppEnv>): void {
  // Documented with its schema; served without the generated validator (see batchOf).
  api.openAPIRegistry.registerPath(route);
  api.post("/v1/usage/events", access(RULE), rateLimit(CATEGORY), async (c) => {
    const body = batchOf(c);
    const principal = c.var.principal;
    let orgId: string;
    let sender = { keyId: null as string | null, projectId: null as string | null };
    if (principal.kind === "operator") {
      if (body.org_id === undefined) {
        throw new AppError("validation_failed", "org_id: an operator key must name the organization", {
          errors: [{ path: "org_id", message: "required for an operator key" }],
        });
      }
      orgId = body.org_id;
    } else if (principal.kind === "api_key" || principal.kind === "member") {
      if (body.org_id !== undefined && body.org_id !== principal.orgId) {
        throw notFound("Organization", body.org_id);
      }
      orgId = principal.orgId;
      sender =
        principal.kind === "api_key"
          ? { keyId: principal.id, projectId: principal.projectId }
          : { keyId: null, projectId: null };
    } else {
      throw new AppError("forbidden", "Name an organization you are a member of");
    }
    if (!isId("org", orgId)) {
      throw notFound("Organization", orgId);
    }
    const result = await c.var.services.usage.ingest(orgId, toUsageEvents(body), sender);
    return c.json(toIngestResponse(result), 200);
  });
}
