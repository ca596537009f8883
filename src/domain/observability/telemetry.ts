/**
 * What the request paths tell the per-organization observability export (issue 9): every authorize decision
 * and every counted request of Orgplane's own API. Called on hot paths, synchronously: an implementation
 * only records in memory (a counter increment, a line appended to a bounded buffer) and never waits.
 */
export type AuthorizeDecisionEvent = {
  orgId: string;
  projectId: string | null;
  keyId: string;
  category: string;
  allowed: boolean;
  /** The denial's reason code (`rate_limited`, `insufficient_credits`, …); null when allowed. */
  reason: string | null;
  /** Requests counted against the category's limit. */
  cost: number;
  /** The category's limit and what remained after this decision; undefined when the plan does not limit it. */
  limit: { limit: number; remaining: number } | undefined;
  at: Date;
};

export type ApiRequestEvent = {
  orgId: string;
  category: string;
  /** `allowed`, or `rate_limited` when the organization's limit refused it. */
  outcome: "allowed" | "rate_limited";
  limit: { limit: number; remaining: number };
  at: Date;
};

export type Telemetry = {
  authorizeDecision(event: AuthorizeDecisionEvent): void;
  apiRequest(event: ApiRequestEvent): void;
};

/** Records nothing: the default until the exporters are started. */
export const noTelemetry: Telemetry = {
  authorizeDecision() {},
  apiRequest() {},
};

/** Every sink told of every event, in order. */
export function fanOutTelemetry(sinks: readonly Telemetry[]): Telemetry {
  return {
    authorizeDecision(event) {
      for (const sink of sinks) {
        sink.authorizeDecision(event);
      }
    },
    apiRequest(event) {
      for (const sink of sinks) {
        sink.apiRequest(event);
      }
    },
  };
}

/**
 * A telemetry that forwards to whatever is bound later: the services are built before the exporters that
 * read them, and every request path holds this one from the start. Unbound, it records nothing.
 */
export type BindableTelemetry = Telemetry & { bind(target: Telemetry): void };

export function bindableTelemetry(): BindableTelemetry {
  let target: Telemetry = noTelemetry;
  return {
    authorizeDecision(event) {
      target.authorizeDecision(event);
    },
    apiRequest(event) {
      target.apiRequest(event);
    },
    bind(next) {
      target = next;
    },
  };
}
