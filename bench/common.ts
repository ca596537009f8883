/**
 * What the HTTP benchmarks (bench/authorize.ts, bench/usage.ts) share: the servers they start as child
 * processes and how those are stopped whatever ends the run, a scratch database, the operator's API client
 * for the set-up calls, and a latency histogram finer than autocannon's.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { copyFileSync, openSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { Agent, request as httpRequest, type OutgoingHttpHeaders } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { RUNTIME_FLAGS } from "../src/runtime-flags.ts";

export const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** Orgplane's LOG_LEVEL during a run. */
export const LOG_LEVEL = process.env.BENCH_LOG_LEVEL || "info";
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 20_000;

// ---------------------------------------------------------------------------------------------- children

export type Child = { name: string; proc: ChildProcess; pid: number; exited: Promise<void>; done: boolean };
const children = new Set<Child>();
const cleanups: (() => Promise<void>)[] = [];

export function spawnChild(
  name: string,
  args: string[],
  env: Record<string, string>,
  logFile: string,
  /** A taskset CPU list the child (all its threads) is confined to; undefined: any CPU. */
  cpus?: string,
): Child {
  const fd = openSync(logFile, "a");
  const [command, commandArgs] =
    cpus === undefined
      ? [process.execPath, args]
      : ["taskset", ["--cpu-list", cpus, process.execPath, ...args]];
  // detached: the child leads its own process group, so one kill reaches Orgplane and its PostgreSQL.
  // Output goes to a file, not a pipe: reading the log lines would cost this process (the load generator)
  // CPU and distort the figures.
  const proc = spawn(command, commandArgs, {
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

/** SIGKILL to every child's process group, at once: the last resort. */
export function killChildren(): void {
  for (const child of children) {
    killGroup(child, "SIGKILL");
  }
}

/** SIGTERM to the process alone (Orgplane then stops its embedded PostgreSQL cleanly), SIGKILL to its group on timeout. */
export async function stopChild(child: Child): Promise<void> {
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

/** Run by cleanup() after the children have stopped, the last registered first (temp dirs, pools, databases). */
export function onCleanup(fn: () => Promise<void>): void {
  cleanups.push(fn);
}

/** A new directory under the system's temp directory, removed by cleanup(). */
export async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  onCleanup(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

let cleaning: Promise<void> | undefined;

/** Stops the children, then runs the other clean-ups; once, however often it is called. */
export function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const child of [...children]) {
      await stopChild(child);
    }
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (error) {
        console.error(`  clean-up failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  })();
  return cleaning;
}

/**
 * Whatever ends this process takes its children with it (synchronously, on exit); SIGINT and SIGTERM print
 * `<signal>: <what>`, run cleanup() and exit with 130.
 */
export function cleanUpOnExit(what: string): void {
  process.on("exit", killChildren);
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: ${what}`);
      void cleanup().finally(() => process.exit(130));
    });
  }
}

export async function freePort(): Promise<number> {
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

export async function waitForStatus(child: Child, url: string, logFile: string): Promise<void> {
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

export type Orgplane = { child: Child; port: number; logFile: string; operatorKey: string };

/**
 * BENCH_SERVER_CPUS: a CPU list (`taskset --cpu-list`) every Orgplane process (and bench:authorize's bare baseline
 * server) is confined to, so that it does not share cores with the load generator and the receivers (run the
 * bench itself under `taskset` for the rest).
 */
export const SERVER_CPUS = serverCpus(process.env.BENCH_SERVER_CPUS);

function serverCpus(value: string | undefined): string | undefined {
  if (value === undefined || value === "") {
    return undefined;
  }
  if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(value)) {
    throw new Error(`BENCH_SERVER_CPUS must be a CPU list such as 1 or 2-3, got '${value}'`);
  }
  return value;
}

/** How the processes were placed, for a report's header. */
export function placement(): string {
  return SERVER_CPUS === undefined
    ? "load generator, receivers and servers on the same cores"
    : `Orgplane and the bare baseline server confined to CPU ${SERVER_CPUS} (BENCH_SERVER_CPUS); this ` +
        `process (the load generator) and its other children (the export receivers) on CPU ${affinityOfSelf()}`;
}

function affinityOfSelf(): string {
  try {
    const status = readFileSync("/proc/self/status", "utf8");
    return /Cpus_allowed_list:\s*(\S+)/.exec(status)?.[1] ?? "?";
  } catch {
    return "?";
  }
}

/**
 * `node --no-memory-reducer src/main.ts` (as `npm start` runs it, with RUNTIME_FLAGS) on a free loopback port
 * with its data directory `dataDir`, answering /readyz, and the operator key it wrote there. `env` goes over
 * the defaults: LOG_LEVEL, and no DATABASE_URL, REDIS_URL, ORGPLANE_CONFIG or ORGPLANE_PRESET, whatever the
 * shell has set (it must not change what is measured). BENCH_CPU_PROF=<dir>: the process writes a V8 CPU
 * profile there when it stops. BENCH_NODE_FLAGS: more Node/V8 flags for it, space-separated (e.g.
 * `--trace-gc`, which prints to its log). BENCH_LOG_DIR=<dir>: its log is kept there (a copy, when it stops)
 * instead of only in the run's temporary directory.
 */
export async function startOrgplane(
  name: string,
  dataDir: string,
  env: Record<string, string>,
  logFile: string,
): Promise<Orgplane> {
  const port = await freePort();
  const profile = process.env.BENCH_CPU_PROF
    ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`]
    : [];
  const flags = (process.env.BENCH_NODE_FLAGS ?? "").split(" ").filter((flag) => flag !== "");
  const child = spawnChild(
    name,
    [...RUNTIME_FLAGS, ...profile, ...flags, "src/main.ts"],
    {
      HOST: "127.0.0.1",
      PORT: String(port),
      ORGPLANE_DATA_DIR: dataDir,
      LOG_LEVEL,
      DATABASE_URL: "",
      REDIS_URL: "",
      ORGPLANE_CONFIG: "",
      ORGPLANE_PRESET: "",
      ...env,
    },
    logFile,
    SERVER_CPUS,
  );
  const logDir = process.env.BENCH_LOG_DIR;
  if (logDir !== undefined && logDir !== "") {
    const kept = join(logDir, `${basename(logFile, ".log")}-${child.pid}.log`);
    // Synchronous: registered before anyone else waits for the exit, it is done before the clean-up that
    // removes the temporary directory runs.
    void child.exited.then(() => {
      try {
        copyFileSync(logFile, kept);
      } catch (error) {
        console.error(`BENCH_LOG_DIR: could not keep ${logFile}: ${String(error)}`);
      }
    });
  }
  await waitForStatus(child, `http://127.0.0.1:${port}/readyz`, logFile);
  const operatorKey = (await readFile(join(dataDir, "operator-key"), "utf8")).trim();
  return { child, port, logFile, operatorKey };
}

// ---------------------------------------------------------------------------------------------- database

export type ScratchDatabase = { name: string; url: string; admin: pg.Client; drop(): Promise<void> };

/** A new database `name` on the server of `adminUrl`; `drop()` drops it and closes the admin connection. */
export async function createScratchDatabase(
  adminUrl: string,
  name: string,
  applicationName?: string,
): Promise<ScratchDatabase> {
  const admin = new pg.Client({
    connectionString: adminUrl,
    ...(applicationName === undefined ? {} : { application_name: applicationName }),
  });
  try {
    await admin.connect();
  } catch (error) {
    throw new Error(
      `no PostgreSQL at ${new URL(adminUrl).host} (${error instanceof Error ? error.message : String(error)}): ` +
        "set BENCH_DATABASE_URL to a server this benchmark may create a database on",
    );
  }
  await admin.query(`create database ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    admin,
    async drop() {
      try {
        await admin.query(`drop database if exists ${name} with (force)`);
      } finally {
        await admin.end();
      }
    },
  };
}

// ------------------------------------------------------------------------------------------- the API

export type Response = { status: number; text: string };

/** One request over `agent` (node:http: cheaper for the load generator than fetch), the body read whole. */
export function send(
  agent: Agent,
  port: number,
  method: string,
  path: string,
  headers: OutgoingHttpHeaders,
  body: Buffer | undefined,
  timeoutMs: number,
): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        agent,
        host: "127.0.0.1",
        port,
        method,
        path,
        headers: body === undefined ? headers : { ...headers, "Content-Length": body.length },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on("error", reject);
    req.end(body);
  });
}

/** The object a body holds, else {} (not JSON, or not an object): the status and text say enough. */
export function jsonObject(text: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) {
      return parsed as Record<string, unknown>;
    }
  } catch {
    // Not JSON.
  }
  return {};
}

/** Orgplane's API as the operator: keep-alive connections, JSON bodies. */
export class Api {
  readonly agent: Agent;
  readonly port: number;
  readonly operatorKey: string;
  readonly timeoutMs: number;
  constructor(port: number, operatorKey: string, options: { maxSockets: number; timeoutMs: number }) {
    this.port = port;
    this.operatorKey = operatorKey;
    this.agent = new Agent({ keepAlive: true, maxSockets: options.maxSockets });
    this.timeoutMs = options.timeoutMs;
  }

  headers(json: boolean): OutgoingHttpHeaders {
    return {
      Authorization: `Bearer ${this.operatorKey}`,
      ...(json ? { "Content-Type": "application/json" } : {}),
    };
  }

  async call(method: string, path: string, body?: unknown): Promise<Response> {
    return send(
      this.agent,
      this.port,
      method,
      path,
      this.headers(body !== undefined),
      body === undefined ? undefined : Buffer.from(JSON.stringify(body)),
      this.timeoutMs,
    );
  }

  /** The JSON object of the answer, which must have `status`. */
  async expect(what: string, method: string, path: string, status: number, body?: unknown) {
    const r = await this.call(method, path, body);
    if (r.status !== status) {
      throw new Error(`${what}: expected ${status}, got ${r.status}: ${r.text.slice(0, 500)}`);
    }
    return jsonObject(r.text);
  }

  /** Closes the kept-alive connections. */
  close(): void {
    this.agent.destroy();
  }
}

// ------------------------------------------------------------------------------------------ measurement

/** 10 µs buckets up to `maxMs` (the last bucket holds everything above): autocannon keeps whole milliseconds. */
export class LatencyHistogram {
  static readonly BUCKET_MS = 0.01;
  readonly buckets: Uint32Array;
  count = 0;

  constructor(maxMs: number) {
    this.buckets = new Uint32Array(Math.round(maxMs / LatencyHistogram.BUCKET_MS));
  }

  record(ms: number): void {
    this.addToBucket(Math.floor(ms / LatencyHistogram.BUCKET_MS), 1);
  }

  /** `n` samples into bucket `index` (the last bucket beyond it): a histogram counted elsewhere in the same buckets. */
  addToBucket(index: number, n: number): void {
    const at = Math.min(this.buckets.length - 1, Math.max(0, index));
    this.buckets[at] = (this.buckets[at] ?? 0) + n;
    this.count += n;
  }

  /** Upper edge of the bucket holding the p-th percentile, in ms; NaN when nothing was recorded. */
  percentile(p: number): number {
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      seen += this.buckets[i] ?? 0;
      if (seen >= rank) {
        return (i + 1) * LatencyHistogram.BUCKET_MS;
      }
    }
    return Number.NaN;
  }
}

/** An integer setting from the environment (`_` allowed as a digit separator), at least `min`. */
export function intEnv(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") {
    return fallback;
  }
  const value = Number(raw.replaceAll("_", ""));
  if (!Number.isInteger(value) || value < min) {
    throw new Error(`${name} must be an integer ≥ ${min}, got '${raw}'`);
  }
  return value;
}

/** Linux's USER_HZ: /proc reports CPU times in these ticks. */
const CLOCK_TICKS = 100;

/** CPU seconds of one process (user + system) from /proc; undefined when it is gone or not Linux. */
export function processCpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name is in parentheses and may hold spaces: the fields start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/**
 * How a process's main thread (the one answering requests) was scheduled so far: milliseconds it spent ready
 * to run but waiting for a CPU (`/proc/<pid>/task/<pid>/schedstat`, kernel scheduler statistics), and how
 * often another task took its CPU from it (`nonvoluntary_ctxt_switches`); undefined when not readable (not
 * Linux, or a kernel without schedstats). Compare two readings.
 */
export function mainThreadSchedule(pid: number): { waitMs: number; preemptions: number } | undefined {
  try {
    const waitNs = Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, "utf8").split(" ")[1]);
    const status = readFileSync(`/proc/${pid}/task/${pid}/status`, "utf8");
    const preemptions = Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1]);
    return Number.isFinite(waitNs) && Number.isFinite(preemptions)
      ? { waitMs: waitNs / 1e6, preemptions }
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds of each process on this machine whose name `named` accepts (whoever started it), by process (pid
 * and start time, so a reused pid is another process), from /proc; undefined when not Linux. Compare two
 * readings with `cpuSpent`.
 */
export function cpuByProcess(named: (name: string) => boolean): Map<string, number> | undefined {
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return undefined;
  }
  const byProcess = new Map<string, number>();
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) {
      continue;
    }
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (named(stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")))) {
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        // fields[19]: the start time, so a pid reused within the window is not mistaken for the old process.
        byProcess.set(`${entry}:${fields[19]}`, (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS);
      }
    } catch {
      // The process ended between the listing and the read.
    }
  }
  return byProcess;
}

/**
 * Every PostgreSQL process (server and backends): the export comparison charges the work the exporters make
 * PostgreSQL do, which runs on the same cores as the load generator and the server.
 */
export function postgresCpuByProcess(): Map<string, number> | undefined {
  return cpuByProcess((name) => name === "postgres" || name.startsWith("postgres:"));
}

/**
 * The kernel's DAMON threads (`kdamond.N`): where the kernel runs DAMON-based reclaim, they walk every page's
 * accessed bit, all the time, on the same cores as the load generator and the server (docs/adr/0009).
 */
export function kdamondCpuByProcess(): Map<string, number> | undefined {
  return cpuByProcess((name) => name.startsWith("kdamond"));
}

/**
 * The DAMON monitors the kernel runs now (sysfs `kdamonds/<n>/state` "on"), e.g. `["0"]`; empty when none or
 * when the kernel has no DAMON sysfs interface.
 */
export function damonMonitorsOn(): string[] {
  const dir = "/sys/kernel/mm/damon/admin/kdamonds";
  let entries: string[];
  try {
    entries = readdirSync(dir).filter((entry) => /^\d+$/.test(entry));
  } catch {
    return [];
  }
  return entries.filter((entry) => {
    try {
      return readFileSync(join(dir, entry, "state"), "utf8").trim() === "on";
    } catch {
      return false;
    }
  });
}

/**
 * For a report's header: whether the kernel's DAMON runs, which on the machine of docs/adr/0009 set the fixed-rate
 * p99 (58-74 ms with it, 6-8 ms without); and how to stop it for a run.
 */
export function damonNote(): string {
  const on = damonMonitorsOn();
  return on.length === 0
    ? "the kernel's DAMON is not running"
    : `the kernel's DAMON is running (kdamond ${on.join(", ")}): it takes CPU on the same cores, and set the fixed-rate ` +
        "p99 on the machine of docs/adr/0009; as root, `echo off > " +
        `/sys/kernel/mm/damon/admin/kdamonds/${on[0]}/state\` stops it for a quieter run, \`echo on\` restores it`;
}

/**
 * The CPU seconds spent between two `cpuByProcess` readings: each process's own difference,
 * a process started in between counted from zero. A process that ended in between is left out (what it spent
 * after the first reading cannot be read any more); summing the totals instead would subtract its whole life,
 * and a pool closing one idle connection during a window made PostgreSQL look several times cheaper.
 */
export function cpuSpent(
  before: Map<string, number> | undefined,
  after: Map<string, number> | undefined,
): number | undefined {
  if (before === undefined || after === undefined) {
    return undefined;
  }
  let spent = 0;
  for (const [key, seconds] of after) {
    spent += seconds - (before.get(key) ?? 0);
  }
  return spent;
}

/** One line of a result table: a label, a value, an optional ratio and a verdict. */
export type TableRow = { label: string; value: string; ratio?: string; verdict?: string };

/** A titled table, columns aligned; `ratioWidth` is the ratio column's width. */
export function printTable(title: string, rows: TableRow[], ratioWidth = 9): void {
  const width = Math.max(...rows.map((r) => r.label.length)) + 2;
  const valueWidth = Math.max(...rows.map((r) => r.value.length)) + 2;
  console.log(`\n${title}`);
  for (const row of rows) {
    console.log(
      `  ${row.label.padEnd(width)}${row.value.padStart(valueWidth)}${(row.ratio ?? "").padStart(ratioWidth)}   ${row.verdict ?? ""}`.trimEnd(),
    );
  }
}

/** A step of the run on one line: its name now, its result when it ends. */
export function step(text: string): void {
  process.stdout.write(`${text}… `);
}

/**
 * Run a bench's `main`, bounded: past `timeoutMs` the run is stopped (servers stopped, database dropped) with
 * status 1; a failure prints `<name> failed: …` and sets status 1; cleanup runs either way.
 */
export async function runBench(name: string, main: () => Promise<void>, timeoutMs: number): Promise<void> {
  const runTimer = setTimeout(() => {
    console.error(`\nthe run exceeded ${timeoutMs / 1000} s: stopping`);
    void cleanup().finally(() => process.exit(1));
  }, timeoutMs);
  runTimer.unref();
  try {
    await main();
  } catch (error) {
    console.error(
      `\n${name} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
    process.exitCode = 1;
  } finally {
    await cleanup();
  }
}
