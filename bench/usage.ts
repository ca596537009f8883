/**
 * Usage metering: ingestion throughput through the HTTP API beside a raw PostgreSQL insert of the same rows,
 * and the latency of one org's month of usage, both measured in the same run.
 *   Server: `node --no-memory-reducer src/main.ts` (as `npm start` runs it) with ORGPLANE_PRESET=llm-router
 *     on a fresh database created on BENCH_DATABASE_URL / TEST_DATABASE_URL / postgres://postgres@127.0.0.1:5432 (dropped
 *     afterwards), the memory rate limiter, USAGE_LATE_WINDOW_HOURS=840 (35 days: the query phase reports a
 *     month back). Organizations and projects are created through the API; every batch is sent with the
 *     operator key and a body `org_id`, so no rate limit applies.
 *   Ingestion: BENCH_EVENTS events (default 2,000,000) in batches of 1,000, one org per batch (100 orgs in
 *     turn, 2 projects each and a quarter of the events reported for the org itself), times in the last 3
 *     days, properties {model, endpoint}, ids `evt_<tag><seq>` (24 characters). Every body is serialized
 *     before the timing starts; BENCH_CONCURRENCY (default 6) requests in flight over keep-alive sockets.
 *     Measured twice: with the preset's meters without a credit cost (llm-router: `requests`; no credit
 *     debit; the 40% target is judged here) and with its priced meters (`prompt_tokens`,
 *     `completion_tokens`; BENCH_PRICED_EVENTS, default a quarter of BENCH_EVENTS: each batch also debits
 *     the org's credits; information only). The meters are read from presets/llm-router.yaml.
 *   Baseline: the same rows (same ids, orgs, projects, meters, times, values, properties) as 1,000-row
 *     `INSERT … SELECT … FROM unnest($2::text[], …) ON CONFLICT DO NOTHING` into a scratch table with the
 *     stored event's columns and PRIMARY KEY (org_id, event_id), from BENCH_CONCURRENCY node-postgres
 *     clients, the parameters pre-built as array literals. Measured before and after the HTTP rows into
 *     fresh tables; the mean of the two is the baseline.
 *   Query: the store is filled to BENCH_QUERY_EVENTS events in all (default 10,000,000), the same number for
 *     each of 1,000 orgs, over the last 30 days, through the API when the measured ingestion rate does that
 *     in under 4 minutes, else in process through the store's insertBatch in batches of up to 5,000
 *     (src/store/usage.store.pg.ts: the same rollups); BENCH_QUERY_LOAD=http|store forces one. Then VACUUM
 *     ANALYZE and CHECKPOINT (as autovacuum and the checkpointer would have by then), and GET
 *     /v1/organizations/{org}/usage?from=<29 days before today>&to=<end of today>&granularity=day for
 *     random orgs, one request at a time, BENCH_QUERIES (default 1,000) after 100 warm-up requests; p50/p99
 *     beside, sent the same way: GET /healthz and GET /v1/me (operator auth) of the same server, and the
 *     data part alone: one SQL query of the org's rollups by day, straight to PostgreSQL.
 * Cost accounting, from /proc and pg_stat_database: for each ingestion row, the CPU time per 1,000 events of
 *   the Orgplane process, of the PostgreSQL backends of the scratch database and of this process (the load
 *   generator), and SQL transactions per batch; for each query row, SQL transactions and CPU per request.
 *   Every row marks itself INVALID when a request failed or an event was not accepted.
 * Bounded: the run is stopped at BENCH_TIMEOUT_MS (default 30 minutes); ctrl-c or a failure stops the
 * server and drops the database. Orgplane's log (and one usage answer) stay in the temp directory.
 * Usage: npm run bench:usage
 *   BENCH_CPU_PROF=<dir>: the Orgplane process writes a V8 CPU profile there when it stops.
 *   BENCH_LOG_LEVEL: Orgplane's LOG_LEVEL during the run (default info).
 *   Small runs: BENCH_EVENTS=100000 BENCH_QUERY_EVENTS=500000 (about 2 minutes); add BENCH_QUERY_ORGS=50 for
 *     the full run's 10,000 events per org (the query's cost grows with the org's rollup rows, not the total).
 */
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import type { UsageStore } from "../src/domain/usage/usage.store.ts";
import { type Executor, openDatabase } from "../src/store/db.ts";
import {
  Api,
  cleanUpOnExit,
  createScratchDatabase,
  intEnv,
  jsonObject,
  LatencyHistogram,
  LOG_LEVEL,
  type Orgplane,
  onCleanup,
  printTable,
  processCpuSeconds,
  type Response,
  ROOT,
  runBench,
  type ScratchDatabase,
  send,
  startOrgplane as startServer,
  step,
  stopChild,
  type TableRow,
  tempDir,
} from "./common.ts";
import {
  type BatchSpec,
  type BenchBatch,
  type BenchMeter,
  type BenchOrg,
  baselineInsertSql,
  baselineTableSql,
  EventIds,
  makeBatch,
  presetMeters,
  rng,
  toBaselineParams,
  toJsonBody,
  toStoredEvents,
} from "./usage-data.ts";

const BATCH_SIZE = 1_000;
const EVENTS = intEnv("BENCH_EVENTS", 2_000_000, BATCH_SIZE);
const PRICED_EVENTS = intEnv("BENCH_PRICED_EVENTS", Math.floor(EVENTS / 4), 0);
const QUERY_EVENTS = intEnv("BENCH_QUERY_EVENTS", 10_000_000, 0);
const CONCURRENCY = intEnv("BENCH_CONCURRENCY", 6, 1);
const QUERIES = intEnv("BENCH_QUERIES", 1_000, 1);
const QUERY_WARMUP = 100;
const QUERY_LOAD = process.env.BENCH_QUERY_LOAD || "auto";
if (!["auto", "http", "store"].includes(QUERY_LOAD)) {
  throw new Error(`BENCH_QUERY_LOAD must be auto, http or store, got '${QUERY_LOAD}'`);
}
/** The HTTP load of the query phase is chosen when the measured rate does it within this. */
const HTTP_LOAD_BUDGET_S = 240;
const RUN_TIMEOUT_MS = intEnv("BENCH_TIMEOUT_MS", 30 * 60_000, 10_000);

const INGEST_ORGS = 100;
/** BENCH_QUERY_ORGS: fewer orgs with as many events each as the full run's (e.g. 50 × 10,000) in a short run. */
const QUERY_ORGS = intEnv("BENCH_QUERY_ORGS", 1_000, 1);
const PROJECTS_PER_ORG = 2; // the trial plan's project quota
const ORG_LEVEL_SHARE = 0.25;
/** Batches sent (and inserted by the baseline) before each timed row: JIT, connections, first pages. */
const WARMUP_BATCHES = 20;
const TARGET_RATIO = 0.4;
const TARGET_P99_MS = 10;
const NOISE_WARNING = 0.2;
/** 35 days, the most the contract allows: the query phase reports events up to 30 days back. */
const LATE_WINDOW_HOURS = 840;
const QUERY_DAYS = 30;
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const REQUEST_TIMEOUT_MS = 120_000;
/** The histogram's range: a latency above it counts as 10 s. */
const LATENCY_MAX_MS = 10_000;
const SETUP_CONCURRENCY = 8;
/** Credits granted to each ingestion org before the priced row: far more than it can spend. */
const GRANT = "1000000000";

const PRESET = "llm-router";
const { unpriced: UNPRICED_METERS, priced: PRICED_METERS } = presetMeters(
  join(ROOT, "presets", `${PRESET}.yaml`),
);
if (UNPRICED_METERS.length === 0) {
  throw new Error(`presets/${PRESET}.yaml has no meter without a credit cost`);
}
const tag = randomBytes(4).toString("hex");
const ids = new EventIds(tag);

cleanUpOnExit("stopping the server and dropping the database");

// ------------------------------------------------------------------------------------------- database

type Database = ScratchDatabase;

/** A fresh database on BENCH_DATABASE_URL / TEST_DATABASE_URL / the local server, dropped by cleanup(). */
async function freshDatabase(): Promise<Database> {
  const adminUrl =
    process.env.BENCH_DATABASE_URL ||
    process.env.TEST_DATABASE_URL ||
    "postgres://postgres@127.0.0.1:5432/postgres";
  const database = await createScratchDatabase(adminUrl, `orgplane_bench_usage_${tag}`, "bench-usage-admin");
  onCleanup(() => database.drop());
  return database;
}

// ---------------------------------------------------------------------------------------------- server

function startOrgplane(workDir: string, database: Database): Promise<Orgplane> {
  return startServer(
    "Orgplane",
    workDir,
    {
      DATABASE_URL: database.url,
      ORGPLANE_PRESET: PRESET,
      USAGE_LATE_WINDOW_HOURS: String(LATE_WINDOW_HOURS),
    },
    // Outside the work directory, which goes at the end: the log is kept for a look afterwards.
    join(tmpdir(), `orgplane-bench-usage-${tag}.log`),
  );
}

/** Runs `work(i)` for i in [0, count) with `concurrency` in flight. */
async function pooled(count: number, concurrency: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  async function worker(): Promise<void> {
    while (next < count) {
      const i = next++;
      await work(i);
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

async function createOrgs(api: Api, count: number): Promise<BenchOrg[]> {
  const orgs: BenchOrg[] = new Array(count);
  await pooled(count, SETUP_CONCURRENCY, async (i) => {
    const org = await api.expect("create organization", "POST", "/v1/organizations", 201, {
      name: `Bench Org ${i}`,
      slug: `bench-${tag}-${i}`,
    });
    const orgId = String(org.id);
    const projects: string[] = [];
    for (let p = 0; p < PROJECTS_PER_ORG; p++) {
      const project = await api.expect("create project", "POST", `/v1/organizations/${orgId}/projects`, 201, {
        name: `Project ${p}`,
      });
      projects.push(String(project.id));
    }
    orgs[i] = { id: orgId, projects };
  });
  return orgs;
}

// ------------------------------------------------------------------------------------------ measurement

type CpuSnapshot = { orgplane: number; backends: Map<number, number>; self: number };
type CpuSpent = { orgplane: number; postgres: number; self: number };

async function backendPids(database: Database): Promise<number[]> {
  const result = await database.admin.query<{ pid: number }>(
    "select pid from pg_stat_activity where datname = $1",
    [database.name],
  );
  return result.rows.map((row) => row.pid);
}

async function cpuSnapshot(database: Database, orgplanePid: number | undefined): Promise<CpuSnapshot> {
  const backends = new Map<number, number>();
  for (const pid of await backendPids(database)) {
    const seconds = processCpuSeconds(pid);
    if (seconds !== undefined) {
      backends.set(pid, seconds);
    }
  }
  const usage = process.cpuUsage();
  return {
    orgplane: orgplanePid === undefined ? 0 : (processCpuSeconds(orgplanePid) ?? 0),
    backends,
    self: (usage.user + usage.system) / 1e6,
  };
}

/** CPU spent since `start`; backends that appeared since count from zero. */
async function cpuSince(
  start: CpuSnapshot,
  database: Database,
  orgplanePid: number | undefined,
): Promise<CpuSpent> {
  const end = await cpuSnapshot(database, orgplanePid);
  let postgres = 0;
  for (const [pid, seconds] of end.backends) {
    postgres += seconds - (start.backends.get(pid) ?? 0);
  }
  return { orgplane: end.orgplane - start.orgplane, postgres, self: end.self - start.self };
}

// --------------------------------------------------------------------------------------------- phases

type IngestResult = {
  seconds: number;
  sent: number;
  accepted: number;
  duplicates: number;
  rejected: number;
  /** Requests that did not answer 200, and why (a few). */
  failed: number;
  reasons: Map<string, number>;
  batchLatency: LatencyHistogram;
};

type BodySource = { count: number; body(i: number): Buffer; events(i: number): number };

/** Every body serialized now; the events themselves are not kept. */
function preSerialized(batches: readonly BenchBatch[]): BodySource {
  const bodies = batches.map((b) => Buffer.from(toJsonBody(b)));
  const counts = batches.map((b) => b.events.length);
  return { count: bodies.length, body: (i) => bodies[i] as Buffer, events: (i) => counts[i] ?? 0 };
}

function note(reasons: Map<string, number>, reason: string, n = 1): void {
  reasons.set(reason, (reasons.get(reason) ?? 0) + n);
}

async function ingest(api: Api, source: BodySource, concurrency: number): Promise<IngestResult> {
  const result: IngestResult = {
    seconds: 0,
    sent: 0,
    accepted: 0,
    duplicates: 0,
    rejected: 0,
    failed: 0,
    reasons: new Map(),
    batchLatency: new LatencyHistogram(LATENCY_MAX_MS),
  };
  const headers = api.headers(true);
  const started = performance.now();
  await pooled(source.count, concurrency, async (i) => {
    const body = source.body(i);
    const t0 = performance.now();
    let r: Response;
    try {
      r = await send(api.agent, api.port, "POST", "/v1/usage/events", headers, body, api.timeoutMs);
    } catch (error) {
      result.failed++;
      note(result.reasons, `request error: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    result.batchLatency.record(performance.now() - t0);
    result.sent += source.events(i);
    if (r.status !== 200) {
      result.failed++;
      const code = /"code":"([^"]{1,64})"/.exec(r.text)?.[1] ?? r.text.slice(0, 120);
      note(result.reasons, `${r.status} ${code}`);
      return;
    }
    const json = jsonObject(r.text);
    result.accepted += Number(json.accepted ?? 0);
    result.duplicates += Number(json.duplicates ?? 0);
    result.rejected += Number(json.rejected ?? 0);
    if (Array.isArray(json.events)) {
      for (const e of json.events as unknown[]) {
        if (typeof e === "object" && e !== null) {
          const { status, reason } = e as { status?: unknown; reason?: unknown };
          note(result.reasons, String(reason ?? status));
        }
      }
    }
  });
  result.seconds = (performance.now() - started) / 1000;
  return result;
}

type RawResult = { seconds: number; rows: number; inserted: number; cpu: CpuSpent };

async function rawInsert(
  database: Database,
  table: string,
  warmup: readonly string[][],
  batches: readonly string[][],
  concurrency: number,
): Promise<RawResult> {
  const setup = new pg.Client({ connectionString: database.url });
  await setup.connect();
  try {
    await setup.query(baselineTableSql(table));
  } finally {
    await setup.end();
  }
  const clients = await Promise.all(
    Array.from({ length: concurrency }, async () => {
      const client = new pg.Client({ connectionString: database.url, application_name: "bench-usage-raw" });
      await client.connect();
      return client;
    }),
  );
  const sql = baselineInsertSql(table);
  let inserted = 0;
  const run = async (list: readonly string[][]) => {
    let next = 0;
    await Promise.all(
      clients.map(async (client) => {
        while (next < list.length) {
          const params = list[next++] as string[];
          const r = await client.query({ text: sql, values: params, name: `raw-${table}` });
          inserted += r.rowCount ?? 0;
        }
      }),
    );
  };
  try {
    await run(warmup);
    inserted = 0;
    const cpuStart = await cpuSnapshot(database, undefined);
    const started = performance.now();
    await run(batches);
    const seconds = (performance.now() - started) / 1000;
    const cpu = await cpuSince(cpuStart, database, undefined);
    return { seconds, rows: batches.length * BATCH_SIZE, inserted, cpu };
  } finally {
    await Promise.all(clients.map((c) => c.end()));
  }
}

async function checkpoint(database: Database): Promise<void> {
  // Each write phase starts from a clean checkpoint, so none pays for the previous one's dirty pages.
  try {
    await database.admin.query("checkpoint");
  } catch {
    // Not a superuser: the phases share the checkpoints as they come.
  }
}

type Sequential = {
  hist: LatencyHistogram;
  problems: string[];
  /** Per measured request: SQL transactions (statements outside one count one each) and CPU. */
  perRequest?: { transactions: number; cpu: CpuSpent };
};

/** Committed + rolled back transactions of the scratch database so far (flushed about once a second). */
async function transactionCount(database: Database): Promise<number> {
  const { rows } = await database.admin.query<{ n: string }>(
    "select (xact_commit + xact_rollback)::text as n from pg_stat_database where datname = $1",
    [database.name],
  );
  return Number(rows[0]?.n ?? 0);
}

const settleStats = () => new Promise((resolve) => setTimeout(resolve, 1_500));

type Accounting = { database: Database; orgplanePid: number };

/**
 * `work`, and the SQL transactions of the scratch database (statements outside one count one each) and the
 * CPU it took; the statistics are let settle before and after. The stats queries of the admin connection
 * run in another database: not counted.
 */
async function accounted<T>(
  accounting: Accounting,
  work: () => Promise<T>,
): Promise<{ result: T; transactions: number; cpu: CpuSpent }> {
  await settleStats();
  const transactionsBefore = await transactionCount(accounting.database);
  const cpuStart = await cpuSnapshot(accounting.database, accounting.orgplanePid);
  const result = await work();
  const cpu = await cpuSince(cpuStart, accounting.database, accounting.orgplanePid);
  await settleStats();
  const transactions = (await transactionCount(accounting.database)) - transactionsBefore;
  return { result, transactions, cpu };
}

/** One request at a time: latency without queueing. */
async function sequential(
  api: Api,
  path: (i: number) => string,
  expect: string,
  warmup: number,
  count: number,
  accounting: Accounting,
): Promise<Sequential> {
  const hist = new LatencyHistogram(LATENCY_MAX_MS);
  const problems = new Map<string, number>();
  const headers = api.headers(false);
  const run = async (from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const t0 = performance.now();
      const r = await send(api.agent, api.port, "GET", path(i), headers, undefined, api.timeoutMs);
      const ms = performance.now() - t0;
      if (r.status !== 200 || !r.text.includes(expect)) {
        note(problems, `${r.status} ${r.text.slice(0, 160)}`);
        continue;
      }
      if (i >= warmup) {
        hist.record(ms);
      }
    }
  };
  await run(0, warmup);
  const { transactions, cpu } = await accounted(accounting, () => run(warmup, warmup + count));
  return {
    hist,
    problems: [...problems].map(([what, n]) => `${n}× ${what}`),
    perRequest: {
      transactions: transactions / count,
      cpu: { orgplane: cpu.orgplane / count, postgres: cpu.postgres / count, self: cpu.self / count },
    },
  };
}

/**
 * The data part alone: one org's daily rollups over the range (whole UTC days, as the query phase asks), one
 * SQL statement, a prepared statement through node-postgres, one at a time.
 */
async function sequentialSql(
  database: Database,
  org: () => string,
  from: Date,
  to: Date,
): Promise<Sequential> {
  const hist = new LatencyHistogram(LATENCY_MAX_MS);
  const problems = new Map<string, number>();
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  const text =
    "select date_trunc('day', day, 'UTC') as b, meter, project_id, key_id, sum(sum)::text as sum, " +
    "sum(count)::text as count, max(max)::text as max, max(last_at) as last_at, sum(credits)::text as credits " +
    "from usage_rollups_daily where org_id = $1 and day >= $2 and day < $3 group by 1, 2, 3, 4 order by 1, 2, 3, 4";
  try {
    for (let i = 0; i < QUERY_WARMUP + QUERIES; i++) {
      const t0 = performance.now();
      try {
        await client.query({ name: "bench-day-rollups", text, values: [org(), from, to] });
      } catch (error) {
        note(problems, error instanceof Error ? error.message : String(error));
        break;
      }
      if (i >= QUERY_WARMUP) {
        hist.record(performance.now() - t0);
      }
    }
  } finally {
    await client.end();
  }
  return { hist, problems: [...problems].map(([what, n]) => `${n}× ${what}`) };
}

/** The store's factory, loaded at run time: src/store/usage.store.pg.ts may not exist yet. */
async function loadUsageStore(): Promise<((exec: Executor) => UsageStore) | string> {
  const path = "../src/store/usage.store.pg.ts";
  let mod: Record<string, unknown>;
  try {
    mod = (await import(path)) as Record<string, unknown>;
  } catch (error) {
    return `cannot import ${path}: ${error instanceof Error ? error.message : String(error)}`;
  }
  const factory = Object.entries(mod).find(
    ([name, value]) => /^create\w*UsageStore$/.test(name) && typeof value === "function",
  );
  if (factory === undefined) {
    return `${path} exports no create…UsageStore function`;
  }
  return factory[1] as (exec: Executor) => UsageStore;
}

async function loadThroughStore(
  database: Database,
  batches: Iterable<BenchBatch>,
  costs: ReadonlyMap<string, string>,
  range: { from: Date; to: Date },
): Promise<{ seconds: number; inserted: number }> {
  const factory = await loadUsageStore();
  if (typeof factory === "string") {
    throw new Error(factory);
  }
  const db = openDatabase({ url: database.url, poolMax: CONCURRENCY, onPoolError: () => {} });
  try {
    await factory(db.db).ensurePartitions(range.from, range.to);
    const iterator = batches[Symbol.iterator]();
    let inserted = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (let step = iterator.next(); step.done !== true; step = iterator.next()) {
          const batch = step.value;
          const events = toStoredEvents(batch, costs);
          const fresh = await db.db.transaction((tx) =>
            factory(tx).insertBatch(batch.org.id, events, new Date(), new Set()),
          );
          inserted += fresh.length;
        }
      }),
    );
    return { seconds: (performance.now() - started) / 1000, inserted };
  } finally {
    await db.close();
  }
}

/**
 * VACUUM ANALYZE the whole database, as autovacuum would have by the time anyone queries a month: rollups
 * freshly written by millions of upserts otherwise carry their dead versions, no visibility map and stale
 * statistics, and the raw events' insert-driven vacuum would otherwise run during the measurement. Then a
 * CHECKPOINT, so the load's gigabytes are not being written back while the queries are timed. Answers the
 * seconds it took.
 */
async function vacuum(database: Database): Promise<number> {
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    const started = performance.now();
    await client.query("vacuum (analyze)");
    await client.query("checkpoint");
    return (performance.now() - started) / 1000;
  } finally {
    await client.end();
  }
}

// ---------------------------------------------------------------------------------------------- output

function int(value: number): string {
  return Math.round(value).toLocaleString("en-US");
}

function ms(value: number): string {
  return Number.isNaN(value) ? "" : `${value.toFixed(2)} ms`;
}

function percent(value: number): string {
  return `${(value * 100).toFixed(1)}%`;
}

function reasonsText(reasons: Map<string, number>): string {
  return [...reasons]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 4)
    .map(([reason, n]) => `${int(n)}× ${reason}`)
    .join(", ");
}

function cpuText(cpu: CpuSpent, events: number): string {
  const per = (seconds: number) => `${((seconds / events) * 1_000_000).toFixed(1)}`;
  return (
    `CPU ms per 1,000 events: Orgplane ${per(cpu.orgplane)}, PostgreSQL backends ${per(cpu.postgres)}, ` +
    `load generator ${per(cpu.self)}`
  );
}

// --------------------------------------------------------------------------------------------- the run

type IngestRow = {
  label: string;
  result: IngestResult;
  cpu: CpuSpent;
  /** SQL transactions per batch (each statement outside a transaction counts one). */
  transactions: number;
  target: boolean;
};

async function main(): Promise<void> {
  const started = performance.now();
  const workDir = await tempDir("orgplane-bench-usage-");

  const database = await freshDatabase();
  console.log(
    `Node ${process.version}, ${availableParallelism()} CPUs (load generator, Orgplane and PostgreSQL share them); ` +
      `fresh database ${database.name} at ${new URL(database.url).host}; LOG_LEVEL=${LOG_LEVEL}`,
  );
  console.log(
    `ingestion: ${int(Math.floor(EVENTS / BATCH_SIZE) * BATCH_SIZE)} events (unpriced meters) + ${int(Math.floor(PRICED_EVENTS / BATCH_SIZE) * BATCH_SIZE)} (priced meters) in batches of ` +
      `${int(BATCH_SIZE)}, ${CONCURRENCY} in flight; query phase: ${int(QUERY_EVENTS)} events in all over ` +
      `${int(QUERY_ORGS)} orgs and ${QUERY_DAYS} days, ${int(QUERIES)} queries`,
  );

  step(`starting Orgplane (ORGPLANE_PRESET=${PRESET})`);
  const server = await startOrgplane(workDir, database);
  const api = new Api(server.port, server.operatorKey, {
    maxSockets: Math.max(CONCURRENCY, SETUP_CONCURRENCY),
    timeoutMs: REQUEST_TIMEOUT_MS,
  });
  const accounting: Accounting = { database, orgplanePid: server.child.pid };
  console.log("ready");

  const orgCount = Math.max(INGEST_ORGS, QUERY_EVENTS > 0 ? QUERY_ORGS : 0);
  step(`creating ${orgCount} organizations with ${PROJECTS_PER_ORG} projects each through the API`);
  let t0 = performance.now();
  const orgs = await createOrgs(api, orgCount);
  console.log(`${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const ingestOrgs = orgs.slice(0, INGEST_ORGS);
  // The first QUERY_ORGS orgs: those of the ingestion rows among them.
  const queryOrgs = orgs.slice(0, QUERY_ORGS);

  // Probe: the route exists, accepts a batch, and takes events a month back (the late window).
  const now = Date.now();
  const probeOrg = orgs[0] as BenchOrg;
  const probe = await api.call("POST", "/v1/usage/events", {
    org_id: probeOrg.id,
    events: [
      { id: ids.take(), type: "requests", time: new Date(now - 60_000).toISOString(), data: { value: 1 } },
      {
        id: ids.take(),
        type: "requests",
        time: new Date(now - (QUERY_DAYS - 1) * DAY_MS).toISOString(),
        data: { value: 1 },
      },
    ],
  });
  if (probe.status !== 200) {
    throw new Error(`POST /v1/usage/events does not work yet: ${probe.status} ${probe.text.slice(0, 400)}`);
  }
  const probeJson = jsonObject(probe.text);
  let spreadDays = QUERY_DAYS;
  if (probeJson.accepted !== 2) {
    spreadDays = 6;
    console.log(
      `NOTE: an event ${QUERY_DAYS - 1} days old was not accepted (${probe.text.slice(0, 300)}): ` +
        `USAGE_LATE_WINDOW_HOURS=${LATE_WINDOW_HOURS} is not honoured; the query phase spreads its events over ` +
        `the last ${spreadDays} days only, the month query still covers ${QUERY_DAYS} days`,
    );
  }

  // ---- data, generated and serialized before any timing
  const ingestEnd = now - 2 * 60_000;
  const spec = (meters: readonly BenchMeter[], days: number, list: readonly BenchOrg[]): BatchSpec => ({
    orgs: list,
    meters,
    fromMs: ingestEnd - days * DAY_MS,
    toMs: ingestEnd,
    size: BATCH_SIZE,
    orgLevelShare: ORG_LEVEL_SHARE,
  });
  step("generating and serializing the ingestion batches");
  t0 = performance.now();
  const random = rng(0x05a9e);
  const gen = (s: BatchSpec, count: number) =>
    Array.from({ length: count }, (_, n) => makeBatch(random, ids, s, n));
  const unpricedSpec = spec(UNPRICED_METERS, 3, ingestOrgs);
  const pricedSpec = spec(PRICED_METERS, 3, ingestOrgs);
  const warmups = Array.from({ length: 4 }, () => gen(unpricedSpec, WARMUP_BATCHES));
  const [warmRawFirst = [], warmHttp = [], warmRawLast = [], warmPriced = []] = warmups;
  // One batch at a time into its two forms, so the events themselves are not all kept in memory.
  const unpricedCount = Math.floor(EVENTS / BATCH_SIZE);
  const unpricedJson: Buffer[] = [];
  const rawParams: string[][] = [];
  for (let n = 0; n < unpricedCount; n++) {
    const batch = makeBatch(random, ids, unpricedSpec, n);
    unpricedJson.push(Buffer.from(toJsonBody(batch)));
    rawParams.push(toBaselineParams(batch));
  }
  const unpricedBodies: BodySource = {
    count: unpricedJson.length,
    body: (i) => unpricedJson[i] as Buffer,
    events: () => BATCH_SIZE,
  };
  const pricedBodies = preSerialized(gen(pricedSpec, Math.floor(PRICED_EVENTS / BATCH_SIZE)));
  // The raw rows are the ingestion's rows: the second baseline table gets them again (a fresh table).
  console.log(`${((performance.now() - t0) / 1000).toFixed(1)} s`);

  // ---- baseline first
  const rawBaseline = async (when: "first" | "last", warmup: readonly BenchBatch[]): Promise<RawResult> => {
    await checkpoint(database);
    step(`raw INSERT … ON CONFLICT DO NOTHING of the same rows, ${CONCURRENCY} clients (${when})`);
    const raw = await rawInsert(
      database,
      `bench_raw_${when}`,
      warmup.map(toBaselineParams),
      rawParams,
      CONCURRENCY,
    );
    console.log(`${int(raw.rows / raw.seconds)} rows/s`);
    return raw;
  };
  const rawFirst = await rawBaseline("first", warmRawFirst);

  // ---- HTTP ingestion: unpriced, then priced
  const ingestRows: IngestRow[] = [];
  const measuredIngest = async (label: string, bodies: BodySource, target: boolean) => {
    const { result, transactions, cpu } = await accounted(accounting, () => ingest(api, bodies, CONCURRENCY));
    ingestRows.push({ label, result, cpu, transactions: transactions / bodies.count, target });
    return result;
  };
  await checkpoint(database);
  step(`POST /v1/usage/events, ${int(EVENTS)} events, unpriced meters`);
  await ingest(api, preSerialized(warmHttp), CONCURRENCY);
  const unpricedResult = await measuredIngest("POST /v1/usage/events, unpriced meters", unpricedBodies, true);
  console.log(`${int(unpricedResult.accepted / unpricedResult.seconds)} events/s`);

  // Dedup check: two batches again, every event a duplicate.
  const again = await ingest(
    api,
    { count: 2, body: (i) => unpricedBodies.body(i), events: (i) => unpricedBodies.events(i) },
    2,
  );
  const dedupOk = again.duplicates === 2 * BATCH_SIZE && again.accepted === 0;

  if (pricedBodies.count > 0) {
    step(`granting ${GRANT} credits to each of the ${ingestOrgs.length} ingestion orgs`);
    await pooled(ingestOrgs.length, SETUP_CONCURRENCY, async (i) => {
      await api.expect(
        "grant credits",
        "POST",
        `/v1/organizations/${(ingestOrgs[i] as BenchOrg).id}/credits/grants`,
        201,
        { amount: GRANT, source: "promotional" },
      );
    });
    console.log("done");
    await checkpoint(database);
    step(
      `POST /v1/usage/events, ${int(pricedBodies.count * BATCH_SIZE)} events, priced meters (credits debited)`,
    );
    await ingest(api, preSerialized(warmPriced), CONCURRENCY);
    const pricedResult = await measuredIngest("POST /v1/usage/events, priced meters", pricedBodies, false);
    console.log(`${int(pricedResult.accepted / pricedResult.seconds)} events/s`);
  }

  // ---- baseline last
  const rawLast = await rawBaseline("last", warmRawLast);
  // Free the baseline's memory and disk before the big load.
  rawParams.length = 0;
  const scratch = new pg.Client({ connectionString: database.url });
  await scratch.connect();
  await scratch.query("drop table if exists bench_raw_first, bench_raw_last");
  await scratch.end();

  const rawRate = (rawFirst.rows / rawFirst.seconds + rawLast.rows / rawLast.seconds) / 2;
  const rawRow = (when: string, raw: RawResult): TableRow => ({
    label: `raw INSERT … ON CONFLICT DO NOTHING (${when})`,
    value: `${int(raw.rows / raw.seconds)} rows/s`,
    verdict: `${int(raw.inserted)} inserted; ${cpuText(raw.cpu, raw.rows)}`,
  });
  const ingestTable: TableRow[] = [
    rawRow("first", rawFirst),
    rawRow("last", rawLast),
    { label: "raw insert, mean: the baseline", value: `${int(rawRate)} rows/s` },
  ];
  const rawDrift =
    Math.abs(rawFirst.rows / rawFirst.seconds - rawLast.rows / rawLast.seconds) /
    Math.max(rawFirst.rows / rawFirst.seconds, rawLast.rows / rawLast.seconds, 1);
  for (const row of ingestRows) {
    const r = row.result;
    const rate = r.accepted / r.seconds;
    const problems: string[] = [];
    if (r.failed > 0) {
      problems.push(`${int(r.failed)} requests failed`);
    }
    if (r.accepted !== r.sent) {
      problems.push(`${int(r.sent - r.accepted)} of ${int(r.sent)} events not accepted`);
    }
    if (r.reasons.size > 0) {
      problems.push(reasonsText(r.reasons));
    }
    const verdict =
      problems.length > 0
        ? `INVALID: ${problems.join("; ")}`
        : row.target
          ? `≥ ${TARGET_RATIO * 100}% of raw: ${rate / rawRate >= TARGET_RATIO ? "met" : "MISSED"}`
          : "information only";
    ingestTable.push({
      label: row.label,
      value: `${int(rate)} events/s`,
      ratio: percent(rate / rawRate),
      verdict:
        `${verdict}; batch p50 ${ms(r.batchLatency.percentile(50))}, p99 ${ms(r.batchLatency.percentile(99))}; ` +
        `${cpuText(row.cpu, r.accepted)}; ${row.transactions.toFixed(1)} SQL transactions per batch`,
    });
  }
  ingestTable.push({
    label: "dedup check: 2 batches sent again",
    value: dedupOk ? "ok" : "WRONG",
    verdict: `${again.duplicates} duplicates, ${again.accepted} accepted (expected ${2 * BATCH_SIZE}, 0)`,
  });

  // ---- query phase
  const queryTable: TableRow[] = [];
  let loadNote = "";
  if (QUERY_EVENTS > 0) {
    const already = ids.issued;
    const remaining = Math.max(0, QUERY_EVENTS - already);
    const queryEnd = now - 2 * 60_000;
    const querySpec: BatchSpec = { ...spec(UNPRICED_METERS, spreadDays, queryOrgs), toMs: queryEnd };
    const httpRate = unpricedResult.accepted / unpricedResult.seconds;
    const method =
      QUERY_LOAD === "auto" ? (remaining / httpRate <= HTTP_LOAD_BUDGET_S ? "http" : "store") : QUERY_LOAD;
    // Every org gets the same number of events, in equal batches of at most 1,000 (the API's limit) or
    // 5,000 (the store: fewer transactions); orgs in turn, so each sees batches all along the load.
    const perOrg = Math.ceil(remaining / queryOrgs.length);
    const rounds = Math.ceil(perOrg / (method === "http" ? BATCH_SIZE : 5 * BATCH_SIZE));
    const loadSpec: BatchSpec = { ...querySpec, size: Math.max(1, Math.ceil(perOrg / Math.max(1, rounds))) };
    const loadBatches = remaining === 0 ? 0 : queryOrgs.length * rounds;
    const queryRandom = rng(0x9e7);
    step(
      `loading ${int(loadBatches * loadSpec.size)} more events over ${queryOrgs.length} orgs and ${spreadDays} days ` +
        `(${int(loadSpec.size)} per batch) ` +
        (method === "http" ? "through the API" : "in process through the store's insertBatch"),
    );
    t0 = performance.now();
    if (method === "http") {
      // Generated as sent (the load is not the measurement): the client's CPU slows it a little.
      const r = await ingest(
        api,
        {
          count: loadBatches,
          body: (n) => Buffer.from(toJsonBody(makeBatch(queryRandom, ids, loadSpec, n))),
          events: () => loadSpec.size,
        },
        CONCURRENCY,
      );
      loadNote =
        `loaded through the API: ${int(r.accepted)} accepted in ${r.seconds.toFixed(0)} s ` +
        `(${int(r.accepted / r.seconds)} events/s, generation included)` +
        (r.reasons.size > 0 ? `; ${reasonsText(r.reasons)}` : "");
    } else {
      function* batches(): Generator<BenchBatch> {
        for (let n = 0; n < loadBatches; n++) {
          yield makeBatch(queryRandom, ids, loadSpec, n);
        }
      }
      const costs = new Map(UNPRICED_METERS.map((m) => [m.key, m.creditCost]));
      const r = await loadThroughStore(database, batches(), costs, {
        from: new Date(querySpec.fromMs - DAY_MS),
        to: new Date(queryEnd + DAY_MS),
      });
      loadNote =
        `loaded in process through insertBatch: ${int(r.inserted)} inserted in ${r.seconds.toFixed(0)} s ` +
        `(${int(r.inserted / r.seconds)} events/s)`;
    }
    console.log(`${((performance.now() - t0) / 1000).toFixed(0)} s`);

    step("VACUUM ANALYZE and CHECKPOINT (as autovacuum and the checkpointer would have by then)");
    const vacuumSeconds = await vacuum(database);
    console.log(`${vacuumSeconds.toFixed(1)} s`);

    const sizes = await database.admin.query<{ size: string }>(
      "select pg_size_pretty(pg_database_size($1)) as size",
      [database.name],
    );
    const rollupRows = await (async () => {
      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      try {
        const { rows } = await client.query<{ n: string }>(
          "select coalesce(sum(reltuples), 0)::bigint::text as n from pg_class where relname = 'usage_rollups'",
        );
        return Number(rows[0]?.n ?? 0);
      } finally {
        await client.end();
      }
    })();
    const fromMs = Math.floor(queryEnd / DAY_MS) * DAY_MS - (QUERY_DAYS - 1) * DAY_MS;
    const toMs = Math.floor(queryEnd / DAY_MS) * DAY_MS + DAY_MS;
    const range = `from=${new Date(fromMs).toISOString()}&to=${new Date(toMs).toISOString()}&granularity=day`;
    const pickOrg = rng(0x0c0ffee);
    const usagePath = () =>
      `/v1/organizations/${(queryOrgs[Math.floor(pickOrg() * queryOrgs.length)] as BenchOrg).id}/usage?${range}`;
    step(`GET …/usage (${QUERY_DAYS} days by day) for random orgs, one at a time, ${int(QUERIES)} requests`);
    const usage = await sequential(api, usagePath, '"totals"', QUERY_WARMUP, QUERIES, accounting);
    console.log("done");
    step("baselines: GET /healthz and GET /v1/me, the same way");
    const healthz = await sequential(api, () => "/healthz", '"ok"', QUERY_WARMUP, QUERIES, accounting);
    const me = await sequential(api, () => "/v1/me", '"operator"', QUERY_WARMUP, QUERIES, accounting);
    console.log("done");
    // One response, to say what a query returns.
    const sample = await api.call("GET", usagePath());
    const sampleJson = jsonObject(sample.text);
    const sampleFile = server.logFile.replace(/\.log$/, ".usage-sample.json");
    await writeFile(sampleFile, sample.text);
    const seriesCount = Array.isArray(sampleJson.series) ? sampleJson.series.length : 0;

    step("baseline: the month's rollups by day in one SQL query, straight to PostgreSQL");
    const pickSqlOrg = rng(0x0c0ffee);
    const direct = await sequentialSql(
      database,
      () => (queryOrgs[Math.floor(pickSqlOrg() * queryOrgs.length)] as BenchOrg).id,
      new Date(fromMs),
      new Date(toMs),
    );
    console.log("done");
    const latencyRow = (label: string, s: Sequential, judged: boolean): TableRow => {
      const p99 = s.hist.percentile(99);
      const verdict =
        s.problems.length > 0
          ? `INVALID: ${s.problems.slice(0, 2).join("; ")}`
          : judged
            ? `p99 ≤ ${TARGET_P99_MS} ms: ${p99 <= TARGET_P99_MS ? "met" : "MISSED"}`
            : "";
      const per = s.perRequest;
      const cost =
        per === undefined
          ? ""
          : `; per request: ${per.transactions.toFixed(1)} SQL transactions, CPU ms Orgplane ` +
            `${(per.cpu.orgplane * 1000).toFixed(2)}, PostgreSQL ${(per.cpu.postgres * 1000).toFixed(2)}`;
      return {
        label,
        value: `p50 ${ms(s.hist.percentile(50))}  p99 ${ms(p99)}`,
        verdict: `${verdict}${verdict === "" ? "" : "; "}${int(s.hist.count)} measured${cost}`,
      };
    };
    queryTable.push(
      latencyRow(`GET …/usage, one org, ${QUERY_DAYS} days by day`, usage, true),
      latencyRow("baseline: GET /healthz", healthz, false),
      latencyRow("baseline: GET /v1/me (operator auth)", me, false),
      latencyRow("baseline: one SQL query of the org's day rollups", direct, false),
    );
    loadNote +=
      `; then VACUUM ANALYZE and CHECKPOINT ${vacuumSeconds.toFixed(0)} s; database ${sizes.rows[0]?.size ?? "?"}, ~${int(rollupRows)} hourly rollup rows; ` +
      `a sample answer: ${sample.status}, ${int(sample.text.length)} bytes, ${seriesCount} series entries (${sampleFile})`;
  }

  await stopChild(server.child);

  printTable(
    `ingestion (rate = accepted events per second; "of raw" = against the raw insert's mean)`,
    ingestTable,
  );
  if (rawDrift > NOISE_WARNING) {
    console.log(
      `  NOTE: the two raw baseline runs differ by ${(rawDrift * 100).toFixed(0)}%: something else was using ` +
        "the machine; the ratio is approximate, run again on a quiet machine",
    );
  }
  if (queryTable.length > 0) {
    printTable(`query (${int(ids.issued)} events in the store, ${QUERY_ORGS} orgs)`, queryTable);
    console.log(`  ${loadNote}`);
  }
  console.log(
    `\ntargets (issue 7): ingestion ≥ ${TARGET_RATIO * 100}% of the raw INSERT … ON CONFLICT DO NOTHING rate ` +
      `(rollups and dedup included), judged on the unpriced row; one org's month p99 ≤ ${TARGET_P99_MS} ms.`,
  );
  console.log(
    `raw baseline: the ingestion's unpriced rows, 1,000 per INSERT … SELECT FROM unnest(…) ON CONFLICT DO ` +
      `NOTHING into a table with the stored event's columns and PRIMARY KEY (org_id, event_id), ${CONCURRENCY} ` +
      `clients, before and after the HTTP rows. Every write row starts after a CHECKPOINT and ${WARMUP_BATCHES} ` +
      `warm-up batches. Run time ${Math.round((performance.now() - started) / 1000)} s; Orgplane's log: ${server.logFile}`,
  );
}

await runBench("bench:usage", main, RUN_TIMEOUT_MS);
