import { existsSync } from "node:fs";
import { mkdir, readFile, rm, stat } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createFreshDatabase, reachableTempDir } from "./fresh.ts";
import {
  api,
  cli,
  killRunning,
  ROOT,
  spawnNode,
  startServer,
  stop,
  waitForExit,
  waitReady,
} from "./process.ts";
import { freePort } from "./util.ts";

/**
 * Real processes, as an operator runs them: `node src/main.ts` (what `npm start` runs) and the `orgplane` CLI,
 * on the embedded PostgreSQL and on an external one. Start-up times are printed, never asserted.
 */

const OPERATOR_KEY = /^op_live_[0-9A-Za-z]{38}$/;
const tempDirs: string[] = [];

/**
 * True once a connection to `port` is refused. Polled rather than tried once: the log line that says the server
 * is shutting down is written a moment before its listening socket closes.
 */
async function refusesConnections(port: number): Promise<boolean> {
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`, { headers: { Connection: "close" } });
      await res.body?.cancel();
    } catch {
      return true;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

const tempDir = (label: string) => reachableTempDir(label, tempDirs);

function reportTiming(label: string, ms: number): void {
  process.stderr.write(`startup timing: ${label}: /readyz 200 after ${Math.round(ms)} ms\n`);
}

afterAll(async () => {
  await killRunning();
  for (const dir of tempDirs) {
    await rm(dir, { recursive: true, force: true });
  }
});

describe("npm start on the embedded PostgreSQL", () => {
  let dataDir: string;
  let keyFile: string;

  beforeAll(async () => {
    dataDir = join(await tempDir("start"), "data");
    await mkdir(dataDir);
    keyFile = join(dataDir, "operator-key");
  });

  it("starts on an empty data directory, writes one operator key (0600) that it never logs, and stops on SIGTERM", async () => {
    const port = await freePort();
    const started = performance.now();
    const server = startServer({
      ORGPLANE_DATA_DIR: dataDir,
      PORT: String(port),
      EMBEDDED_PG_PORT: String(await freePort()),
      // The most verbose level: the key must not appear even there.
      LOG_LEVEL: "debug",
    });
    reportTiming("empty data directory (initdb + migrations)", await waitReady(server, port, started));

    const info = await stat(keyFile);
    expect((info.mode & 0o777).toString(8), "operator-key file mode").toBe("600");
    const key = (await readFile(keyFile, "utf8")).trim();
    expect(key).toMatch(OPERATOR_KEY);

    const created = await api(port, "POST", "/v1/organizations", key, {
      name: "Persisted Inc",
      slug: "persisted",
    });
    expect(created.status, created.text).toBe(201);
    const me = await api(port, "GET", "/v1/me", key);
    expect(me.status, me.text).toBe(200);
    expect(me.body.type).toBe("operator");
    expect(server.stdout(), "the listening line names the docs and the key file").toContain(`${port}/docs`);
    expect(server.stdout()).toContain(keyFile);

    const exit = await stop(server);
    expect(exit, server.output().slice(-2000)).toEqual({ code: 0, signal: null });
    expect(server.output(), "the operator key appears in no log").not.toContain(key);
    expect(server.output()).not.toContain(key.slice(8, 30));
    expect(existsSync(join(dataDir, "pg", "postmaster.pid")), "the embedded PostgreSQL stopped cleanly").toBe(
      false,
    );
  }, 120_000);

  it("restarts on the same data directory with the data kept and no new operator key", async () => {
    const keyBefore = await readFile(keyFile, "utf8");
    const port = await freePort();
    const started = performance.now();
    const server = startServer({
      ORGPLANE_DATA_DIR: dataDir,
      PORT: String(port),
      EMBEDDED_PG_PORT: String(await freePort()),
    });
    reportTiming("restart on the same data directory", await waitReady(server, port, started));

    const key = keyBefore.trim();
    const org = await api(port, "GET", "/v1/organizations/persisted", key);
    const list = await api(port, "GET", "/v1/organizations", key);
    expect(list.status, list.text).toBe(200);
    expect(JSON.stringify(list.body.data), org.text).toContain('"slug":"persisted"');
    expect(await readFile(keyFile, "utf8"), "the key file is untouched").toBe(keyBefore);

    // The CLI shares the running server's embedded cluster instead of failing to start a second one.
    const env = { ORGPLANE_DATA_DIR: dataDir, LOG_LEVEL: "warn" };
    const listed = cli(["admin-key", "list", "--json"], env);
    expect(await waitForExit(listed), listed.output()).toEqual({ code: 0, signal: null });
    const keys = JSON.parse(listed.stdout()) as { name: string; revoked_at: string | null }[];
    expect(keys, "exactly the one key of the first start").toHaveLength(1);
    expect(listed.stdout(), "list never shows a key").not.toContain(key);

    const create = cli(["admin-key", "create", "--name", "second operator"], env);
    expect(await waitForExit(create), create.output()).toEqual({ code: 0, signal: null });
    const second = create.stdout().trim();
    expect(second, "stdout is the key alone").toMatch(OPERATOR_KEY);
    const me = await api(port, "GET", "/v1/me", second);
    expect(me.status, me.text).toBe(200);
    expect(me.body).toMatchObject({ type: "operator", name: "second operator" });

    expect(await stop(server), server.output().slice(-2000)).toEqual({ code: 0, signal: null });
    expect(server.output()).not.toContain(key);
  }, 120_000);

  it("lets a request in flight at SIGTERM finish, refuses new connections, then closes the database and exits 0", async () => {
    const key = (await readFile(keyFile, "utf8")).trim();
    const port = await freePort();
    const server = startServer({
      ORGPLANE_DATA_DIR: dataDir,
      PORT: String(port),
      EMBEDDED_PG_PORT: String(await freePort()),
      // Far beyond this test's pace, so only the in-flight request decides when the server stops.
      SHUTDOWN_TIMEOUT_MS: "120000",
    });
    await waitReady(server, port, performance.now());

    const body = Buffer.from(JSON.stringify({ name: "In Flight Inc", slug: "in-flight" }));
    const half = Math.floor(body.length / 2);
    const req = httpRequest({
      host: "127.0.0.1",
      port,
      method: "POST",
      path: "/v1/organizations",
      agent: false,
      headers: {
        Authorization: `Bearer ${key}`,
        "Content-Type": "application/json",
        "Content-Length": String(body.length),
        // The server's "100 Continue" proves it holds the request; the body then arrives in two halves.
        Expect: "100-continue",
      },
    });
    const response = new Promise<{ status: number; text: string }>((resolve, reject) => {
      req.on("error", reject);
      req.on("response", (res) => {
        let text = "";
        res.on("data", (chunk: Buffer) => {
          text += chunk.toString("utf8");
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
        res.on("error", reject);
      });
    });
    await new Promise<void>((resolve) => {
      req.on("continue", () => {
        req.write(body.subarray(0, half));
        resolve();
      });
    });
    process.kill(server.pid, "SIGTERM");
    await server.waitForOutput(/"shutting down"/);
    expect(await refusesConnections(port), "a closing server accepts no new connection").toBe(true);
    req.end(body.subarray(half));

    const finished = await response;
    expect(finished.status, finished.text).toBe(201);
    expect(JSON.parse(finished.text)).toMatchObject({ name: "In Flight Inc", slug: "in-flight" });
    expect(await waitForExit(server), server.output().slice(-2000)).toEqual({ code: 0, signal: null });
    expect(server.stdout()).toContain('"Orgplane stopped"');
    expect(server.output(), "no connection was cut under a request").not.toContain(
      "idle database connection lost",
    );
    expect(existsSync(join(dataDir, "pg", "postmaster.pid")), "the embedded PostgreSQL stopped cleanly").toBe(
      false,
    );
  }, 120_000);
});

describe("two processes starting together on one fresh external database", () => {
  let admin: pg.Client;
  let databaseName: string;
  let databaseUrl: string;

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: inject("adminDatabaseUrl") });
    await admin.connect();
    ({ name: databaseName, url: databaseUrl } = await createFreshDatabase(admin, "start"));
  });
  afterAll(async () => {
    await admin.query(`drop database if exists ${databaseName} with (force)`);
    await admin.end();
  });

  it("both become ready, the migrations apply once and exactly one operator key exists", async () => {
    const dirs = [await tempDir("twin-a"), await tempDir("twin-b")];
    const ports = [await freePort(), await freePort()];
    const started = performance.now();
    const servers = dirs.map((dir, i) =>
      startServer({ DATABASE_URL: databaseUrl, ORGPLANE_DATA_DIR: dir, PORT: String(ports[i]) }),
    );
    const times = await Promise.all(servers.map((s, i) => waitReady(s, Number(ports[i]), started)));
    reportTiming("external PostgreSQL, two processes at once (slower of the two)", Math.max(...times));

    const journal = JSON.parse(
      await readFile(join(ROOT, "src/store/migrations/meta/_journal.json"), "utf8"),
    ) as { entries: unknown[] };
    const db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    try {
      const migrations = await db.query<{ n: string; distinct_hashes: string }>(
        "select count(*) as n, count(distinct hash) as distinct_hashes from drizzle.__drizzle_migrations",
      );
      expect(migrations.rows[0]).toEqual({
        n: String(journal.entries.length),
        distinct_hashes: String(journal.entries.length),
      });
      const keys = await db.query<{ n: string }>("select count(*) as n from operator_keys");
      expect(keys.rows[0]?.n, "one first operator key, not one per process").toBe("1");
    } finally {
      await db.end();
    }

    const keyFiles = dirs.map((dir) => join(dir, "operator-key")).filter((f) => existsSync(f));
    expect(keyFiles, "exactly one process wrote the key file").toHaveLength(1);
    const key = (await readFile(String(keyFiles[0]), "utf8")).trim();
    for (const port of ports) {
      const me = await api(port, "GET", "/v1/me", key);
      expect(me.status, `the key works on both processes: ${me.text}`).toBe(200);
    }

    // `orgplane admin-key create` against the same database while both run: a key both accept.
    const create = cli(["admin-key", "create"], {
      DATABASE_URL: databaseUrl,
      ORGPLANE_DATA_DIR: String(dirs[0]),
    });
    expect(await waitForExit(create), create.output()).toEqual({ code: 0, signal: null });
    const made = create.stdout().trim();
    expect(made).toMatch(OPERATOR_KEY);
    expect(create.stderr(), "the key goes to stdout only").not.toContain(made);
    for (const port of ports) {
      expect((await api(port, "GET", "/v1/me", made)).status).toBe(200);
    }

    for (const server of servers) {
      expect(await stop(server), server.output().slice(-2000)).toEqual({ code: 0, signal: null });
    }

    const migrate = cli(["migrate"], { DATABASE_URL: databaseUrl, ORGPLANE_DATA_DIR: String(dirs[0]) });
    expect(await waitForExit(migrate), migrate.output()).toEqual({ code: 0, signal: null });
    expect(migrate.stdout()).toContain("up to date");
  }, 120_000);
});

describe.concurrent("a bad configuration", () => {
  const cases: [string, string[], Record<string, string>, string][] = [
    ["npm start, PORT=abc", ["src/main.ts"], { PORT: "abc" }, "PORT"],
    ["orgplane serve, PORT=abc", ["src/cli/main.ts", "serve"], { PORT: "abc" }, "PORT"],
    ["orgplane migrate, PORT=99999", ["src/cli/main.ts", "migrate"], { PORT: "99999" }, "PORT"],
    [
      "npm start, DATABASE_URL=mysql://…",
      ["src/main.ts"],
      { DATABASE_URL: "mysql://admin:hunter2@db/x" },
      "DATABASE_URL",
    ],
    [
      "orgplane admin-key create, LOG_LEVEL=loud",
      ["src/cli/main.ts", "admin-key", "create"],
      { LOG_LEVEL: "loud" },
      "LOG_LEVEL",
    ],
  ];

  for (const [label, args, env, variable] of cases) {
    it(`stops start-up with one line naming ${variable} and status 1 (${label})`, async () => {
      const proc = spawnNode(args, { ORGPLANE_DATA_DIR: join(tmpdir(), "orgplane-never-created"), ...env });
      expect(await waitForExit(proc), proc.output()).toEqual({ code: 1, signal: null });
      const lines = proc.stderr().trimEnd().split("\n");
      expect(lines, proc.stderr()).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`^orgplane: invalid configuration: ${variable} `));
      expect(proc.stdout(), "nothing else is printed").toBe("");
      expect(proc.stderr(), "a database URL is not echoed: it may hold a password").not.toContain("hunter2");
    });
  }
});
