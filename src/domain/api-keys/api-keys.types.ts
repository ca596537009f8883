import type { KeyEnvironment } from "../../lib/api-key-format.ts";
import type { JsonObject } from "../../lib/json.ts";
import type { OrgStatus, Scope } from "../auth/principal.ts";

export type ApiKey = {
  id: string;
  orgId: string;
  name: string;
  description: string | null;
  /** Set for a project-scoped key: it acts only inside this project. */
  projectId: string | null;
  environment: KeyEnvironment;
  keyPrefix: string;
  lastFour: string;
  keyHash: string;
  scopes: Scope[];
  metadata: JsonObject;
  /** Requests per minute by rate-limit category, overriding the plan's. */
  rateLimitOverrides: Record<string, number>;
  /** The credential (key, operator key or user) that created it. */
  createdBy: string | null;
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
  rotatedFrom: string | null;
};

export type OperatorKey = {
  id: string;
  name: string;
  keyPrefix: string;
  lastFour: string;
  keyHash: string;
  createdAt: Date;
  revokedAt: Date | null;
};

/** A key found by hash, with what authentication needs of its organization. */
export type ApiKeyWithOrg = ApiKey & {
  orgStatus: OrgStatus;
  /** A project key whose project is deleted: refused like a key of a deleted organization. */
  projectDeleted: boolean;
};

export type ListApiKeysQuery = {
  orgId: string;
  limit: number;
  after: string | undefined;
  includeRevoked: boolean;
};
