/**
 * HTTP throughput and latency of the hot path, each beside a baseline measured in the same run:
 *   baseline: a bare `node:http` hello-world JSON server in a child process (measured first and last; the
 *             mean is the baseline, so a machine that slows down during the run does not flatter the ratio);
 *   Orgplane: `node src/main.ts` (as `npm start` runs it) on a fresh database: GET /healthz (the framework's
 *             floor), POST /v1/keys/verify, and POST /v1/authorize with the memory limiter, then the same
 *             routes on a second start with REDIS_URL set.
 * Load: autocannon in this process, 50 connections, loopback only. Every response body is checked
 * (`"allowed":true`, `"valid":true`…): a denial is a 200 too, so counting 2xx alone would prove nothing.
 * Bounded: WARMUP_SECONDS + MEASURE_SECONDS per row, about 75 s in all with the embedded PostgreSQL.
 * Usage: npm run bench:authorize
 *   BENCH_DATABASE_URL / TEST_DATABASE_URL: a PostgreSQL server to create a fresh database on (dropped
 *     afterwards); else the embedded PostgreSQL in a temporary data directory.
 *   BENCH_REDIS_URL / TEST_REDIS_URL, else redis://127.0.0.1:6379 when it answers; the Redis rows skip otherwise.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, openSync, readFileSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import { Redis } from "ioredis";
import pg from "pg";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CONNECTIONS = 50;
/** JIT, connection set-up and the caches of the first requests; not counted. */
const WARMUP_SECONDS = 2;
/** Long enough for a stable median on a noisy 2-core machine, short enough to keep the run near 80 s. */
const MEASURE_SECONDS = 6;
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 20_000;
/** The whole run is killed past this, whatever hangs: the children go with it. */
const RUN_TIMEOUT_MS = 240_000;
/** The default preset's (multimodal-search) search category. */
const CATEGORY = "search";
/** The largest per-minute limit the API accepts: the benchmark must never be throttled by the org's limit. */
const HUGE_LIMIT = 10_000_000;
const TARGET_MEMORY_RATIO = 0.5;
const TARGET_REDIS_RATIO = 0.35;
const TARGET_P99_MS = 3;
/** Baseline runs further apart than this mean the machine was busy during the run. */
const NOISE_WARNING = 0.2;
const LOG_LEVEL = process.env.BENCH_LOG_LEVEL || "info";

const AUTHORIZE_ROUTE_DIR = join(ROOT, "src/http/routes/authorize");

// ---------------------------------------------------------------------------------------------- children

type Child = { name: string; proc: ChildProcess; pid: number; exited: Promise<void>; done: boolean };
const children = new Set<Child>();
const tempDirs: string[] = [];

function spawnChild(name: string, args: string[], env: Record<string, string>, logFile: string): Child {
  const fd = openSync(logFile, "a");
  // detached: the child leads its own process group, so one kill reaches Orgplane and its PostgreSQL.
  // Output goes to a file, not a pipe: reading 300,000 log lines would cost this process (the load
  // generator) CPU and distort the figures.
  const proc = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    detached: true,
    stdio: ["ignore", fd, fd],
  });
  if (proc.pid === undefined) {
    throw new Error(`could not start ${name}`);
  }
  const child: Child = {
    name,
    proc,
    pid: proc.pid,
    done: false,
    exited: new Promise<void>((resolve) => {
      proc.once("close", () => {
        child.done = true;
        children.delete(child);
        resolve();
      });
    }),
  };
  children.add(child);
  return child;
}

function killGroup(child: Child, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

/** SIGTERM to the process alone (Orgplane then stops its embedded PostgreSQL cleanly), SIGKILL to its group on timeout. */
async function stopChild(child: Child): Promise<void> {
  if (child.done) {
    return;
  }
  try {
    process.kill(child.pid, "SIGTERM");
  } catch {
    // Already gone.
  }
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), STOP_TIMEOUT_MS);
  });
  const late = await Promise.race([child.exited.then(() => false), timedOut]);
  clearTimeout(timer);
  if (late) {
    console.error(`  ${child.name} did not stop within ${STOP_TIMEOUT_MS / 1000} s: killed`);
  }
  killGroup(child, "SIGKILL");
  await child.exited;
}

async function cleanup(): Promise<void> {
  for (const child of [...children]) {
    await stopChild(child);
  }
  for (const dir of tempDirs) {
    await rm(dir, { recursive: true, force: true });
  }
}

// Last resort, synchronous: whatever ends this process takes its children with it.
process.on("exit", () => {
  for (const child of children) {
    killGroup(child, "SIGKILL");
  }
});
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    console.error(`\n${signal}: stopping the servers`);
    void cleanup().finally(() => process.exit(130));
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error("no free port"))));
    });
  });
}

function logTail(file: string): string {
  try {
    return readFileSync(file, "utf8").slice(-3000);
  } catch {
    return "";
  }
}

async function waitForStatus(child: Child, url: string, logFile: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.done) {
      throw new Error(`${child.name} exited before ${url} answered 200:\n${logTail(logFile)}`);
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await res.body?.cancel();
      if (res.status === 200) {
        return;
      }
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} did not answer 200 within ${READY_TIMEOUT_MS / 1000} s:\n${logTail(logFile)}`);
}

// ------------------------------------------------------------------------------------------ measurement

/** 10 µs buckets up to 1 s: autocannon's own histogram keeps whole milliseconds, too coarse for a 3 ms target. */
class LatencyHistogram {
  static readonly BUCKET_MS = 0.01;
  readonly buckets = new Uint32Array(100_000);
  count = 0;

  record(ms: number): void {
    const index = Math.min(this.buckets.length - 1, Math.max(0, Math.floor(ms / LatencyHistogram.BUCKET_MS)));
    this.buckets[index] = (this.buckets[index] ?? 0) + 1;
    this.count++;
  }

  /** Upper edge of the bucket holding the p-th percentile, in ms. */
  percentile(p: number): number {
    const rank = Math.ceil((p / 100) * this.count);
    let seen = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      seen += this.buckets[i] ?? 0;
      if (seen >= rank) {
        return (i + 1) * LatencyHistogram.BUCKET_MS;
      }
    }
    return Number.POSITIVE_INFINITY;
  }
}

type Target = {
  method: "GET" | "POST";
  path: string;
  headers?: Record<string, string>;
  body?: string;
  /** A substring every good response body holds. */
  expect: string;
};

type Measured = {
  rps: number;
  p50: number;
  p99: number;
  /** Why the figure is not valid: non-2xx, refused bodies, errors. Empty when it is. */
  problems: string[];
};

function load(port: number, target: Target, seconds: number): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const latency = new LatencyHistogram();
    /** What the refused bodies said, a few distinct ones: the reason is the finding. */
    const refusals = new Set<string>();
    const options: autocannon.Options = {
      url: `http://127.0.0.1:${port}${target.path}`,
      method: target.method,
      connections: CONNECTIONS,
      duration: seconds,
      verifyBody: (body) => {
        const text = String(body);
        if (text.includes(target.expect)) {
          return true;
        }
        if (refusals.size < 3) {
          refusals.add(reasonOf(text));
        }
        return false;
      },
      ...(target.headers === undefined ? {} : { headers: target.headers }),
      ...(target.body === undefined ? {} : { body: target.body }),
    };
    const instance = autocannon(options, (error: unknown, result) => {
      if (error !== null && error !== undefined) {
        reject(error instanceof Error ? error : new Error(String(error)));
        return;
      }
      const problems: string[] = [];
      if (result.non2xx > 0) {
        problems.push(`${result.non2xx} non-2xx`);
      }
      if (result.mismatches > 0) {
        problems.push(
          `${result.mismatches} bodies without ${target.expect} (${[...refusals].join(", ") || "no sample"})`,
        );
      }
      if (result.errors > 0) {
        problems.push(`${result.errors} errors (${result.timeouts} timeouts)`);
      }
      const good = result["2xx"] - result.mismatches;
      resolve({
        rps: result.duration > 0 ? good / result.duration : 0,
        p50: latency.percentile(50),
        p99: latency.percentile(99),
        problems,
      });
    });
    instance.on("response", (_client, status, _bytes, ms) => {
      if (status >= 200 && status < 300) {
        latency.record(ms);
      }
    });
  });
}

/** The `reason` (or problem `code`) of a refused body, else its first characters. */
function reasonOf(text: string): string {
  const match = /"(?:reason|code)":"([^"]{1,64})"/.exec(text);
  return match?.[1] ?? text.slice(0, 80);
}

async function measure(port: number, target: Target): Promise<Measured> {
  await load(port, target, WARMUP_SECONDS);
  return load(port, target, MEASURE_SECONDS);
}

// ------------------------------------------------------------------------------------------ the servers

const BARE_SERVER = `
const http = require("node:http");
const body = JSON.stringify({ hello: "world" });
const server = http.createServer((req, res) => {
  res.writeHead(200, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
  res.end(body);
});
server.listen(Number(process.env.PORT), "127.0.0.1");
process.on("SIGTERM", () => server.close(() => process.exit(0)));
`;

async function measureBare(workDir: string): Promise<Measured> {
  const port = await freePort();
  const logFile = join(workDir, "bare.log");
  const child = spawnChild("bare node:http server", ["-e", BARE_SERVER], { PORT: String(port) }, logFile);
  try {
    await waitForStatus(child, `http://127.0.0.1:${port}/`, logFile);
    return await measure(port, { method: "GET", path: "/", expect: '"hello"' });
  } finally {
    await stopChild(child);
  }
}

type Database = { url: string | undefined; label: string; drop(): Promise<void> };

/** A fresh database: on BENCH_DATABASE_URL / TEST_DATABASE_URL's server, else none (the embedded one). */
async function freshDatabase(): Promise<Database> {
  const adminUrl = process.env.BENCH_DATABASE_URL || process.env.TEST_DATABASE_URL;
  if (adminUrl === undefined || adminUrl === "") {
    return { url: undefined, label: "embedded PostgreSQL (fresh data directory)", drop: async () => {} };
  }
  const name = `orgplane_bench_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`create database ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    label: `external PostgreSQL at ${url.host} (fresh database ${name})`,
    async drop() {
      try {
        await admin.query(`drop database if exists ${name} with (force)`);
      } finally {
        await admin.end();
      }
    },
  };
}

type Orgplane = { child: Child; port: number; logFile: string };

async function startOrgplane(
  label: string,
  dataDir: string,
  database: Database,
  redisUrl: string | undefined,
): Promise<Orgplane> {
  const port = await freePort();
  const logFile = join(dataDir, `${label}.log`);
  const env: Record<string, string> = {
    HOST: "127.0.0.1",
    PORT: String(port),
    ORGPLANE_DATA_DIR: dataDir,
    EMBEDDED_PG_PORT: String(await freePort()),
    LOG_LEVEL,
    // Whatever the shell has set must not change what is measured.
    DATABASE_URL: database.url ?? "",
    REDIS_URL: redisUrl ?? "",
    ORGPLANE_CONFIG: "",
    ORGPLANE_PRESET: "",
  };
  const child = spawnChild(`Orgplane (${label})`, ["src/main.ts"], env, logFile);
  await waitForStatus(child, `http://127.0.0.1:${port}/readyz`, logFile);
  return { child, port, logFile };
}

async function call(
  port: number,
  method: string,
  path: string,
  key: string,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown>; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: {
      Authorization: `Bearer ${key}`,
      ...(body === undefined ? {} : { "Content-Type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === "object" && parsed !== null) {
      json = parsed as Record<string, unknown>;
    }
  } catch {
    // Not JSON: the status and text say enough.
  }
  return { status: res.status, json, text };
}

async function expectStatus(
  what: string,
  response: Promise<{ status: number; json: Record<string, unknown>; text: string }>,
  status: number,
): Promise<Record<string, unknown>> {
  const r = await response;
  if (r.status !== status) {
    throw new Error(`${what}: expected ${status}, got ${r.status}: ${r.text.slice(0, 500)}`);
  }
  return r.json;
}

/** An org whose search limit cannot throttle the run, and one live key of it. */
async function setUp(port: number, operatorKey: string): Promise<{ orgId: string; key: string }> {
  const org = await expectStatus(
    "create organization",
    call(port, "POST", "/v1/organizations", operatorKey, {
      name: "Bench Inc",
      slug: `bench-${randomBytes(3).toString("hex")}`,
    }),
    201,
  );
  const orgId = String(org.id);
  await expectStatus(
    "raise the search limit",
    call(port, "PATCH", `/v1/organizations/${orgId}/rate-limits`, operatorKey, {
      rate_limits: { [CATEGORY]: HUGE_LIMIT },
    }),
    200,
  );
  const created = await expectStatus(
    "create API key",
    call(port, "POST", `/v1/organizations/${orgId}/api-keys`, operatorKey, { name: "bench" }),
    201,
  );
  return { orgId, key: String(created.key) };
}

// --------------------------------------------------------------------------------------------- the run

type Row = { label: string; measured: Measured | undefined; note?: string; ratioTarget?: number };

function targets(key: string, operatorKey: string, authorize: boolean): { label: string; target: Target }[] {
  const headers = { Authorization: `Bearer ${operatorKey}`, "Content-Type": "application/json" };
  const list: { label: string; target: Target }[] = [
    { label: "GET /healthz", target: { method: "GET", path: "/healthz", expect: '"ok"' } },
    // Operator authentication alone: the floor under every operator call, verify and authorize included.
    {
      label: "GET /v1/me (operator auth)",
      target: { method: "GET", path: "/v1/me", headers, expect: '"type":"operator"' },
    },
    {
      label: "POST /v1/keys/verify",
      target: {
        method: "POST",
        path: "/v1/keys/verify",
        headers,
        body: JSON.stringify({ key }),
        expect: '"valid":true',
      },
    },
  ];
  if (authorize) {
    list.push({
      label: "POST /v1/authorize",
      target: {
        method: "POST",
        path: "/v1/authorize",
        headers,
        body: JSON.stringify({ key, category: CATEGORY }),
        expect: '"allowed":true',
      },
    });
  }
  return list;
}

/** Whether the authorize route exists in this tree and answers a good call with allowed:true. */
async function probeAuthorize(port: number, operatorKey: string, key: string): Promise<string | undefined> {
  if (!existsSync(AUTHORIZE_ROUTE_DIR)) {
    return "it does not exist yet (no src/http/routes/authorize/)";
  }
  const r = await call(port, "POST", "/v1/authorize", operatorKey, { key, category: CATEGORY });
  if (r.status === 404) {
    return "src/http/routes/authorize/ exists but the server answers 404: the route is not registered yet";
  }
  if (r.status !== 200 || r.json.allowed !== true) {
    return `a first call did not answer 200 with allowed:true (${r.status}: ${r.text.slice(0, 300)})`;
  }
  return undefined;
}

async function redisUrlIfAnswering(): Promise<{ url: string | undefined; why: string }> {
  const given = process.env.BENCH_REDIS_URL || process.env.TEST_REDIS_URL;
  const url = given || "redis://127.0.0.1:6379";
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 1_000 });
  client.on("error", () => {});
  try {
    await client.connect();
    await client.ping();
    await client.quit();
    return { url, why: "" };
  } catch (error) {
    client.disconnect();
    return {
      url: undefined,
      why: `Redis at ${new URL(url).host} does not answer (${error instanceof Error ? error.message : String(error)})`,
    };
  }
}

function ms(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)} ms` : "—";
}

function printTable(bareFirst: Measured, bareLast: Measured, rows: Row[]): void {
  const baseline = (bareFirst.rps + bareLast.rps) / 2;
  const header = `${"".padEnd(50)}${"req/s".padStart(10)}${"p50".padStart(11)}${"p99".padStart(11)}${"of bare".padStart(10)}   targets`;
  console.log(`\n${header}`);
  const line = (label: string, m: Measured, extra: string, ratio: string) =>
    console.log(
      `  ${label.padEnd(48)}${Math.round(m.rps).toLocaleString("en-US").padStart(10)}${ms(m.p50).padStart(11)}${ms(m.p99).padStart(11)}${ratio.padStart(10)}   ${extra}`,
    );
  line("baseline: bare node:http hello JSON (first)", bareFirst, bareFirst.problems.join("; "), "");
  line("baseline: bare node:http hello JSON (last)", bareLast, bareLast.problems.join("; "), "");
  console.log(
    `  ${"baseline used for the ratios: the mean".padEnd(48)}${Math.round(baseline).toLocaleString("en-US").padStart(10)}`,
  );
  const drift = Math.abs(bareFirst.rps - bareLast.rps) / Math.max(bareFirst.rps, bareLast.rps);
  if (drift > NOISE_WARNING) {
    console.log(
      `  NOTE: the two baseline runs differ by ${(drift * 100).toFixed(0)}%: something else was using the CPU; ` +
        "the ratios are approximate, run again on a quiet machine",
    );
  }
  for (const row of rows) {
    const m = row.measured;
    if (m === undefined) {
      console.log(`  ${row.label.padEnd(48)}${"not measured".padStart(10)}   ${row.note ?? ""}`);
      continue;
    }
    const ratio = m.rps / baseline;
    const verdicts: string[] = [];
    if (m.problems.length > 0) {
      verdicts.push(`INVALID: ${m.problems.join("; ")}`);
    } else if (row.ratioTarget !== undefined) {
      verdicts.push(
        `≥ ${row.ratioTarget * 100}% of bare: ${ratio >= row.ratioTarget ? "met" : "MISSED"}`,
        `p99 ≤ ${TARGET_P99_MS} ms: ${m.p99 <= TARGET_P99_MS ? "met" : "MISSED"}`,
      );
    }
    if (row.note !== undefined) {
      verdicts.push(row.note);
    }
    line(row.label, m, verdicts.join("; "), `${(ratio * 100).toFixed(1)}%`);
  }
}

async function main(): Promise<void> {
  const started = performance.now();
  const workDir = await mkdtemp(join(tmpdir(), "orgplane-bench-"));
  tempDirs.push(workDir);
  // mkdtemp makes it 0700; as root, the embedded PostgreSQL runs as `postgres`, which must reach it.
  await chmod(workDir, 0o755);
  const dataDir = join(workDir, "data");
  await mkdir(dataDir);
  await chmod(dataDir, 0o755);

  const redis = await redisUrlIfAnswering();
  const database = await freshDatabase();
  console.log(
    `autocannon ${CONNECTIONS} connections on loopback, in this process; ${WARMUP_SECONDS} s warm-up + ` +
      `${MEASURE_SECONDS} s measured per row; Node ${process.version}, ${availableParallelism()} CPUs, ` +
      `load generator and servers on the same cores`,
  );
  console.log(
    `Orgplane: ${database.label}; LOG_LEVEL=${LOG_LEVEL}; org limit ${CATEGORY} = ${HUGE_LIMIT.toLocaleString("en-US")}/min; ` +
      `Redis: ${redis.url === undefined ? redis.why : new URL(redis.url).host}`,
  );

  const rows: Row[] = [];
  try {
    process.stdout.write("measuring the bare node:http server… ");
    const bareFirst = await measureBare(workDir);
    console.log("done");

    process.stdout.write("starting Orgplane (memory limiter)… ");
    const memory = await startOrgplane("memory", dataDir, database, undefined);
    const operatorKey = (await readFile(join(dataDir, "operator-key"), "utf8")).trim();
    const { key } = await setUp(memory.port, operatorKey);
    const authorizeMissing = await probeAuthorize(memory.port, operatorKey, key);
    console.log("ready");
    for (const { label, target } of targets(key, operatorKey, authorizeMissing === undefined)) {
      process.stdout.write(`  ${label} (memory)… `);
      const measured = await measure(memory.port, target);
      console.log("done");
      rows.push({
        label: `Orgplane ${label} (memory)`,
        measured,
        ...(label === "POST /v1/authorize" ? { ratioTarget: TARGET_MEMORY_RATIO } : {}),
      });
    }
    if (authorizeMissing !== undefined) {
      rows.push({
        label: "Orgplane POST /v1/authorize (memory)",
        measured: undefined,
        note: `/v1/authorize is not measured: ${authorizeMissing}`,
      });
    }
    await stopChild(memory.child);

    if (redis.url === undefined) {
      rows.push({
        label: "Orgplane POST /v1/authorize (Redis)",
        measured: undefined,
        note: `skipped: ${redis.why}`,
      });
    } else {
      process.stdout.write("starting Orgplane (Redis limiter, same database)… ");
      const shared = await startOrgplane("redis", dataDir, database, redis.url);
      const authorizeMissingRedis = await probeAuthorize(shared.port, operatorKey, key);
      console.log("ready");
      for (const { label, target } of targets(key, operatorKey, authorizeMissingRedis === undefined)) {
        if (!label.startsWith("POST ")) {
          continue;
        }
        process.stdout.write(`  ${label} (Redis)… `);
        const measured = await measure(shared.port, target);
        console.log("done");
        rows.push({
          label: `Orgplane ${label} (Redis)`,
          measured,
          ...(label === "POST /v1/authorize" ? { ratioTarget: TARGET_REDIS_RATIO } : {}),
        });
      }
      if (authorizeMissingRedis !== undefined) {
        rows.push({
          label: "Orgplane POST /v1/authorize (Redis)",
          measured: undefined,
          note: `/v1/authorize is not measured: ${authorizeMissingRedis}`,
        });
      }
      await stopChild(shared.child);
    }

    process.stdout.write("measuring the bare node:http server again… ");
    const bareLast = await measureBare(workDir);
    console.log("done");

    printTable(bareFirst, bareLast, rows);
    console.log(
      `\ntargets (issue 5): /v1/authorize ≥ ${TARGET_MEMORY_RATIO * 100}% of the bare server's req/s with the ` +
        `memory store, ≥ ${TARGET_REDIS_RATIO * 100}% with Redis; p99 ≤ ${TARGET_P99_MS} ms at ${CONNECTIONS} connections.`,
    );
    console.log(
      `req/s counts only 2xx responses whose body was checked; p50/p99 from 10 µs buckets. ` +
        `Run time ${Math.round((performance.now() - started) / 1000)} s.`,
    );
  } finally {
    await cleanup();
    await database.drop();
  }
}

const runTimer = setTimeout(() => {
  console.error(`\nthe run exceeded ${RUN_TIMEOUT_MS / 1000} s: killing the servers`);
  for (const child of children) {
    killGroup(child, "SIGKILL");
  }
  process.exit(1);
}, RUN_TIMEOUT_MS);
runTimer.unref();

try {
  await main();
} catch (error) {
  console.error(`\nbench:authorize failed: ${error instanceof Error ? error.message : String(error)}`);
  await cleanup();
  process.exitCode = 1;
}
