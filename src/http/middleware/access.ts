import type { MiddlewareHandler } from "hono";
import { type AccessRule, checkAccess } from "../../domain/auth/access.ts";
import { AppError, notFound } from "../../lib/errors.ts";
import { isId } from "../../lib/ids.ts";
import type { AppEnv } from "../env.ts";
import { rateLimit } from "./rate-limit.ts";

/**
 * Route-level guard: runs before body validation, so a stranger learns nothing from a 400. A signed-in
 * user on an organization's route becomes a member principal here, with the scopes of their role there.
 */
export function access(rule: AccessRule): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const path = {
      orgId: c.req.param("org_id"),
      projectId: c.req.param("project_id"),
      memberId: c.req.param("member_id"),
    };
    let principal = c.var.principal;
    if (principal.kind === "user" && rule.kind === "org") {
      const orgId = path.orgId ?? principal.activeOrgId ?? undefined;
      if (orgId === undefined) {
        throw new AppError("forbidden", "Your token names no organization; use /v1/organizations/{org_id}");
      }
      const member = isId("org", orgId) ? await c.var.services.members.resolve(principal, orgId) : undefined;
      if (member === undefined) {
        throw notFound("Organization", orgId);
      }
      principal = member;
      c.set("principal", principal);
      c.set("ctx", { ...c.var.ctx, principal });
    }
    checkAccess(principal, rule, path);
    await next();
  };
}

/**
 * Spread into `createRoute`: the guard, then the rate limit of the route's category (CRUD is `metadata`),
 * published in OpenAPI as `x-orgplane-access` and `x-orgplane-rate-limit-category`.
 */
export function guarded(rule: AccessRule, category = "metadata") {
  return {
    middleware: [access(rule), rateLimit(category)],
    "x-orgplane-access": rule,
    "x-orgplane-rate-limit-category": category,
  };
}
