import type { MiddlewareHandler } from "hono";
import { AppError } from "../../lib/errors.ts";
import { sha256Hex } from "../../lib/hash.ts";
import { canonicalJson } from "../../lib/json.ts";
import type { AppEnv } from "../env.ts";

const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

function fingerprint(method: string, path: string, body: string): string {
  let normalised = body;
  if (body.trim().length > 0) {
    try {
      normalised = canonicalJson(JSON.parse(body));
    } catch {
      // Unparseable bodies were refused earlier; hash the raw text all the same.
    }
  }
  return sha256Hex(`${method} ${path}\n${normalised}`);
}

/**
 * `Idempotency-Key` on POST: the first response (anything but a 5xx) is stored and replayed for 24 h
 * to the same credential sending the same key and body; a different body is a 422.
 */
export const idempotency: MiddlewareHandler<AppEnv> = async (c, next) => {
  const key = c.req.header("Idempotency-Key");
  if (c.req.method !== "POST" || key === undefined) {
    return next();
  }
  if (!KEY_PATTERN.test(key)) {
    throw new AppError(
      "validation_failed",
      "Idempotency-Key must be 1–255 printable ASCII characters, without spaces",
      {
        errors: [
          { path: "header.Idempotency-Key", message: "1–255 printable ASCII characters, without spaces" },
        ],
      },
    );
  }
  const scope = c.var.principal.id;
  const service = c.var.services.idempotency;
  const outcome = await service.begin(scope, key, fingerprint(c.req.method, c.req.path, await c.req.text()));
  if (outcome.kind === "replay") {
    return new Response(outcome.response.body, {
      status: outcome.response.status,
      headers: { "Content-Type": outcome.response.contentType, "Idempotent-Replayed": "true" },
    });
  }
  try {
    await next();
  } catch (err) {
    await service.release(scope, key);
    throw err;
  }
  if (c.res.status >= 500) {
    await service.release(scope, key);
    return;
  }
  const body = await c.res.clone().text();
  await service.complete(scope, key, {
    status: c.res.status,
    contentType: c.res.headers.get("Content-Type") ?? "application/json",
    body,
  });
};
