import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../src/infra/logger.ts";
import { createMetricsExporter, type MetricsExporter } from "../src/infra/metrics-export/exporter.ts";
import { createOutboundClient, type OutboundClient } from "../src/infra/outbound-http.ts";
import { systemClock } from "../src/lib/clock.ts";
import { createExportLease } from "../src/store/metrics-export.store.pg.ts";
import { createTestContext, expectStatus, type TestContext } from "./harness.ts";
import { freePort } from "./util.ts";

/**
 * The remote-write export into a real Prometheus (the Debian package `prometheus`; .ci/run installs it):
 * Prometheus is started on a loopback port with its remote-write receiver on, an organization's integration
 * points at it through a small proxy that checks the basic-auth credential (Prometheus itself checks none),
 * and the series are read back with PromQL through Prometheus's HTTP API.
 */

/** Prometheus answers /-/ready within a few seconds of starting on an empty TSDB; this bounds a broken start. */
const READY_TIMEOUT_MS = 60_000;

function prometheusBinary(): string {
  try {
    return execFileSync("sh", ["-c", "command -v prometheus"], { encoding: "utf8" }).trim();
  } catch {
    throw new Error(
      "the prometheus binary is not installed: this test needs a real Prometheus " +
        "(Debian: apt-get install -y prometheus; .ci/run installs it)",
    );
  }
}

type Prometheus = { url: string; output(): string; stop(): Promise<void> };

async function startPrometheus(): Promise<Prometheus> {
  const binary = prometheusBinary();
  const dir = mkdtempSync(join(tmpdir(), "orgplane-prometheus-"));
  const config = join(dir, "prometheus.yml");
  // No scrape targets: every series in this Prometheus arrived by remote-write.
  writeFileSync(config, "global:\n  scrape_interval: 1m\nscrape_configs: []\n");
  const port = await freePort();
  const child: ChildProcess = spawn(
    binary,
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--web.enable-remote-write-receiver",
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout?.on("data", (c: Buffer) => {
    output += c.toString();
  });
  child.stderr?.on("data", (c: Buffer) => {
    output += c.toString();
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`prometheus exited with ${child.exitCode}:\n${output.slice(-4000)}`);
    }
    const ready = await fetch(`${url}/-/ready`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ready) {
      break;
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`prometheus did not become ready:\n${output.slice(-4000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return {
    url,
    output: () => output,
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Forwards /api/v1/write to Prometheus when the request carries `expected` as its Authorization header,
 * else answers 401; records every Authorization header it saw.
 */
async function startAuthProxy(
  target: string,
  expected: string,
): Promise<{ url: string; seen: string[]; close(): Promise<void> }> {
  const seen: string[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const auth = req.headers.authorization ?? "";
      seen.push(auth);
      if (auth !== expected) {
        res.writeHead(401).end("unauthorized");
        return;
      }
      const body = Buffer.concat(chunks);
      const headers: Record<string, string> = { "content-length": String(body.length) };
      for (const name of ["content-type", "content-encoding", "x-prometheus-remote-write-version"]) {
        const value = req.headers[name];
        if (typeof value === "string") {
          headers[name] = value;
        }
      }
      const forward = httpRequest(`${target}${req.url ?? ""}`, { method: "POST", headers }, (answer) => {
        const back: Buffer[] = [];
        answer.on("data", (c: Buffer) => back.push(c));
        answer.on("end", () => res.writeHead(answer.statusCode ?? 502).end(Buffer.concat(back)));
      });
      forward.on("error", (err) => res.writeHead(502).end(err.message));
      forward.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

type QueryResult = { metric: Record<string, string>; value: [number, string] }[];

async function query(prometheus: Prometheus, promql: string): Promise<QueryResult> {
  const res = await fetch(`${prometheus.url}/api/v1/query?query=${encodeURIComponent(promql)}`);
  const body = (await res.json()) as { status: string; data?: { resultType: string; result: QueryResult } };
  if (body.status !== "success" || body.data?.resultType !== "vector") {
    throw new Error(`PromQL ${promql} failed: ${JSON.stringify(body)}`);
  }
  return body.data.result;
}

describe("remote-write into a real Prometheus", () => {
  let t: TestContext;
  let prometheus: Prometheus;
  let proxy: Awaited<ReturnType<typeof startAuthProxy>>;
  let client: OutboundClient;
  let exporter: MetricsExporter;
  const token = "prom-token-7f3a9c2e5b1d";
  const id = "812345";
  const logLines: string[] = [];

  beforeAll(async () => {
    prometheus = await startPrometheus();
    proxy = await startAuthProxy(
      prometheus.url,
      `Basic ${Buffer.from(`${id}:${token}`, "utf8").toString("base64")}`,
    );
    t = await createTestContext({ integrations: { activeCacheMs: 0 } });
    t.services.telemetry.bind(t.services.orgMetrics.telemetry);
    client = createOutboundClient({ allowPrivate: true });
    exporter = createMetricsExporter({
      metrics: t.services.orgMetrics,
      integrations: t.services.integrations,
      client,
      lease: createExportLease(t.database.pool, () => {}),
      clock: systemClock,
      logger: createLogger("trace", { write: (line: string) => void logLines.push(line) }),
      intervalSeconds: 15,
    });
    // POST …/integrations/test sends its sample through the exporter, as main.ts wires it.
    t.services.integrations.setProbes({ prometheus: exporter.probe });
  });
  afterAll(async () => {
    await exporter?.stop();
    client?.close();
    await t?.close();
    await proxy?.close();
    await prometheus?.stop();
  });

  it("receives the organization's series, readable with PromQL, and no other organization's", async () => {
    const mine = await t.createOrgWithKey();
    const theirs = await t.createOrgWithKey();
    expectStatus(
      await t.request("PUT", `/v1/organizations/${mine.org.id}/integrations`, {
        body: { prometheus: { endpoint: `${proxy.url}/api/v1/write`, id, token }, loki: null },
      }),
      200,
    );
    // Five decisions for this organization (four allowed, one refused for a missing scope), three for the
    // other one, and two requests of this organization to Orgplane's own API.
    for (let i = 0; i < 4; i++) {
      expectStatus(
        await t.request("POST", "/v1/authorize", { body: { key: mine.key, category: "search" } }),
        200,
      );
    }
    const narrow = await t.createKey(mine.org.id, ["orgs:read"]);
    const refused = await t.request<{ allowed: boolean; reason: string }>("POST", "/v1/authorize", {
      body: { key: narrow, category: "search", scope: "usage:write" },
    });
    expectStatus(refused, 200);
    expect(refused.body).toMatchObject({ allowed: false, reason: "scope_missing" });
    for (let i = 0; i < 3; i++) {
      expectStatus(
        await t.request("POST", "/v1/authorize", { body: { key: theirs.key, category: "search" } }),
        200,
      );
    }
    expectStatus(await t.request("GET", "/v1/organization", { key: mine.key }), 200);
    expectStatus(await t.request("GET", `/v1/organizations/${mine.org.id}/credits`, { key: mine.key }), 200);

    const results = await exporter.exportOnce();
    expect(results).toEqual([
      { orgId: mine.org.id, kind: "prometheus", ok: true, error: null, droppedBatches: 0, droppedLines: 0 },
    ]);
    // The proxy let the push through only with the organization's id:token.
    expect(proxy.seen).toHaveLength(1);

    // The test call: one sample, now, through the same path.
    const tested = await t.request<{ prometheus: { ok: boolean; status: number; error: string | null } }>(
      "POST",
      `/v1/organizations/${mine.org.id}/integrations/test`,
    );
    expectStatus(tested, 200);
    expect(tested.body.prometheus).toMatchObject({ ok: true, status: 204, error: null });
    expect(proxy.seen).toHaveLength(2);
    expect(await query(prometheus, `orgplane_integration_test{org_id="${mine.org.id}"}`)).toEqual([
      {
        metric: { __name__: "orgplane_integration_test", org_id: mine.org.id },
        value: [expect.any(Number), "1"],
      },
    ]);

    const org = mine.org.id;
    expect(await query(prometheus, `sum(orgplane_authorize_decisions_total{org_id="${org}"})`)).toEqual([
      { metric: {}, value: [expect.any(Number), "5"] },
    ]);
    const byOutcome = await query(
      prometheus,
      `sum by (outcome) (orgplane_authorize_decisions_total{org_id="${org}", category="search"})`,
    );
    expect(Object.fromEntries(byOutcome.map((r) => [r.metric.outcome, r.value[1]]))).toEqual({
      allowed: "4",
      scope_missing: "1",
    });
    // The README's query: the organization's request count.
    expect(await query(prometheus, `sum(orgplane_requests_total{org_id="${org}"})`)).toEqual([
      { metric: {}, value: [expect.any(Number), "2"] },
    ]);
    // The free plan's 1,000 credits of the period (the account was opened by reading it, below).
    expect(await query(prometheus, `orgplane_credits_balance{org_id="${org}"}`)).toEqual([
      {
        metric: { __name__: "orgplane_credits_balance", org_id: org },
        value: [expect.any(Number), "1000"],
      },
    ]);
    const quota = await query(prometheus, `orgplane_quota_utilization{org_id="${org}", quota="api_keys"}`);
    // Two live keys of the free plan's two.
    expect(quota.map((r) => r.value[1])).toEqual(["1"]);

    // Nothing of the other organization reached this Prometheus, and nothing but this organization's.
    expect(await query(prometheus, `count({org_id="${theirs.org.id}"})`)).toEqual([]);
    const orgs = await query(prometheus, `count by (org_id) ({__name__=~"orgplane_.+"})`);
    expect(orgs.map((r) => r.metric.org_id)).toEqual([org]);

    // The integration's status shows the success; the token is nowhere in it nor in a log line.
    const status = await t.request(`GET`, `/v1/organizations/${org}/integrations`);
    expectStatus(status, 200);
    expect(status.text).not.toContain(token);
    expect(JSON.stringify(status.body)).toMatch(/"last_success_at":"20/);
    expect(logLines.join("")).not.toContain(token);
    expect(prometheus.output()).not.toContain(token);
  });

  it("counts a refused push as a dropped batch and shows the endpoint's error without the token", async () => {
    const { org } = await t.createOrgWithKey();
    expectStatus(
      await t.request("PUT", `/v1/organizations/${org.id}/integrations`, {
        body: { prometheus: { endpoint: `${proxy.url}/api/v1/write`, id, token: "wrong-token-0000000" } },
      }),
      200,
    );
    const results = await exporter.exportOnce();
    const mine = results.find((r) => r.orgId === org.id);
    expect(mine).toMatchObject({ ok: false, droppedBatches: 1 });
    expect(mine?.error).toContain("401");
    expect(mine?.error).not.toContain("wrong-token-0000000");
    const status = await t.request<{ prometheus: { dropped_batches: number; last_error: string } }>(
      "GET",
      `/v1/organizations/${org.id}/integrations`,
    );
    expect(status.body.prometheus.dropped_batches).toBe(1);
    expect(status.body.prometheus.last_error).toContain("401");
    expect(status.text).not.toContain("wrong-token-0000000");
  });
});
