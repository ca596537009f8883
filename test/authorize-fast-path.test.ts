/**
 * POST /v1/authorize is served by a fast path on node:http in front of Hono (src/http/authorize-fast-path.ts).
 * Every request here is sent twice over real HTTP: once to a server with the fast path, once to a server
 * running Hono alone; both answers must be the same (status, problem or decision, headers). A counting
 * fallback proves which requests the fast path took itself.
 */
import { createServer, type RequestListener, type Server } from "node:http";
import { type AddressInfo, connect, type Socket } from "node:net";
import { getRequestListener } from "@hono/node-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AppDeps, createApp } from "../src/http/app.ts";
import { withAuthorizeFastPath } from "../src/http/authorize-fast-path.ts";
import { createLogger } from "../src/infra/logger.ts";
import { createHttpMetrics } from "../src/infra/metrics.ts";
import { createMemoryRateLimiter } from "../src/infra/rate-limiter.memory.ts";
import { classifyStorageError } from "../src/store/pg-errors.ts";
import { createManualClock, createTestContext, expectStatus, type TestContext } from "./harness.ts";

let t: TestContext;
const servers: Server[] = [];
let fastUrl = "";
let honoUrl = "";
let fallbacks = 0;

async function listen(listener: RequestListener): Promise<string> {
  const server = createServer(listener);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  const clock = createManualClock(new Date("2032-03-01T10:00:00.000Z"));
  t = await createTestContext({ clock, rateLimiter: createMemoryRateLimiter({ clock }) });
  const deps: AppDeps = {
    services: t.services,
    logger: createLogger("silent"),
    metrics: createHttpMetrics({ defaultMetrics: false }),
    ping: () => t.database.ping(1000),
    rateLimiterStatus: async () => ({ store: "memory", status: "ok", failureMode: null }),
    classifyError: classifyStorageError,
    trustProxy: false,
  };
  const hono = getRequestListener(createApp(deps).fetch);
  honoUrl = await listen(hono);
  fastUrl = await listen(
    withAuthorizeFastPath(deps, (req, res) => {
      fallbacks += 1;
      hono(req, res);
    }),
  );
});
afterAll(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  await t?.close();
});

type Answer = { status: number; headers: Record<string, string>; body: unknown };

/** What must be equal: figures that move with each call (remaining, reset) and the request id masked. */
function comparable(answer: Answer): Answer {
  const mask = (value: unknown): unknown => {
    if (Array.isArray(value)) {
      return value.map(mask);
    }
    if (value !== null && typeof value === "object") {
      return Object.fromEntries(
        Object.entries(value).map(([k, v]) => [
          k,
          [
            "request_id",
            "remaining",
            "reset_at",
            "RateLimit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
          ].includes(k)
            ? "*"
            : mask(v),
        ]),
      );
    }
    return value;
  };
  const headers: Record<string, string> = {};
  for (const name of ["content-type", "retry-after", "www-authenticate"]) {
    const value = answer.headers[name];
    if (value !== undefined) {
      headers[name] = value;
    }
  }
  expect(answer.headers["x-request-id"]).toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
  return { status: answer.status, headers, body: mask(answer.body) };
}

async function send(base: string, init: { headers: Record<string, string>; body: string }): Promise<Answer> {
  const res = await fetch(`${base}/v1/authorize`, { method: "POST", ...init });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Compared as text.
  }
  return { status: res.status, headers: Object.fromEntries(res.headers), body };
}

/** Sends the same request to both servers; expects the same answer, and tells whether the fast path took it. */
async function both(
  body: unknown,
  options: { headers?: Record<string, string>; credential?: string | null; raw?: string } = {},
): Promise<{ answer: Answer; fast: boolean }> {
  const headers: Record<string, string> = { "Content-Type": "application/json", ...options.headers };
  const credential = options.credential === undefined ? t.operatorKey : options.credential;
  if (credential !== null) {
    headers.Authorization = `Bearer ${credential}`;
  }
  const init = { headers, body: options.raw ?? JSON.stringify(body) };
  const viaHono = await send(honoUrl, init);
  const before = fallbacks;
  const viaFast = await send(fastUrl, init);
  expect(comparable(viaFast)).toEqual(comparable(viaHono));
  return { answer: viaFast, fast: fallbacks === before };
}

async function orgKey(limit: number, scopes?: Parameters<TestContext["createKey"]>[1]): Promise<string> {
  const org = await t.createOrg();
  const res = await t.request("PATCH", `/v1/organizations/${org.id}/rate-limits`, {
    body: { rate_limits: { search: limit } },
  });
  expectStatus(res, 200);
  return t.createKey(org.id, scopes);
}

describe("the authorize fast path answers exactly as the framework route", () => {
  it("allows a good key and counts it, with headers ready to forward", async () => {
    const key = await orgKey(1000);
    const { answer, fast } = await both({ key, category: "search", cost: 3 });
    expect(fast).toBe(true);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({
      allowed: true,
      reason: null,
      limit: { limit: 1000, remaining: 994 },
    });
  });

  it("refuses once the limit is used up, with Retry-After in the forwarded headers", async () => {
    // Both servers count against the same bucket: the first pair takes its two requests.
    const key = await orgKey(2);
    expect((await both({ key, category: "search" })).answer.body).toMatchObject({ allowed: true });
    expect((await both({ key, category: "search" })).answer.body).toMatchObject({
      allowed: false,
      reason: "rate_limited",
      headers: { "Retry-After": expect.any(String) },
    });
  });

  it("answers each denial reason alike", async () => {
    const good = await orgKey(1000, ["orgs:read"]);
    const scope = await both({ key: good, category: "search", scope: "usage:write" });
    expect(scope.answer.body).toMatchObject({ allowed: false, reason: "scope_missing" });
    const unknown = await both({ key: "sk_live_notakey", category: "search" });
    expect(unknown.answer.body).toMatchObject({ allowed: false, reason: "key_not_found" });
    expect(scope.fast && unknown.fast).toBe(true);
  });

  it.each([
    ["malformed JSON", { raw: "{not json" }, 400],
    ["a JSON array", { raw: "[1,2]" }, 400],
    ["JSON nested too deep", { raw: `${"[".repeat(40)}${"]".repeat(40)}` }, 400],
    ["an unknown field", { body: { key: "k", category: "search", extra: 1 } }, 400],
    ["a cost of 0", { body: { key: "k", category: "search", cost: 0 } }, 400],
    ["an unknown category", { body: { key: "sk_live_x", category: "nope" } }, 400],
    ["a category of the wrong shape", { body: { key: "sk_live_x", category: "Not A Category" } }, 400],
    ["a NUL in the key", { body: { key: "a\u0000b", category: "search" } }, 400],
  ])("refuses %s with the same problem", async (_label, input, status) => {
    const { answer, fast } = await both(
      "body" in input ? input.body : undefined,
      "raw" in input ? { raw: input.raw } : {},
    );
    expect(fast).toBe(true);
    expect(answer.status).toBe(status);
    expect(answer.headers["content-type"]).toBe("application/problem+json");
  });

  it("refuses a missing or unknown credential (401) and a non-operator one (403)", async () => {
    const missing = await both({ key: "x", category: "search" }, { credential: null });
    expect(missing.answer.status).toBe(401);
    const unknown = await both({ key: "x", category: "search" }, { credential: "op_live_notarealkey" });
    expect(unknown.answer.status).toBe(401);
    const org = await t.createOrg();
    const orgCredential = await t.createKey(org.id);
    const notOperator = await both({ key: "x", category: "search" }, { credential: orgCredential });
    expect(notOperator.answer.status).toBe(403);
    // As in the framework, the body is parsed before access is judged: malformed JSON wins over the 403.
    const refusedFirst = await both(undefined, { credential: orgCredential, raw: "{not json" });
    expect(refusedFirst.answer.status).toBe(400);
    expect(missing.fast && unknown.fast && notOperator.fast).toBe(true);
  });

  it("takes a charset and echoes an acceptable X-Request-Id", async () => {
    const key = await orgKey(1000);
    const { answer, fast } = await both(
      { key, category: "search" },
      { headers: { "Content-Type": "application/json; charset=utf-8", "X-Request-Id": "trace-123" } },
    );
    expect(fast).toBe(true);
    expect(answer.headers["x-request-id"]).toBe("trace-123");
  });

  it("leaves anything unusual to the framework: another media type, an Idempotency-Key, an empty body", async () => {
    const key = await orgKey(1000);
    const text = await both({ key, category: "search" }, { headers: { "Content-Type": "text/plain" } });
    expect(text.fast).toBe(false);
    expect(text.answer.status).toBe(415);
    const idempotent = await both(
      { key, category: "search" },
      { headers: { "Idempotency-Key": `fast-path-${Date.now()}` } },
    );
    expect(idempotent.fast).toBe(false);
    const empty = await both(undefined, { raw: "" });
    expect(empty.fast).toBe(false);
    expect(empty.answer.status).toBe(400);
  });
});

describe("answers written once a turn of the event loop", () => {
  /** One request on its own connection; resolves with the response's body, or "closed" when we hang up. */
  function rawAuthorize(body: string, hangUp: boolean): Promise<string> {
    const { port } = new URL(fastUrl);
    return new Promise((resolve, reject) => {
      const socket: Socket = connect({ host: "127.0.0.1", port: Number(port) }, () => {
        socket.write(
          `POST /v1/authorize HTTP/1.1\r\nHost: x\r\nConnection: close\r\n` +
            `Authorization: Bearer ${t.operatorKey}\r\nContent-Type: application/json\r\n` +
            `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
        );
        if (hangUp) {
          socket.destroy();
          resolve("closed");
        }
      });
      let text = "";
      socket.setEncoding("utf8");
      socket.on("data", (chunk: string) => {
        text += chunk;
      });
      socket.on("end", () => resolve(text.slice(text.indexOf("\r\n\r\n") + 4)));
      socket.on("error", (err) => (hangUp ? resolve("closed") : reject(err)));
    });
  }

  it("gives each caller its own answer when many arrive at once, callers that hung up included", async () => {
    const orgs = await Promise.all([t.createOrg(), t.createOrg(), t.createOrg()]);
    for (const org of orgs) {
      const res = await t.request("PATCH", `/v1/organizations/${org.id}/rate-limits`, {
        body: { rate_limits: { search: 1000 } },
      });
      expectStatus(res, 200);
    }
    const keys = await Promise.all(orgs.map((org) => t.createKey(org.id)));
    const sent = Array.from({ length: 150 }, (_, i) => ({
      org: orgs[i % 3]?.id,
      body: JSON.stringify({ key: keys[i % 3], category: "search" }),
      hangUp: i % 5 === 4,
    }));
    const bodies = await Promise.all(sent.map((r) => rawAuthorize(r.body, r.hangUp)));
    for (const [i, text] of bodies.entries()) {
      const request = sent[i];
      if (request?.hangUp === true) {
        continue;
      }
      expect(JSON.parse(text)).toMatchObject({ allowed: true, org_id: request?.org });
    }
    // The server carries on after the callers that went away.
    const after = await rawAuthorize(JSON.stringify({ key: keys[0], category: "search" }), false);
    expect(JSON.parse(after)).toMatchObject({ allowed: true, org_id: orgs[0]?.id });
  });
});
