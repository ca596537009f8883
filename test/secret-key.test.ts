import { randomBytes } from "node:crypto";
import { mkdir, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { checkSecretKeys, SecretKeyMismatchError } from "../src/domain/integrations/secret-key-check.ts";
import { createSecretBox, parseSecretKeys } from "../src/infra/secret-box.ts";
import { systemClock } from "../src/lib/clock.ts";
import type { Database } from "../src/store/db.ts";
import { createFreshDatabase, reachableTempDir } from "./fresh.ts";
import { createTestContext, type TestContext } from "./harness.ts";
import { api, killRunning, startServer, stop, waitForExit, waitReady } from "./process.ts";
import { freePort } from "./util.ts";

/**
 * ORGPLANE_SECRET_KEY against the database: the start-up check (a wrong key stops the server with one line,
 * never garbage later), rotation (old key ids still open, new tokens are sealed under the first key, start-up
 * re-seals the rest), and the key file generated for the embedded default. The secret box's own round trip and
 * tamper checks are in src/infra/secret-box.test.ts.
 */

const keyText = (id: string) => `${id}:${randomBytes(32).toString("base64")}`;
const tempDirs: string[] = [];

afterAll(async () => {
  await killRunning();
  for (const dir of tempDirs) {
    await rm(dir, { recursive: true, force: true });
  }
});

describe("checkSecretKeys against a database", () => {
  // A database of this file's own: the check reads every sealed token and canary in it.
  let t: TestContext;
  let database: Database;
  beforeAll(async () => {
    t = await createTestContext();
    database = t.database;
  });
  afterAll(() => t.close());

  /** An organization with a Prometheus integration sealed under `keys`. */
  async function storeToken(keys: string, token: string): Promise<string> {
    const org = await t.createOrg();
    const box = createSecretBox(parseSecretKeys(keys));
    const now = new Date();
    await database.stores.integrations.upsert({
      orgId: org.id,
      kind: "prometheus",
      endpoint: "https://prometheus.example.com/push",
      clientId: "1",
      tokenCiphertext: box.seal(token, `org_integrations:${org.id}:prometheus`),
      tokenLast4: token.slice(-4),
      at: now,
    });
    return org.id;
  }

  it("accepts the right key, refuses another key under the same id or a missing id, and re-seals after a rotation", async () => {
    const first = keyText("k1");
    const orgId = await storeToken(first, "glc_rotation_token_1234");
    expect(
      await checkSecretKeys(
        database.stores.integrations,
        createSecretBox(parseSecretKeys(first)),
        systemClock,
      ),
    ).toEqual({
      resealed: 0,
    });

    const impostor = keyText("k1");
    const wrongMaterial = await checkSecretKeys(
      database.stores.integrations,
      createSecretBox(parseSecretKeys(impostor)),
      systemClock,
    ).catch((err: unknown) => err);
    expect(wrongMaterial).toBeInstanceOf(SecretKeyMismatchError);
    expect((wrongMaterial as Error).message).toMatch(/^ORGPLANE_SECRET_KEY: key id 'k1' is not the key/);

    const other = keyText("k2");
    const missing = await checkSecretKeys(
      database.stores.integrations,
      createSecretBox(parseSecretKeys(other)),
      systemClock,
    ).catch((err: unknown) => err);
    expect(missing).toBeInstanceOf(SecretKeyMismatchError);
    expect((missing as Error).message).toMatch(/ORGPLANE_SECRET_KEY does not hold key id 'k1'/);
    for (const err of [wrongMaterial, missing]) {
      for (const key of [first, impostor, other]) {
        expect((err as Error).message).not.toContain(key.slice(3, 20));
      }
    }

    // Rotation: the new key first, the old one after it. Start-up re-seals every token under the new key.
    const rotated = createSecretBox(parseSecretKeys(`${other},${first}`));
    expect(await checkSecretKeys(database.stores.integrations, rotated, systemClock)).toEqual({
      resealed: 1,
    });
    const [row] = (await database.stores.integrations.listForOrg(orgId)) ?? [];
    expect(row?.tokenCiphertext).toMatch(/^v1:k2:/);
    // …after which the old key can go.
    const newOnly = createSecretBox(parseSecretKeys(other));
    expect(await checkSecretKeys(database.stores.integrations, newOnly, systemClock)).toEqual({
      resealed: 0,
    });
    expect(newOnly.open(row?.tokenCiphertext ?? "", `org_integrations:${orgId}:prometheus`)).toBe(
      "glc_rotation_token_1234",
    );
    // The old key's canary still catches other material under its id, should it come back.
    const oldIdAgain = await checkSecretKeys(
      database.stores.integrations,
      createSecretBox(parseSecretKeys(`${other},${keyText("k1")}`)),
      systemClock,
    ).catch((err: unknown) => err);
    expect(oldIdAgain).toBeInstanceOf(SecretKeyMismatchError);
  });
});

describe("the server's start-up with ORGPLANE_SECRET_KEY", () => {
  let admin: pg.Client;
  let databaseName: string;
  let databaseUrl: string;

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: inject("adminDatabaseUrl") });
    await admin.connect();
    ({ name: databaseName, url: databaseUrl } = await createFreshDatabase(admin, "secret"));
  });
  afterAll(async () => {
    await admin.query(`drop database if exists ${databaseName} with (force)`);
    await admin.end();
  });

  it("generates <data dir>/secret-key (0600) on first start, reuses it on restart, and a wrong key stops start-up with one line", async () => {
    const dataDir = join(await reachableTempDir("secret", tempDirs), "data");
    await mkdir(dataDir);
    const keyFile = join(dataDir, "secret-key");
    const token = "glc_startup_token_value_0123456789";
    // "": unset, whatever the shell running the tests has (an empty variable counts as unset).
    const env = {
      DATABASE_URL: databaseUrl,
      ORGPLANE_DATA_DIR: dataDir,
      ORGPLANE_SECRET_KEY: "",
      LOG_LEVEL: "debug",
    };

    let port = await freePort();
    let server = startServer({ ...env, PORT: String(port) });
    await waitReady(server, port, performance.now());
    const info = await stat(keyFile);
    expect((info.mode & 0o777).toString(8), "secret-key file mode").toBe("600");
    const generated = (await readFile(keyFile, "utf8")).trim();
    const [generatedId] = parseSecretKeys(generated).map((k) => k.id);
    expect(generatedId).toMatch(/^local-[0-9a-f]{8}$/);

    const operatorKey = (await readFile(join(dataDir, "operator-key"), "utf8")).trim();
    const org = await api(port, "POST", "/v1/organizations", operatorKey, { name: "Sealed Inc" });
    expect(org.status, org.text).toBe(201);
    const orgId = String(org.body.id);
    const set = await api(port, "PUT", `/v1/organizations/${orgId}/integrations`, operatorKey, {
      prometheus: { endpoint: "https://prometheus.example.com/api/prom/push", id: "42", token },
    });
    expect(set.status, set.text).toBe(200);
    expect(set.text).not.toContain(token);
    expect(await stop(server), server.output().slice(-2000)).toEqual({ code: 0, signal: null });
    expect(server.output(), "the key file's key is never logged").not.toContain(generated.split(":")[1]);
    expect(server.output()).not.toContain(token);

    // Restart: the same file, read again; the stored token still opens.
    port = await freePort();
    server = startServer({ ...env, PORT: String(port) });
    await waitReady(server, port, performance.now());
    expect((await readFile(keyFile, "utf8")).trim(), "the key file is untouched").toBe(generated);
    const read = await api(port, "GET", `/v1/organizations/${orgId}/integrations`, operatorKey);
    expect(read.status, read.text).toBe(200);
    expect(read.body.prometheus).toMatchObject({ id: "42", token_last4: token.slice(-4) });
    expect(await stop(server), server.output().slice(-2000)).toEqual({ code: 0, signal: null });

    // A wrong ORGPLANE_SECRET_KEY: another key under the same id, then a key of another id.
    for (const wrong of [keyText(String(generatedId)), keyText("prod-1")]) {
      const failing = startServer({ ...env, ORGPLANE_SECRET_KEY: wrong, PORT: String(await freePort()) });
      expect(await waitForExit(failing), failing.output()).toEqual({ code: 1, signal: null });
      const lines = failing.stderr().trimEnd().split("\n");
      expect(lines, failing.stderr()).toHaveLength(1);
      expect(lines[0]).toMatch(/^orgplane: .*ORGPLANE_SECRET_KEY/);
      for (const material of [wrong.split(":")[1] ?? "", generated.split(":")[1] ?? ""]) {
        expect(failing.output(), "no key material is printed").not.toContain(material);
        expect(failing.output()).not.toContain(material.slice(0, 16));
      }
      expect(failing.output()).not.toContain(token);
    }

    // A malformed one is a configuration error like any other, naming the variable and not echoing it.
    const malformed = startServer({
      ...env,
      ORGPLANE_SECRET_KEY: "k1:c2hvcnQ=",
      PORT: String(await freePort()),
    });
    expect(await waitForExit(malformed), malformed.output()).toEqual({ code: 1, signal: null });
    expect(malformed.stderr().trimEnd()).toMatch(
      /^orgplane: invalid configuration: ORGPLANE_SECRET_KEY has a key of 5 bytes/,
    );
    expect(malformed.output()).not.toContain("c2hvcnQ=");

    // The right key given explicitly (the file's content, as an operator would copy it) starts.
    port = await freePort();
    server = startServer({ ...env, ORGPLANE_SECRET_KEY: generated, PORT: String(port) });
    await waitReady(server, port, performance.now());
    expect(await stop(server), server.output().slice(-2000)).toEqual({ code: 0, signal: null });
  }, 180_000);
});
