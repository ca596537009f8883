import type { ApiKey, ApiKeyWithOrg, ListApiKeysQuery, OperatorKey } from "./api-keys.types.ts";

export type ApiKeysStore = {
  insert(key: ApiKey): Promise<void>;
  findByHash(keyHash: string): Promise<ApiKeyWithOrg | undefined>;
  find(orgId: string, id: string): Promise<ApiKey | undefined>;
  /** Sets `revoked_at` if unset; returns the key as it is afterwards. */
  revoke(orgId: string, id: string, at: Date): Promise<ApiKey | undefined>;
  list(query: ListApiKeysQuery): Promise<ApiKey[]>;
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
