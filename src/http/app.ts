import type { RequestListener } from "node:http";
import { getRequestListener } from "@hono/node-server";
import { Hono } from "hono";
import { matchedRoutes } from "hono/route";
import type { RateLimiterStatus } from "../domain/rate-limits/rate-limiter.ts";
import { UNAVAILABLE_RETRY_SECONDS } from "../domain/rate-limits/rate-limits.service.ts";
import type { Logger } from "../infra/logger.ts";
import type { HttpMetrics } from "../infra/metrics.ts";
import { AppError } from "../lib/errors.ts";
import { buildApi, openApiDocument } from "./api.ts";
import { withAuthorizeFastPath } from "./authorize-fast-path.ts";
import { docsRoutes } from "./docs.ts";
import type { AppEnv, Services } from "./env.ts";
import { errorSummary, failureProblem } from "./failures.ts";
import { authenticate } from "./middleware/auth.ts";
import { limitBody, requireJsonBody } from "./middleware/body.ts";
import { idempotency } from "./middleware/idempotency.ts";
import { requestId } from "./middleware/request-id.ts";
import { problem, problemResponse } from "./problem.ts";
import { mountStripeWebhook } from "./routes/webhooks/receive-stripe-webhook.ts";

export type AppDeps = {
  services: Services;
  logger: Logger;
  metrics: HttpMetrics;
  /** Resolves when the database answers; rejects otherwise. */
  ping: () => Promise<void>;
  /** The rate limiter's store and whether it answers (bounded by the limiter's own timeout). */
  rateLimiterStatus: () => Promise<RateLimiterStatus>;
  /** Turns an infrastructure failure (database down…) into a client-facing error; undefined for bugs. */
  classifyError: (err: unknown) => AppError | undefined;
  trustProxy: boolean;
};

/** Routes whose requests are logged at debug, not info (their metrics are kept). */
const QUIET_ROUTES = new Set(["/v1/authorize"]);

function routeLabel(c: Parameters<typeof matchedRoutes>[0]): string {
  const routes = matchedRoutes(c);
  for (let i = routes.length - 1; i >= 0; i--) {
    const r = routes[i];
    if (r !== undefined && r.method !== "ALL") {
      return r.path;
    }
  }
  return "unmatched";
}

export function createApp(deps: AppDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const api = buildApi();
  const document = openApiDocument(api);

  app.use("*", requestId);
  app.use("*", async (c, next) => {
    const started = performance.now();
    c.set("services", deps.services);
    await next();
    const seconds = (performance.now() - started) / 1000;
    const route = routeLabel(c);
    deps.metrics.observe({ method: c.req.method, route, status: c.res.status }, seconds);
    // The product calls /v1/authorize on every request of its own: a line each would be most of the
    // log and a large share of the CPU. Those are at debug; errors are logged where they happen.
    const level = QUIET_ROUTES.has(route) && c.res.status < 500 ? "debug" : "info";
    if (deps.logger.isLevelEnabled(level)) {
      deps.logger[level](
        {
          request_id: c.var.requestId,
          method: c.req.method,
          route,
          status: c.res.status,
          duration_ms: Math.round(seconds * 1000 * 100) / 100,
        },
        "request",
      );
    }
  });

  app.get("/healthz", (c) => c.json({ status: "ok" }));
  // Ready when the database answers and the rate limiter can decide: with Redis unreachable, failure
  // mode `closed` refuses every limited request (not ready), `open` admits them uncounted (ready, degraded).
  app.get("/readyz", async (c) => {
    const [database, limiter] = await Promise.all([
      deps.ping().then(
        () => "ok" as const,
        (err: unknown) => {
          deps.logger.warn({ request_id: c.var.requestId, err: errorSummary(err) }, "readiness check failed");
          return "unavailable" as const;
        },
      ),
      deps.rateLimiterStatus(),
    ]);
    const rateLimiter = { store: limiter.store, status: limiter.status, failure_mode: limiter.failureMode };
    const refusing = limiter.status === "unavailable" && limiter.failureMode === "closed";
    if (database === "unavailable" || refusing) {
      const detail =
        database === "unavailable"
          ? "The database is not answering"
          : "The rate limiter's store (Redis) is not answering, and RATE_LIMIT_FAILURE_MODE=closed refuses limited requests";
      return problemResponse(
        c,
        new AppError("service_unavailable", detail, {
          retryAfterSeconds: database === "unavailable" ? 5 : UNAVAILABLE_RETRY_SECONDS,
          details: { database, rate_limiter: rateLimiter },
        }),
      );
    }
    const status = limiter.status === "ok" ? "ok" : "degraded";
    return c.json({ status, database, rate_limiter: rateLimiter });
  });
  app.get("/metrics", async (c) =>
    c.body(await deps.metrics.text(), 200, { "Content-Type": deps.metrics.contentType }),
  );
  app.get("/openapi.json", (c) => c.json(document));
  app.route("/", docsRoutes());

  // Before the /v1 middleware, which would ask Stripe for a credential and consume its body: the webhook
  // authenticates by its signature over the raw bytes. Its handler answers, so the /v1 chain never runs.
  mountStripeWebhook(app);
  app.use("/v1/*", authenticate({ trustProxy: deps.trustProxy }));
  app.use("/v1/*", limitBody);
  app.use("/v1/*", requireJsonBody);
  app.use("/v1/*", idempotency);
  app.route("/", api);

  app.notFound((c) => problem(c, "route_not_found", `No route ${c.req.method} ${c.req.path.slice(0, 256)}`));
  app.onError((err, c) => problemResponse(c, failureProblem(err, deps, c.var.requestId)));
  return app;
}

/** The node:http listener of `app`: `POST /v1/authorize` on its fast path, everything else through Hono. */
export function createRequestListener(app: Hono<AppEnv>, deps: AppDeps): RequestListener {
  return withAuthorizeFastPath(deps, getRequestListener(app.fetch));
}
