import type { MiddlewareHandler } from "hono";
import { AppError } from "../../lib/errors.ts";
import type { AppEnv } from "../env.ts";

/** The credential, from `Authorization: Bearer <key>`, a raw `Authorization: <key>`, or `X-API-Key`. */
export function presentedCredential(
  authorization: string | undefined,
  apiKey: string | undefined,
): string | undefined {
  if (authorization !== undefined && authorization.trim() !== "") {
    const value = authorization.trim();
    const match = /^Bearer\s+(.+)$/i.exec(value);
    return (match?.[1] ?? value).trim();
  }
  if (apiKey !== undefined && apiKey.trim() !== "") {
    return apiKey.trim();
  }
  return undefined;
}

export function missingCredential(): AppError {
  return new AppError(
    "unauthenticated",
    "Send an API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
  );
}

export function authenticate(options: { trustProxy: boolean }): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const credential = presentedCredential(c.req.header("Authorization"), c.req.header("X-API-Key"));
    if (credential === undefined) {
      throw missingCredential();
    }
    const principal = await c.var.services.authenticator.authenticate(credential);
    c.set("principal", principal);
    c.set("ctx", {
      principal,
      requestId: c.var.requestId,
      ip: clientIp(c.req.header("X-Forwarded-For"), c.env, options.trustProxy),
      userAgent: c.req.header("User-Agent")?.slice(0, 512) ?? null,
    });
    await next();
  };
}

function clientIp(forwardedFor: string | undefined, env: unknown, trustProxy: boolean): string | null {
  if (trustProxy && forwardedFor !== undefined) {
    const first = forwardedFor.split(",")[0]?.trim();
    if (first !== undefined && first.length > 0 && first.length <= 64) {
      return first;
    }
  }
  // @hono/node-server puts the Node request on `env.incoming`; app.request() in tests has none.
  if (typeof env === "object" && env !== null && "incoming" in env) {
    const incoming = (env as { incoming?: { socket?: { remoteAddress?: string } } }).incoming;
    return incoming?.socket?.remoteAddress ?? null;
  }
  return null;
}
