/**
 * HTTP throughput and latency of the hot path, each beside a bare-server baseline measured in the same run.
 *   Baselines: a bare `node:http` hello-world JSON server in a child process, measured first and last (the mean
 *     of the two is the baseline, so a machine that slows down during the run does not flatter the ratio), each
 *     time with two requests:
 *     (a) `GET /`;
 *     (b) "the authorize request": the method, path, headers and body bytes the authorize rows send
 *         (`POST /v1/authorize`, `Authorization: Bearer <operator key>`, `Content-Type: application/json`,
 *         `{"key":…,"category":"search"}`). The first baseline runs before Orgplane exists, so it sends a
 *         stand-in of identical shape and length (keys from `generateKey`, `op_live_…` and `sk_live_…`); the
 *         bare server answers its hello JSON to anything and never reads the body.
 *     The load generator runs in this process on the same cores, and a POST with headers and a body costs it
 *     more than a GET: comparing Orgplane's POST rows with (b) keeps the client's share out of the ratio.
 *   Orgplane: `node --no-memory-reducer src/main.ts` (as `npm start` runs it) on a fresh database:
 *     GET /healthz (the framework's floor), GET /v1/me, POST /v1/keys/verify and POST /v1/authorize with
 *     the memory limiter, then the POST routes on a second start with REDIS_URL set. Each row's "of bare"
 *     ratio uses the baseline of its own request kind ((a) for GET rows, (b) for POST rows); authorize rows
 *     also print the ratio against (a).
 *   Latency at a fixed rate: at saturation, mean latency = connections / throughput (Little's law), so p99
 *     there says how fast the server is, not how long a request waits under a given load. After each
 *     saturation authorize row, authorize is measured again at a fixed rate of 35% of the first (b) baseline's
 *     req/s, sent evenly (every millisecond, round robin over 50 keep-alive connections, open loop: latency
 *     counts from the moment each request is issued, waiting for a busy connection included). The p99 ≤ 3 ms
 *     target is judged on that row; it is INVALID when fewer than 95% of the requested responses came back
 *     within the window (the server could not keep up). The last baseline runs (b) at that rate too: it shows
 *     the load generator reaches it, and the latency floor. autocannon's own `overallRate` is not used: each
 *     connection sends its per-second quota back to back at the start of every second, then idles, so every
 *     request still meets a saturated server (at 35% of the bare server's rate its p50/p99 were those of
 *     saturation). Nor is node:http's client: it costs the load generator too much to reach the rate. Nor is
 *     a loop in this process: it cost half a core and stalled for 3-30 ms dozens of times a run (even the bare
 *     server measured a p99 of 4-30 ms); the fixed-rate rows run bench/fixed-rate-loader.c, built with `cc`
 *     at the start of the run, which also reports how often it was itself woken late (machine noise).
 * Load: autocannon in this process, 50 connections, loopback only; the fixed-rate rows: raw keep-alive sockets
 * and a pre-built request, in C (`loadAtRate`).
 * Every response body is checked (`"allowed":true`, `"valid":true`…): a denial is a 200 too, so counting 2xx
 * alone would prove nothing.
 * Export comparison (issue 9: authorize throughput and p99 with every org exporting within 10% of the same
 *   server without export), after the rows above, on a database of its own: BENCH_EXPORT_ORGS orgs (default
 *   10,000); the authorize load (memory limiter) sends the keys of 100 of them in turn
 *   (autocannon cycles through one pre-built request per key, the fixed-rate loader likewise), of which BENCH_EXPORT_DENIED_ORGS (default 10)
 *   have a search limit of 1 a minute, so about a tenth of the decisions are `rate_limited` denials, the lines
 *   the Loki exporter sends (allowed decisions go to Loki only at LOKI_ALLOWED_SAMPLE_RATE, 0 by default).
 *   Orgs, the load orgs' limits and keys are set up through the API (8 calls in flight); a step whose first
 *   400 calls say the whole of it would take over a minute does the rest in process through the same services
 *   (BENCH_EXPORT_SETUP=http|process forces one). Receivers: bench/export-receiver.ts in a child process
 *   takes remote-writes and Loki pushes the way a healthy Grafana would (answers 204 at once), checks each
 *   push's basic auth against the token the bench configured for that org (derived from a seed it holds), the
 *   protocol headers and the Loki streams' org_id, and counts. Four runs, each a fresh start of the same
 *   server configuration (ORGPLANE_SECRET_KEY set by the bench, INTEGRATIONS_ALLOW_PRIVATE=true,
 *   METRICS_PUSH_INTERVAL_SECONDS and LOKI_ALLOWED_SAMPLE_RATE at their defaults) on the same database, in
 *   the order without, with, with, without export, so a machine whose speed drifts steadily weighs on both
 *   sides alike; each side is the mean of its two runs:
 *   without export: no integration configured;
 *   with export: every org's Prometheus and Loki integration configured through PUT
 *     /v1/organizations/{org_id}/integrations (tokens sealed at rest as in production), each org with its own
 *     credentials, pointing at the receivers; taken out through the integrations store before the last run.
 *   Each run: EXPORT_WARMUP_SECONDS (35 s: the export's start-up, its first interval pushing every org, is a
 *   one-off of each start and ends two intervals after it) of load at saturation, then two windows of
 *   EXPORT_MEASURE_SECONDS (60 s: the exporter's whole steady cycle) each: at saturation (autocannon, 50
 *   connections), where the throughput is judged; then, after EXPORT_PACED_WARMUP_SECONDS, at the fixed
 *   rate (EXPORT_RATE_SHARE, 35 %, of the first run's throughput: the server about 70 % busy), open loop
 *   (bench/fixed-rate-loader.c), where the p99 is judged (docs/adr/0007: at saturation, p99
 *   restates throughput by Little's law and a closed loop hides the server's stalls; the p99 at saturation
 *   is printed, not judged).
 *   Printed per window: req/s, p50, p99 and the Orgplane process's (and PostgreSQL's) CPU per 1,000 requests of each run and of each side's
 *   mean; the kernel's DAMON threads' CPU per second (the header says whether DAMON runs, docs/adr/0009);
 *   how long Orgplane's main thread waited for a CPU and how often another task took its CPU
 *   (per second, from /proc: on shared cores, export's threads can push the load generator onto the main
 *   thread's core, which the p99 feels); the ratios and PASS/MISS for throughput ≥ 90% and p99 ≤ 110% of
 *   the side without export; the noise (how far apart the two runs of one configuration are: a verdict within it is not conclusive); and what
 *   the receivers got in each window with export: remote-writes per org (an idle org's once a minute, a busy one's per 15 s interval), Loki
 *   pushes and lines, tokens refused, pushes in the runs without export (none), and what GET
 *   …/integrations says about the load orgs' export afterwards. About 12 minutes.
 * Bounded: WARMUP_SECONDS + MEASURE_SECONDS per row, about 2 minutes in all, plus about 12 for the export
 * comparison; the whole run is killed at RUN_TIMEOUT_MS.
 * Usage: npm run bench:authorize
 *   BENCH_DATABASE_URL / TEST_DATABASE_URL: a PostgreSQL server to create a fresh database on (dropped
 *     afterwards); else the embedded PostgreSQL in a temporary data directory.
 *   BENCH_FIXED_RATE_SHARE=<0..1>: the fixed-rate rows' share of the (b) baseline (default 0.35).
 *   BENCH_ONLY=<text>: measure only the Orgplane rows whose label contains it, e.g. BENCH_ONLY=authorize
 *     (a fixed-rate row follows its saturation row; the baselines run with any of these rows);
 *     BENCH_ONLY=export: the export comparison alone.
 *   BENCH_EXPORT_ORGS, BENCH_EXPORT_DENIED_ORGS, BENCH_EXPORT_SETUP: the export comparison's, as above.
 *   BENCH_CPU_PROF=<dir>: write a V8 CPU profile of each Orgplane process there (open in Chrome DevTools).
 *   BENCH_NODE_FLAGS, BENCH_LOG_DIR: more Node flags for each Orgplane process (e.g. --trace-gc), and a
 *     directory to keep each one's log in (bench/common.ts).
 *   BENCH_SERVER_CPUS=<cpu list>: confine each Orgplane process and the bare baseline server to these CPUs
 *     (taskset); run the bench itself under `taskset -c <the others>` so that the load generator and the
 *     receivers stay off them, e.g.
 *     BENCH_SERVER_CPUS=1 taskset -c 0 npm run bench:authorize.
 *   BENCH_LOG_LEVEL: Orgplane's LOG_LEVEL during the run (default info).
 *   BENCH_REDIS_URL / TEST_REDIS_URL, else redis://127.0.0.1:6379 when it answers; the Redis rows skip otherwise.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import autocannon from "autocannon";
import { Redis } from "ioredis";
import { generateKey } from "../src/lib/api-key-format.ts";
import { systemClock } from "../src/lib/clock.ts";
import {
  Api,
  type Child,
  cleanUpOnExit,
  cleanup,
  cpuSpent,
  createScratchDatabase,
  damonMonitorsOn,
  damonNote,
  freePort,
  intEnv,
  jsonObject,
  kdamondCpuByProcess,
  killChildren,
  LatencyHistogram,
  LOG_LEVEL,
  mainThreadSchedule,
  onCleanup,
  placement,
  postgresCpuByProcess,
  processCpuSeconds,
  ROOT,
  SERVER_CPUS,
  spawnChild,
  startOrgplane as startServer,
  stopChild,
  tempDir,
  waitForStatus,
} from "./common.ts";
import { ExportReceiverClient, type ExportReceiverStats, exportToken } from "./export-receiver.ts";

const execFileAsync = promisify(execFile);

const CONNECTIONS = 50;
/** JIT, connection set-up and the caches of the first requests; not counted. */
const WARMUP_SECONDS = 2;
/** Long enough for a stable median on a noisy 2-core machine, short enough to keep the run near 80 s. */
const MEASURE_SECONDS = 6;
/**
 * The whole run is killed past this, whatever hangs: the children go with it. The hot path's rows take about
 * 2 minutes, the export comparison about 12.
 */
const HOT_PATH_TIMEOUT_MS = 300_000;
const EXPORT_TIMEOUT_MS = 1_080_000;
/** The fixed-rate rows send this share of the first (b) baseline's req/s: the Redis target, so both stores must sustain it. */
const FIXED_RATE_SHARE = fixedRateShare(process.env.BENCH_FIXED_RATE_SHARE);

/** BENCH_FIXED_RATE_SHARE=0.2: another share of the (b) baseline for the fixed-rate rows (default 0.35). */
function fixedRateShare(value: string | undefined): number {
  if (value === undefined || value === "") {
    return 0.35;
  }
  const share = Number(value);
  if (!(share > 0 && share <= 1)) {
    throw new Error(`BENCH_FIXED_RATE_SHARE must be a number in (0, 1], got '${value}'`);
  }
  return share;
}
/** A fixed-rate row whose responses fall short of the requested rate by more than this is INVALID. */
const RATE_TOLERANCE = 0.05;
/** After a fixed-rate row stops sending, how long its last responses may take before they count as errors. */
const DRAIN_MS = 5_000;
/** The default preset's (multimodal-search) search category. */
const CATEGORY = "search";
/** The largest per-minute limit the API accepts: the benchmark must never be throttled by the org's limit. */
const HUGE_LIMIT = 10_000_000;
const TARGET_MEMORY_RATIO = 0.5;
const TARGET_REDIS_RATIO = 0.35;
const TARGET_P99_MS = 3;
/** Baseline runs further apart than this mean the machine was busy during the run. */
const NOISE_WARNING = 0.2;
/** The histogram's range: a latency above it counts as 1 s. */
const LATENCY_MAX_MS = 1_000;
/** The set-up calls' timeout. */
const CALL_TIMEOUT_MS = 10_000;

const AUTHORIZE_ROUTE_DIR = join(ROOT, "src/http/routes/authorize");

cleanUpOnExit("stopping the servers");

// ------------------------------------------------------------------------------------------ measurement

type Target = {
  method: "GET" | "POST";
  path: string;
  headers?: Record<string, string>;
  body?: string;
  /** Bodies sent in turn instead of `body` (each connection cycles through them; autocannon pre-builds each). */
  bodies?: readonly string[];
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
    const latency = new LatencyHistogram(LATENCY_MAX_MS);
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
      ...(target.bodies === undefined ? {} : { requests: target.bodies.map((body) => ({ body })) }),
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

/** `loaderLate`: the fixed-rate loader's own wake-ups over 2 ms late, and the time they lost (machine noise). */
type Paced = Measured & { requested: number; loaderLate: { wakeUps: number; ms: number } };

/** The fixed-rate load generator (bench/fixed-rate-loader.c), compiled once per run into a directory of its own. */
let loaderBinary: Promise<string> | undefined;

function fixedRateLoader(): Promise<string> {
  loaderBinary ??= (async () => {
    const dir = await tempDir("orgplane-loader-");
    const binary = join(dir, "fixed-rate-loader");
    try {
      await execFileAsync("cc", ["-O2", "-o", binary, join(ROOT, "bench", "fixed-rate-loader.c")]);
    } catch (error) {
      throw new Error(
        `the fixed-rate rows need a C compiler to build bench/fixed-rate-loader.c (Debian: apt-get install gcc): ${
          error instanceof Error ? error.message.split("\n")[0] : String(error)
        }`,
      );
    }
    return binary;
  })();
  return loaderBinary;
}

/**
 * The target's request, byte for byte, in a file of its own: what the fixed-rate loader sends every time; a
 * target with several bodies gives one request per body, separated by a NUL byte, which the loader sends in turn.
 */
async function requestFileFor(port: number, target: Target): Promise<string> {
  const head =
    `${target.method} ${target.path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: keep-alive\r\n` +
    Object.entries(target.headers ?? {})
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join("");
  const request = (body: string | undefined) =>
    body === undefined ? `${head}\r\n` : `${head}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  const dir = await tempDir("orgplane-request-");
  const requestFile = join(dir, "request");
  await writeFile(
    requestFile,
    target.bodies === undefined ? request(target.body) : target.bodies.map(request).join("\0"),
  );
  return requestFile;
}

/**
 * Open-loop load at a fixed rate (bench/fixed-rate-loader.c, which says how): every millisecond, the requests
 * due by then are issued, round robin over CONNECTIONS keep-alive connections with one request in flight each
 * (a request due on a busy connection waits for it, and that wait counts). req/s counts the good responses
 * completed within the window; it falls short of `rate` when the server cannot keep up.
 * In C, not in this process: a Node loop cost the shared cores about half a core at 18k req/s and stalled for
 * 3-30 ms dozens of times a run (its GC and JIT), so that even the bare server's p99 was 4-30 ms. `loaderLate`
 * is what is left of that on the machine: how often the loader itself woke up over 2 ms late.
 */
async function loadAtRate(
  port: number,
  requestFile: string,
  target: Target,
  rate: number,
  seconds: number,
): Promise<Paced> {
  let stdout: string;
  try {
    ({ stdout } = await execFileAsync(
      await fixedRateLoader(),
      [
        String(port),
        String(rate),
        String(seconds),
        String(CONNECTIONS),
        requestFile,
        target.expect,
        String(DRAIN_MS),
      ],
      { maxBuffer: 16 * 1024 * 1024, timeout: (seconds + 60) * 1000 + DRAIN_MS },
    ));
  } catch (error) {
    // One row is INVALID; the rest of the run goes on.
    // The loader's own message (stderr), else the first line of the failure (a timeout, a missing compiler).
    const stderr =
      typeof error === "object" && error !== null && "stderr" in error && typeof error.stderr === "string"
        ? error.stderr.trim()
        : "";
    const why = stderr || (error instanceof Error ? error.message.split("\n")[0] : String(error));
    return {
      rps: 0,
      p50: Number.NaN,
      p99: Number.NaN,
      problems: [`the fixed-rate loader failed: ${why}`],
      requested: rate,
      loaderLate: { wakeUps: 0, ms: 0 },
    };
  }
  const out = new Map<string, string>();
  for (const line of stdout.split("\n")) {
    const space = line.indexOf(" ");
    out.set(space < 0 ? line : line.slice(0, space), space < 0 ? "" : line.slice(space + 1));
  }
  const count = (name: string): number => {
    const value = Number(out.get(name));
    if (!Number.isFinite(value)) {
      throw new Error(`the fixed-rate loader printed no ${name}: ${stdout.slice(0, 300)}`);
    }
    return value;
  };
  const latency = new LatencyHistogram(LATENCY_MAX_MS);
  for (const pair of (out.get("hist") ?? "").split(" ")) {
    const [index, n] = pair.split(":").map(Number);
    if (index !== undefined && n !== undefined && Number.isInteger(index) && Number.isInteger(n)) {
      latency.addToBucket(index, n);
    }
  }
  const problems: string[] = [];
  if (count("non2xx") > 0) {
    problems.push(`${count("non2xx")} non-2xx`);
  }
  if (count("mismatches") > 0) {
    const refusal = out.get("refusal") ?? "";
    problems.push(
      `${count("mismatches")} bodies without ${target.expect} (${refusal === "" ? "no sample" : reasonOf(refusal)})`,
    );
  }
  const unanswered = count("sent") - count("settled") - count("errors");
  if (count("errors") > 0 || unanswered > 0) {
    problems.push(
      `${count("errors")} errors, ${unanswered} unanswered ${DRAIN_MS / 1000} s after the window`,
    );
  }
  return {
    rps: count("good_in_window") / seconds,
    p50: latency.percentile(50),
    p99: latency.percentile(99),
    problems,
    requested: rate,
    loaderLate: { wakeUps: count("late_ticks"), ms: count("late_ms") },
  };
}

async function measureAtRate(port: number, target: Target, rate: number): Promise<Paced> {
  const requestFile = await requestFileFor(port, target);
  await loadAtRate(port, requestFile, target, rate, WARMUP_SECONDS);
  return loadAtRate(port, requestFile, target, rate, MEASURE_SECONDS);
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

/**
 * The bare server measured with both requests: (a) `GET /` and (b) the authorize request, byte for byte; and
 * (b) at the fixed rate when one is given, which shows the load generator reaches it and the floor under p99.
 */
type Bare = { get: Measured; post: Measured; paced?: Paced };

async function measureBare(workDir: string, authorizeRequest: Target, fixedRate = 0): Promise<Bare> {
  const port = await freePort();
  const logFile = join(workDir, "bare.log");
  // On Orgplane's CPUs when BENCH_SERVER_CPUS confines it: the baseline runs where the server it judges runs.
  const child = spawnChild(
    "bare node:http server",
    ["-e", BARE_SERVER],
    { PORT: String(port) },
    logFile,
    SERVER_CPUS,
  );
  try {
    await waitForStatus(child, `http://127.0.0.1:${port}/`, logFile);
    const get = await measure(port, { method: "GET", path: "/", expect: '"hello"' });
    // Same method, path, headers and body as the authorize rows; the bare server answers its hello JSON.
    const post = await measure(port, { ...authorizeRequest, expect: '"hello"' });
    if (fixedRate <= 0) {
      return { get, post };
    }
    return {
      get,
      post,
      paced: await measureAtRate(port, { ...authorizeRequest, expect: '"hello"' }, fixedRate),
    };
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
  const database = await createScratchDatabase(adminUrl, `orgplane_bench_${randomBytes(4).toString("hex")}`);
  return {
    url: database.url,
    label: `external PostgreSQL at ${new URL(database.url).host} (fresh database ${database.name})`,
    drop: () => database.drop(),
  };
}

type Orgplane = { child: Child; port: number; api: Api };

/**
 * Orgplane on `dataDir` (where it writes the operator key) with its embedded PostgreSQL or `database`; `env`
 * goes over the rest (the export comparison's settings).
 */
async function startOrgplane(
  label: string,
  dataDir: string,
  database: Database,
  redisUrl: string | undefined,
  env: Record<string, string> = {},
): Promise<Orgplane> {
  const { child, port, operatorKey } = await startServer(
    `Orgplane (${label})`,
    dataDir,
    {
      EMBEDDED_PG_PORT: String(await freePort()),
      DATABASE_URL: database.url ?? "",
      REDIS_URL: redisUrl ?? "",
      ...env,
    },
    join(dataDir, `${label}.log`),
  );
  return { child, port, api: new Api(port, operatorKey, { maxSockets: 1, timeoutMs: CALL_TIMEOUT_MS }) };
}

/** An org whose search limit cannot throttle the run, and one live key of it. */
async function setUp(api: Api): Promise<{ orgId: string; key: string }> {
  const org = await api.expect("create organization", "POST", "/v1/organizations", 201, {
    name: "Bench Inc",
    slug: `bench-${randomBytes(3).toString("hex")}`,
  });
  const orgId = String(org.id);
  await api.expect("raise the search limit", "PATCH", `/v1/organizations/${orgId}/rate-limits`, 200, {
    rate_limits: { [CATEGORY]: HUGE_LIMIT },
  });
  const created = await api.expect("create API key", "POST", `/v1/organizations/${orgId}/api-keys`, 201, {
    name: "bench",
  });
  return { orgId, key: String(created.key) };
}

// --------------------------------------------------------------------------------------------- the run

type Row = {
  label: string;
  measured: Measured | undefined;
  /** The baseline of its "of bare" ratio: (a) for GET rows, (b) for POST rows. */
  baseline?: "GET" | "POST";
  note?: string;
  /** Saturation authorize rows: the share of baseline (b) to reach. */
  ratioTarget?: number;
  /** Fixed-rate rows: the requested req/s; the p99 target is judged here. */
  requested?: number;
};

const AUTHORIZE_LABEL = "POST /v1/authorize";

/** The request every authorize row sends, and baseline (b) too. */
function authorizeTarget(key: string, operatorKey: string): Target {
  return {
    method: "POST",
    path: "/v1/authorize",
    headers: { Authorization: `Bearer ${operatorKey}`, "Content-Type": "application/json" },
    body: JSON.stringify({ key, category: CATEGORY }),
    expect: '"allowed":true',
  };
}

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
    list.push({ label: AUTHORIZE_LABEL, target: authorizeTarget(key, operatorKey) });
  }
  return list;
}

/** How the real authorize request differs in size from the stand-in the first baseline sent; undefined when it does not. */
function shapeDifference(standIn: Target, real: Target): string | undefined {
  const size = (t: Target) => ({
    authorization: t.headers?.Authorization?.length ?? 0,
    body: Buffer.byteLength(t.body ?? ""),
  });
  const a = size(standIn);
  const b = size(real);
  if (a.authorization === b.authorization && a.body === b.body) {
    return undefined;
  }
  return (
    `the first baseline's stand-in request (Authorization ${a.authorization} characters, body ${a.body} bytes) ` +
    `differs from the real one (${b.authorization}, ${b.body}): its (b) figure is approximate`
  );
}

/** BENCH_ONLY=<text>: measure only the Orgplane rows whose label contains it (the baselines always run). */
function selected(label: string): boolean {
  const only = process.env.BENCH_ONLY;
  return only === undefined || only === "" || label.includes(only);
}

/** Whether the authorize route exists in this tree and answers a good call with allowed:true. */
async function probeAuthorize(api: Api, key: string): Promise<string | undefined> {
  if (!existsSync(AUTHORIZE_ROUTE_DIR)) {
    return "it does not exist yet (no src/http/routes/authorize/)";
  }
  const r = await api.call("POST", "/v1/authorize", { key, category: CATEGORY });
  if (r.status === 404) {
    return "src/http/routes/authorize/ exists but the server answers 404: the route is not registered yet";
  }
  if (r.status !== 200 || jsonObject(r.text).allowed !== true) {
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
  if (Number.isNaN(value)) {
    return "";
  }
  // The histogram's last bucket holds everything from 1 s on.
  return value < 1000 ? `${value.toFixed(2)} ms` : "≥ 1 s";
}

function perSecond(value: number): string {
  return Math.round(value).toLocaleString("en-US");
}

function percent(value: number): string {
  return `${(value * 100).toFixed(1)}%`;
}

const LABEL_WIDTH = 58;

/**
 * What makes a fixed-rate window's figures invalid: its own problems, and a shortfall of more than
 * RATE_TOLERANCE against the requested rate (the server could not keep up: its p99 is a saturated server's).
 */
function fixedRateProblems(m: Measured, requested: number): string[] {
  return m.rps < requested * (1 - RATE_TOLERANCE)
    ? [
        ...m.problems,
        `only ${perSecond(m.rps)} of the requested ${perSecond(requested)} req/s answered within the window: ` +
          "the server could not keep up",
      ]
    : m.problems;
}

/** A fixed-rate row's verdict: INVALID when it went wrong or fell short of the rate, else the p99 target's. */
function fixedRateVerdict(m: Measured, requested: number): string {
  const problems = fixedRateProblems(m, requested);
  if (problems.length > 0) {
    return `INVALID: ${problems.join("; ")}`;
  }
  return `p99 ≤ ${TARGET_P99_MS} ms at ${perSecond(requested)} req/s: ${m.p99 <= TARGET_P99_MS ? "met" : "MISSED"}`;
}

/**
 * How often the fixed-rate loader itself woke up over 2 ms late: a process that costs a few percent of a core
 * and allocates nothing is late only when the machine did not run it (other processes, the hypervisor).
 * Requests are issued when it wakes, so a late wake-up delays issuing, not the latency counted.
 */
function loaderNote(paced: Paced): string | undefined {
  const { wakeUps, ms } = paced.loaderLate;
  return wakeUps === 0
    ? undefined
    : `the loader itself woke over 2 ms late ${wakeUps}× (${ms.toFixed(0)} ms in all: machine noise)`;
}

/** The bare server at the fixed rate is no target: it shows what the load generator and the machine allow. */
function bareFloorVerdict(paced: Paced): string {
  const verdict = fixedRateVerdict(paced, paced.requested);
  if (verdict.startsWith("INVALID")) {
    return `${verdict}: the load generator cannot reach the rate here, the fixed-rate rows are not conclusive`;
  }
  if (paced.p99 > TARGET_P99_MS) {
    return (
      `NOTE: even the bare server's p99 is above ${TARGET_P99_MS} ms at this rate: the machine (other processes, ` +
      "the load generator) adds that much, so a MISSED p99 below is not conclusive; run again on a quiet machine"
    );
  }
  return "the floor under the fixed-rate rows: load generator, loopback and a trivial server";
}

function printTable(bareFirst: Bare, bareLast: Bare, rows: Row[]): void {
  const mean = {
    GET: (bareFirst.get.rps + bareLast.get.rps) / 2,
    POST: (bareFirst.post.rps + bareLast.post.rps) / 2,
  };
  const header =
    "".padEnd(LABEL_WIDTH) +
    "req/s".padStart(10) +
    "p50".padStart(11) +
    "p99".padStart(11) +
    "of bare".padStart(13) +
    "of (a)".padStart(9) +
    "   targets";
  console.log(`\n${header}`);
  const line = (label: string, m: Measured | undefined, ratio: string, ratioGet: string, extra: string) =>
    console.log(
      `  ${label.padEnd(LABEL_WIDTH - 2)}${(m === undefined ? "" : perSecond(m.rps)).padStart(10)}` +
        `${(m === undefined ? "" : ms(m.p50)).padStart(11)}${(m === undefined ? "" : ms(m.p99)).padStart(11)}` +
        `${ratio.padStart(13)}${ratioGet.padStart(9)}   ${extra}`.trimEnd(),
    );
  const kinds = [
    { kind: "GET" as const, tag: "(a)", what: "GET /", pick: (b: Bare) => b.get },
    { kind: "POST" as const, tag: "(b)", what: "authorize request", pick: (b: Bare) => b.post },
  ];
  for (const { tag, what, pick } of kinds) {
    for (const [when, bare] of [
      ["first", bareFirst],
      ["last", bareLast],
    ] as const) {
      line(`${tag} bare node:http, ${what} (${when})`, pick(bare), "", "", pick(bare).problems.join("; "));
    }
  }
  for (const { kind, tag, pick } of kinds) {
    line(
      `${tag} mean: the baseline of ${kind} rows`,
      { ...pick(bareFirst), rps: mean[kind], p50: Number.NaN, p99: Number.NaN },
      "",
      "",
      "",
    );
    const first = pick(bareFirst).rps;
    const last = pick(bareLast).rps;
    const drift = Math.abs(first - last) / Math.max(first, last, 1);
    if (drift > NOISE_WARNING) {
      console.log(
        `  NOTE: the two ${tag} baseline runs differ by ${(drift * 100).toFixed(0)}%: something else was using ` +
          `the CPU; the ratios against ${tag} are approximate, run again on a quiet machine`,
      );
    }
  }
  const paced = bareLast.paced;
  if (paced !== undefined) {
    line(
      `(b) bare node:http at ${perSecond(paced.requested)} req/s (last)`,
      paced,
      "",
      "",
      [bareFloorVerdict(paced), loaderNote(paced)].filter((note) => note !== undefined).join("; "),
    );
  }
  for (const row of rows) {
    const m = row.measured;
    if (m === undefined) {
      line(row.label, undefined, "not measured", "", row.note ?? "");
      continue;
    }
    const verdicts: string[] = [];
    let ratio = "";
    let ratioGet = "";
    if (row.requested !== undefined) {
      // A fixed load: req/s is what was asked for, a ratio would say nothing.
      verdicts.push(fixedRateVerdict(m, row.requested));
    } else {
      const kind = row.baseline ?? "GET";
      const share = m.rps / mean[kind];
      ratio = `${percent(share)} ${kind === "GET" ? "(a)" : "(b)"}`;
      ratioGet = kind === "POST" ? percent(m.rps / mean.GET) : "";
      if (m.problems.length > 0) {
        verdicts.push(`INVALID: ${m.problems.join("; ")}`);
      } else if (row.ratioTarget !== undefined) {
        verdicts.push(
          `≥ ${row.ratioTarget * 100}% of (b): ${share >= row.ratioTarget ? "met" : "MISSED"}`,
          "p99 at saturation: information only",
        );
      }
    }
    if (row.note !== undefined) {
      verdicts.push(row.note);
    }
    line(row.label, m, ratio, ratioGet, verdicts.join("; "));
  }
}

/** The fixed-rate row that follows a saturation authorize row. */
async function fixedRateRow(port: number, target: Target, rate: number, store: string): Promise<Row> {
  const label = `Orgplane ${AUTHORIZE_LABEL} at ${perSecond(rate)} req/s (${store})`;
  if (rate <= 0) {
    return {
      label,
      measured: undefined,
      note: "not measured: the first (b) baseline gave no rate to aim at",
    };
  }
  process.stdout.write(`  ${AUTHORIZE_LABEL} at ${perSecond(rate)} req/s (${store})… `);
  const measured = await measureAtRate(port, target, rate);
  console.log("done");
  const note = loaderNote(measured);
  return { label, measured, requested: rate, ...(note === undefined ? {} : { note }) };
}

// ------------------------------------------------------------------------------------ the export comparison

/** BENCH_ONLY=export selects it (and nothing else); it runs after the rows above otherwise. */
const EXPORT_LABEL = "export comparison";
const EXPORT_ORGS = intEnv("BENCH_EXPORT_ORGS", 10_000, 1);
/** The orgs whose keys the authorize load sends, in turn: they have counters to export. */
const EXPORT_LOAD_ORGS = Math.min(100, EXPORT_ORGS);
/**
 * Of those, the ones whose search limit is 1 a minute: nearly all their decisions are `rate_limited` denials,
 * which the Loki exporter sends (allowed decisions only at LOKI_ALLOWED_SAMPLE_RATE, 0 by default).
 */
const EXPORT_DENIED_ORGS = Math.min(intEnv("BENCH_EXPORT_DENIED_ORGS", 10, 0), EXPORT_LOAD_ORGS - 1);
/** METRICS_PUSH_INTERVAL_SECONDS's default, which both runs have. */
const EXPORT_INTERVAL_SECONDS = 15;
/**
 * Load before the counted window: JIT, connections, the first requests' caches, and the export's start-up —
 * its first push interval, in which every org is pushed, every token is opened and the figures are read: a
 * one-off of each start, not what an org pays while Orgplane runs. That interval begins one interval after
 * the start and spreads its pushes over 80 % of the next one, so it is over two intervals after the start;
 * 5 s more for its last answers. (At 20 s, as before, the counted window took in the second half of the
 * start-up's 10,000 first pushes: 1.6 remote-writes per org in the window instead of the steady 1.)
 */
const EXPORT_WARMUP_SECONDS = 2 * EXPORT_INTERVAL_SECONDS + 5;
/**
 * The counted window of each of the four runs: a minute, the exporter's whole cycle in steady state — every
 * org pushed at least once (an org whose series did not change is pushed again once a minute, one with
 * traffic every interval), the database figures read once, the integrations re-read twice.
 */
const EXPORT_MEASURE_SECONDS = 60;
/** Before each fixed-rate window: the loader's connections and the switch from saturation. */
const EXPORT_PACED_WARMUP_SECONDS = 5;
/**
 * The fixed-rate minutes' rate: this share of the first run's throughput at saturation (without export). At a
 * fixed rate a request costs Orgplane's main thread about 1.5-1.9 times what it costs at saturation (fewer
 * requests share a turn of the event loop), so 35 % of the saturated throughput keeps it about 70 % busy:
 * a server with headroom, as one is run. The hot path's rate (35 % of the bare server's) kept it 80-93 % busy
 * on the machine of 2026-11-27, where any extra work decides the queue (docs/adr/0007).
 */
const EXPORT_RATE_SHARE = 0.35;
/** An org with nothing new is pushed again this often (the exporter's default). */
const EXPORT_RESEND_SECONDS = 60;
/** Set-up calls in flight. */
const EXPORT_SETUP_CONCURRENCY = 8;
/** The first calls of each set-up step, through the API: their rate decides how the rest are made. */
const EXPORT_PROBE_CALLS = 400;
/** A set-up step goes through the API when its first calls say the whole of it takes less than this. */
const EXPORT_HTTP_BUDGET_S = 60;
/** BENCH_EXPORT_SETUP=http|process forces the way; auto: the API when within EXPORT_HTTP_BUDGET_S. */
const EXPORT_SETUP = process.env.BENCH_EXPORT_SETUP || "auto";
if (!["auto", "http", "process"].includes(EXPORT_SETUP)) {
  throw new Error(`BENCH_EXPORT_SETUP must be auto, http or process, got '${EXPORT_SETUP}'`);
}
/** Issue 9's bound: with export, authorize keeps ≥ 90% of the throughput and p99 ≤ 110% of the run without. */
const EXPORT_MIN_THROUGHPUT = 0.9;
const EXPORT_MAX_P99 = 1.1;

/** Calls `fn(i)` for every i in [from, to), `concurrency` at a time; the first failure stops the rest. */
async function pooled(
  from: number,
  to: number,
  concurrency: number,
  fn: (i: number) => Promise<void>,
): Promise<void> {
  let next = from;
  let failure: { error: unknown } | undefined;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < to && failure === undefined) {
        const i = next++;
        try {
          await fn(i);
        } catch (error) {
          failure ??= { error };
        }
      }
    }),
  );
  if (failure !== undefined) {
    throw failure.error;
  }
}

/**
 * `count` items: the first EXPORT_PROBE_CALLS through the API (`viaApi(i)`), and the rest too when their rate
 * does the whole step within EXPORT_HTTP_BUDGET_S (BENCH_EXPORT_SETUP=auto), else in process
 * (`inProcess(from, to)`). Answers how it went, for the report.
 */
async function setUpStep(
  what: string,
  count: number,
  viaApi: (i: number) => Promise<void>,
  inProcess: (from: number, to: number) => Promise<void>,
): Promise<string> {
  process.stdout.write(`  ${what}… `);
  const t0 = performance.now();
  const probe = EXPORT_SETUP === "process" ? 0 : Math.min(count, EXPORT_PROBE_CALLS);
  await pooled(0, probe, EXPORT_SETUP_CONCURRENCY, viaApi);
  const probeSeconds = (performance.now() - t0) / 1000;
  const rate = probe / Math.max(probeSeconds, 0.001);
  const projected = count / rate;
  const http = EXPORT_SETUP === "http" || (EXPORT_SETUP === "auto" && projected <= EXPORT_HTTP_BUDGET_S);
  if (http) {
    await pooled(probe, count, EXPORT_SETUP_CONCURRENCY, viaApi);
  } else {
    await inProcess(probe, count);
  }
  const seconds = (performance.now() - t0) / 1000;
  const how = http
    ? `through the API, ${EXPORT_SETUP_CONCURRENCY} in flight`
    : probe === 0
      ? "in process (BENCH_EXPORT_SETUP=process)"
      : `the first ${probe} through the API (${perSecond(rate)}/s: ${projected.toFixed(0)} s for all, over ` +
        `${EXPORT_HTTP_BUDGET_S} s), the rest in process`;
  console.log(`${seconds.toFixed(1)} s`);
  return `${what}: ${how}, ${seconds.toFixed(1)} s`;
}

/**
 * What set-up does in process when the API is too slow on this machine: the same services the routes call
 * (the orgs service; the integrations service, which seals each token under ORGPLANE_SECRET_KEY as a PUT does),
 * over their own pool on the server's database. Loaded at run time: a set-up through the API needs none of it.
 */
async function inProcessSetup(database: Database, dataDir: string, secretKey: string) {
  const [
    { findRunningEmbeddedPostgres },
    { openDatabase },
    { createOrgsService },
    { createCatalogService },
    catalogFile,
    integrations,
    box,
  ] = await Promise.all([
    import("../src/infra/embedded-postgres.ts"),
    import("../src/store/db.ts"),
    import("../src/domain/orgs/orgs.service.ts"),
    import("../src/domain/catalog/catalog.service.ts"),
    import("../src/infra/catalog-file.ts"),
    import("../src/domain/integrations/integrations.service.ts"),
    import("../src/infra/secret-box.ts"),
  ]);
  const url = database.url ?? (await findRunningEmbeddedPostgres(dataDir));
  if (url === undefined) {
    throw new Error(
      "the embedded PostgreSQL of the running server cannot be reached for the set-up in process",
    );
  }
  const db = openDatabase({ url, poolMax: EXPORT_SETUP_CONCURRENCY, onPoolError: () => {} });
  const { stores, transactor } = db;
  // The server runs the default preset (ORGPLANE_PRESET unset): the same catalog, already synced by it.
  const catalog = await catalogFile.loadPreset(catalogFile.DEFAULT_PRESET);
  const ctx = {
    principal: { kind: "operator" as const, id: "bench", name: "bench:authorize" },
    requestId: "req_bench_export",
    ip: null,
    userAgent: "bench:authorize",
  };
  return {
    ctx,
    orgs: createOrgsService({
      db: transactor,
      stores,
      clock: systemClock,
      plans: createCatalogService({ store: stores.planVersions, catalog }),
    }),
    integrations: integrations.createIntegrationsService({
      db: transactor,
      stores,
      clock: systemClock,
      sealer: box.createSecretBox(box.parseSecretKeys(secretKey)),
      allowPrivate: true,
    }),
    /** The integrations as stored (sealed tokens), for taking them out between rounds and putting them back. */
    store: stores.integrations,
    close: () => db.close(),
  };
}

/** `fn` over an in-process set-up of its own: each server start has its own embedded PostgreSQL port. */
async function withInProcessSetup<T>(
  database: Database,
  dataDir: string,
  secretKey: string,
  fn: (setup: Awaited<ReturnType<typeof inProcessSetup>>) => Promise<T>,
): Promise<T> {
  const setup = await inProcessSetup(database, dataDir, secretKey);
  try {
    return await fn(setup);
  } finally {
    await setup.close();
  }
}

/** What happened within one measured window of an export run, besides the latencies. */
type ExportWindow = {
  /** What the receivers took within the window. */
  window: ExportReceiverStats["window"];
  /** CPU seconds of the Orgplane process, of the receiver and of PostgreSQL (all its processes) within the window. */
  cpu: { orgplane: number | undefined; receiver: number | undefined; postgres: number | undefined };
  /** The kernel's DAMON threads' CPU over the window, ms per second (not ours: the machine's noise, docs/adr/0009). */
  kdamondMsPerSecond: number | undefined;
  /**
   * Orgplane's main thread within the window: ms it waited for a CPU while ready to run, and how many times
   * another task took its CPU (per second). On cores shared with the load generator, the share of this that
   * export adds is where its p99 cost shows.
   */
  mainThread: { waitMsPerSecond: number; preemptionsPerSecond: number } | undefined;
};

type ExportRun = {
  label: string;
  /** At saturation (autocannon, 50 connections): the throughput judged. */
  saturated: Measured & ExportWindow;
  /** At the fixed rate (the C loader, open loop): the p99 judged. */
  paced: Paced & ExportWindow;
};

/** Runs `load` with the receivers' window marked, and reads what the window cost around it. */
async function exportWindow<T>(
  orgplanePid: number,
  receiver: ExportReceiverClient,
  receiverPid: number,
  load: () => Promise<T>,
): Promise<T & ExportWindow> {
  await receiver.mark();
  const cpuNow = () => ({
    orgplane: processCpuSeconds(orgplanePid),
    receiver: processCpuSeconds(receiverPid),
    postgres: postgresCpuByProcess(),
    kdamond: kdamondCpuByProcess(),
  });
  const before = cpuNow();
  const scheduleBefore = mainThreadSchedule(orgplanePid);
  const windowStart = performance.now();
  const measured = await load();
  const windowSeconds = (performance.now() - windowStart) / 1000;
  const scheduleAfter = mainThreadSchedule(orgplanePid);
  const after = cpuNow();
  const { window } = await receiver.stats();
  const spent = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined ? undefined : b - a;
  const kdamond = cpuSpent(before.kdamond, after.kdamond);
  return {
    ...measured,
    window,
    cpu: {
      orgplane: spent(before.orgplane, after.orgplane),
      receiver: spent(before.receiver, after.receiver),
      postgres: cpuSpent(before.postgres, after.postgres),
    },
    kdamondMsPerSecond: kdamond === undefined ? undefined : (kdamond * 1000) / windowSeconds,
    mainThread:
      scheduleBefore === undefined || scheduleAfter === undefined
        ? undefined
        : {
            waitMsPerSecond: (scheduleAfter.waitMs - scheduleBefore.waitMs) / windowSeconds,
            preemptionsPerSecond: (scheduleAfter.preemptions - scheduleBefore.preemptions) / windowSeconds,
          },
  };
}

/**
 * One measured run: EXPORT_WARMUP_SECONDS of load at saturation, EXPORT_MEASURE_SECONDS counted at saturation,
 * then EXPORT_PACED_WARMUP_SECONDS and EXPORT_MEASURE_SECONDS counted at the fixed rate `rateOf` gives (open
 * loop; asked after the saturated minute, so the first run sets the rate from its own throughput).
 */
async function exportRun(
  label: string,
  port: number,
  orgplanePid: number,
  target: Target,
  receiver: ExportReceiverClient,
  receiverPid: number,
  rateOf: (saturated: Measured) => number,
): Promise<ExportRun> {
  process.stdout.write(
    `  ${label}: ${EXPORT_WARMUP_SECONDS} s warm-up, ${EXPORT_MEASURE_SECONDS} s measured at saturation… `,
  );
  await load(port, target, EXPORT_WARMUP_SECONDS);
  const saturated = await exportWindow(orgplanePid, receiver, receiverPid, () =>
    load(port, target, EXPORT_MEASURE_SECONDS),
  );
  const rate = rateOf(saturated);
  process.stdout.write(`then ${EXPORT_MEASURE_SECONDS} s at ${perSecond(rate)} req/s… `);
  const requestFile = await requestFileFor(port, target);
  await loadAtRate(port, requestFile, target, rate, EXPORT_PACED_WARMUP_SECONDS);
  const paced = await exportWindow(orgplanePid, receiver, receiverPid, () =>
    loadAtRate(port, requestFile, target, rate, EXPORT_MEASURE_SECONDS),
  );
  console.log("done");
  return { label, saturated, paced };
}

/** How many of `ids` got at least `owed` pushes, fewer, none; and the most one got. */
function pushSpread(perId: Record<string, number>, ids: readonly string[], owed: number): string {
  let enough = 0;
  let fewer = 0;
  let none = 0;
  let most = 0;
  for (const id of ids) {
    const n = perId[id] ?? 0;
    if (n >= owed) {
      enough++;
    } else if (n > 0) {
      fewer++;
    } else {
      none++;
    }
    most = Math.max(most, n);
  }
  return `${enough.toLocaleString("en-US")} with ≥ ${owed}, ${fewer} with fewer, ${none} with none (at most ${most})`;
}

type IntegrationStatuses = { summary: string };

/** What GET …/integrations says of these orgs' export, per kind: a last success, a last error, or neither yet. */
async function integrationStatuses(api: Api, orgIds: readonly string[]): Promise<IntegrationStatuses> {
  const counts = {
    prometheus: { ok: 0, failing: 0, never: 0 },
    loki: { ok: 0, failing: 0, never: 0 },
  };
  const errors = new Set<string>();
  for (const orgId of orgIds) {
    const got = await api.expect("read integrations", "GET", `/v1/organizations/${orgId}/integrations`, 200);
    for (const kind of ["prometheus", "loki"] as const) {
      const entry = got[kind];
      const status = typeof entry === "object" && entry !== null ? (entry as Record<string, unknown>) : {};
      if (typeof status.last_error === "string") {
        counts[kind].failing++;
        errors.add(`${kind}: ${status.last_error.slice(0, 120)}`);
      } else if (typeof status.last_success_at === "string") {
        counts[kind].ok++;
      } else {
        counts[kind].never++;
      }
    }
  }
  const kinds = (["prometheus", "loki"] as const)
    .map((kind) => {
      const c = counts[kind];
      return `${kind}: ${c.ok} with a last success, ${c.failing} with a last error, ${c.never} with neither`;
    })
    .join("; ");
  return { summary: errors.size > 0 ? `${kinds} (${[...errors].slice(0, 3).join("; ")})` : kinds };
}

/**
 * Authorize at 50 connections (memory limiter), keys of EXPORT_LOAD_ORGS orgs in turn, against a database of
 * EXPORT_ORGS orgs: first with no integration configured, then with every org's Prometheus and Loki
 * integrations (credentials of its own) pointing at the local receivers.
 */
async function exportComparison(): Promise<void> {
  const started = performance.now();
  const workDir = await tempDir("orgplane-bench-export-");
  await chmod(workDir, 0o755);
  const dataDir = join(workDir, "data");
  await mkdir(dataDir);
  await chmod(dataDir, 0o755);
  const database = await freshDatabase();
  onCleanup(() => database.drop());
  // The server's key for the tokens at rest, as an operator sets one; the tokens themselves derive from a seed
  // the receiver holds, so it can tell a token that came back wrong.
  const secretKey = `bench-${randomBytes(3).toString("hex")}:${randomBytes(32).toString("base64")}`;
  const seed = randomBytes(16).toString("hex");
  const env = {
    ORGPLANE_SECRET_KEY: secretKey,
    INTEGRATIONS_ALLOW_PRIVATE: "true",
    // Their defaults, whatever the shell has set: a push every 15 s, allowed decisions not sent to Loki.
    METRICS_PUSH_INTERVAL_SECONDS: "",
    LOKI_ALLOWED_SAMPLE_RATE: "",
    LOKI_BUFFER_LINES: "",
  };
  console.log(
    `\nexport comparison (issue 9): ${EXPORT_ORGS.toLocaleString("en-US")} orgs on ${database.label}; authorize at ` +
      `${CONNECTIONS} connections, memory limiter, the keys of ${EXPORT_LOAD_ORGS} orgs in turn ` +
      `(${EXPORT_DENIED_ORGS} of them limited to 1 ${CATEGORY} request a minute: their decisions are denials); ` +
      `${placement()}; ${damonNote()}`,
  );

  process.stdout.write(
    "  starting the receivers (Prometheus remote-write and Loki push, one node:http process)… ",
  );
  const receiverPort = await freePort();
  const receiverLog = join(workDir, "receiver.log");
  const receiverChild = spawnChild(
    "export receiver",
    ["bench/export-receiver.ts"],
    { PORT: String(receiverPort), SEED: seed },
    receiverLog,
  );
  await waitForStatus(receiverChild, `http://127.0.0.1:${receiverPort}/`, receiverLog);
  const receiver = new ExportReceiverClient(receiverPort);
  console.log("ready");

  process.stdout.write("  starting Orgplane for the set-up… ");
  const setupServer = await startOrgplane("export-setup", dataDir, database, undefined, env);
  setupServer.api.close();
  console.log("ready");
  const operatorKey = setupServer.api.operatorKey;
  const setupApi = (port: number) =>
    new Api(port, operatorKey, { maxSockets: EXPORT_SETUP_CONCURRENCY, timeoutMs: CALL_TIMEOUT_MS });
  let api = setupApi(setupServer.port);

  const tag = randomBytes(3).toString("hex");
  const orgIds: string[] = new Array<string>(EXPORT_ORGS).fill("");
  const orgInput = (i: number) => ({ name: `Export ${i}`, slug: `export-${tag}-${i}` });
  const setupNotes: string[] = [];
  setupNotes.push(
    await setUpStep(
      `creating ${EXPORT_ORGS.toLocaleString("en-US")} orgs`,
      EXPORT_ORGS,
      async (i) => {
        const org = await api.expect("create organization", "POST", "/v1/organizations", 201, orgInput(i));
        orgIds[i] = String(org.id);
      },
      (from, to) =>
        withInProcessSetup(database, dataDir, secretKey, ({ ctx, orgs }) =>
          pooled(from, to, EXPORT_SETUP_CONCURRENCY, async (i) => {
            orgIds[i] = (await orgs.create(ctx, orgInput(i))).id;
          }),
        ),
    ),
  );

  process.stdout.write(`  the ${EXPORT_LOAD_ORGS} load orgs' limits and keys… `);
  const keys: string[] = new Array<string>(EXPORT_LOAD_ORGS).fill("");
  await pooled(0, EXPORT_LOAD_ORGS, EXPORT_SETUP_CONCURRENCY, async (i) => {
    const orgId = orgIds[i] ?? "";
    await api.expect("set the search limit", "PATCH", `/v1/organizations/${orgId}/rate-limits`, 200, {
      rate_limits: { [CATEGORY]: i < EXPORT_DENIED_ORGS ? 1 : HUGE_LIMIT },
    });
    const created = await api.expect("create API key", "POST", `/v1/organizations/${orgId}/api-keys`, 201, {
      name: "bench",
    });
    keys[i] = String(created.key);
  });
  console.log("done");
  api.close();
  await stopChild(setupServer.child);

  // Every request names its key in the body: each connection cycles through the load orgs' keys, the denied
  // orgs' first, so about EXPORT_DENIED_ORGS in EXPORT_LOAD_ORGS decisions are denials all along.
  const target: Target = {
    method: "POST",
    path: "/v1/authorize",
    headers: { Authorization: `Bearer ${operatorKey}`, "Content-Type": "application/json" },
    bodies: keys.map((key) => JSON.stringify({ key, category: CATEGORY })),
    // Allowed and denied decisions alike: both are what the load is made of.
    expect: '"allowed":',
  };

  // Every org's own credentials: ids name the org's index, tokens derive from the receiver's seed.
  const promId = (i: number) => `p${i}`;
  const lokiId = (i: number) => `l${i}`;
  const integrationsInput = (i: number) => ({
    prometheus: {
      endpoint: `http://127.0.0.1:${receiverPort}/api/prom/push`,
      id: promId(i),
      token: exportToken(seed, promId(i)),
    },
    loki: {
      endpoint: `http://127.0.0.1:${receiverPort}/loki/api/v1/push`,
      id: lokiId(i),
      token: exportToken(seed, lokiId(i)),
    },
  });

  // Four runs, each a fresh start of the same configuration: without, with, with, without export. Each side's
  // two runs are averaged: a machine whose speed drifts steadily during the comparison weighs on both alike.
  const runs: ExportRun[] = [];
  // The fixed rate of every run's second minute: EXPORT_RATE_SHARE of the first run's throughput (without
  // export), the same for all four.
  let rate = 0;
  const rateOf = (saturated: Measured) => {
    if (rate === 0) {
      rate = Math.max(1, Math.round(EXPORT_RATE_SHARE * saturated.rps));
    }
    return rate;
  };
  const run = async (label: string, configured: boolean, after?: (server: Orgplane) => Promise<void>) => {
    process.stdout.write(
      `  starting Orgplane: ${configured ? "every org's integrations configured" : "no integration configured"}… `,
    );
    const server = await startOrgplane(`export-${runs.length + 1}`, dataDir, database, undefined, env);
    console.log("ready");
    runs.push(
      await exportRun(label, server.port, server.child.pid, target, receiver, receiverChild.pid, rateOf),
    );
    await after?.(server);
    server.api.close();
    await stopChild(server.child);
  };
  // Before any is configured: this server's exporters start pushing as soon as they see the first ones.
  await receiver.setOrgs(
    Object.fromEntries(
      orgIds.flatMap((orgId, i) => [[promId(i), orgId] as const, [lokiId(i), orgId] as const]),
    ),
  );
  let statuses: IntegrationStatuses | undefined;
  await run("without export (1)", false, async (server) => {
    api = setupApi(server.port);
    setupNotes.push(
      await setUpStep(
        `configuring ${(2 * EXPORT_ORGS).toLocaleString("en-US")} integrations (a Prometheus and a Loki one per org)`,
        EXPORT_ORGS,
        async (i) => {
          await api.expect(
            "configure integrations",
            "PUT",
            `/v1/organizations/${orgIds[i] ?? ""}/integrations`,
            200,
            integrationsInput(i),
          );
        },
        (from, to) =>
          withInProcessSetup(database, dataDir, secretKey, ({ ctx, integrations }) =>
            pooled(from, to, EXPORT_SETUP_CONCURRENCY, async (i) => {
              await integrations.put(ctx, orgIds[i] ?? "", integrationsInput(i));
            }),
          ),
      ),
    );
    api.close();
  });
  await run("with export (1)", true);
  await run("with export (2)", true, async (server) => {
    statuses = await integrationStatuses(server.api, orgIds.slice(0, EXPORT_LOAD_ORGS));
    // Taken out through the store, all at once: removing 20,000 through the service would take as long as
    // configuring them did, and the run that follows only needs none configured.
    process.stdout.write("  taking every integration out for the last run… ");
    const removed = await withInProcessSetup(database, dataDir, secretKey, async ({ store }) => {
      const rows = [...(await store.listActive("prometheus")), ...(await store.listActive("loki"))];
      await pooled(0, rows.length, EXPORT_SETUP_CONCURRENCY, async (i) => {
        const row = rows[i];
        if (row !== undefined) {
          await store.delete(row.orgId, row.kind);
        }
      });
      return rows.length;
    });
    console.log(`${removed.toLocaleString("en-US")} removed`);
  });
  await run("without export (2)", false);
  const { totals, problems } = await receiver.stats();

  // ---- report
  const [off1, on1, on2, off2] = runs;
  if (
    off1 === undefined ||
    on1 === undefined ||
    on2 === undefined ||
    off2 === undefined ||
    statuses === undefined
  ) {
    throw new Error("the export comparison lost a run");
  }
  const header = `${"".padEnd(LABEL_WIDTH)}${"req/s".padStart(10)}${"p50".padStart(11)}${"p99".padStart(11)}`;
  console.log(
    `\n${header}   CPU per 1,000 requests (the kernel's DAMON: per second); Orgplane's main thread: waiting for a CPU, CPU taken by another task; pushes received in the window`,
  );
  const line = (label: string, m: Measured, rest: string) =>
    console.log(
      `  ${label.padEnd(LABEL_WIDTH - 2)}${perSecond(m.rps).padStart(10)}${ms(m.p50).padStart(11)}` +
        `${ms(m.p99).padStart(11)}   ${rest}${m.problems.length > 0 ? `; INVALID: ${m.problems.join("; ")}` : ""}`,
    );
  const windowLine = (label: string, m: Measured & ExportWindow, extra?: string) => {
    const requests = m.rps * EXPORT_MEASURE_SECONDS;
    const cpu = (seconds: number | undefined) =>
      seconds === undefined || requests <= 0 ? "?" : `${((seconds / requests) * 1_000_000).toFixed(0)} ms`;
    line(
      label,
      m,
      `Orgplane ${cpu(m.cpu.orgplane)}, PostgreSQL ${cpu(m.cpu.postgres)}, receiver ${cpu(m.cpu.receiver)}` +
        // Not per request: the kernel's, whatever the load (docs/adr/0009).
        `, kdamond ${m.kdamondMsPerSecond === undefined ? "?" : `${m.kdamondMsPerSecond.toFixed(0)} ms/s`}; ` +
        (m.mainThread === undefined
          ? "main thread ?; "
          : `main thread ${m.mainThread.waitMsPerSecond.toFixed(0)} ms/s, ` +
            `${m.mainThread.preemptionsPerSecond.toFixed(0)}/s; `) +
        `remote-write ` +
        `${m.window.prometheus.pushes.toLocaleString("en-US")}, Loki ${m.window.loki.pushes.toLocaleString("en-US")}` +
        (extra === undefined ? "" : `; ${extra}`),
    );
  };
  // A run's fixed-rate minute, its shortfall against the rate (if any) among its problems.
  const paced = (r: ExportRun): Measured & ExportWindow => ({
    ...r.paced,
    problems: fixedRateProblems(r.paced, r.paced.requested),
  });
  console.log("  at saturation (autocannon, 50 connections): the throughput");
  for (const r of runs) {
    windowLine(`Orgplane POST /v1/authorize, ${r.label}`, r.saturated);
  }
  console.log(
    `  at ${perSecond(rate)} req/s (${percent(EXPORT_RATE_SHARE)} of the first run's throughput, open loop, bench/fixed-rate-loader.c): the p99`,
  );
  for (const r of runs) {
    windowLine(`Orgplane POST /v1/authorize, ${r.label}`, paced(r), loaderNote(r.paced));
  }
  const meanOf = (a: Measured, b: Measured): Measured => ({
    rps: (a.rps + b.rps) / 2,
    p50: (a.p50 + b.p50) / 2,
    p99: (a.p99 + b.p99) / 2,
    problems: [...a.problems, ...b.problems],
  });
  const offSaturated = meanOf(off1.saturated, off2.saturated);
  const onSaturated = meanOf(on1.saturated, on2.saturated);
  const offPaced = meanOf(paced(off1), paced(off2));
  const onPaced = meanOf(paced(on1), paced(on2));
  line("mean without export, at saturation", offSaturated, "");
  line("mean with export, at saturation", onSaturated, "");
  line(`mean without export, at ${perSecond(rate)} req/s`, offPaced, "");
  line(`mean with export, at ${perSecond(rate)} req/s`, onPaced, "");

  const throughput = onSaturated.rps / Math.max(offSaturated.rps, 1);
  const p99 = onPaced.p99 / offPaced.p99;
  const throughputOk = throughput >= EXPORT_MIN_THROUGHPUT;
  const p99Ok = p99 <= EXPORT_MAX_P99;
  const invalid =
    offSaturated.problems.length +
      onSaturated.problems.length +
      offPaced.problems.length +
      onPaced.problems.length >
    0;
  console.log(
    `\n  with export / without (means): throughput at saturation ${percent(throughput)} ` +
      `(≥ ${Math.round(EXPORT_MIN_THROUGHPUT * 100)}%: ${throughputOk ? "PASS" : "MISS"}), p99 at ` +
      `${perSecond(rate)} req/s ${percent(p99)} (≤ ${Math.round(EXPORT_MAX_P99 * 100)}%: ${p99Ok ? "PASS" : "MISS"}); ` +
      `within 10%: ${invalid ? "INVALID (see the rows)" : throughputOk && p99Ok ? "PASS" : "MISS"}`,
  );
  console.log(
    `  not judged: p99 at saturation ${percent(onSaturated.p99 / offSaturated.p99)} (at saturation, latency restates ` +
      "throughput: 50 connections / req/s, plus how the shared cores were scheduled; docs/adr/0007)",
  );
  // The same configuration measured twice: how far apart its two runs are is the noise of this machine.
  const apart = (a: number, b: number) => Math.abs(a - b) / Math.max(a, b, Number.MIN_VALUE);
  const noise = Math.max(
    apart(off1.saturated.rps, off2.saturated.rps),
    apart(on1.saturated.rps, on2.saturated.rps),
    apart(off1.paced.p99, off2.paced.p99),
    apart(on1.paced.p99, on2.paced.p99),
  );
  console.log(
    `  noise: the two runs of one configuration differ by up to ${percent(noise)} (throughput, or p99 at the fixed rate)` +
      (noise > 1 - EXPORT_MIN_THROUGHPUT
        ? ": more than the 10% judged, so the verdict is not conclusive on this machine; run again on a quiet one" +
          (damonMonitorsOn().length > 0 ? " (the kernel's DAMON is running: see the header)" : "")
        : ""),
  );

  // ---- proof of export
  const allPromIds = orgIds.map((_, i) => promId(i));
  const loadPromIds = allPromIds.slice(0, EXPORT_LOAD_ORGS);
  const deniedLokiIds = orgIds.slice(0, EXPORT_DENIED_ORGS).map((_, i) => lokiId(i));
  console.log(
    `\n  what the receivers got in the windows with export (METRICS_PUSH_INTERVAL_SECONDS ${EXPORT_INTERVAL_SECONDS}; ` +
      `an org whose series did not change owes one remote-write per ${EXPORT_RESEND_SECONDS} s, an org with traffic ` +
      "one per interval):",
  );
  const windowsWithExport = [on1, on2].flatMap((r) => [
    { label: `${r.label} at saturation`, w: r.saturated.window },
    { label: `${r.label} at ${perSecond(rate)} req/s`, w: r.paced.window },
  ]);
  for (const { label, w } of windowsWithExport) {
    const seconds = w.seconds;
    // Every org is owed a push per resend period; the load orgs, whose counters move, one per interval
    // (less one: the window's edges may cut an interval's push out).
    const owedIdle = Math.max(1, Math.floor(seconds / EXPORT_RESEND_SECONDS));
    const owed = Math.max(1, Math.floor(seconds / EXPORT_INTERVAL_SECONDS) - 1);
    console.log(
      `    ${label}, ${seconds.toFixed(1)} s: remote-write ${w.prometheus.pushes.toLocaleString("en-US")} pushes ` +
        `(${perSecond(w.prometheus.pushes / seconds)}/s, ${(w.prometheus.bytes / 1024).toFixed(0)} KiB) from ` +
        `${Object.keys(w.prometheus.perId).length.toLocaleString("en-US")} of ${EXPORT_ORGS.toLocaleString("en-US")} ` +
        `orgs, per org: ${pushSpread(w.prometheus.perId, allPromIds, owedIdle)}; the ${EXPORT_LOAD_ORGS} load orgs: ` +
        `${pushSpread(w.prometheus.perId, loadPromIds, owed)}`,
    );
    console.log(
      `      Loki ${w.loki.pushes.toLocaleString("en-US")} pushes, ${w.loki.lines.toLocaleString("en-US")} lines ` +
        `(${perSecond(w.loki.lines / seconds)}/s) in ${w.loki.streams.toLocaleString("en-US")} streams from ` +
        `${Object.keys(w.loki.perId).length.toLocaleString("en-US")} orgs; the ${EXPORT_DENIED_ORGS} orgs whose decisions are denials: ` +
        `${deniedLokiIds.map((id) => w.loki.perId[id] ?? 0).join(", ")} pushes (a batch at most every second ` +
        `while their denials flow: up to about ${Math.floor(seconds)} each)`,
    );
  }
  const offPushes = [off1, off2]
    .flatMap((r) => [r.saturated.window, r.paced.window])
    .reduce((n, w) => n + w.prometheus.pushes + w.loki.pushes, 0);
  console.log(
    `    refused for a wrong token: ${totals.prometheus.badAuth + totals.loki.badAuth} (whole comparison); pushes ` +
      `in the runs without export: ${offPushes} (expected 0); the load orgs' integrations after the second run ` +
      `with export (GET …/integrations): ${statuses.summary}`,
  );
  const problemList = Object.entries(problems);
  if (problemList.length > 0) {
    console.log(
      `    PROBLEMS the receivers saw (whole comparison): ${problemList.map(([what, n]) => `${n}× ${what}`).join("; ")}`,
    );
  }
  console.log(
    `\n  set-up: ${setupNotes.join("; ")}. Each run: a fresh start of the same server configuration ` +
      `(ORGPLANE_SECRET_KEY set, INTEGRATIONS_ALLOW_PRIVATE=true, METRICS_PUSH_INTERVAL_SECONDS and ` +
      `LOKI_ALLOWED_SAMPLE_RATE at their defaults) on the same database, ${EXPORT_WARMUP_SECONDS} s of load ` +
      `before ${EXPORT_MEASURE_SECONDS} s measured. CPU: the Orgplane process, every PostgreSQL ` +
      `process of the machine (the exporters' reads and writes included; one that ended within the window is left out), and the receivers'. Comparison time ${Math.round((performance.now() - started) / 1000)} s.`,
  );
}

/** The baselines and the hot path's rows (issue 5's targets). */
async function measureHotPath(): Promise<void> {
  const started = performance.now();
  const workDir = await tempDir("orgplane-bench-");
  // mkdtemp makes it 0700; as root, the embedded PostgreSQL runs as `postgres`, which must reach it.
  await chmod(workDir, 0o755);
  const dataDir = join(workDir, "data");
  await mkdir(dataDir);
  await chmod(dataDir, 0o755);

  const redis = await redisUrlIfAnswering();
  const database = await freshDatabase();
  // Dropped by cleanup(), after the servers on it have stopped.
  onCleanup(() => database.drop());
  console.log(
    `autocannon ${CONNECTIONS} connections on loopback, in this process; ${WARMUP_SECONDS} s warm-up + ` +
      `${MEASURE_SECONDS} s measured per row; Node ${process.version}, ${availableParallelism()} CPUs, ` +
      `${placement()}; ${damonNote()}`,
  );
  console.log(
    `Orgplane: ${database.label}; LOG_LEVEL=${LOG_LEVEL}; org limit ${CATEGORY} = ${HUGE_LIMIT.toLocaleString("en-US")}/min; ` +
      `Redis: ${redis.url === undefined ? redis.why : new URL(redis.url).host}`,
  );

  const rows: Row[] = [];
  // Orgplane does not exist yet: a stand-in request of the same shape and length as the real one.
  const standIn = authorizeTarget(generateKey("sk", "live"), generateKey("op", "live"));
  process.stdout.write("measuring the bare node:http server: GET / and the authorize request… ");
  const bareFirst = await measureBare(workDir, standIn);
  console.log("done");
  const fixedRate =
    bareFirst.post.problems.length > 0 ? 0 : Math.round(FIXED_RATE_SHARE * bareFirst.post.rps);

  process.stdout.write("starting Orgplane (memory limiter)… ");
  const memory = await startOrgplane("memory", dataDir, database, undefined);
  const operatorKey = memory.api.operatorKey;
  const { key } = await setUp(memory.api);
  const realAuthorize = authorizeTarget(key, operatorKey);
  const shapeNote = shapeDifference(standIn, realAuthorize);
  if (shapeNote !== undefined) {
    console.log(`\nNOTE: ${shapeNote}`);
  }
  const authorizeMissing = await probeAuthorize(memory.api, key);
  memory.api.close();
  console.log("ready");
  for (const { label, target } of targets(key, operatorKey, authorizeMissing === undefined)) {
    if (!selected(label)) {
      continue;
    }
    process.stdout.write(`  ${label} (memory)… `);
    const measured = await measure(memory.port, target);
    console.log("done");
    rows.push({
      label: `Orgplane ${label} (memory)`,
      measured,
      baseline: target.method,
      ...(label === AUTHORIZE_LABEL ? { ratioTarget: TARGET_MEMORY_RATIO } : {}),
    });
    if (label === AUTHORIZE_LABEL) {
      rows.push(await fixedRateRow(memory.port, target, fixedRate, "memory"));
    }
  }
  if (authorizeMissing !== undefined) {
    rows.push({
      label: `Orgplane ${AUTHORIZE_LABEL} (memory)`,
      measured: undefined,
      note: `/v1/authorize is not measured: ${authorizeMissing}`,
    });
  }
  await stopChild(memory.child);

  if (redis.url === undefined) {
    rows.push({
      label: `Orgplane ${AUTHORIZE_LABEL} (Redis)`,
      measured: undefined,
      note: `skipped: ${redis.why}`,
    });
  } else {
    process.stdout.write("starting Orgplane (Redis limiter, same database)… ");
    const shared = await startOrgplane("redis", dataDir, database, redis.url);
    const authorizeMissingRedis = await probeAuthorize(shared.api, key);
    shared.api.close();
    console.log("ready");
    for (const { label, target } of targets(key, operatorKey, authorizeMissingRedis === undefined)) {
      if (!label.startsWith("POST ") || !selected(label)) {
        continue;
      }
      process.stdout.write(`  ${label} (Redis)… `);
      const measured = await measure(shared.port, target);
      console.log("done");
      rows.push({
        label: `Orgplane ${label} (Redis)`,
        measured,
        baseline: target.method,
        ...(label === AUTHORIZE_LABEL ? { ratioTarget: TARGET_REDIS_RATIO } : {}),
      });
      if (label === AUTHORIZE_LABEL) {
        rows.push(await fixedRateRow(shared.port, target, fixedRate, "Redis"));
      }
    }
    if (authorizeMissingRedis !== undefined) {
      rows.push({
        label: `Orgplane ${AUTHORIZE_LABEL} (Redis)`,
        measured: undefined,
        note: `/v1/authorize is not measured: ${authorizeMissingRedis}`,
      });
    }
    await stopChild(shared.child);
  }

  process.stdout.write(
    `measuring the bare node:http server again: GET /, the authorize request, and it at ${perSecond(fixedRate)} req/s… `,
  );
  // Orgplane exists now: the very request the authorize rows sent.
  const bareLast = await measureBare(workDir, realAuthorize, fixedRate);
  console.log("done");

  printTable(bareFirst, bareLast, rows);
  console.log(
    `\ntargets (issue 5): /v1/authorize ≥ ${TARGET_MEMORY_RATIO * 100}% of the bare server's req/s with the ` +
      `memory store, ≥ ${TARGET_REDIS_RATIO * 100}% with Redis; p99 ≤ ${TARGET_P99_MS} ms at ${CONNECTIONS} connections.`,
  );
  console.log(
    `of bare: req/s as a share of the bare server answering the same kind of request, the mean of its first and ` +
      `last runs: (a) GET / for GET rows, (b) for POST rows the authorize request (same method, path, headers ` +
      `and body bytes; ${shapeNote === undefined ? "the first run sent a stand-in of identical length" : shapeNote}). ` +
      `of (a): the same against GET /, which also charges the load generator's extra cost of a POST to Orgplane.`,
  );
  const authorizeMemory = rows.find((row) => row.label === `Orgplane ${AUTHORIZE_LABEL} (memory)`)?.measured;
  console.log(
    `p99 is judged at a fixed rate, not at saturation: there every one of the ${CONNECTIONS} connections always ` +
      `has a request waiting, so the mean latency is ${CONNECTIONS} / req/s (Little's law) and p99 lies above it; ` +
      `${
        authorizeMemory === undefined || authorizeMemory.rps <= 0
          ? ""
          : `authorize (memory) at ${perSecond(authorizeMemory.rps)} req/s waits ${ms((CONNECTIONS / authorizeMemory.rps) * 1000)} on average, `
      }` +
      `and a p99 ≤ ${TARGET_P99_MS} ms at saturation would need more than ${perSecond((CONNECTIONS / TARGET_P99_MS) * 1000)} req/s ` +
      `whatever the latency at a normal load. The fixed-rate rows send ${perSecond(fixedRate)} req/s ` +
      `(${FIXED_RATE_SHARE * 100}% of the first (b) baseline) evenly over ${CONNECTIONS} connections, open loop, ` +
      `latency counted from when each request is issued; INVALID when fewer than ${100 - RATE_TOLERANCE * 100}% ` +
      `of the requested responses came back within the window.`,
  );
  console.log(
    `req/s counts only 2xx responses whose body was checked; p50/p99 from 10 µs buckets. ` +
      `Run time ${Math.round((performance.now() - started) / 1000)} s.`,
  );
}

async function main(): Promise<void> {
  const hotPath = targets("", "", true).some(({ label }) => selected(label));
  const exportRows = selected(EXPORT_LABEL);
  if (!hotPath && !exportRows) {
    throw new Error(
      `BENCH_ONLY='${process.env.BENCH_ONLY}' selects no row: name part of a row's label, or 'export' for the ` +
        "export comparison",
    );
  }
  try {
    if (hotPath) {
      await measureHotPath();
    }
    if (exportRows) {
      await exportComparison();
    }
  } finally {
    await cleanup();
  }
}

const RUN_TIMEOUT_MS = Math.max(
  60_000,
  (targets("", "", true).some(({ label }) => selected(label)) ? HOT_PATH_TIMEOUT_MS : 0) +
    (selected(EXPORT_LABEL) ? EXPORT_TIMEOUT_MS : 0),
);
const runTimer = setTimeout(() => {
  console.error(`\nthe run exceeded ${RUN_TIMEOUT_MS / 1000} s: killing the servers`);
  killChildren();
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
