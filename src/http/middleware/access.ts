import type { MiddlewareHandler } from "hono";
import { type AccessRule, checkAccess } from "../../domain/auth/access.ts";
import type { AppEnv } from "../env.ts";

/** Route-level guard: runs before body validation, so a stranger learns nothing from a 400. */
export function access(rule: AccessRule): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    checkAccess(c.var.principal, rule, c.req.param("org_id"));
    await next();
  };
}

/** Spread into `createRoute`: the guard, plus the rule published in OpenAPI as `x-orgplane-access`. */
export function guarded(rule: AccessRule) {
  return { middleware: [access(rule)], "x-orgplane-access": rule };
}
