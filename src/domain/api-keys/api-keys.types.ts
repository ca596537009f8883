import type { KeyEnvironment } from "../../lib/api-key-format.ts";
import type { OrgStatus, Scope } from "../auth/principal.ts";

export type ApiKey = {
  id: string;
  orgId: string;
  name: string;
  environment: KeyEnvironment;
  keyPrefix: string;
  lastFour: string;
  keyHash: string;
  scopes: Scope[];
  createdBy: string | null;
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
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
export type ApiKeyWithOrg = ApiKey & { orgStatus: OrgStatus };

export type ListApiKeysQuery = {
  orgId: string;
  limit: number;
  after: string | undefined;
  includeRevoked: boolean;
};
