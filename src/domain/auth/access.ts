import { AppError, notFound } from "../../lib/errors.ts";
import type { Principal, Scope } from "./principal.ts";

export type AccessRule =
  /** Only the operator may call this route. */
  | { kind: "operator" }
  /** The operator, or a signed-in user acting for themselves (creating an organization, listing theirs). */
  | { kind: "operator_or_user" }
  /** Only a signed-in user (accepting an invitation is something a person does). */
  | { kind: "user" }
  /**
   * The route acts on one organization: the operator may act on any; an org key or a member only on
   * their own, holding `scope`. `allowSuspended` lets a suspended org's credentials read the org itself.
   */
  | {
      kind: "org";
      scope: Scope;
      allowSuspended?: boolean;
      /**
       * A member acting on their own membership (the path's `member_id` is their user id) needs no
       * scope: anyone may leave an organization.
       */
      selfExempt?: boolean;
    }
  /** Any authenticated credential (e.g. `GET /v1/me`); suspended orgs are refused unless allowed. */
  | { kind: "any"; allowSuspended?: boolean };

export type PathIds = {
  orgId: string | undefined;
  projectId: string | undefined;
  /** The path's `member_id`, when the route names a member. */
  memberId?: string | undefined;
};

/**
 * The one place that decides whether a principal may use a route. Order matters and is the same
 * everywhere: another tenant's organization (or, for a project key, another project) is a 404 (never a
 * 403 that would confirm it exists), then a suspended organization is a 403, then a missing scope.
 * A signed-in user reaches org routes as a `member` principal: the HTTP layer resolves the membership
 * for the path's organization first (no membership: 404).
 */
export function checkAccess(principal: Principal, rule: AccessRule, path: PathIds): void {
  if (principal.kind === "operator") {
    if (rule.kind === "user") {
      throw new AppError("forbidden", "This operation needs a signed-in user, not an operator key");
    }
    return;
  }
  if (principal.kind === "user") {
    if (rule.kind === "operator") {
      throw new AppError("operator_only", "This operation needs an operator credential");
    }
    if (rule.kind === "org") {
      throw new AppError("forbidden", "Name an organization you are a member of");
    }
    return;
  }
  if (path.orgId !== undefined && path.orgId !== principal.orgId) {
    throw notFound("Organization", path.orgId);
  }
  if (rule.kind === "operator" || rule.kind === "operator_or_user") {
    throw new AppError("operator_only", "This operation needs an operator credential");
  }
  if (rule.kind === "user") {
    throw new AppError("forbidden", "This operation needs a signed-in user, not an API key");
  }
  if (
    path.projectId !== undefined &&
    principal.projectId !== null &&
    path.projectId !== principal.projectId
  ) {
    throw notFound("Project", path.projectId);
  }
  if (principal.orgStatus === "suspended" && rule.allowSuspended !== true) {
    throw new AppError("organization_suspended", `Organization '${principal.orgId}' is suspended`);
  }
  const actingOnSelf =
    rule.kind === "org" &&
    rule.selfExempt === true &&
    principal.kind === "member" &&
    path.memberId === principal.id;
  if (rule.kind === "org" && !actingOnSelf && !principal.scopes.includes(rule.scope)) {
    throw new AppError("insufficient_scope", `This operation needs the '${rule.scope}' scope`);
  }
}

/** The organization a request acts on when the path does not name one (`/v1/organization`). */
export function credentialOrgId(principal: Principal): string {
  if (principal.kind === "operator" || principal.kind === "user") {
    throw new AppError(
      "forbidden",
      principal.kind === "operator"
        ? "An operator credential belongs to no organization; use /v1/organizations/{org_id} instead"
        : "Your token names no organization; use /v1/organizations/{org_id} instead",
    );
  }
  return principal.orgId;
}
