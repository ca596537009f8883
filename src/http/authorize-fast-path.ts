import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";
import { checkAccess } from "../domain/auth/access.ts";
import type { AuthorizeInput } from "../domain/authorize/authorize.service.ts";
import type { Logger } from "../infra/logger.ts";
import type { HttpMetrics } from "../infra/metrics.ts";
import type { AppError } from "../lib/errors.ts";
import type { Services } from "./env.ts";
import { failureProblem } from "./failures.ts";
import { missingCredential, presentedCredential } from "./middleware/auth.ts";
import { MAX_BODY_BYTES, parseJsonBody } from "./middleware/body.ts";
import { requestIdFrom } from "./middleware/request-id.ts";
import { problemBody, problemHeaders } from "./problem.ts";
import {
  AuthorizeBody,
  authorizeInput,
  authorizeResultJson,
  plainAuthorizeInput,
} from "./schemas/authorize.ts";
import { validationFailed } from "./validation.ts";

const PATH = "/v1/authorize";
/** The route's label in metrics and logs: the same as the framework route's. */
const ROUTE = "/v1/authorize";
/** What the fast path takes; anything else (charset aside) goes through the framework. */
const PLAIN_JSON = /^application\/json\s*(;\s*charset=utf-8\s*)?$/i;

export type FastPathDeps = {
  services: Pick<Services, "authenticator" | "authorize">;
  logger: Logger;
  metrics: HttpMetrics;
  classifyError: (err: unknown) => AppError | undefined;
};

/**
 * `POST /v1/authorize` served straight on node:http, in front of the framework: the product calls it on
 * every request of its own API, and the framework's per-request objects and middleware chain would cost
 * more than the decision itself (docs/adr/0004-authorize-fast-path.md).
 *
 * It takes only the plain case, decided from the headers before any byte of the body is read: the path
 * exactly, a JSON body with a Content-Length within the limit, no Idempotency-Key. Everything else goes to
 * `fallback` (the framework), which serves the same route with the same answers; test/authorize-fast-path
 * runs the same requests through both and compares them. The checks run in the framework's order:
 * credential (401), body (400), access (403), validation (400), then the decision.
 */
export function withAuthorizeFastPath(deps: FastPathDeps, fallback: RequestListener): RequestListener {
  return (req, res) => {
    if (!takes(req)) {
      fallback(req, res);
      return;
    }
    serve(deps, req, res).catch((err: unknown) => {
      // serve() answers every error itself; this is a failure to write the answer (socket gone).
      deps.logger.warn({ err: { message: err instanceof Error ? err.message : String(err) } }, "authorize");
      res.destroy();
    });
  };
}

function takes(req: IncomingMessage): boolean {
  if (req.method !== "POST" || req.url !== PATH || req.headers["idempotency-key"] !== undefined) {
    return false;
  }
  const contentType = req.headers["content-type"];
  if (contentType === undefined || !PLAIN_JSON.test(contentType)) {
    return false;
  }
  const length = Number(req.headers["content-length"]);
  return Number.isInteger(length) && length > 0 && length <= MAX_BODY_BYTES;
}

/** The body, whose length the headers announced (node:http refuses a body that does not match it). */
function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.once("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.once("error", reject);
  });
}

/** Anything but the plain body: the route's schema, for its exact answer or its errors. */
function validated(json: unknown): AuthorizeInput {
  const parsed = AuthorizeBody.safeParse(json);
  if (!parsed.success) {
    throw validationFailed("json", parsed.error.issues);
  }
  return authorizeInput(parsed.data);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

async function serve(deps: FastPathDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = performance.now();
  const requestId = requestIdFrom(header(req, "x-request-id"));
  let status: number;
  try {
    const credential = presentedCredential(header(req, "authorization"), header(req, "x-api-key"));
    // Authentication (a cached lookup, or one read on a miss) runs while the body arrives.
    const principal =
      credential === undefined
        ? Promise.reject(missingCredential())
        : deps.services.authenticator.authenticate(credential);
    // Settled here so a refusal does not surface as an unhandled rejection while the body is read.
    principal.catch(() => {});
    const text = await readBody(req);
    const caller = await principal;
    const json = parseJsonBody(text, header(req, "content-type"));
    checkAccess(caller, { kind: "operator" }, { orgId: undefined, projectId: undefined });
    const decision = await deps.services.authorize.authorize(plainAuthorizeInput(json) ?? validated(json));
    const body = authorizeResultJson(decision);
    status = 200;
    res.writeHead(200, {
      "Content-Type": "application/json",
      "Content-Length": Buffer.byteLength(body),
      "X-Request-Id": requestId,
    });
    res.end(body);
  } catch (err) {
    const problem = failureProblem(err, deps, requestId);
    const body = JSON.stringify(problemBody(problem, requestId, PATH));
    status = problem.status;
    res.writeHead(problem.status, {
      ...problemHeaders(problem, requestId),
      "Content-Length": Buffer.byteLength(body),
    });
    res.end(body);
  }
  const seconds = (performance.now() - started) / 1000;
  deps.metrics.observe({ method: "POST", route: ROUTE, status }, seconds);
  const level = status < 500 ? "debug" : "info";
  if (deps.logger.isLevelEnabled(level)) {
    deps.logger[level](
      {
        request_id: requestId,
        method: "POST",
        route: ROUTE,
        status,
        duration_ms: Math.round(seconds * 1000 * 100) / 100,
      },
      "request",
    );
  }
}
