import type { KeyEnvironment } from "../../lib/api-key-format.ts";

/**
 * Scopes an organization API key can hold. The operator holds all of them implicitly.
 * `org:*` covers the organization itself, `keys:*` its API keys, `audit:read` its audit trail.
 */
export const ORG_SCOPES = [
  "org:read",
  "org:write",
  "org:delete",
  "keys:read",
  "keys:write",
  "audit:read",
] as const;
export type Scope = (typeof ORG_SCOPES)[number];

export type OrgStatus = "active" | "suspended" | "deleted";

export type OperatorPrincipal = { kind: "operator"; keyId: string; name: string };

export type KeyPrincipal = {
  kind: "api_key";
  keyId: string;
  name: string;
  orgId: string;
  orgStatus: Exclude<OrgStatus, "deleted">;
  environment: KeyEnvironment;
  scopes: Scope[];
};

export type Principal = OperatorPrincipal | KeyPrincipal;

/** Who did it and from where: everything an audit event records about the request. */
export type RequestContext = {
  principal: Principal;
  requestId: string;
  ip: string | null;
  userAgent: string | null;
};
