import { z } from "@hono/zod-openapi";
import {
  type IntegrationTestResults,
  STATUS_REFRESH_MS,
} from "../../domain/integrations/integrations.service.ts";
import {
  type IntegrationInput,
  type IntegrationsInput,
  type IntegrationsView,
  type IntegrationView,
  MAX_CREDENTIAL_CHARS,
  MIN_TOKEN_CHARS_FOR_LAST4,
  type ProbeResult,
} from "../../domain/integrations/integrations.types.ts";
import { MAX_ENDPOINT_URL_CHARS } from "../../domain/webhooks/url-policy.ts";
import { storableText, Timestamp } from "./common.ts";

/** How stale a steady status may be (see STATUS_REFRESH_MS), as the API's descriptions say it. */
const REFRESH_MINUTES = STATUS_REFRESH_MS / 60_000;

const IntegrationCredentialsBody = z
  .strictObject({
    // Only the length and storability are checked here; what makes a URL acceptable (absolute http(s), no
    // credentials, https and a public host unless INTEGRATIONS_ALLOW_PRIVATE) is the webhook URL rule, in the
    // service.
    endpoint: storableText(z.string().trim().min(1).max(MAX_ENDPOINT_URL_CHARS)).openapi({
      format: "uri",
      example: "https://prometheus-prod-01-eu-west-0.grafana.net/api/prom/push",
      description:
        "Prometheus: the remote-write URL. Loki: the push URL (`…/loki/api/v1/push`) or the base URL it is under. " +
        "An absolute https URL on a public host, without credentials (http and private or loopback addresses only " +
        "when the server runs with INTEGRATIONS_ALLOW_PRIVATE=true)",
    }),
    id: storableText(z.string().min(1).max(MAX_CREDENTIAL_CHARS)).openapi({
      example: "1234567",
      description: "The basic-auth user (Grafana Cloud: the instance id)",
    }),
    token: storableText(z.string().min(1).max(MAX_CREDENTIAL_CHARS))
      .optional()
      .openapi({
        writeOnly: true,
        example: "glc_eyJvIjoiMTIzNDU2NyIsIm4iOiJvcmdwbGFuZSJ9",
        description:
          "The basic-auth password (Grafana Cloud: an access policy token with metrics:write / logs:write). " +
          "Stored encrypted and never shown again (only its last four characters). Leave it out to keep the " +
          "stored token of this kind while changing the endpoint or id.",
      }),
  })
  .openapi("IntegrationCredentials");

export const UpdateIntegrationsBody = z
  .strictObject({
    prometheus: IntegrationCredentialsBody.nullable()
      .optional()
      .openapi({ description: "Prometheus remote-write; null removes it, absent leaves it unchanged" }),
    loki: IntegrationCredentialsBody.nullable()
      .optional()
      .openapi({ description: "Loki push; null removes it, absent leaves it unchanged" }),
  })
  .openapi("UpdateIntegrations");

function toInput(body: z.infer<typeof IntegrationCredentialsBody>): IntegrationInput {
  return {
    endpoint: body.endpoint,
    id: body.id,
    ...(body.token === undefined ? {} : { token: body.token }),
  };
}

export function toIntegrationsInput(body: z.infer<typeof UpdateIntegrationsBody>): IntegrationsInput {
  const out: IntegrationsInput = {};
  if (body.prometheus !== undefined)
    out.prometheus = body.prometheus === null ? null : toInput(body.prometheus);
  if (body.loki !== undefined) out.loki = body.loki === null ? null : toInput(body.loki);
  return out;
}

const IntegrationSchema = z
  .object({
    endpoint: z.string(),
    id: z.string(),
    token_last4: z
      .string()
      .nullable()
      .openapi({
        example: "J9In",
        description: `The token's last four characters; null when it is shorter than ${MIN_TOKEN_CHARS_FOR_LAST4}`,
      }),
    created_at: Timestamp,
    updated_at: Timestamp,
    last_success_at: Timestamp.nullable().openapi({
      description:
        "The last push (or test) the endpoint accepted, since the integration was last set. While pushes keep " +
        `succeeding it is written again once in every ${REFRESH_MINUTES} minutes; a success after a failure, and a test, at once`,
    }),
    last_error: z.string().nullable().openapi({
      description:
        "Why the last failed push (or test) failed: a non-2xx status and the start of the body, a timeout, a refusal",
    }),
    last_error_at: Timestamp.nullable().openapi({
      description:
        `When the last push (or test) failed. The same error again is written once in every ${REFRESH_MINUTES} minutes; a ` +
        "failure after a success, a new message, and a test, at once: the later of the two times is the state",
    }),
    dropped_batches: z.number().int().openapi({
      description:
        "Batches given up since the integration was set (its endpoint stayed down past the retries)",
    }),
    dropped_lines: z.number().int().openapi({
      description: "Loki: log lines dropped since the integration was set (the oldest, from a full buffer)",
    }),
  })
  .openapi("Integration");

export const IntegrationsSchema = z
  .object({
    object: z.literal("integrations"),
    org_id: z.string(),
    prometheus: IntegrationSchema.nullable(),
    loki: IntegrationSchema.nullable(),
  })
  .openapi("Integrations");

function toIntegrationResponse(v: IntegrationView): z.infer<typeof IntegrationSchema> {
  return {
    endpoint: v.endpoint,
    id: v.id,
    token_last4: v.tokenLast4,
    created_at: v.createdAt.toISOString(),
    updated_at: v.updatedAt.toISOString(),
    last_success_at: v.lastSuccessAt?.toISOString() ?? null,
    last_error: v.lastError,
    last_error_at: v.lastErrorAt?.toISOString() ?? null,
    dropped_batches: v.droppedBatches,
    dropped_lines: v.droppedLines,
  };
}

export function toIntegrationsResponse(
  orgId: string,
  v: IntegrationsView,
): z.infer<typeof IntegrationsSchema> {
  return {
    object: "integrations",
    org_id: orgId,
    prometheus: v.prometheus === null ? null : toIntegrationResponse(v.prometheus),
    loki: v.loki === null ? null : toIntegrationResponse(v.loki),
  };
}

const IntegrationTestResultSchema = z
  .object({
    ok: z.boolean().openapi({ description: "The endpoint accepted the sample (a 2xx)" }),
    status: z
      .number()
      .int()
      .nullable()
      .openapi({ description: "The HTTP status it answered; null when nothing answered" }),
    error: z.string().nullable().openapi({
      description: "Why it failed: a non-2xx status and the start of the body, a timeout, a refusal",
    }),
    latency_ms: z.number().int(),
  })
  .openapi("IntegrationTestResult");

export const IntegrationTestResultsSchema = z
  .object({
    object: z.literal("integration_test"),
    org_id: z.string(),
    prometheus: IntegrationTestResultSchema.nullable().openapi({ description: "null: not configured" }),
    loki: IntegrationTestResultSchema.nullable().openapi({ description: "null: not configured" }),
  })
  .openapi("IntegrationTestResults");

function toTestResult(r: ProbeResult): z.infer<typeof IntegrationTestResultSchema> {
  return { ok: r.ok, status: r.status, error: r.error, latency_ms: Math.round(r.latencyMs) };
}

export function toIntegrationTestResponse(
  orgId: string,
  r: IntegrationTestResults,
): z.infer<typeof IntegrationTestResultsSchema> {
  return {
    object: "integration_test",
    org_id: orgId,
    prometheus: r.prometheus === null ? null : toTestResult(r.prometheus),
    loki: r.loki === null ? null : toTestResult(r.loki),
  };
}
