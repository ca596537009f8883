import type { IntegrationKind, IntegrationResult, IntegrationStatus } from "./integrations.types.ts";

/** A row of `org_integrations`: the token as stored (sealed), never decrypted here. */
export type StoredIntegration = {
  orgId: string;
  kind: IntegrationKind;
  endpoint: string;
  clientId: string;
  tokenCiphertext: string;
  tokenLast4: string | null;
  createdAt: Date;
  updatedAt: Date;
} & IntegrationStatus;

export type IntegrationWrite = {
  orgId: string;
  kind: IntegrationKind;
  endpoint: string;
  clientId: string;
  tokenCiphertext: string;
  tokenLast4: string | null;
  at: Date;
};

/**
 * Integration storage. Tenant queries filter by `org_id`; `listActive`, `recordResults` and the key-check
 * reads span organizations (the exporters' and start-up's own reads, never a tenant's).
 */
export type IntegrationsStore = {
  listForOrg(orgId: string): Promise<StoredIntegration[]>;
  /**
   * Insert or replace one integration. A replaced one starts its status over (last success and error,
   * dropped counts): they described the previous endpoint or credentials.
   */
  upsert(write: IntegrationWrite): Promise<void>;
  delete(orgId: string, kind: IntegrationKind): Promise<boolean>;
  /** Every integration of `kind`, of organizations not deleted. */
  listActive(kind: IntegrationKind): Promise<StoredIntegration[]>;
  /**
   * A digest of what `listActive(kind)` would answer but the status columns (last success and error, dropped
   * counts): equal digests, equal configurations. One row to read instead of every organization's.
   */
  activeDigest(kind: IntegrationKind): Promise<string>;
  /**
   * Every result in one statement: dropped counts added; last success or last error set at `at` when there is
   * none yet, when the state turns (a success after a failure, a failure after a success), when the error's
   * message changed, or at the first result in each window of `refreshMs` (windows offset per integration,
   * so times written together are refreshed apart; 0: every result). A row with nothing to change is not
   * written.
   */
  recordResults(results: readonly IntegrationResult[], at: Date, refreshMs: number): Promise<void>;
  /** The key ids stored tokens are sealed under, and one token of each (to check it opens). */
  sealedKeySamples(): Promise<
    { keyId: string; orgId: string; kind: IntegrationKind; tokenCiphertext: string }[]
  >;
  /** Tokens sealed under any key id but `keyId`, at most `limit` (start-up re-seals them). */
  listSealedWithout(
    keyId: string,
    limit: number,
  ): Promise<{ orgId: string; kind: IntegrationKind; tokenCiphertext: string }[]>;
  /** Replace a token's ciphertext if it is still `from` (a PUT meanwhile wins). */
  replaceCiphertext(orgId: string, kind: IntegrationKind, from: string, to: string): Promise<boolean>;
  /** One known value sealed under each key id ever used: how start-up tells a wrong key from the right one. */
  listCanaries(): Promise<{ keyId: string; ciphertext: string }[]>;
  /** The first canary of a key id stays (a concurrent start's insert is ignored). */
  insertCanary(keyId: string, ciphertext: string, at: Date): Promise<void>;
};
