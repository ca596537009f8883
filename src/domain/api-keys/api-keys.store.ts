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
  /**
   * Writes the mutable fields (name, description, scopes, expiry, overrides, metadata) of `key`. A changed
   * expiry is announced again when it comes near: the record of the last `api_key.expiring` is cleared.
   */
  update(key: ApiKey): Promise<void>;
  /** One statement for a whole batch: moves each key's `last_used_at` forward to `at`, never back. */
  touchLastUsed(uses: readonly KeyUse[]): Promise<void>;
  /** Revokes every unrevoked key `creatorId` created in the organization; returns their ids. */
  revokeCreatedBy(orgId: string, creatorId: string, at: Date): Promise<string[]>;
  /**
   * Across organizations (the `api_key.expiring` sweep): up to `limit` live keys of live organizations
   * expiring in (`after`, `until`], not yet announced and not replaced by a rotation, row-locked
   * `FOR UPDATE SKIP LOCKED` so several processes sweep without waiting on each other.
   */
  lockExpiring(query: { after: Date; until: Date; limit: number }): Promise<ApiKey[]>;
  /** Records that the key's `api_key.expiring` was emitted (a change of its expiry clears it: see `update`). */
  markExpiringNotified(orgId: string, id: string, at: Date): Promise<void>;
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
