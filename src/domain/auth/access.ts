import { AppError, notFound } from "../../lib/errors.ts";
import type { Principal, Scope } from "./principal.ts";

export type AccessRule =
  /** Only the operator may call this route. */
  | { kind: "operator" }
  /**
   * The route acts on one organization: the operator may act on any; an org key only on its own,
   * holding `scope`. `allowSuspended` lets a suspended org's keys through (reading the org itself).
   */
  | { kind: "org"; scope: Scope; allowSuspended?: boolean }
  /** Any authenticated credential (e.g. `GET /v1/me`); suspended orgs are refused unless allowed. */
  | { kind: "any"; allowSuspended?: boolean };

/**
 * The one place that decides whether a principal may use a route. Order matters and is the same
 * everywhere: another tenant's organization is a 404 (never a 403 that would confirm it exists),
 * then a suspended organization is a 403, then a missing scope is a 403.
 */
export function checkAccess(principal: Principal, rule: AccessRule, pathOrgId: string | undefined): void {
  if (principal.kind === "operator") {
    return;
  }
  if (rule.kind === "operator") {
    if (pathOrgId !== undefined && pathOrgId !== principal.orgId) {
      throw notFound("Organization", pathOrgId);
    }
    throw new AppError("operator_only", "This operation needs an operator credential");
  }
  if (pathOrgId !== undefined && pathOrgId !== principal.orgId) {
    throw notFound("Organization", pathOrgId);
  }
  if (principal.orgStatus === "suspended" && rule.allowSuspended !== true) {
    throw new AppError("organization_suspended", `Organization '${principal.orgId}' is suspended`);
  }
  if (rule.kind === "org" && !principal.scopes.includes(rule.scope)) {
    throw new AppError("insufficient_scope", `This operation needs the '${rule.scope}' scope`);
  }
}

/** The organization a request acts on when the path does not name one (`/v1/organization`). */
export function credentialOrgId(principal: Principal): string {
  if (principal.kind === "operator") {
    throw new AppError(
      "forbidden",
      "An operator credential belongs to no organization; use /v1/organizations/{org_id} instead",
    );
  }
  return principal.orgId;
}
