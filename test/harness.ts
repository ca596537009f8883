import { randomBytes } from "node:crypto";
import pg from "pg";
import { inject } from "vitest";
import { newOperatorKey } from "../src/domain/api-keys/api-keys.service.ts";
import type { IdentityVerifier } from "../src/domain/auth/identity.ts";
import { ORG_SCOPES, type RequestContext, type Role, type Scope } from "../src/domain/auth/principal.ts";
import { syncCatalog } from "../src/domain/catalog/catalog.service.ts";
import type { Catalog } from "../src/domain/catalog/catalog.types.ts";
import type { IntegrationProbes } from "../src/domain/integrations/integrations.types.ts";
import type { CreateOrgInput, Organization } from "../src/domain/orgs/orgs.types.ts";
import type { RateLimiter } from "../src/domain/rate-limits/rate-limiter.ts";
import { createApp } from "../src/http/app.ts";
import type { Services } from "../src/http/env.ts";
import { DEFAULT_PRESET, loadPreset } from "../src/infra/catalog-file.ts";
import { createLogger } from "../src/infra/logger.ts";
import { createHttpMetrics } from "../src/infra/metrics.ts";
import { createOidcVerifier } from "../src/infra/oidc.ts";
import { createSecretBox, parseSecretKeys } from "../src/infra/secret-box.ts";
import type { StripeConfig } from "../src/infra/stripe.ts";
import { type Clock, systemClock } from "../src/lib/clock.ts";
import { newId } from "../src/lib/ids.ts";
import { createServices } from "../src/services.ts";
import { type Database, openDatabase } from "../src/store/db.ts";
import { classifyStorageError } from "../src/store/pg-errors.ts";
import {
  startTestIdentityProvider,
  type TestIdentityProvider,
  type TokenOptions,
} from "./identity-provider.ts";
import { withDatabase } from "./util.ts";

export const PREFIXES = { orgKeyPrefix: "sk", operatorKeyPrefix: "op" };

/**
 * The ORGPLANE_SECRET_KEY of every test app (a fixed key: a second app on the same database opens what the
 * first sealed, as two processes configured alike do).
 */
export const TEST_SECRET_KEY = `test:${Buffer.alloc(32, 7).toString("base64")}`;
export const testSecretBox = createSecretBox(parseSecretKeys(TEST_SECRET_KEY));

export type TestResponse<T = Record<string, unknown>> = {
  status: number;
  headers: Headers;
  body: T;
  text: string;
};

export type RequestOptions = {
  key?: string | undefined;
  body?: unknown;
  /** Sent as-is, without JSON encoding (for malformed-body tests). */
  rawBody?: string;
  headers?: Record<string, string>;
};

export type TestContext = {
  app: ReturnType<typeof createApp>;
  database: Database;
  services: Services;
  databaseUrl: string;
  operatorKey: string;
  operatorCtx: RequestContext;
  /** The catalog synced into this file's database (the multimodal-search preset unless given). */
  catalog: Catalog;
  request<T = Record<string, unknown>>(
    method: string,
    path: string,
    options?: RequestOptions,
  ): Promise<TestResponse<T>>;
  /** A fresh organization, inserted through the service (not HTTP). */
  createOrg(overrides?: Partial<CreateOrgInput>): Promise<Organization>;
  /** A fresh org key; all scopes unless named. */
  createKey(orgId: string, scopes?: readonly Scope[]): Promise<string>;
  /** The identity provider whose tokens this app accepts (a local JWKS server). */
  identity: TestIdentityProvider;
  /** A signed-in user: their sign-in token (org claim set when `orgId` is given) and user id. */
  signIn(options?: TokenOptions): Promise<{ token: string; userId: string; subject: string }>;
  /** A fresh user who is a member of `orgId` with `role`; the token's org claim names that org. */
  createMember(orgId: string, role: Role): Promise<{ token: string; userId: string; subject: string }>;
  /** Move an organization to another plan of the catalog now (PUT …/subscription as the operator). */
  setPlan(orgId: string, planKey: string): Promise<void>;
  /** A fresh org with one all-scopes key. */
  createOrgWithKey(overrides?: Partial<CreateOrgInput>): Promise<{ org: Organization; key: string }>;
  /** Every line the app logged (level trace): `close()` fails if any tracked key appears in one. */
  logLines: readonly string[];
  /** Track a plaintext key the test obtained some other way (createKey and responses are tracked). */
  trackSecret(secret: string): void;
  close(): Promise<void>;
};

/**
 * Every plaintext key a test context sees, and every line its app logs: `close()` asserts that no key
 * appears in the logs, so the whole suite checks that keys are never logged.
 */
function createSecretLogWatch(keyPrefixes: readonly string[]) {
  const lines: string[] = [];
  const secrets = new Set<string>();
  function trackIn(value: unknown, depth = 0): void {
    // Created keys sit at the top of a response (`key`), rotated ones next to `previous`.
    if (depth > 2 || value === null || typeof value !== "object") {
      return;
    }
    for (const [field, v] of Object.entries(value)) {
      if (field === "key" && typeof v === "string" && keyPrefixes.some((p) => v.startsWith(`${p}_`))) {
        secrets.add(v);
      } else {
        trackIn(v, depth + 1);
      }
    }
  }
  return {
    lines,
    destination: {
      write(line: string): void {
        lines.push(line);
      },
    },
    track: (secret: string) => secrets.add(secret),
    trackIn,
    assertNoneLogged(): void {
      const all = lines.join("");
      const leaked = [...secrets].filter((s) => all.includes(s));
      if (leaked.length > 0) {
        throw new Error(
          `${leaked.length} plaintext key(s) appeared in the logs (e.g. '${leaked[0]?.slice(0, 12)}…')`,
        );
      }
    },
  };
}

export function uniqueName(label = "org"): string {
  return `${label}-${randomBytes(5).toString("hex")}`;
}

/**
 * The harness's default limiter: it admits every request and reports the full limit as remaining. The
 * suite makes hundreds of requests per org on the default preset's free plan (20 metadata requests per
 * minute) under clocks that never move, so a counting limiter would throttle tests that are about
 * something else; every request still runs the whole rate-limit path (effective limits, headers).
 * test/http/rate-limits.test.ts passes the real memory limiter to test counting and 429s.
 */
export const admitEveryRequest: RateLimiter = {
  async take(request) {
    return {
      allowed: true,
      limit: request.limit,
      remaining: request.limit,
      resetAt: new Date(),
      retryAfterSeconds: 0,
    };
  },
  async health() {
    return "ok";
  },
  async close() {},
};

/** A database of the caller's own, cloned from the run's migrated template (milliseconds); its URL. */
export async function cloneTemplateDatabase(): Promise<string> {
  const adminUrl = inject("adminDatabaseUrl");
  const name = `orgplane_t_${inject("runId")}_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${name} template ${inject("templateDatabase")}`);
  } finally {
    await admin.end();
  }
  return withDatabase(adminUrl, name);
}

/** Clone the run's migrated template into a database of this file's own and build the app on it. */
export async function createTestContext(
  options: {
    clock?: Clock;
    catalog?: Catalog;
    stripe?: StripeConfig;
    rateLimiter?: RateLimiter;
    /** Webhook delivery: a shorter attempt timeout, or private addresses refused (`allowPrivate: false`). */
    webhooks?: { allowPrivate?: boolean; attemptTimeoutMs?: number };
    /**
     * Integrations: private endpoints refused (`allowPrivate: false`), the probes of the test call, how long
     * the exporters' read is cached.
     */
    integrations?: { allowPrivate?: boolean; probes?: IntegrationProbes; activeCacheMs?: number };
  } = {},
): Promise<TestContext> {
  const databaseUrl = await cloneTemplateDatabase();
  const database = openDatabase({ url: databaseUrl, poolMax: 10, onPoolError: () => {} });
  const clock = options.clock ?? systemClock;
  const catalog = options.catalog ?? (await loadPreset(DEFAULT_PRESET));
  await database.transactor.transaction((stores) => syncCatalog(stores.planVersions, catalog, clock.now()));
  const identity = await startTestIdentityProvider();
  const logWatch = createSecretLogWatch([PREFIXES.orgKeyPrefix, PREFIXES.operatorKeyPrefix]);
  const services = createServices(database, {
    clock,
    prefixes: PREFIXES,
    identity: createOidcVerifier(identity),
    catalog,
    ...(options.stripe === undefined ? {} : { stripe: options.stripe }),
    rateLimiter: options.rateLimiter ?? admitEveryRequest,
    // Test receivers listen on 127.0.0.1 over plain HTTP (WEBHOOK_ALLOW_PRIVATE=true).
    webhooks: { allowPrivate: true, ...options.webhooks },
    // The same for integration endpoints (INTEGRATIONS_ALLOW_PRIVATE=true).
    integrations: { sealer: testSecretBox, allowPrivate: true, ...options.integrations },
  });
  const app = createApp({
    services,
    logger: createLogger("trace", logWatch.destination),
    metrics: createHttpMetrics({ defaultMetrics: false }),
    ping: () => database.ping(1000),
    rateLimiterStatus: async () => ({ store: "memory", status: "ok", failureMode: null }),
    classifyError: classifyStorageError,
    trustProxy: false,
  });
  const { key: opKey, plaintext: operatorKey } = newOperatorKey(
    PREFIXES.operatorKeyPrefix,
    "test operator",
    clock,
  );
  await database.stores.operatorKeys.insert(opKey);
  logWatch.track(operatorKey);
  const operatorCtx: RequestContext = {
    principal: { kind: "operator", id: opKey.id, name: opKey.name },
    requestId: "req_test",
    ip: null,
    userAgent: "orgplane-tests",
  };

  const request = requestThrough(app, operatorKey, (body) => logWatch.trackIn(body));

  async function createOrg(overrides: Partial<CreateOrgInput> = {}): Promise<Organization> {
    return services.orgs.create(operatorCtx, { name: uniqueName(), ...overrides });
  }

  async function createKey(orgId: string, scopes: readonly Scope[] = ORG_SCOPES): Promise<string> {
    const { plaintext } = await services.apiKeys.create(operatorCtx, orgId, {
      name: uniqueName("key"),
      environment: "live",
      scopes: [...scopes],
      expiresAt: undefined,
    });
    logWatch.track(plaintext);
    return plaintext;
  }

  async function signIn(tokenOptions: TokenOptions = {}) {
    const subject = tokenOptions.subject ?? uniqueName("sub");
    const token = await identity.sign({ ...tokenOptions, subject });
    const user = await database.stores.users.upsertFromClaims(
      {
        subject,
        email: tokenOptions.email === undefined ? `${subject}@example.test` : tokenOptions.email,
        name: tokenOptions.name === undefined ? "Test User" : tokenOptions.name,
        avatarUrl: null,
        orgId: tokenOptions.orgId ?? null,
      },
      newId("usr"),
      clock.now(),
    );
    return { token, userId: user.id, subject };
  }

  return {
    app,
    database,
    services,
    databaseUrl,
    operatorKey,
    operatorCtx,
    catalog,
    request,
    createOrg,
    createKey,
    async setPlan(orgId, planKey) {
      await services.subscriptions.change(operatorCtx, orgId, { plan: planKey });
    },
    async createOrgWithKey(overrides) {
      const org = await createOrg(overrides);
      return { org, key: await createKey(org.id) };
    },
    identity,
    signIn,
    async createMember(orgId, role) {
      const signedIn = await signIn({ orgId });
      const now = clock.now();
      await database.stores.memberships.insert({
        orgId,
        userId: signedIn.userId,
        role,
        projectIds: null,
        invitedBy: null,
        createdAt: now,
        updatedAt: now,
      });
      return signedIn;
    },
    logLines: logWatch.lines,
    trackSecret: logWatch.track,
    async close() {
      await services.webhooks.stop();
      await database.close();
      await identity.close();
      logWatch.assertNoneLogged();
    },
  };
}

/** Assert a status, printing the body when it differs, so a red test explains itself. */
export function expectStatus(res: TestResponse<unknown>, status: number): void {
  if (res.status !== status) {
    throw new Error(`expected HTTP ${status}, got ${res.status}: ${res.text.slice(0, 2000)}`);
  }
}

/** A collection response. */
export type ListBody<T> = { data: T[]; has_more: boolean; next_cursor: string | null };

/** A clock the test moves by hand, so expiry and time ranges are tested without sleeping. */
export type ManualClock = Clock & { set(at: Date): void; advance(ms: number): void };

export function createManualClock(start: Date = new Date()): ManualClock {
  let current = start.getTime();
  return {
    now: () => new Date(current),
    set(at) {
      current = at.getTime();
    },
    advance(ms) {
      current += ms;
    },
  };
}

/** `t.request` for any app: JSON in, parsed body out, `defaultKey` unless `key` is given. */
export function requestThrough(
  app: ReturnType<typeof createApp>,
  defaultKey: string,
  /** Sees every parsed response body (the harness uses it to learn the keys it must never find in logs). */
  onBody: (body: unknown) => void = () => {},
): TestContext["request"] {
  return async <T>(method: string, path: string, opts: RequestOptions = {}): Promise<TestResponse<T>> => {
    const headers: Record<string, string> = { ...opts.headers };
    const key = "key" in opts ? opts.key : defaultKey;
    if (key !== undefined) {
      headers.Authorization ??= `Bearer ${key}`;
    }
    let body: string | undefined;
    if (opts.rawBody !== undefined) {
      body = opts.rawBody;
    } else if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers["Content-Type"] ??= "application/json";
    }
    const res = await app.request(path, { method, headers, ...(body === undefined ? {} : { body }) });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      // Not JSON (metrics, docs): the text is the body.
    }
    onBody(parsed);
    return { status: res.status, headers: res.headers, body: parsed as T, text };
  };
}

export type SecondApp = {
  app: ReturnType<typeof createApp>;
  database: Database;
  /** The second process's services (its own pool and in-memory state). */
  services: Services;
  /** Like `t.request`, through this app; the operator key of `t` is the default. */
  request: TestContext["request"];
  close(): Promise<void>;
};

/**
 * Another app on the test file's database with a pool of its own: what a second process sharing
 * PostgreSQL would be. Credentials of `t` work on it, since they live in the same database.
 */
export function createSecondApp(
  t: TestContext,
  /** `identity`: another identity provider's verifier instead of `t.identity`'s. */
  options: { clock?: Clock; identity?: IdentityVerifier } = {},
): SecondApp {
  const database = openDatabase({ url: t.databaseUrl, poolMax: 10, onPoolError: () => {} });
  const services = createServices(database, {
    clock: options.clock ?? systemClock,
    prefixes: PREFIXES,
    identity: options.identity ?? createOidcVerifier(t.identity),
    catalog: t.catalog,
    rateLimiter: admitEveryRequest,
    webhooks: { allowPrivate: true },
    integrations: { sealer: testSecretBox, allowPrivate: true },
  });
  const app = createApp({
    services,
    logger: createLogger("silent"),
    metrics: createHttpMetrics({ defaultMetrics: false }),
    ping: () => database.ping(1000),
    rateLimiterStatus: async () => ({ store: "memory", status: "ok", failureMode: null }),
    classifyError: classifyStorageError,
    trustProxy: false,
  });
  return {
    app,
    database,
    services,
    request: requestThrough(app, t.operatorKey),
    async close() {
      await services.webhooks.stop();
      await database.close();
    },
  };
}
