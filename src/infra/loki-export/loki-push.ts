import { redactCredentials } from "../../domain/integrations/integrations.types.ts";
import type { AuthorizeDecisionEvent } from "../../domain/observability/telemetry.ts";
import type { AuditLogRow, LokiTarget, OutboundPoster } from "./types.ts";

/** Loki's push path (HTTP API, JSON or protobuf bodies; the exporter sends JSON). */
export const LOKI_PUSH_PATH = "/loki/api/v1/push";
/** What the org's Grafana sees in `last_error`: enough to tell what went wrong, bounded like webhooks' errors. */
const ERROR_MAX_CHARS = 500;

/**
 * An audit event's line waiting to be pushed, serialised when read. (An authorize decision's line waits as
 * bytes: see OrgQueue.)
 */
export type AuditLine = {
  id: string;
  /** The event's created_at: the entry's timestamp. */
  ms: number;
  /** The id's milliseconds: where the org's audit cursor may move to once this line is gone. */
  idMs: number;
  text: string;
};

/**
 * The push URL of a configured endpoint: the endpoint itself when it already ends in /loki/api/v1/push (what
 * Grafana Cloud shows), else the Loki base URL it names with that path appended (a query string is kept).
 */
export function lokiPushUrl(endpoint: string): string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    // Left to the client, which answers for an unusable URL without sending anything.
    return endpoint;
  }
  // A trailing slash is dropped: Loki routes the path without one.
  const path = url.pathname.replace(/\/+$/, "");
  url.pathname = path.endsWith(LOKI_PUSH_PATH) ? path : `${path}${LOKI_PUSH_PATH}`;
  return url.toString();
}

function basicAuth(target: LokiTarget): string {
  return `Basic ${Buffer.from(`${target.id}:${target.token}`, "utf8").toString("base64")}`;
}

/**
 * A receiver's answer as a message fit for a log line and `last_error`: bounded, and without the token or the
 * encoded credential, in case a receiver (or a proxy in front of it) echoes the request back.
 */
export function describeFailure(
  target: LokiTarget,
  status: number | null,
  error: string | null,
  excerpt: string,
): string {
  const message = redactCredentials(
    error ?? `HTTP ${status ?? "?"}${excerpt.trim() === "" ? "" : `: ${excerpt.trim()}`}`,
    target,
  );
  return message.length > ERROR_MAX_CHARS ? `${message.slice(0, ERROR_MAX_CHARS - 1)}…` : message;
}

/** The line of an audit event: its API view (GET …/audit-events), one JSON object. */
export function auditLine(row: AuditLogRow): string {
  return `{"id":${JSON.stringify(row.id)},"action":${JSON.stringify(row.action)},"actor_type":${JSON.stringify(
    row.actorType,
  )},"actor_id":${JSON.stringify(row.actorId)},"target_type":${JSON.stringify(
    row.targetType,
  )},"target_id":${JSON.stringify(row.targetId)},"changes":${row.changesJson},"ip":${JSON.stringify(
    row.ip,
  )},"user_agent":${JSON.stringify(row.userAgent)},"request_id":${JSON.stringify(
    row.requestId,
  )},"created_at":${JSON.stringify(row.createdAt.toISOString())}}`;
}

/** The line of an authorize decision. Key and project ids are not secrets; the key itself is never here. */
export function authorizeLine(event: AuthorizeDecisionEvent): string {
  return JSON.stringify({
    allowed: event.allowed,
    reason: event.reason,
    category: event.category,
    key_id: event.keyId,
    project_id: event.projectId,
    cost: event.cost,
    limit: event.limit?.limit ?? null,
    remaining: event.limit?.remaining ?? null,
  });
}

/** One `[timestamp, line]` value of a stream; Loki's timestamps are Unix nanoseconds as a string. */
export function streamValue(ms: number, text: string): string {
  return `["${Math.floor(ms)}000000",${JSON.stringify(text)}]`;
}

/** The JSON of one stream: labels, then values already serialised by `streamValue`, in timestamp order. */
export function streamJson(labels: Record<string, string>, values: readonly string[]): string {
  return `{"stream":${JSON.stringify(labels)},"values":[${values.join(",")}]}`;
}

export function pushBody(streams: readonly string[]): string {
  return `{"streams":[${streams.join(",")}]}`;
}

export type PushOutcome = {
  /** Loki took the batch. */
  ok: boolean;
  /**
   * Loki refused the batch's content (400, 413, 422: entries too old, out of order, too large, bad labels): it
   * would refuse it again, so it is given up rather than retried.
   */
  rejected: boolean;
  status: number | null;
  /** Safe to record and log (see describeFailure); null when ok. */
  error: string | null;
  latencyMs: number;
};

const REJECTING_STATUSES = new Set([400, 413, 422]);

/** POST one body to the target's Loki with basic auth. Never throws. */
export async function pushToLoki(
  client: OutboundPoster,
  target: LokiTarget,
  body: string | Buffer,
  timeoutMs: number,
  userAgent: string,
): Promise<PushOutcome> {
  let answer: Awaited<ReturnType<OutboundPoster["post"]>>;
  try {
    answer = await client.post(lokiPushUrl(target.endpoint), {
      headers: {
        authorization: basicAuth(target),
        "content-type": "application/json",
        "user-agent": userAgent,
      },
      body,
      timeoutMs,
    });
  } catch (err) {
    // The client answers every failure as a value; a throw is a bug, still reported (without the token).
    const message = describeFailure(target, null, err instanceof Error ? err.message : String(err), "");
    return { ok: false, rejected: false, status: null, error: message, latencyMs: 0 };
  }
  const { status, latencyMs } = answer;
  if (answer.error === null && status !== null && status >= 200 && status < 300) {
    return { ok: true, rejected: false, status, error: null, latencyMs };
  }
  return {
    ok: false,
    rejected: status !== null && REJECTING_STATUSES.has(status),
    status,
    error: describeFailure(target, status, answer.error, answer.bodyExcerpt),
    latencyMs,
  };
}
