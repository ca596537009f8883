import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Fleet, startFleet } from "./fleet.ts";
import { api, type Proc } from "./process.ts";
import { freePort } from "./util.ts";

/**
 * Redis stopped under two real server processes: A with RATE_LIMIT_FAILURE_MODE=closed (the default), B with
 * `open`. A private redis-server on a free port is killed and started again; the shared one on 6379 serves
 * other suites and is never touched.
 */

const hasRedisServer = spawnSync("redis-server", ["--version"]).status === 0;
if (!hasRedisServer) {
  // biome-ignore lint/suspicious/noConsole: a skipped case must be impossible to miss in the test output.
  console.warn("\n!!! redis-server is not installed: test/limiter-failure.test.ts is SKIPPED. !!!\n");
}

/** How long the limiter may take to reconnect after Redis returns (its backoff is capped at 1 s). */
const RECOVERY_BOUND_MS = 10_000;

let fleet: Fleet | undefined;
let servers: Proc[] = [];
let redis: ChildProcess | undefined;
let redisPort: number;
let portClosed: number;
let portOpen: number;
let operatorKey: string;
let endKey: string;

function startRedis(): Promise<void> {
  const child = spawn(
    "redis-server",
    ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { stdio: "ignore" },
  );
  redis = child;
  // Ready when it accepts a PING — its own: a server that exited (the port was taken meanwhile) must not
  // be mistaken for whatever else answers there.
  return (async () => {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`the private redis-server on port ${redisPort} exited at start`);
      }
      if (
        spawnSync("redis-cli", ["-p", String(redisPort), "ping"])
          .stdout?.toString()
          .trim() === "PONG"
      ) {
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error("the private redis-server did not start");
  })();
}

async function killRedis(): Promise<void> {
  const child = redis;
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) {
    return;
  }
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
}

beforeAll(async () => {
  if (!hasRedisServer) {
    return;
  }
  // A free port may be taken by another suite before redis-server binds it: then try another.
  for (let attempt = 1; ; attempt++) {
    redisPort = await freePort();
    try {
      await startRedis();
      break;
    } catch (error) {
      if (attempt === 3) {
        throw error;
      }
    }
  }
  fleet = await startFleet("limfail", 2, { REDIS_URL: `redis://127.0.0.1:${redisPort}` }, (i) =>
    i === 1 ? { RATE_LIMIT_FAILURE_MODE: "open" } : {},
  );
  [portClosed = 0, portOpen = 0] = fleet.ports;
  servers = fleet.servers;
  operatorKey = fleet.operatorKey;
  const org = await api(portClosed, "POST", "/v1/organizations", operatorKey, {
    name: "Limiter Failure Inc",
  });
  expect(org.status, org.text).toBe(201);
  const created = await api(portClosed, "POST", `/v1/organizations/${org.body.id}/api-keys`, operatorKey, {
    name: "k",
  });
  expect(created.status, created.text).toBe(201);
  endKey = String(created.body.key);
}, 120_000);

afterAll(async () => {
  try {
    await fleet?.close();
  } finally {
    await killRedis();
  }
}, 60_000);

const authorize = (port: number) =>
  api(port, "POST", "/v1/authorize", operatorKey, { key: endKey, category: "metadata" });

async function ready(port: number) {
  const res = await fetch(`http://127.0.0.1:${port}/readyz`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Until the server's limiter has connected: an `open` server is ready (degraded) before it has. */
async function limiterConnected(port: number): Promise<void> {
  const deadline = Date.now() + RECOVERY_BOUND_MS;
  while (Date.now() < deadline) {
    const { body } = await ready(port);
    if ((body.rate_limiter as { status?: string } | undefined)?.status === "ok") {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`the limiter of the server on port ${port} did not connect to Redis`);
}

describe.skipIf(!hasRedisServer)("Redis stopped under running servers", () => {
  it("applies each server's failure mode, reports it on /readyz, logs it at a bounded rate, and recovers", async () => {
    await limiterConnected(portClosed);
    await limiterConnected(portOpen);
    for (const port of [portClosed, portOpen]) {
      const ok = await authorize(port);
      expect(ok.body, ok.text).toMatchObject({ allowed: true, limit: { category: "metadata" } });
    }
    expect(await ready(portClosed)).toMatchObject({
      status: 200,
      body: { status: "ok", rate_limiter: { store: "redis", status: "ok", failure_mode: "closed" } },
    });

    await killRedis();
    const loggedBefore = servers[0]?.output().split("rate limiter store error").length ?? 0;
    const failing = 30;
    for (let i = 0; i < failing; i++) {
      // closed: refused with its own reason, nothing counted, Retry-After for the end user.
      const refused = await authorize(portClosed);
      expect(refused.status, refused.text).toBe(200);
      expect(refused.body).toMatchObject({
        allowed: false,
        reason: "rate_limiter_unavailable",
        key_id: expect.any(String),
        limit: null,
        headers: { "Retry-After": "1" },
      });
    }
    // Orgplane's own API: 503 with Retry-After under `closed`; served, without rate-limit headers, under `open`.
    const own = await fetch(`http://127.0.0.1:${portClosed}/v1/organization`, {
      headers: { Authorization: `Bearer ${endKey}` },
    });
    expect(own.status).toBe(503);
    expect(own.headers.get("retry-after")).toBe("1");
    expect(await own.json()).toMatchObject({ code: "service_unavailable" });
    const ownOpen = await fetch(`http://127.0.0.1:${portOpen}/v1/organization`, {
      headers: { Authorization: `Bearer ${endKey}` },
    });
    expect(ownOpen.status).toBe(200);
    expect(ownOpen.headers.get("x-ratelimit-limit")).toBeNull();
    await ownOpen.body?.cancel();

    const admitted = await authorize(portOpen);
    expect(admitted.body).toMatchObject({ allowed: true, reason: null, limit: null, headers: {} });

    expect(await ready(portClosed)).toMatchObject({
      status: 503,
      body: { code: "service_unavailable", rate_limiter: { status: "unavailable", failure_mode: "closed" } },
    });
    expect(await ready(portOpen)).toMatchObject({
      status: 200,
      body: {
        status: "degraded",
        rate_limiter: { store: "redis", status: "unavailable", failure_mode: "open" },
      },
    });
    // Every one of those decisions failed; the log has a line every few seconds, not one each.
    const logged = (servers[0]?.output().split("rate limiter store error").length ?? 0) - loggedBefore;
    expect(logged).toBeGreaterThanOrEqual(1);
    expect(logged).toBeLessThan(failing / 3);

    await startRedis();
    const deadline = Date.now() + RECOVERY_BOUND_MS;
    let recovered = await authorize(portClosed);
    while (recovered.body.allowed !== true && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      recovered = await authorize(portClosed);
    }
    expect(recovered.body, recovered.text).toMatchObject({ allowed: true, limit: { category: "metadata" } });
    expect((await ready(portClosed)).status).toBe(200);
  }, 60_000);
});
