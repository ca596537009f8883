import type { KeyEnvironment } from "../../lib/api-key-format.ts";

/**
 * The scope catalog: what an API key or a member's role may do inside one organization. The operator
 * holds every scope implicitly. docs/errors.md and OpenAPI (`x-orgplane-access`) name the scope of
 * each route.
 */
export const ORG_SCOPES = [
  "orgs:read",
  "orgs:write",
  "orgs:delete",
  "members:read",
  "members:write",
  "keys:read",
  "keys:write",
  "projects:read",
  "projects:write",
  "audit:read",
  "billing:read",
  "billing:write",
  "usage:read",
  "usage:write",
  "webhooks:read",
  "webhooks:write",
] as const;
export type Scope = (typeof ORG_SCOPES)[number];

/**
 * What a project-scoped key may hold: it acts inside one project, never on the organization itself
 * (as the managed-Postgres reference platform confines its project keys).
 */
export const PROJECT_KEY_SCOPES: readonly Scope[] = ["projects:read", "usage:read", "usage:write"];

export const ROLES = ["owner", "admin", "member", "viewer", "billing"] as const;
export type Role = (typeof ROLES)[number];

/** Each role is a documented set of scopes; "above one's own" means "not a subset of one's own". */
export const ROLE_SCOPES: Record<Role, readonly Scope[]> = {
  owner: ORG_SCOPES,
  admin: ORG_SCOPES.filter((s) => s !== "orgs:delete" && s !== "billing:write"),
  member: [
    "orgs:read",
    "members:read",
    "keys:read",
    "keys:write",
    "projects:read",
    "projects:write",
    "usage:read",
    "usage:write",
  ],
  viewer: ["orgs:read", "members:read", "keys:read", "projects:read", "usage:read"],
  billing: ["orgs:read", "billing:read", "billing:write", "usage:read"],
};

export function holdsAll(held: readonly Scope[], wanted: readonly Scope[]): boolean {
  return wanted.every((s) => held.includes(s));
}

export type OrgStatus = "active" | "suspended" | "deleted";

export type OperatorPrincipal = { kind: "operator"; id: string; name: string };

export type KeyPrincipal = {
  kind: "api_key";
  /** The key's id. */
  id: string;
  name: string;
  orgId: string;
  orgStatus: Exclude<OrgStatus, "deleted">;
  /** Set for a project-scoped key: it acts only inside this project. */
  projectId: string | null;
  environment: KeyEnvironment;
  scopes: Scope[];
  /** Requests per minute by category: the key's own limits, above every other layer. */
  rateLimitOverrides: Record<string, number>;
};

/** A signed-in person (OIDC), before the organization of the request is known. */
export type UserPrincipal = {
  kind: "user";
  /** The user's id (`usr_…`). */
  id: string;
  subject: string;
  email: string | null;
  name: string | null;
  /** The organization the token's org claim selects, if any. */
  activeOrgId: string | null;
};

/** A signed-in person acting inside one organization, with the scopes of their role there. */
export type MemberPrincipal = {
  kind: "member";
  id: string;
  subject: string;
  email: string | null;
  name: string | null;
  orgId: string;
  orgStatus: Exclude<OrgStatus, "deleted">;
  role: Role;
  scopes: Scope[];
  projectId: null;
  /** null: every project of the organization; otherwise the only projects this member may see. */
  projectIds: string[] | null;
};

export type Principal = OperatorPrincipal | KeyPrincipal | UserPrincipal | MemberPrincipal;

/** Who did it and from where: everything an audit event records about the request. */
export type RequestContext = {
  principal: Principal;
  requestId: string;
  ip: string | null;
  userAgent: string | null;
};
