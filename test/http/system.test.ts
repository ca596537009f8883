import { readdir } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestContext, expectStatus, type TestContext } from "../harness.ts";

let t: TestContext;
beforeAll(async () => {
  t = await createTestContext();
});
afterAll(() => t.close());

type OpenApiDocument = {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, { operationId?: string; responses?: Record<string, unknown> }>>;
  components?: Record<string, Record<string, unknown>>;
};

const HTTP_METHODS = new Set(["get", "put", "post", "delete", "patch", "head", "options", "trace"]);

/** `src/http/routes/<area>/<operation>.ts`, one file per operationId: `create-api-key.ts` ↔ `createApiKey`. */
async function operationIdsFromRouteFiles(): Promise<string[]> {
  const root = new URL("../../src/http/routes/", import.meta.url);
  const ids: string[] = [];
  for (const area of await readdir(root, { withFileTypes: true })) {
    if (!area.isDirectory()) {
      continue;
    }
    for (const file of await readdir(new URL(`${area.name}/`, root))) {
      if (file.endsWith(".ts") && file !== "index.ts" && !file.endsWith(".test.ts")) {
        ids.push(file.slice(0, -3).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()));
      }
    }
  }
  return ids.sort();
}

/** Every `$ref` in the document, wherever it sits. */
function refs(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) {
    for (const item of value) {
      refs(item, out);
    }
  } else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      if (k === "$ref" && typeof v === "string") {
        out.push(v);
      } else {
        refs(v, out);
      }
    }
  }
  return out;
}

describe("probes", () => {
  it("answers /healthz with 200 and /readyz with 200 while the database answers", async () => {
    const health = await t.request("GET", "/healthz", { key: undefined });
    expectStatus(health, 200);
    expect(health.body).toEqual({ status: "ok" });
    const ready = await t.request("GET", "/readyz", { key: undefined });
    expectStatus(ready, 200);
    expect(ready.body.status).toBe("ok");
  });
});

describe("/metrics", () => {
  it("counts requests by route pattern, never by concrete id", async () => {
    const org = await t.createOrg();
    expectStatus(await t.request("GET", `/v1/organizations/${org.id}`), 200);
    expectStatus(await t.request("GET", "/healthz", { key: undefined }), 200);
    const metrics = await t.request("GET", "/metrics", { key: undefined });
    expectStatus(metrics, 200);
    expect(metrics.headers.get("content-type")).toMatch(/^text\/plain/);
    expect(metrics.text).toContain("# TYPE orgplane_http_requests_total counter");
    expect(metrics.text).toMatch(
      /orgplane_http_requests_total\{method="GET",route="\/healthz",status="200"\} [1-9]/,
    );
    expect(metrics.text).toMatch(
      /orgplane_http_requests_total\{method="GET",route="\/v1\/organizations\/:org_id",status="200"\} [1-9]/,
    );
    expect(metrics.text).toContain("orgplane_http_request_duration_seconds_bucket");
    expect(metrics.text, "a concrete id in a label would explode the series count").not.toContain(org.id);
  });
});

describe("/openapi.json", () => {
  it("is an OpenAPI 3.1 document with one operation per route file, every one named", async () => {
    const res = await t.request<OpenApiDocument>("GET", "/openapi.json", { key: undefined });
    expectStatus(res, 200);
    const doc = res.body;
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.info.title).toBe("Orgplane API");
    expect(doc.info.version).toMatch(/^\d+\.\d+\.\d+/);

    const operationIds: string[] = [];
    for (const [path, item] of Object.entries(doc.paths)) {
      expect(path, "every public path is under /v1").toMatch(/^\/v1\//);
      for (const [method, operation] of Object.entries(item)) {
        if (!HTTP_METHODS.has(method)) {
          continue;
        }
        expect(operation.operationId, `${method.toUpperCase()} ${path} has an operationId`).toEqual(
          expect.any(String),
        );
        expect(
          Object.keys(operation.responses ?? {}),
          `${method.toUpperCase()} ${path} responses`,
        ).not.toEqual([]);
        operationIds.push(String(operation.operationId));
      }
    }
    expect(new Set(operationIds).size, "operationIds are unique").toBe(operationIds.length);
    expect(operationIds.sort()).toEqual(await operationIdsFromRouteFiles());
    expect(operationIds).toEqual(expect.arrayContaining(["getMe", "createOrganization", "createApiKey"]));

    for (const ref of refs(doc)) {
      const [, section, name] = /^#\/components\/([^/]+)\/(.+)$/.exec(ref) ?? [];
      expect(section !== undefined && name !== undefined, `${ref} is a local component reference`).toBe(true);
      expect(doc.components?.[String(section)]?.[String(name)], `${ref} resolves`).toBeDefined();
    }
  });
});

describe("/docs", () => {
  it("serves Swagger UI with every asset local, so the docs work with no internet", async () => {
    const page = await t.request("GET", "/docs", { key: undefined });
    expectStatus(page, 200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    expect(page.text, "no URL to another host in the page").not.toMatch(/(https?:)?\/\/[a-z0-9]/i);

    const local = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => String(m[1]));
    expect(local).toEqual(
      expect.arrayContaining([
        "/docs/assets/swagger-ui.css",
        "/docs/assets/swagger-ui-bundle.js",
        "/docs/init.js",
      ]),
    );
    for (const path of local) {
      expect(path, "assets are served by Orgplane itself").toMatch(/^\/docs\//);
      const asset = await t.request("GET", path, { key: undefined });
      expect(asset.status, `${path}: ${asset.text.slice(0, 200)}`).toBe(200);
      expect(asset.text.length, `${path} has content`).toBeGreaterThan(0);
    }

    const init = await t.request("GET", "/docs/init.js", { key: undefined });
    expect(init.headers.get("content-type")).toMatch(/javascript/);
    expect(init.text).toContain('"/openapi.json"');
    expect(init.text, "no URL to another host in the initialiser").not.toMatch(/https?:\/\//);
    const bundle = await t.request("GET", "/docs/assets/swagger-ui-bundle.js", { key: undefined });
    expect(bundle.headers.get("content-type")).toMatch(/javascript/);
  });

  it("answers an unknown asset with a 404 problem", async () => {
    const res = await t.request("GET", "/docs/assets/nope.js", { key: undefined });
    expectStatus(res, 404);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
  });
});

describe("X-Request-Id", () => {
  const paths: [string, string, number][] = [
    ["GET", "/healthz", 200],
    ["GET", "/readyz", 200],
    ["GET", "/metrics", 200],
    ["GET", "/openapi.json", 200],
    ["GET", "/docs", 200],
    ["GET", "/docs/assets/swagger-ui.css", 200],
    ["GET", "/v1/me", 401],
    ["GET", "/no/such/route", 404],
  ];

  it("is on every response, minted when the client sends none", async () => {
    for (const [method, path, status] of paths) {
      const res = await t.request(method, path, { key: undefined });
      expect(res.status, `${method} ${path}`).toBe(status);
      expect(res.headers.get("x-request-id"), `${method} ${path}`).toMatch(/^req_[0-9a-z]{26}$/);
    }
    const authed = await t.request("GET", "/v1/me");
    expectStatus(authed, 200);
    expect(authed.headers.get("x-request-id")).toMatch(/^req_/);
  });

  it("echoes a sane id the client sends, on success and on a problem, in the header and the body", async () => {
    const ok = await t.request("GET", "/v1/me", { headers: { "X-Request-Id": "trace-abc.123:XYZ_9" } });
    expectStatus(ok, 200);
    expect(ok.headers.get("x-request-id")).toBe("trace-abc.123:XYZ_9");

    const missing = await t.request("GET", "/v1/organizations/org_nope", {
      headers: { "X-Request-Id": "client-chosen-1" },
    });
    expectStatus(missing, 404);
    expect(missing.headers.get("x-request-id")).toBe("client-chosen-1");
    expect(missing.body.request_id).toBe("client-chosen-1");
  });

  it("replaces an id that is too long or carries odd characters", async () => {
    for (const garbage of [
      "a".repeat(129),
      "has spaces in it",
      "<script>alert(1)</script>",
      "semi;colon",
      "",
    ]) {
      const res = await t.request("GET", "/healthz", {
        key: undefined,
        headers: { "X-Request-Id": garbage },
      });
      expectStatus(res, 200);
      const id = res.headers.get("x-request-id");
      expect(id, JSON.stringify(garbage)).toMatch(/^req_[0-9a-z]{26}$/);
    }
  });
});

describe("unknown routes", () => {
  it("answers 404 route_not_found as a problem document", async () => {
    for (const [method, path] of [
      ["GET", "/nope"],
      ["GET", "/v2/organizations"],
      ["POST", "/healthz/extra"],
      ["GET", `/${"x".repeat(5000)}`],
    ] as const) {
      const res = await t.request(method, path, { key: undefined });
      expectStatus(res, 404);
      expect(res.headers.get("content-type")).toBe("application/problem+json");
      expect(res.body).toMatchObject({ status: 404, code: "route_not_found", title: expect.any(String) });
      expect(res.body.request_id).toBe(res.headers.get("x-request-id"));
      expect(res.text.length, "a long path is not echoed whole").toBeLessThan(2000);
    }
  });
});
