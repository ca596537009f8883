import { setImmediate as nextTurn } from "node:timers/promises";
import type { Clock } from "../../lib/clock.ts";
import { AppError } from "../../lib/errors.ts";
import type { JsonValue } from "../../lib/json.ts";
import type { AuditChanges } from "../audit/audit.types.ts";
import { auditEvent } from "../audit/audit-event.ts";
import type { RequestContext } from "../auth/principal.ts";
import { loadOrg } from "../orgs/orgs.service.ts";
import type { Stores, Transactor } from "../stores.ts";
import { checkEndpointUrl } from "../webhooks/url-policy.ts";
import type { IntegrationWrite, StoredIntegration } from "./integrations.store.ts";
import {
  INTEGRATION_KINDS,
  type IntegrationConfig,
  type IntegrationKind,
  type IntegrationProbes,
  type IntegrationResult,
  type IntegrationsInput,
  type IntegrationsView,
  type IntegrationView,
  type ProbeResult,
  redactCredentials,
  type SecretSealer,
  tokenContext,
  tokenLast4,
} from "./integrations.types.ts";

/**
 * How long `active(kind)` answers from memory. Reading 10,000 organizations' integrations costs tens of
 * milliseconds of this process's time, so they are checked twice a minute at most (a digest, and the rows only
 * when it changed); a change made through another process reaches this one's exporters within it (this
 * process's own changes drop the cache at once).
 */
export const ACTIVE_CACHE_MS = 30_000;
/**
 * Rows handled between two yields to the event loop while reading them: requests are not held up for all.
 * A row whose token must be opened (the first read, a changed token) costs an AES-GCM decipher: on a slow day,
 * at 6,000 authorize req/s, 500 such rows in a turn stopped the API for 37-51 ms, 100 for 10-18 ms.
 */
const ROWS_PER_TURN = 100;
/**
 * How stale an exporter may leave a steady status. 10,000 organizations pushed once a minute would otherwise
 * rewrite 10,000 rows a minute (a new row version each, and a full-page image of every page after each
 * checkpoint) to move `last_success_at` by a minute; so while an integration keeps succeeding (or keeps
 * failing with the same message) its time is written at its first result in each window of this length.
 * Each integration's windows begin at an offset of their own, so 10,000 times written together (the first
 * pushes after a start, an outage that ended for all at once) are written again spread over the window, not
 * in one burst. A change of state, or of the error's message, is written at once, and the test call always
 * writes.
 */
export const STATUS_REFRESH_MS = 5 * 60_000;
/** `last_error` is read by people; longer adds nothing and must not grow rows. */
const ERROR_MAX_CHARS = 1000;

export type IntegrationTestResults = Record<IntegrationKind, ProbeResult | null>;

function view(row: StoredIntegration): IntegrationView {
  return {
    endpoint: row.endpoint,
    id: row.clientId,
    tokenLast4: row.tokenLast4,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    lastSuccessAt: row.lastSuccessAt,
    lastError: row.lastError,
    lastErrorAt: row.lastErrorAt,
    droppedBatches: row.droppedBatches,
    droppedLines: row.droppedLines,
  };
}

/**
 * The audit trail's view of one integration: where it points and as whom, and whether the change gave it a
 * new token, never the token itself.
 */
function auditView(
  row: Pick<StoredIntegration, "endpoint" | "clientId" | "tokenLast4"> | undefined,
  tokenReplaced?: boolean,
): JsonValue {
  if (row === undefined) {
    return null;
  }
  return {
    endpoint: row.endpoint,
    id: row.clientId,
    token_last4: row.tokenLast4,
    ...(tokenReplaced === undefined ? {} : { token_replaced: tokenReplaced }),
  };
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function createIntegrationsService(deps: {
  db: Transactor;
  stores: Pick<Stores, "integrations" | "orgs">;
  clock: Clock;
  /** Seals tokens at rest (ORGPLANE_SECRET_KEY). */
  sealer: SecretSealer;
  /** INTEGRATIONS_ALLOW_PRIVATE: endpoints may be http:// and name private or loopback addresses. */
  allowPrivate: boolean;
  /** What `test` sends through; the exporters provide them (also later, through `setProbes`). */
  probes?: IntegrationProbes;
  /** `active`'s cache lifetime (ACTIVE_CACHE_MS unless a test changes it). */
  activeCacheMs?: number;
  /** Told of a stored token this process cannot open (sealed under a key it does not hold). */
  onError?: (err: unknown) => void;
}) {
  const { clock, sealer } = deps;
  const store = deps.stores.integrations;
  const cacheMs = deps.activeCacheMs ?? ACTIVE_CACHE_MS;
  const onError = deps.onError ?? (() => {});
  let probes: IntegrationProbes = { ...deps.probes };
  const cache = new Map<IntegrationKind, { until: number; configs: Promise<readonly IntegrationConfig[]> }>();

  function withoutToken(row: StoredIntegration): Omit<IntegrationConfig, "token"> {
    return {
      orgId: row.orgId,
      kind: row.kind,
      endpoint: row.endpoint,
      id: row.clientId,
      tokenLast4: row.tokenLast4,
      createdAt: row.createdAt,
      updatedAt: row.updatedAt,
    };
  }

  function decrypt(row: StoredIntegration): IntegrationConfig {
    return {
      ...withoutToken(row),
      token: sealer.open(row.tokenCiphertext, tokenContext(row.orgId, row.kind)),
    };
  }

  /**
   * The tokens opened by the previous read, by organization and kind, with the ciphertext they came from: a
   * re-read opens only what changed (10,000 organizations need not be decrypted again every few seconds).
   */
  const opened = new Map<string, { ciphertext: string; token: string }>();

  /**
   * Per kind: the digest of the configurations last read and what that read gave. While the digest stays the
   * same (one row from the database), the configurations are the same objects: 10,000 organizations' rows are
   * not read, parsed and held again every 30 s (they outlived young-generation collections, and each re-read
   * was promoted to the old generation whole).
   */
  const lastRead = new Map<IntegrationKind, { digest: string; configs: readonly IntegrationConfig[] }>();

  async function readActive(kind: IntegrationKind): Promise<readonly IntegrationConfig[]> {
    // Taken before the rows: a change between the two reads leaves a digest older than the rows, so the next
    // read reads them again rather than missing the change.
    const digest = await store.activeDigest(kind);
    const previous = lastRead.get(kind);
    if (previous !== undefined && previous.digest === digest) {
      return previous.configs;
    }
    const configs = await readRows(kind);
    lastRead.set(kind, { digest, configs });
    return configs;
  }

  async function readRows(kind: IntegrationKind): Promise<IntegrationConfig[]> {
    const rows = await store.listActive(kind);
    const configs: IntegrationConfig[] = [];
    const seen = new Set<string>();
    for (const [index, row] of rows.entries()) {
      if (index > 0 && index % ROWS_PER_TURN === 0) {
        await nextTurn();
      }
      const key = `${row.orgId}:${kind}`;
      seen.add(key);
      const previous = opened.get(key);
      try {
        const config =
          previous !== undefined && previous.ciphertext === row.tokenCiphertext
            ? { ...withoutToken(row), token: previous.token }
            : decrypt(row);
        opened.set(key, { ciphertext: row.tokenCiphertext, token: config.token });
        configs.push(config);
      } catch (err) {
        // Another process sealed it under a key this one lacks: that org is skipped here, not everyone.
        onError(new Error(`the ${kind} token of ${row.orgId} cannot be opened: ${message(err)}`));
      }
    }
    for (const key of opened.keys()) {
      if (key.endsWith(`:${kind}`) && !seen.has(key)) {
        opened.delete(key);
      }
    }
    return configs;
  }

  function viewOf(rows: StoredIntegration[]): IntegrationsView {
    const out: IntegrationsView = { prometheus: null, loki: null };
    for (const row of rows) {
      out[row.kind] = view(row);
    }
    return out;
  }

  return {
    async get(orgId: string): Promise<IntegrationsView> {
      await loadOrg(deps.stores, orgId);
      return viewOf(await store.listForOrg(orgId));
    },

    /**
     * Set (absent: unchanged, null: removed) each integration, in one transaction with its audit event. A
     * token left out keeps the stored one, which only an existing integration of that kind has.
     */
    async put(ctx: RequestContext, orgId: string, input: IntegrationsInput): Promise<IntegrationsView> {
      // URLs are judged before any lock, as webhook endpoints are: a refusal changes nothing.
      const endpoints: Partial<Record<IntegrationKind, string>> = {};
      for (const kind of INTEGRATION_KINDS) {
        const given = input[kind];
        if (given !== undefined && given !== null) {
          endpoints[kind] = checkEndpointUrl(given.endpoint, {
            allowPrivate: deps.allowPrivate,
            field: `${kind}.endpoint`,
          });
        }
      }
      const result = await deps.db.transaction(async (stores) => {
        const org = await loadOrg(stores, orgId, true);
        if (org.status === "deleted") {
          throw new AppError("invalid_state_transition", `Organization '${orgId}' is deleted`);
        }
        const before = new Map((await stores.integrations.listForOrg(orgId)).map((r) => [r.kind, r]));
        const changes: AuditChanges = {};
        const now = clock.now();
        for (const kind of INTEGRATION_KINDS) {
          const given = input[kind];
          const existing = before.get(kind);
          if (given === undefined) {
            continue;
          }
          if (given === null) {
            if (existing !== undefined) {
              await stores.integrations.delete(orgId, kind);
              changes[kind] = { from: auditView(existing), to: null };
            }
            continue;
          }
          const endpoint = endpoints[kind] ?? given.endpoint;
          let sealed: { ciphertext: string; last4: string | null };
          if (given.token === undefined) {
            if (existing === undefined) {
              const msg = `is required: no ${kind} integration is stored whose token it could keep`;
              throw new AppError("validation_failed", `${kind}.token ${msg}`, {
                errors: [{ path: `${kind}.token`, message: msg }],
              });
            }
            sealed = { ciphertext: existing.tokenCiphertext, last4: existing.tokenLast4 };
          } else {
            sealed = {
              ciphertext: sealer.seal(given.token, tokenContext(orgId, kind)),
              last4: tokenLast4(given.token),
            };
          }
          const tokenReplaced =
            given.token !== undefined && (existing === undefined || safeOpen(existing) !== given.token);
          if (
            existing !== undefined &&
            !tokenReplaced &&
            existing.endpoint === endpoint &&
            existing.clientId === given.id
          ) {
            continue;
          }
          const write: IntegrationWrite = {
            orgId,
            kind,
            endpoint,
            clientId: given.id,
            tokenCiphertext:
              tokenReplaced || existing === undefined ? sealed.ciphertext : existing.tokenCiphertext,
            tokenLast4: sealed.last4,
            at: now,
          };
          await stores.integrations.upsert(write);
          changes[kind] = { from: auditView(existing), to: auditView(write, tokenReplaced) };
        }
        if (Object.keys(changes).length > 0) {
          await stores.audit.insert(
            auditEvent(
              ctx,
              {
                orgId,
                action: "organization.integrations_updated",
                targetType: "organization",
                targetId: orgId,
                changes,
              },
              clock,
            ),
          );
        }
        return viewOf(await stores.integrations.listForOrg(orgId));
      });
      // This process's exporters see the change at their next read; other processes' within the cache's life.
      cache.clear();
      return result;
    },

    /**
     * One sample to each configured integration now, in parallel, through the exporters' probes; each
     * result is also recorded as the integration's last success or last error.
     */
    async test(orgId: string): Promise<IntegrationTestResults> {
      await loadOrg(deps.stores, orgId);
      const rows = await store.listForOrg(orgId);
      const out: IntegrationTestResults = { prometheus: null, loki: null };
      await Promise.all(
        rows.map(async (row) => {
          out[row.kind] = await probe(row);
        }),
      );
      // Only what was actually sent is recorded: a kind without an exporter in this process says so in the
      // answer, but is not the endpoint's error.
      const results: IntegrationResult[] = rows.flatMap((row) => {
        const r = out[row.kind];
        return r === null || probes[row.kind] === undefined
          ? []
          : [{ orgId, kind: row.kind, ok: r.ok, error: r.error, droppedBatches: 0, droppedLines: 0 }];
      });
      await store.recordResults(results, clock.now(), 0);
      return out;
    },

    /** Every integration of `kind` with its token decrypted: what the exporters send to (cached a few seconds). */
    active(kind: IntegrationKind): Promise<readonly IntegrationConfig[]> {
      const now = Date.now();
      const hit = cache.get(kind);
      if (hit !== undefined && hit.until > now) {
        return hit.configs;
      }
      const configs = readActive(kind);
      cache.set(kind, { until: now + cacheMs, configs });
      // A failed read is not kept: the next call tries again.
      configs.catch(() => {
        if (cache.get(kind)?.configs === configs) {
          cache.delete(kind);
        }
      });
      return configs;
    },

    /**
     * The exporters' results of one interval, for every organization, in one statement; a steady status is
     * written again once in each STATUS_REFRESH_MS.
     */
    async recordResults(results: readonly IntegrationResult[]): Promise<void> {
      if (results.length === 0) {
        return;
      }
      await store.recordResults(
        results.map((r) => ({ ...r, error: r.error === null ? null : r.error.slice(0, ERROR_MAX_CHARS) })),
        clock.now(),
        STATUS_REFRESH_MS,
      );
    },

    /** The exporters' probes, once they exist (they are built after the services they read). */
    setProbes(next: IntegrationProbes): void {
      probes = { ...probes, ...next };
    },
  };

  function safeOpen(row: StoredIntegration): string | undefined {
    try {
      return sealer.open(row.tokenCiphertext, tokenContext(row.orgId, row.kind));
    } catch {
      return undefined;
    }
  }

  async function probe(row: StoredIntegration): Promise<ProbeResult> {
    const send = probes[row.kind];
    if (send === undefined) {
      return {
        ok: false,
        status: null,
        error: `no ${row.kind} exporter runs in this process`,
        latencyMs: 0,
      };
    }
    let config: IntegrationConfig;
    try {
      config = decrypt(row);
    } catch {
      return {
        ok: false,
        status: null,
        error: "the stored token does not open with this server's ORGPLANE_SECRET_KEY; set the token again",
        latencyMs: 0,
      };
    }
    try {
      const result = await send(config);
      return {
        ...result,
        error:
          result.error === null ? null : redactCredentials(result.error, config).slice(0, ERROR_MAX_CHARS),
      };
    } catch (err) {
      return {
        ok: false,
        status: null,
        error: redactCredentials(message(err), config).slice(0, ERROR_MAX_CHARS),
        latencyMs: 0,
      };
    }
  }
}

export type IntegrationsService = ReturnType<typeof createIntegrationsService>;
