import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { auditEvent } from "../src/domain/audit/audit-event.ts";
import type { IntegrationConfig } from "../src/domain/integrations/integrations.types.ts";
import { type AuthorizeDecisionEvent, noTelemetry } from "../src/domain/observability/telemetry.ts";
import type { Organization } from "../src/domain/orgs/orgs.types.ts";
import { createLogger } from "../src/infra/logger.ts";
import {
  createLokiExporter,
  type LokiExporter,
  type LokiExporterSettings,
} from "../src/infra/loki-export/loki-exporter.ts";
import { createOutboundClient, type OutboundClient } from "../src/infra/outbound-http.ts";
import { systemClock } from "../src/lib/clock.ts";
import { createLokiAuditSource } from "../src/store/loki-export.store.pg.ts";
import { createTestContext, expectStatus, type ListBody, type TestContext, uniqueName } from "./harness.ts";
import { freePort } from "./util.ts";

/**
 * The Loki export against a local receiver speaking Loki's push protocol (JSON): it checks every body's shape
 * and each stream's timestamp order, decodes basic auth, and records what arrived where. Each org pushes to a
 * path of its own. Intervals are shortened through the exporter's settings so the suite runs in seconds; the
 * clock is the real one, since audit ids carry the real time.
 */

type Entry = { ns: string; line: Record<string, unknown> };
type Stream = { stream: Record<string, string>; values: Entry[] };
type Push = {
  name: string;
  auth: string | null;
  contentType: string;
  bytes: number;
  at: number;
  streams: Stream[];
};
type Answer = { status: number; echo?: boolean } | "hang";

type LokiReceiver = {
  port: number;
  /** The full push URL of a path of its own. */
  url(name: string): string;
  /** The same path as a Loki base URL (the exporter appends /loki/api/v1/push). */
  base(name: string): string;
  /** Pushes answered 2xx. */
  pushes(name: string): Push[];
  /** Every request, whatever it was answered. */
  attempts(name: string): number[];
  entries(name: string, source: string): Array<Entry & { labels: Record<string, string> }>;
  answer(name: string, answer: Answer): void;
  /** Problems found in bodies (bad JSON, bad shape, entries out of order within a stream). */
  problems: string[];
  close(): Promise<void>;
};

const PUSH_PATH = "/loki/api/v1/push";

function parseBody(text: string, problems: string[]): Stream[] {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    problems.push(`not JSON: ${text.slice(0, 80)}`);
    return [];
  }
  const streams = (body as { streams?: unknown }).streams;
  if (!Array.isArray(streams)) {
    problems.push("no streams array");
    return [];
  }
  return streams.map((s: { stream: Record<string, string>; values: Array<[string, string]> }) => {
    let last = 0n;
    const values = s.values.map(([ns, line]) => {
      if (!/^\d{19}$/.test(ns)) {
        problems.push(`timestamp ${ns} is not Unix nanoseconds`);
      }
      if (BigInt(ns) < last) {
        problems.push(`out of order in ${JSON.stringify(s.stream)}: ${ns} after ${last}`);
      }
      last = BigInt(ns);
      return { ns, line: JSON.parse(line) as Record<string, unknown> };
    });
    return { stream: s.stream, values };
  });
}

async function startLoki(port = 0): Promise<LokiReceiver> {
  const pushes: Push[] = [];
  const attempts = new Map<string, number[]>();
  const answers = new Map<string, Answer>();
  const problems: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const path = req.url ?? "/";
      const name = path.split("/")[1] ?? "";
      attempts.set(name, [...(attempts.get(name) ?? []), Date.now()]);
      const text = Buffer.concat(chunks).toString("utf8");
      if (req.method !== "POST" || path !== `/${name}${PUSH_PATH}`) {
        res.writeHead(404).end("404 page not found");
        return;
      }
      const answer = answers.get(name) ?? { status: 204 };
      if (answer === "hang") {
        return;
      }
      if (answer.status >= 300) {
        // `echo`: a careless receiver that repeats the request's credentials in its error.
        res.writeHead(answer.status, { "content-type": "text/plain" });
        res.end(
          answer.echo === true
            ? `refused ${req.headers.authorization ?? ""} for ${text.slice(0, 40)}`
            : "boom",
        );
        return;
      }
      const authorization = String(req.headers.authorization ?? "");
      pushes.push({
        name,
        auth: authorization.startsWith("Basic ")
          ? Buffer.from(authorization.slice(6), "base64").toString("utf8")
          : null,
        contentType: String(req.headers["content-type"] ?? ""),
        bytes: chunks.reduce((n, c) => n + c.length, 0),
        at: Date.now(),
        streams: parseBody(text, problems),
      });
      res.writeHead(answer.status).end();
    });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  const bound = (server.address() as AddressInfo).port;
  const ofName = (name: string) => pushes.filter((p) => p.name === name);
  return {
    port: bound,
    url: (name) => `http://127.0.0.1:${bound}/${name}${PUSH_PATH}`,
    base: (name) => `http://127.0.0.1:${bound}/${name}`,
    pushes: ofName,
    attempts: (name) => attempts.get(name) ?? [],
    entries: (name, source) =>
      ofName(name).flatMap((p) =>
        p.streams
          .filter((s) => s.stream.source === source)
          .flatMap((s) => s.values.map((v) => ({ ...v, labels: s.stream }))),
      ),
    answer: (name, answer) => answers.set(name, answer),
    problems,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) {
          socket.destroy();
        }
        server.close(() => resolve());
      }),
  };
}

async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 8000,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Short intervals: pushes within 200 ms, retries from 100 ms, audit read every 100 ms with a 300 ms lag. */
const FAST: LokiExporterSettings = {
  allowedSampleRate: 0,
  bufferLines: 10_000,
  flushDelayMs: 200,
  pushTimeoutMs: 2000,
  retryBaseMs: 100,
  retryMaxMs: 800,
  configRefreshMs: 100,
  reportIntervalMs: 100,
  auditPollMs: 100,
  audit: { lagMs: 300, overlapMs: 1500 },
  cursorSaveMs: 200,
  stopTimeoutMs: 3000,
};

let t: TestContext;
let loki: LokiReceiver;
let client: OutboundClient;
const logLines: string[] = [];
const logger = createLogger("trace", { write: (line: string) => logLines.push(line) });
const running: LokiExporter[] = [];
const tokens: string[] = [];

beforeAll(async () => {
  // The exporters read the integrations every 100 ms here: the service's cache must not be older.
  t = await createTestContext({ integrations: { activeCacheMs: 50 } });
  loki = await startLoki();
  client = createOutboundClient({ allowPrivate: true });
});

afterEach(async () => {
  t.services.telemetry.bind(noTelemetry);
  await Promise.all(running.splice(0).map((e) => e.stop()));
});

afterAll(async () => {
  await loki?.close();
  client?.close();
  await t?.close();
  // No token, nor the basic-auth credential built from it, in any line the exporters or the app logged.
  const all = logLines.join("") + t.logLines.join("");
  for (const token of tokens) {
    expect(all).not.toContain(token);
  }
});

function exporter(
  settings: Partial<LokiExporterSettings> = {},
  options: { audit?: boolean; instance?: string } = {},
): LokiExporter {
  const e = createLokiExporter({
    integrations: t.services.integrations,
    client,
    ...(options.audit === true ? { audit: createLokiAuditSource(t.database.pool) } : {}),
    clock: systemClock,
    logger,
    settings: { ...FAST, ...settings },
    instance: options.instance ?? "test-instance",
  });
  running.push(e);
  return e;
}

async function stopped(e: LokiExporter): Promise<void> {
  running.splice(running.indexOf(e), 1);
  await e.stop();
}

/** An org with a Loki integration on the receiver path `name`; its credentials. */
async function orgWithLoki(
  name: string,
  endpoint = loki.url(name),
): Promise<{ org: Organization; id: string; token: string }> {
  const org = await t.createOrg();
  const id = `user-${name}`;
  const token = `glc_${uniqueName("tok")}_${name}_secret`;
  tokens.push(token, Buffer.from(`${id}:${token}`).toString("base64"));
  await t.services.integrations.put(t.operatorCtx, org.id, { loki: { endpoint, id, token } });
  return { org, id, token };
}

async function removeLoki(orgId: string): Promise<void> {
  await t.services.integrations.put(t.operatorCtx, orgId, { loki: null });
}

async function auditIds(orgId: string): Promise<string[]> {
  const res = await t.request<ListBody<{ id: string }>>(
    "GET",
    `/v1/organizations/${orgId}/audit-events?limit=100`,
  );
  expectStatus(res, 200);
  return res.body.data.map((e) => e.id).reverse();
}

async function rename(orgId: string, times: number): Promise<void> {
  for (let i = 0; i < times; i++) {
    const res = await t.request("PATCH", `/v1/organizations/${orgId}`, {
      body: { name: uniqueName("renamed") },
    });
    expectStatus(res, 200);
  }
}

function denial(orgId: string, n: number, allowed = false): AuthorizeDecisionEvent {
  return {
    orgId,
    projectId: null,
    keyId: "key_01jd0v4n6qf9yb5c8h2m3k7x1z",
    category: "search",
    allowed,
    reason: allowed ? null : "rate_limited",
    // The sequence number rides in `cost`, so the tests can tell which lines arrived.
    cost: n,
    limit: { limit: 10, remaining: 0 },
    at: new Date(),
  };
}

async function lokiStatus(orgId: string) {
  const view = await t.services.integrations.get(orgId);
  if (view.loki === null) {
    throw new Error("no loki integration");
  }
  return view.loki;
}

describe("audit events", () => {
  it.each([
    { how: "naming the exporting orgs", namedOrgsMax: 500, tag: "" },
    // Every org's events are read and the others' dropped in process (over NAMED_ORGS_MAX exporting orgs);
    // this file's database holds other orgs' events, which must never reach these receivers.
    { how: "reading every org's events", namedOrgsMax: 0, tag: "-all" },
  ])(
    "arrive in order, each once, with the org's labels and credentials; another org's never ($how)",
    async ({ namedOrgsMax, tag }) => {
      const audit = { ...FAST.audit, namedOrgsMax };
      const a = await orgWithLoki(`audit-a${tag}`);
      const b = await orgWithLoki(`audit-b${tag}`);
      await rename(a.org.id, 3);
      await rename(b.org.id, 2);
      const e = exporter({ audit }, { audit: true });
      await e.start();
      // organization.created, the integration's configuration, the renames (all within the start margin).
      const expectedA = await auditIds(a.org.id);
      expect(expectedA.length).toBeGreaterThanOrEqual(5);
      await waitFor(
        "a's audit events",
        () => loki.entries(`audit-a${tag}`, "audit").length >= expectedA.length,
      );
      await waitFor("b's audit events", async () => loki.entries(`audit-b${tag}`, "audit").length >= 4);
      // Events written while exporting arrive too.
      await rename(a.org.id, 2);
      const allA = await auditIds(a.org.id);
      await waitFor("a's later events", () => loki.entries(`audit-a${tag}`, "audit").length >= allA.length);
      await sleep(500);

      const got = loki.entries(`audit-a${tag}`, "audit");
      expect(got.map((x) => x.line.id)).toEqual(allA);
      for (const entry of got) {
        expect(entry.labels).toEqual({ org_id: a.org.id, source: "audit" });
      }
      expect(got.find((x) => x.line.action === "organization.integrations_updated")?.line).toMatchObject({
        actor_type: "operator",
        target_id: a.org.id,
      });
      expect(got.at(-1)?.line).toMatchObject({ action: "organization.updated", target_type: "organization" });
      for (const push of loki.pushes(`audit-a${tag}`)) {
        expect(push.auth).toBe(`${a.id}:${a.token}`);
        expect(push.contentType).toBe("application/json");
      }
      const gotB = loki.entries(`audit-b${tag}`, "audit");
      expect(gotB.map((x) => x.line.id)).toEqual(await auditIds(b.org.id));
      expect(gotB.every((x) => x.labels.org_id === b.org.id)).toBe(true);
      expect(JSON.stringify(loki.pushes(`audit-b${tag}`))).not.toContain(a.org.id);
      expect(loki.problems).toEqual([]);
      expect((await lokiStatus(a.org.id)).lastSuccessAt).not.toBeNull();

      // A clean restart continues from the saved cursor: the events written meanwhile, nothing twice.
      await stopped(e);
      await rename(a.org.id, 2);
      const again = exporter({ audit }, { audit: true });
      await again.start();
      const finalA = await auditIds(a.org.id);
      await waitFor(
        "a's events after the restart",
        () => loki.entries(`audit-a${tag}`, "audit").length >= finalA.length,
      );
      await sleep(800);
      expect(loki.entries(`audit-a${tag}`, "audit").map((x) => x.line.id)).toEqual(finalA);
      await removeLoki(a.org.id);
      await removeLoki(b.org.id);
    },
  );

  it("reach an org configured while exporting, and stop once its Loki is removed", async () => {
    const a = await orgWithLoki("audit-late-a");
    const e = exporter({}, { audit: true });
    await e.start();
    await waitFor("a's audit events", () => loki.entries("audit-late-a", "audit").length >= 2);
    // Configured after the reader matched its orgs with the queues: it must notice the new one.
    const c = await orgWithLoki("audit-late-c");
    await rename(c.org.id, 2);
    const expectedC = await auditIds(c.org.id);
    await waitFor("c's audit events", () => loki.entries("audit-late-c", "audit").length >= expectedC.length);
    expect(loki.entries("audit-late-c", "audit").map((x) => x.line.id)).toEqual(expectedC);

    await removeLoki(c.org.id);
    // Past a config refresh (100 ms): c's queue is gone, and with it c's place in the reads.
    await sleep(400);
    const sent = loki.entries("audit-late-c", "audit").length;
    await rename(c.org.id, 1);
    await rename(a.org.id, 1);
    const allA = await auditIds(a.org.id);
    await waitFor("a's later events", () => loki.entries("audit-late-a", "audit").length >= allA.length);
    expect(loki.entries("audit-late-c", "audit")).toHaveLength(sent);
    expect(loki.problems).toEqual([]);
    await stopped(e);
    await removeLoki(a.org.id);
  });

  it("include an event whose transaction commits after later ones were sent", async () => {
    const a = await orgWithLoki("late");
    const e = exporter({}, { audit: true });
    await e.start();
    let late = "";
    // Minted now, committed 1 s later (beyond the 300 ms lag, within lag + overlap), after a later event was sent.
    const slow = t.database.transactor.transaction(async (stores) => {
      const event = auditEvent(
        t.operatorCtx,
        {
          orgId: a.org.id,
          action: "organization.updated",
          targetType: "organization",
          targetId: a.org.id,
          changes: {},
        },
        systemClock,
      );
      late = event.id;
      await stores.audit.insert(event);
      await sleep(1000);
    });
    await sleep(50);
    await rename(a.org.id, 1);
    const committedFirst = (await auditIds(a.org.id)).at(-1);
    await waitFor("the later event", () =>
      loki.entries("late", "audit").some((x) => x.line.id === committedFirst),
    );
    expect(loki.entries("late", "audit").some((x) => x.line.id === late)).toBe(false);
    await slow;
    await waitFor(
      "the late event",
      () => loki.entries("late", "audit").some((x) => x.line.id === late),
      5000,
    );
    await sleep(500);
    const sent = loki.entries("late", "audit").map((x) => x.line.id);
    expect([...sent].sort()).toEqual(await auditIds(a.org.id));
    await removeLoki(a.org.id);
  });

  it("are read by one process at a time: two exporters send each event once", async () => {
    const a = await orgWithLoki("two-processes");
    const first = exporter({}, { audit: true, instance: "one" });
    const second = exporter({}, { audit: true, instance: "two" });
    await first.start();
    await second.start();
    await rename(a.org.id, 3);
    let expected = await auditIds(a.org.id);
    await waitFor("the events", () => loki.entries("two-processes", "audit").length >= expected.length);
    // The reading process stops; the other takes the lock over from the saved cursor.
    await stopped(first);
    await rename(a.org.id, 2);
    expected = await auditIds(a.org.id);
    await waitFor(
      "the events after the handover",
      () => loki.entries("two-processes", "audit").length >= expected.length,
    );
    await sleep(800);
    expect(loki.entries("two-processes", "audit").map((x) => x.line.id)).toEqual(expected);
    await stopped(second);
    await removeLoki(a.org.id);
  });
});

describe("authorize decisions", () => {
  it("sends every denial, and allowed decisions only as sampled", async () => {
    const a = await orgWithLoki("decisions");
    const allKeys = await t.createKey(a.org.id);
    const readOnly = await t.createKey(a.org.id, ["orgs:read"]);
    const authorize = async (key: string, scope?: string) => {
      const res = await t.request<{ allowed: boolean }>("POST", "/v1/authorize", {
        body: { key, category: "metadata", ...(scope === undefined ? {} : { scope }) },
      });
      expectStatus(res, 200);
      return res.body.allowed;
    };

    // Rate 0: denials only.
    const none = exporter({ allowedSampleRate: 0 });
    await none.start();
    t.services.telemetry.bind(none.telemetry);
    expect(await authorize(allKeys)).toBe(true);
    expect(await authorize(readOnly, "usage:write")).toBe(false);
    expect(await authorize(allKeys)).toBe(true);
    await waitFor("the denial", () => loki.entries("decisions", "authorize").length >= 1);
    await sleep(400);
    const denied = loki.entries("decisions", "authorize");
    expect(denied).toHaveLength(1);
    expect(denied[0]?.labels).toEqual({ org_id: a.org.id, source: "authorize", instance: "test-instance" });
    expect(denied[0]?.line).toMatchObject({ allowed: false, reason: "scope_missing", category: "metadata" });
    expect(JSON.stringify(loki.pushes("decisions"))).not.toContain(readOnly);
    await stopped(none);

    // Rate 1: every decision.
    const all = exporter({ allowedSampleRate: 1 }, { instance: "sampling" });
    await all.start();
    t.services.telemetry.bind(all.telemetry);
    expect(await authorize(allKeys)).toBe(true);
    expect(await authorize(allKeys)).toBe(true);
    expect(await authorize(readOnly, "usage:write")).toBe(false);
    await waitFor(
      "three decisions",
      () =>
        loki.entries("decisions", "authorize").filter((x) => x.labels.instance === "sampling").length >= 3,
    );
    await sleep(400);
    const sampled = loki.entries("decisions", "authorize").filter((x) => x.labels.instance === "sampling");
    expect(sampled.map((x) => x.line.allowed)).toEqual([true, true, false]);
    expect(loki.problems).toEqual([]);
    await removeLoki(a.org.id);
  });
});

describe("batching", () => {
  it("sends a lone line within the flush delay, many lines in one push, and splits a burst above 1 MiB", async () => {
    const a = await orgWithLoki("batching");
    const e = exporter({ flushDelayMs: 1000, bufferLines: 20_000 });
    await e.start();

    const sentAt = Date.now();
    e.telemetry.authorizeDecision(denial(a.org.id, 0));
    await waitFor("the lone line", () => loki.entries("batching", "authorize").length === 1, 3000);
    const delay = (loki.pushes("batching")[0]?.at ?? 0) - sentAt;
    expect(delay).toBeLessThan(1500);

    for (let i = 1; i <= 500; i++) {
      e.telemetry.authorizeDecision(denial(a.org.id, i));
    }
    await waitFor("500 lines", () => loki.entries("batching", "authorize").length === 501);
    expect(loki.pushes("batching")).toHaveLength(2);
    expect(loki.pushes("batching")[1]?.bytes).toBeLessThan(1024 * 1024);

    const burst = 10_000;
    for (let i = 501; i < 501 + burst; i++) {
      e.telemetry.authorizeDecision(denial(a.org.id, i));
    }
    await waitFor("the burst", () => loki.entries("batching", "authorize").length === 501 + burst, 15_000);
    const burstPushes = loki.pushes("batching").slice(2);
    const burstBytes = burstPushes.reduce((n, p) => n + p.bytes, 0);
    expect(burstBytes).toBeGreaterThan(1024 * 1024);
    expect(burstPushes.length).toBeGreaterThanOrEqual(Math.ceil(burstBytes / (1024 * 1024)));
    for (const push of burstPushes) {
      expect(push.bytes).toBeLessThanOrEqual(1024 * 1024);
    }
    // Every line once, in order across the pushes.
    expect(loki.entries("batching", "authorize").map((x) => x.line.cost)).toEqual(
      Array.from({ length: 501 + burst }, (_, i) => i),
    );
    expect(loki.problems).toEqual([]);
    await removeLoki(a.org.id);
  });
});

describe("stop", () => {
  it("pushes what is buffered before it returns", async () => {
    const a = await orgWithLoki("stopping");
    // A flush delay far longer than the test: only stop() can have sent the lines.
    const e = exporter({ flushDelayMs: 60_000 });
    await e.start();
    for (let i = 0; i < 3; i++) {
      e.telemetry.authorizeDecision(denial(a.org.id, i));
    }
    await sleep(300);
    expect(loki.entries("stopping", "authorize")).toHaveLength(0);
    await stopped(e);
    expect(loki.entries("stopping", "authorize").map((x) => x.line.cost)).toEqual([0, 1, 2]);
    // Stopped, it takes nothing more.
    e.telemetry.authorizeDecision(denial(a.org.id, 3));
    await e.flush();
    expect(loki.entries("stopping", "authorize")).toHaveLength(3);
    await removeLoki(a.org.id);
  });
});

describe("failures", () => {
  it("retries with backoff while the endpoint is down (refused, then 500) and delivers when it is back", async () => {
    const port = await freePort();
    const a = await orgWithLoki("down", `http://127.0.0.1:${port}/down`);
    const e = exporter({ retryBaseMs: 200, retryMaxMs: 800 });
    await e.start();
    for (let i = 0; i < 3; i++) {
      e.telemetry.authorizeDecision(denial(a.org.id, i));
    }
    await waitFor("the refusal recorded", async () => (await lokiStatus(a.org.id)).lastError !== null);
    expect((await lokiStatus(a.org.id)).lastError).toContain("connection refused");

    // Back, but answering 500 for a while: the attempts come further and further apart.
    const back = await startLoki(port);
    try {
      back.answer("down", { status: 500 });
      await waitFor("four attempts", () => back.attempts("down").length >= 4, 10_000);
      const times = back.attempts("down");
      const gaps = times.slice(1).map((at, i) => at - (times[i] ?? 0));
      expect(gaps[0]).toBeGreaterThanOrEqual(150);
      expect(gaps.at(-1)).toBeGreaterThanOrEqual(700);
      expect((await lokiStatus(a.org.id)).lastError).toContain("HTTP 500");

      back.answer("down", { status: 204 });
      await waitFor("the lines", () => back.entries("down", "authorize").length >= 3, 5000);
      await sleep(300);
      expect(back.entries("down", "authorize").map((x) => x.line.cost)).toEqual([0, 1, 2]);
      await waitFor("the success recorded", async () => (await lokiStatus(a.org.id)).lastSuccessAt !== null);
      expect((await lokiStatus(a.org.id)).droppedLines).toBe(0);
    } finally {
      await back.close();
    }
    await removeLoki(a.org.id);
  });

  it("keeps at most LOKI_BUFFER_LINES per org: the oldest are dropped and counted, the newest delivered", async () => {
    const a = await orgWithLoki("full");
    loki.answer("full", { status: 503 });
    const e = exporter({ bufferLines: 100 });
    await e.start();
    for (let i = 0; i < 250; i++) {
      e.telemetry.authorizeDecision(denial(a.org.id, i));
    }
    await waitFor("the drops recorded", async () => (await lokiStatus(a.org.id)).droppedLines === 150);
    loki.answer("full", { status: 204 });
    await waitFor("the newest lines", () => loki.entries("full", "authorize").length >= 100, 5000);
    await sleep(300);
    expect(loki.entries("full", "authorize").map((x) => x.line.cost)).toEqual(
      Array.from({ length: 100 }, (_, i) => 150 + i),
    );

    // A batch Loki refuses for its content (400) would be refused again: given up and counted.
    loki.answer("full", { status: 400 });
    for (let i = 0; i < 5; i++) {
      e.telemetry.authorizeDecision(denial(a.org.id, 1000 + i));
    }
    await waitFor("the dropped batch", async () => (await lokiStatus(a.org.id)).droppedBatches === 1);
    const status = await lokiStatus(a.org.id);
    expect(status.droppedLines).toBe(155);
    expect(status.lastError).toContain("HTTP 400");
    // And GET …/integrations shows the same.
    const res = await t.request<{ loki: { dropped_lines: number; dropped_batches: number } }>(
      "GET",
      `/v1/organizations/${a.org.id}/integrations`,
    );
    expectStatus(res, 200);
    expect(res.body.loki).toMatchObject({ dropped_lines: 155, dropped_batches: 1 });
    loki.answer("full", { status: 204 });
    await removeLoki(a.org.id);
  });

  it("does not let dead endpoints delay another org's delivery", async () => {
    const dead: Organization[] = [];
    for (let i = 0; i < 10; i++) {
      const name = `dead-${i}`;
      loki.answer(name, "hang");
      dead.push((await orgWithLoki(name)).org);
    }
    const healthy = await orgWithLoki("alive");
    // Fewer slots than dead orgs: each dead org's push hangs until the timeout.
    const e = exporter({
      maxConcurrentPushes: 4,
      maxRetryingPushes: 2,
      slowPushMs: 300,
      pushTimeoutMs: 5000,
    });
    await e.start();
    for (const org of dead) {
      e.telemetry.authorizeDecision(denial(org.id, 1));
    }
    await waitFor(
      "the dead endpoints hanging",
      () => loki.attempts("dead-0").length + loki.attempts("dead-5").length >= 1,
    );
    await sleep(400);
    const sentAt = Date.now();
    e.telemetry.authorizeDecision(denial(healthy.org.id, 7));
    await waitFor("the healthy org's line", () => loki.entries("alive", "authorize").length === 1, 4000);
    expect((loki.pushes("alive")[0]?.at ?? 0) - sentAt).toBeLessThan(1500);
    for (const org of [...dead, healthy.org]) {
      await removeLoki(org.id);
    }
  });
});

describe("credentials", () => {
  it("never appear in recorded errors, log lines or the probe's answer", async () => {
    const a = await orgWithLoki("echo");
    loki.answer("echo", { status: 401, echo: true });
    const e = exporter();
    await e.start();
    e.telemetry.authorizeDecision(denial(a.org.id, 1));
    await waitFor("the error recorded", async () => (await lokiStatus(a.org.id)).lastError !== null);
    const status = await lokiStatus(a.org.id);
    expect(status.lastError).toContain("HTTP 401");
    expect(status.lastError).toContain("[redacted]");
    expect(status.lastError).not.toContain(a.token);

    // The probe, through the service's test call.
    t.services.integrations.setProbes({ loki: e.probe });
    const failed = await t.services.integrations.test(a.org.id);
    expect(failed.loki).toMatchObject({ ok: false, status: 401 });
    expect(JSON.stringify(failed)).not.toContain(a.token);
    expect(JSON.stringify(failed)).not.toContain(Buffer.from(`${a.id}:${a.token}`).toString("base64"));

    loki.answer("echo", { status: 204 });
    const ok = await t.services.integrations.test(a.org.id);
    expect(ok.loki).toMatchObject({ ok: true, status: 204, error: null });
    const probe = loki.pushes("echo").find((p) => p.streams.some((s) => s.stream.source === "test"));
    expect(probe?.streams).toEqual([
      {
        stream: { org_id: a.org.id, source: "test" },
        values: [{ ns: expect.stringMatching(/^\d{19}$/), line: { message: "orgplane integration test" } }],
      },
    ]);
    expect(probe?.auth).toBe(`${a.id}:${a.token}`);
    await removeLoki(a.org.id);
  });

  it("accepts a Loki base URL and appends the push path", async () => {
    const a = await orgWithLoki("base", loki.base("base"));
    const e = exporter();
    await e.start();
    const config: IntegrationConfig = {
      orgId: a.org.id,
      kind: "loki",
      endpoint: loki.base("base"),
      id: a.id,
      token: a.token,
      tokenLast4: a.token.slice(-4),
      createdAt: new Date(),
      updatedAt: new Date(),
    };
    expect(await e.probe(config)).toMatchObject({ ok: true, status: 204 });
    e.telemetry.authorizeDecision(denial(a.org.id, 3));
    await waitFor("the line", () => loki.entries("base", "authorize").length === 1);
    await removeLoki(a.org.id);
  });
});
