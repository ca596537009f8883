import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";
import { checkAccess } from "../domain/auth/access.ts";
import type { AuthorizeInput } from "../domain/authorize/authorize.service.ts";
import type { Logger } from "../infra/logger.ts";
import type { HttpMetrics } from "../infra/metrics.ts";
import type { AppError } from "../lib/errors.ts";
import { turnBatch } from "../lib/turn-batch.ts";
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
/**
 * A turn that computes more answers than this writes them in groups of this size: the wake-ups saved by a
 * larger group are few, and the first answer of a group waits for the rest of it.
 */
const MAX_BATCHED_ANSWERS = 32;
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
 * credential (401), body (400), access (403), validation (400), then the decision. Answers are written
 * once a turn of the event loop (`createAnswerBatch`).
 */
export function withAuthorizeFastPath(deps: FastPathDeps, fallback: RequestListener): RequestListener {
  const answer = createAnswerBatch(deps);
  return (req, res) => {
    if (!takes(req)) {
      fallback(req, res);
      return;
    }
    serve(deps, answer, req, res).catch((err: unknown) => {
      // serve() answers every error itself; this is a failure to prepare the answer (the socket is gone).
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

/** An answer computed and waiting for the end of the event loop's turn (`AnswerBatch`). */
type Answer = {
  res: ServerResponse;
  status: number;
  body: string;
  requestId: string;
  /** performance.now() when the request arrived. */
  started: number;
};

/**
 * The answers computed during one turn of the event loop, written together at its end (the check phase).
 * On loopback and on a virtual machine's network alike, each write hands the bytes to the peer and wakes
 * its reader; answering request by request wakes the caller once per answer, and with the caller asleep
 * in between, each wake-up costs more than the decision itself (docs/adr/0004-authorize-fast-path.md,
 * "Answers written once a turn"). Written together, one wake-up serves every answer of the turn. The delay
 * an answer takes is the rest of the turn it was computed in: nothing under a light load, the other
 * requests already read under a heavy one, and at most MAX_BATCHED_ANSWERS answers' worth of work.
 */
function createAnswerBatch(deps: FastPathDeps): (answer: Answer) => void {
  function write(answer: Answer): void {
    const { res, body } = answer;
    try {
      res.end(body);
    } catch (err) {
      // The socket went away while the answer waited; the next answers must still go out.
      deps.logger.warn({ err: { message: err instanceof Error ? err.message : String(err) } }, "authorize");
      res.destroy();
    }
    const seconds = (performance.now() - answer.started) / 1000;
    deps.metrics.observe({ method: "POST", route: ROUTE, status: answer.status }, seconds);
    const level = answer.status < 500 ? "debug" : "info";
    if (deps.logger.isLevelEnabled(level)) {
      deps.logger[level](
        {
          request_id: answer.requestId,
          method: "POST",
          route: ROUTE,
          status: answer.status,
          duration_ms: Math.round(seconds * 1000 * 100) / 100,
        },
        "request",
      );
    }
  }

  return turnBatch<Answer>(MAX_BATCHED_ANSWERS, (answers) => {
    for (const answer of answers) {
      write(answer);
    }
  });
}

async function serve(
  deps: FastPathDeps,
  answer: (a: Answer) => void,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const started = performance.now();
  const requestId = requestIdFrom(header(req, "x-request-id"));
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
    res.writeHead(200, {
      "Content-Type": "application/json",
      "Content-Length": Buffer.byteLength(body),
      "X-Request-Id": requestId,
    });
    answer({ res, status: 200, body, requestId, started });
  } catch (err) {
    const problem = failureProblem(err, deps, requestId);
    const body = JSON.stringify(problemBody(problem, requestId, PATH));
    res.writeHead(problem.status, {
      ...problemHeaders(problem, requestId),
      "Content-Length": Buffer.byteLength(body),
    });
    answer({ res, status: problem.status, body, requestId, started });
  }
}
