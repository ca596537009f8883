import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { matchedRoutes } from "hono/route";
import type { Logger } from "../infra/logger.ts";
import type { HttpMetrics } from "../infra/metrics.ts";
import { AppError } from "../lib/errors.ts";
import { buildApi, openApiDocument } from "./api.ts";
import { docsRoutes } from "./docs.ts";
import type { AppEnv, Services } from "./env.ts";
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
  /** Turns an infrastructure failure (database down…) into a client-facing error; undefined for bugs. */
  classifyError: (err: unknown) => AppError | undefined;
  trustProxy: boolean;
};

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

function toAppError(err: Error, classify: AppDeps["classifyError"]): AppError | undefined {
  if (err instanceof AppError) {
    return err;
  }
  if (err instanceof HTTPException) {
    switch (err.status) {
      case 400:
        return new AppError("malformed_json", "The request body is not valid JSON");
      case 413:
        return new AppError("payload_too_large", "The request body is too large");
      case 415:
        return new AppError(
          "unsupported_media_type",
          "Send the body as JSON with 'Content-Type: application/json'",
        );
      default:
        return undefined;
    }
  }
  return classify(err);
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
    deps.logger.info(
      {
        request_id: c.var.requestId,
        method: c.req.method,
        route,
        status: c.res.status,
        duration_ms: Math.round(seconds * 1000 * 100) / 100,
      },
      "request",
    );
  });

  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", async (c) => {
    try {
      await deps.ping();
      return c.json({ status: "ok", database: "ok" });
    } catch (err) {
      deps.logger.warn({ request_id: c.var.requestId, err: errorSummary(err) }, "readiness check failed");
      return problemResponse(
        c,
        new AppError("service_unavailable", "The database is not answering", { retryAfterSeconds: 5 }),
      );
    }
  });
  app.get("/metrics", async (c) =>
    c.body(await deps.metrics.registry.metrics(), 200, { "Content-Type": deps.metrics.registry.contentType }),
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
  app.onError((err, c) => {
    const known = toAppError(err, deps.classifyError);
    if (known !== undefined) {
      if (known.code === "service_unavailable") {
        deps.logger.warn({ request_id: c.var.requestId, err: errorSummary(err) }, "dependency unavailable");
      }
      return problemResponse(c, known);
    }
    deps.logger.error({ request_id: c.var.requestId, err }, "unhandled error");
    return problemResponse(
      c,
      new AppError("internal_error", "An unexpected error occurred; it has been logged"),
    );
  });
  return app;
}

/** What to log of an expected infrastructure failure: no stack, no connection string. */
function errorSummary(err: unknown): { message: string; code?: string } {
  const root = err instanceof Error && err.cause instanceof Error ? err.cause : err;
  if (root instanceof Error) {
    const code = (root as { code?: unknown }).code;
    return typeof code === "string" ? { message: root.message, code } : { message: root.message };
  }
  return { message: String(root) };
}
