import type { ApiKey, ApiKeyWithOrg, ListApiKeysQuery, OperatorKey } from "./api-keys.types.ts";

export type KeyUse = { keyId: string; at: Date };

export type ApiKeysStore = {
  insert(key: ApiKey): Promise<void>;
  findByHash(keyHash: string): Promise<ApiKeyWithOrg | undefined>;
  find(orgId: string, id: string): Promise<ApiKey | undefined>;
  /** Which of `ids` are keys of the organization (revoked and expired ones included). */
  existingIds(orgId: string, ids: readonly string[]): Promise<string[]>;
  /** Sets `revoked_at` if unset; returns the key as it is afterwards. */
  revoke(orgId: string, id: string, at: Date): Promise<ApiKey | undefined>;
  list(query: ListApiKeysQuery): Promise<ApiKey[]>;
  /** Writes the mutable fields (name, description, scopes, expiry, overrides, metadata) of `key`. */
  update(key: ApiKey): Promise<void>;
  /** One statement for a whole batch: moves each key's `last_used_at` forward to `at`, never back. */
  touchLastUsed(uses: readonly KeyUse[]): Promise<void>;
  /** Revokes every unrevoked key `creatorId` created in the organization; returns their ids. */
  revokeCreatedBy(orgId: string, creatorId: string, at: Date): Promise<string[]>;
};

export type OperatorKeysStore = {
  insert(key: OperatorKey): Promise<void>;
  findByHash(keyHash: string): Promise<OperatorKey | undefined>;
  countActive(): Promise<number>;
  /** Every operator key, revoked ones included, oldest first: there are a handful, not thousands. */
  list(): Promise<OperatorKey[]>;
  /** Sets `revoked_at` if unset; returns the key as it is afterwards. */
  revoke(id: string, at: Date): Promise<OperatorKey | undefined>;
};
