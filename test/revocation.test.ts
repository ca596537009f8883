import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createFreshDatabase, reachableTempDir } from "./fresh.ts";
import { api, killRunning, type Proc, startServer, stop, waitReady } from "./process.ts";
import { freePort } from "./util.ts";

/**
 * Two real server processes on one PostgreSQL: a key revoked through one is refused by the other on its very
 * next request. No process caches keys, so no timing is involved (and none is asserted).
 */

let admin: pg.Client;
let databaseName: string;
let databaseUrl: string;
const dirs: string[] = [];
const servers: Proc[] = [];

const dataDir = (label: string) => reachableTempDir(label, dirs);

beforeAll(async () => {
  admin = new pg.Client({ connectionString: inject("adminDatabaseUrl") });
  await admin.connect();
  ({ name: databaseName, url: databaseUrl } = await createFreshDatabase(admin, "revoke"));
});

afterAll(async () => {
  for (const server of servers) {
    await stop(server).catch(() => undefined);
  }
  await killRunning();
  await admin.query(`drop database if exists ${databaseName} with (force)`);
  await admin.end();
  for (const dir of dirs) {
    await rm(dir, { recursive: true, force: true });
  }
});

describe("two server processes on one database", () => {
  it("refuses a key revoked on process A on the very next request to process B (401 key_revoked)", async () => {
    const dirA = await dataDir("revoke-a");
    const dirB = await dataDir("revoke-b");
    const [portA, portB] = [await freePort(), await freePort()];
    // A first: it migrates and writes the operator key; B then starts on the migrated database.
    const a = startServer({ DATABASE_URL: databaseUrl, ORGPLANE_DATA_DIR: dirA, PORT: String(portA) });
    servers.push(a);
    await waitReady(a, portA, performance.now());
    const b = startServer({ DATABASE_URL: databaseUrl, ORGPLANE_DATA_DIR: dirB, PORT: String(portB) });
    servers.push(b);
    await waitReady(b, portB, performance.now());
    const operatorKey = (await readFile(join(dirA, "operator-key"), "utf8")).trim();

    const org = await api(portA, "POST", "/v1/organizations", operatorKey, { name: "Revocation Inc" });
    expect(org.status, org.text).toBe(201);
    const orgId = String(org.body.id);
    const created = await api(portA, "POST", `/v1/organizations/${orgId}/api-keys`, operatorKey, {
      name: "shared",
    });
    expect(created.status, created.text).toBe(201);
    const key = String(created.body.key);
    const keyId = String(created.body.id);

    // B has just used the key: anything it might remember about it would be fresh.
    const before = await api(portB, "GET", "/v1/organization", key);
    expect(before.status, before.text).toBe(200);

    const revoked = await api(portA, "DELETE", `/v1/organizations/${orgId}/api-keys/${keyId}`, operatorKey);
    expect(revoked.status, revoked.text).toBe(200);

    const after = await api(portB, "GET", "/v1/organization", key);
    expect(after.status, after.text).toBe(401);
    expect(after.body.code).toBe("key_revoked");
    const onA = await api(portA, "GET", "/v1/organization", key);
    expect(onA.status, onA.text).toBe(401);

    for (const server of [a, b]) {
      expect(await stop(server), server.output().slice(-2000)).toEqual({ code: 0, signal: null });
      expect(server.output(), "no key in any log line").not.toContain(key);
      expect(server.output()).not.toContain(operatorKey);
    }
  }, 120_000);
});
