import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newOperatorKey } from "../../src/domain/api-keys/api-keys.service.ts";
import { syncCatalog } from "../../src/domain/catalog/catalog.service.ts";
import { createApp } from "../../src/http/app.ts";
import { DEFAULT_PRESET, loadPreset } from "../../src/infra/catalog-file.ts";
import { type EmbeddedDatabase, startEmbeddedPostgres } from "../../src/infra/embedded-postgres.ts";
import { createLogger } from "../../src/infra/logger.ts";
import { createHttpMetrics } from "../../src/infra/metrics.ts";
import { createMemoryRateLimiter } from "../../src/infra/rate-limiter.memory.ts";
import { generateKey } from "../../src/lib/api-key-format.ts";
import { systemClock } from "../../src/lib/clock.ts";
import { createServices } from "../../src/services.ts";
import { type Database, openDatabase } from "../../src/store/db.ts";
import { migrateDatabase } from "../../src/store/migrate.ts";
import { classifyStorageError } from "../../src/store/pg-errors.ts";
import { PREFIXES } from "../harness.ts";
import { freePort } from "../util.ts";

const catalog = await loadPreset(DEFAULT_PRESET);

type Response = { status: number; headers: Headers; text: string; body: Record<string, unknown> };

/** An app exactly as the server builds it, on whatever database `url` names. */
function appOn(url: string): { app: ReturnType<typeof createApp>; database: Database } {
  const database = openDatabase({ url, poolMax: 4, onPoolError: () => {} });
  const app = createApp({
    services: createServices(database, {
      clock: systemClock,
      prefixes: PREFIXES,
      identity: undefined,
      catalog,
      rateLimiter: createMemoryRateLimiter({ clock: systemClock }),
    }),
    logger: createLogger("silent"),
    metrics: createHttpMetrics({ defaultMetrics: false }),
    ping: () => database.ping(1000),
    rateLimiterStatus: async () => ({ store: "memory", status: "ok", failureMode: null }),
    classifyError: classifyStorageError,
    trustProxy: false,
  });
  return { app, database };
}

async function send(
  app: ReturnType<typeof createApp>,
  method: string,
  path: string,
  key?: string,
  body?: unknown,
): Promise<Response> {
  const headers: Record<string, string> = {};
  if (key !== undefined) {
    headers.Authorization = `Bearer ${key}`;
  }
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
  }
  const res = await app.request(path, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // Not JSON: the assertions on `text` explain it.
  }
  return { status: res.status, headers: res.headers, text, body: parsed };
}

/** The promise of a 503: a problem document with Retry-After that says nothing about the infrastructure. */
function expectUnavailable(res: Response, what: string, secrets: string[]): void {
  expect(res.status, `${what}: ${res.text.slice(0, 500)}`).toBe(503);
  expect(res.headers.get("content-type"), what).toBe("application/problem+json");
  expect(res.body.code, what).toBe("service_unavailable");
  expect(res.body.request_id, what).toBe(res.headers.get("x-request-id"));
  const retryAfter = Number(res.headers.get("retry-after"));
  expect(Number.isInteger(retryAfter) && retryAfter > 0, `${what}: Retry-After is whole seconds`).toBe(true);
  for (const secret of [...secrets, "ECONNREFUSED", "postgres", "connect ", "stack", "    at "]) {
    expect(res.text, `${what} leaks '${secret}'`).not.toContain(secret);
  }
}

describe("with the database unreachable", () => {
  let port: number;
  let url: string;
  let app: ReturnType<typeof createApp>;
  let database: Database;
  const operatorKey = newOperatorKey(PREFIXES.operatorKeyPrefix, "unreachable", systemClock).plaintext;
  const orgKey = generateKey(PREFIXES.orgKeyPrefix, "live");

  beforeAll(async () => {
    // Free a moment ago and closed now: connecting is refused at once.
    port = await freePort();
    url = `postgres://secretuser:secretpass@127.0.0.1:${port}/secretdb`;
    ({ app, database } = appOn(url));
  });
  afterAll(() => database.close());

  const secrets = () => [url, "secretuser", "secretpass", "secretdb", `:${port}`, "127.0.0.1"];

  it("answers /v1 requests with 503 service_unavailable and Retry-After, whichever key is presented", async () => {
    const cases: [string, string, string, unknown][] = [
      ["GET", "/v1/me", operatorKey, undefined],
      ["GET", "/v1/me", orgKey, undefined],
      ["GET", "/v1/organizations", operatorKey, undefined],
      ["POST", "/v1/organizations", operatorKey, { name: "Down Inc" }],
      ["GET", "/v1/organizations/org_01h2xcejqtf2nbrexx3vqjhp41", operatorKey, undefined],
      ["GET", "/v1/organization", orgKey, undefined],
    ];
    for (const [method, path, key, body] of cases) {
      expectUnavailable(await send(app, method, path, key, body), `${method} ${path}`, secrets());
    }
  });

  it("still refuses a request with no credential, or a malformed one, with 401: no database needed", async () => {
    expect((await send(app, "GET", "/v1/me")).status).toBe(401);
    expect((await send(app, "GET", "/v1/me", "sk_live_not-a-real-key")).status).toBe(401);
  });

  it("fails /readyz with 503 while /healthz stays 200", async () => {
    expectUnavailable(await send(app, "GET", "/readyz"), "/readyz", secrets());
    const health = await send(app, "GET", "/healthz");
    expect(health.status).toBe(200);
    expect(health.body).toEqual({ status: "ok" });
  });
});

describe("when the database goes away and comes back", () => {
  let dir: string;
  let port: number;
  let embedded: EmbeddedDatabase | undefined;
  let database: Database | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "orgplane-unavailable-"));
    // As root, PostgreSQL runs as `postgres`, which must reach the data directory.
    await chmod(dir, 0o755);
    port = await freePort();
  });
  afterAll(async () => {
    await database?.close();
    await embedded?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("turns to 503 while PostgreSQL is stopped and recovers by itself once it is back", async () => {
    const logger = createLogger("silent");
    embedded = await startEmbeddedPostgres({ dataDir: dir, port, logger });
    const built = appOn(embedded.url);
    database = built.database;
    const { app } = built;
    await migrateDatabase(database.pool);
    await database.transactor.transaction((stores) => syncCatalog(stores.planVersions, catalog, new Date()));
    const { key, plaintext } = newOperatorKey(PREFIXES.operatorKeyPrefix, "flaky", systemClock);
    await database.stores.operatorKeys.insert(key);

    const before = await send(app, "POST", "/v1/organizations", plaintext, { name: "Before Outage" });
    expect(before.status, before.text).toBe(201);
    expect((await send(app, "GET", "/readyz")).status).toBe(200);

    await embedded.stop();
    embedded = undefined;
    const secrets = [`:${port}`, "127.0.0.1", "orgplane:orgplane"];
    // Not /v1/me: the operator key was found within the second, so answering who it is needs no database.
    expectUnavailable(
      await send(app, "GET", "/v1/organizations", plaintext),
      "GET /v1/organizations, database stopped",
      secrets,
    );
    expectUnavailable(
      await send(app, "POST", "/v1/organizations", plaintext, { name: "During Outage" }),
      "POST /v1/organizations, database stopped",
      secrets,
    );
    expectUnavailable(await send(app, "GET", "/readyz"), "/readyz, database stopped", secrets);
    expect((await send(app, "GET", "/healthz")).status).toBe(200);

    embedded = await startEmbeddedPostgres({ dataDir: dir, port, logger });
    // The same pool, untouched: it reconnects on its own.
    expect((await send(app, "GET", "/readyz")).status).toBe(200);
    const after = await send(app, "GET", `/v1/organizations/${String(before.body.id)}`, plaintext);
    expect(after.status, after.text).toBe(200);
    expect(after.body.name).toBe("Before Outage");
  }, 120_000);
});
