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
 *   Orgplane: `node src/main.ts` (as `npm start` runs it) on a fresh database: GET /healthz (the framework's
 *     floor), GET /v1/me, POST /v1/keys/verify and POST /v1/authorize with the memory limiter, then the POST
 *     routes on a second start with REDIS_URL set. Each row's "of bare" ratio uses the baseline of its own
 *     request kind ((a) for GET rows, (b) for POST rows); authorize rows also print the ratio against (a).
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
 *     saturation). Nor is node:http's client: it costs the load generator too much to reach the rate.
 * Load: autocannon in this process, 50 connections, loopback only; the fixed-rate rows: raw keep-alive sockets
 * and a pre-built request (`loadAtRate`).
 * Every response body is checked (`"allowed":true`, `"valid":true`…): a denial is a 200 too, so counting 2xx
 * alone would prove nothing.
 * Bounded: WARMUP_SECONDS + MEASURE_SECONDS per row, about 2 minutes in all; the whole run is killed at
 * RUN_TIMEOUT_MS.
 * Usage: npm run bench:authorize
 *   BENCH_DATABASE_URL / TEST_DATABASE_URL: a PostgreSQL server to create a fresh database on (dropped
 *     afterwards); else the embedded PostgreSQL in a temporary data directory.
 *   BENCH_FIXED_RATE_SHARE=<0..1>: the fixed-rate rows' share of the (b) baseline (default 0.35).
 *   BENCH_ONLY=<text>: measure only the Orgplane rows whose label contains it, e.g. BENCH_ONLY=authorize
 *     (a fixed-rate row follows its saturation row; the baselines always run).
 *   BENCH_CPU_PROF=<dir>: write a V8 CPU profile of each Orgplane process there (open in Chrome DevTools).
 *   BENCH_LOG_LEVEL: Orgplane's LOG_LEVEL during the run (default info).
 *   BENCH_REDIS_URL / TEST_REDIS_URL, else redis://127.0.0.1:6379 when it answers; the Redis rows skip otherwise.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";
import { Redis } from "ioredis";
import { generateKey } from "../src/lib/api-key-format.ts";
import {
  Api,
  type Child,
  cleanUpOnExit,
  cleanup,
  createScratchDatabase,
  freePort,
  jsonObject,
  killChildren,
  LatencyHistogram,
  LOG_LEVEL,
  ROOT,
  spawnChild,
  startOrgplane as startServer,
  stopChild,
  tempDir,
  waitForStatus,
} from "./common.ts";

const CONNECTIONS = 50;
/** JIT, connection set-up and the caches of the first requests; not counted. */
const WARMUP_SECONDS = 2;
/** Long enough for a stable median on a noisy 2-core machine, short enough to keep the run near 80 s. */
const MEASURE_SECONDS = 6;
/** The whole run is killed past this, whatever hangs: the children go with it. */
const RUN_TIMEOUT_MS = 300_000;
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

type Paced = Measured & { requested: number };

/** One response parsed off the front of `data` (latin1), or undefined while it is incomplete. */
function nextResponse(data: string): { status: number; body: string; rest: string } | undefined {
  const headEnd = data.indexOf("\r\n\r\n");
  if (headEnd < 0) {
    return undefined;
  }
  const head = data.slice(0, headEnd);
  const status = Number(head.slice(9, 12));
  const length = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head);
  if (length?.[1] !== undefined) {
    const bodyEnd = headEnd + 4 + Number(length[1]);
    return data.length < bodyEnd
      ? undefined
      : { status, body: data.slice(headEnd + 4, bodyEnd), rest: data.slice(bodyEnd) };
  }
  if (!/\r\ntransfer-encoding:[ \t]*chunked/i.test(head)) {
    // Neither: no body (a 204 or 304) as far as this benchmark is concerned.
    return { status, body: "", rest: data.slice(headEnd + 4) };
  }
  let body = "";
  let at = headEnd + 4;
  for (;;) {
    const lineEnd = data.indexOf("\r\n", at);
    if (lineEnd < 0) {
      return undefined;
    }
    const size = Number.parseInt(data.slice(at, lineEnd), 16);
    if (size === 0) {
      // No trailers: the last chunk is followed by an empty line.
      return data.length < lineEnd + 4 ? undefined : { status, body, rest: data.slice(lineEnd + 4) };
    }
    if (data.length < lineEnd + 2 + size + 2) {
      return undefined;
    }
    body += data.slice(lineEnd + 2, lineEnd + 2 + size);
    at = lineEnd + 2 + size + 2;
  }
}

/**
 * Open-loop load at a fixed rate: every millisecond, the requests due by then are issued, round robin over
 * CONNECTIONS keep-alive connections with one request in flight each, as autocannon does (a request due on a
 * busy connection waits for it). Latency runs from the moment a request is issued to its last body byte, so
 * waiting for a busy connection counts. req/s counts the good responses completed within the window; it falls
 * short of `rate` when the server cannot keep up.
 * Raw sockets and a pre-built request, not node:http's client: this costs the load generator, which shares
 * the cores with the server, a fraction of what node:http does (which could not even reach the rate).
 */
async function loadAtRate(port: number, target: Target, rate: number, seconds: number): Promise<Paced> {
  const body = target.body ?? "";
  const request = Buffer.from(
    `${target.method} ${target.path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: keep-alive\r\n` +
      Object.entries(target.headers ?? {})
        .map(([name, value]) => `${name}: ${value}\r\n`)
        .join("") +
      (target.body === undefined ? "" : `Content-Length: ${Buffer.byteLength(body)}\r\n`) +
      `\r\n${body}`,
  );
  const sockets = await Promise.all(
    Array.from(
      { length: CONNECTIONS },
      () =>
        new Promise<Socket>((resolve, reject) => {
          const socket = connect({ host: "127.0.0.1", port, noDelay: true });
          socket.once("connect", () => resolve(socket));
          socket.once("error", reject);
        }),
    ),
  );

  return new Promise((resolve) => {
    const latency = new LatencyHistogram(LATENCY_MAX_MS);
    const refusals = new Set<string>();
    const total = Math.round(rate * seconds);
    let start = 0;
    let end = 0;
    let sent = 0;
    let settled = 0;
    let goodInWindow = 0;
    let non2xx = 0;
    let mismatches = 0;
    let errors = 0;
    let finished = false;
    let drainTimer: NodeJS.Timeout | undefined;

    const finish = () => {
      if (finished) {
        return;
      }
      finished = true;
      clearTimeout(drainTimer);
      for (const socket of sockets) {
        socket.destroy();
      }
      const problems: string[] = [];
      if (non2xx > 0) {
        problems.push(`${non2xx} non-2xx`);
      }
      if (mismatches > 0) {
        problems.push(
          `${mismatches} bodies without ${target.expect} (${[...refusals].join(", ") || "no sample"})`,
        );
      }
      const unanswered = sent - settled - errors;
      if (errors > 0 || unanswered > 0) {
        problems.push(`${errors} errors, ${unanswered} unanswered ${DRAIN_MS / 1000} s after the window`);
      }
      resolve({
        rps: goodInWindow / seconds,
        p50: latency.percentile(50),
        p99: latency.percentile(99),
        problems,
        requested: rate,
      });
    };
    const settle = () => {
      settled++;
      if (sent === total && settled + errors >= sent) {
        finish();
      }
    };

    /** Per connection: when each of its requests was due, the one in flight first. */
    const connections = sockets.map((socket) => {
      const due: number[] = [];
      let data = "";
      let open = true;
      socket.setEncoding("latin1");
      socket.on("data", (chunk: string) => {
        data += chunk;
        for (let response = nextResponse(data); response !== undefined; response = nextResponse(data)) {
          data = response.rest;
          const now = performance.now();
          const issued = due.shift() ?? now;
          if (response.status < 200 || response.status >= 300) {
            non2xx++;
          } else if (!response.body.includes(target.expect)) {
            mismatches++;
            if (refusals.size < 3) {
              refusals.add(reasonOf(response.body));
            }
          } else {
            latency.record(now - issued);
            if (now <= end) {
              goodInWindow++;
            }
          }
          if (due.length > 0) {
            socket.write(request);
          }
          settle();
        }
      });
      const lost = () => {
        if (open) {
          open = false;
          errors += due.length;
          due.length = 0;
          if (sent === total && settled + errors >= sent) {
            finish();
          }
        }
      };
      socket.on("error", lost);
      socket.on("close", lost);
      return {
        send(at: number) {
          if (!open) {
            errors++;
            return;
          }
          due.push(at);
          if (due.length === 1) {
            socket.write(request);
          }
        },
      };
    });

    const tick = () => {
      const now = performance.now();
      const dueNow = now >= end ? total : Math.min(total, Math.floor(((now - start) / 1000) * rate));
      while (sent < dueNow) {
        // Issued now: a timer firing late is the load generator's delay, not the server's.
        connections[sent % CONNECTIONS]?.send(now);
        sent++;
      }
      if (sent < total) {
        setTimeout(tick, 1);
        return;
      }
      if (settled + errors >= sent) {
        finish();
      } else {
        drainTimer = setTimeout(finish, DRAIN_MS);
      }
    };
    start = performance.now();
    end = start + seconds * 1000;
    tick();
  });
}

async function measureAtRate(port: number, target: Target, rate: number): Promise<Paced> {
  await loadAtRate(port, target, rate, WARMUP_SECONDS);
  return loadAtRate(port, target, rate, MEASURE_SECONDS);
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
  const child = spawnChild("bare node:http server", ["-e", BARE_SERVER], { PORT: String(port) }, logFile);
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

/** Orgplane on `dataDir` (where it writes the operator key) with its embedded PostgreSQL or `database`. */
async function startOrgplane(
  label: string,
  dataDir: string,
  database: Database,
  redisUrl: string | undefined,
): Promise<Orgplane> {
  const { child, port, operatorKey } = await startServer(
    `Orgplane (${label})`,
    dataDir,
    {
      EMBEDDED_PG_PORT: String(await freePort()),
      DATABASE_URL: database.url ?? "",
      REDIS_URL: redisUrl ?? "",
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

/** A fixed-rate row's verdict: INVALID when it went wrong or fell short of the rate, else the p99 target's. */
function fixedRateVerdict(m: Measured, requested: number): string {
  const problems = [...m.problems];
  if (m.rps < requested * (1 - RATE_TOLERANCE)) {
    problems.push(
      `only ${perSecond(m.rps)} of the requested ${perSecond(requested)} req/s answered within the window: ` +
        "the server could not keep up",
    );
  }
  if (problems.length > 0) {
    return `INVALID: ${problems.join("; ")}`;
  }
  return `p99 ≤ ${TARGET_P99_MS} ms at ${perSecond(requested)} req/s: ${m.p99 <= TARGET_P99_MS ? "met" : "MISSED"}`;
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
      bareFloorVerdict(paced),
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
  return { label, measured, requested: rate };
}

async function main(): Promise<void> {
  const started = performance.now();
  const workDir = await tempDir("orgplane-bench-");
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
    const authorizeMemory = rows.find(
      (row) => row.label === `Orgplane ${AUTHORIZE_LABEL} (memory)`,
    )?.measured;
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
  } finally {
    await cleanup();
    await database.drop();
  }
}

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
