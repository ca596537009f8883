/**
 * The shared auth suite: every /v1 operation in the OpenAPI document is refused to a stranger, to a
 * forged key, to another organization, to a key without the scope, to a suspended organization and to
 * a deleted one. Operations are discovered from the document, so routes added later join on their own.
 *
 * Every /v1 operation must publish its access rule as `x-orgplane-access` (spread from `guarded()`).
 * The only way out is to be explicitly public: an operation whose OpenAPI `security` is the empty list
 * (`security: []`, the OpenAPI spelling of "no credential needed") and that carries no access rule.
 * Public operations are listed by the suite and skipped by it. Today there are none.
 */
import { typeid } from "typeid-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AccessRule } from "../../src/domain/auth/access.ts";
import { ORG_SCOPES, type Scope } from "../../src/domain/auth/principal.ts";
import { buildApi, openApiDocument } from "../../src/http/api.ts";
import { generateKey } from "../../src/lib/api-key-format.ts";
import {
  createTestContext,
  expectStatus,
  PREFIXES,
  type TestContext,
  type TestResponse,
  uniqueName,
} from "../harness.ts";

// ---------------------------------------------------------------------------------------------------
// Discovery: the OpenAPI document is JSON; read it through narrow local types.

/** An id parameter (`idPrefix`), or a catalog key such as a quota's (`key`: its documented example). */
type PathParam = { name: string; idPrefix: string } | { name: string; idPrefix: null; key: string };

type Operation = {
  /** "GET /v1/organizations/{org_id}", the test name. */
  name: string;
  method: string;
  path: string;
  access: AccessRule | undefined;
  isPublic: boolean;
  pathParams: PathParam[];
  hasOrgInPath: boolean;
};

const HTTP_METHODS = ["get", "put", "post", "patch", "delete"] as const;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isScope(value: unknown): value is Scope {
  return ORG_SCOPES.some((scope) => scope === value);
}

/** The published rule, or a thrown error naming the operation when it is not one `checkAccess` knows. */
function readAccessRule(name: string, raw: unknown): AccessRule | undefined {
  if (raw === undefined) {
    return undefined;
  }
  const malformed = new Error(`${name}: x-orgplane-access is not a valid rule: ${JSON.stringify(raw)}`);
  if (!isRecord(raw)) {
    throw malformed;
  }
  const allowSuspended = raw.allowSuspended;
  if (allowSuspended !== undefined && typeof allowSuspended !== "boolean") {
    throw malformed;
  }
  const suspended = allowSuspended === undefined ? {} : { allowSuspended };
  switch (raw.kind) {
    case "operator":
      return { kind: "operator" };
    case "operator_or_user":
      return { kind: "operator_or_user" };
    case "user":
      return { kind: "user" };
    case "any":
      return { kind: "any", ...suspended };
    case "org":
      if (!isScope(raw.scope)) {
        throw malformed;
      }
      return {
        kind: "org",
        scope: raw.scope,
        ...suspended,
        ...(raw.selfExempt === true ? { selfExempt: true } : {}),
      };
    default:
      throw malformed;
  }
}

/** A path parameter's id prefix, from its documented example (`key_01jd…` → `key`). */
function readPathParam(name: string, raw: unknown): PathParam | undefined {
  if (!isRecord(raw) || raw.in !== "path" || typeof raw.name !== "string") {
    return undefined;
  }
  const schema = isRecord(raw.schema) ? raw.schema : {};
  const example = raw.example ?? schema.example;
  const match = typeof example === "string" ? /^([a-z]+)_[0-9a-z]{26}$/.exec(example) : null;
  if (match?.[1] === undefined) {
    if (typeof example === "string" && /^[a-z][a-z0-9_]{0,63}$/.test(example)) {
      return { name: raw.name, idPrefix: null, key: example };
    }
    throw new Error(
      `${name}: path parameter '${raw.name}' has no id-shaped or key-shaped example (use idParam()), ` +
        "so the suite cannot make a well-formed unknown id for it",
    );
  }
  return { name: raw.name, idPrefix: match[1] };
}

function discoverOperations(document: unknown): Operation[] {
  if (!isRecord(document) || !isRecord(document.paths)) {
    throw new Error("The OpenAPI document has no paths");
  }
  const operations: Operation[] = [];
  for (const [path, item] of Object.entries(document.paths)) {
    if (!path.startsWith("/v1/") || !isRecord(item)) {
      continue;
    }
    for (const method of HTTP_METHODS) {
      const op = item[method];
      if (!isRecord(op)) {
        continue;
      }
      const name = `${method.toUpperCase()} ${path}`;
      const parameters = Array.isArray(op.parameters) ? op.parameters : [];
      const pathParams = parameters
        .map((p) => readPathParam(name, p))
        .filter((p): p is PathParam => p !== undefined);
      operations.push({
        name,
        method: method.toUpperCase(),
        path,
        access: readAccessRule(name, op["x-orgplane-access"]),
        isPublic: Array.isArray(op.security) && op.security.length === 0,
        pathParams,
        hasOrgInPath: pathParams.some((p) => p.name === "org_id"),
      });
    }
  }
  return operations;
}

/** JSON round trip: exactly what `/openapi.json` serves, as plain data. */
const document: unknown = JSON.parse(JSON.stringify(openApiDocument(buildApi())));
const operations = discoverOperations(document);

type GuardedOperation = Operation & { access: AccessRule };
const guardedOperations = operations.filter(
  (op): op is GuardedOperation => op.access !== undefined && !op.isPublic,
);

// ---------------------------------------------------------------------------------------------------
// Requests

let t: TestContext;
/** Org A: the caller's organization, with an every-scope key. */
let orgA: { id: string; key: string };
/** Org B: someone else's organization; its name must never reach org A. */
let orgB: { id: string; name: string };
let suspended: { id: string; key: string };
let deleted: { id: string; key: string };

beforeAll(async () => {
  t = await createTestContext();
  const a = await t.createOrgWithKey();
  // The suite mints a key per operation: more than the default (free) plan allows.
  await t.setPlan(a.org.id, "enterprise");
  orgA = { id: a.org.id, key: a.key };
  const b = await t.createOrg({ name: uniqueName("org-b-secret") });
  orgB = { id: b.id, name: b.name };
  suspended = await suspendedOrgWithKey();
  const d = await t.createOrgWithKey();
  await t.services.orgs.delete(t.operatorCtx, d.org.id);
  deleted = { id: d.org.id, key: d.key };
});
afterAll(() => t.close());

async function suspendedOrgWithKey(): Promise<{ id: string; key: string }> {
  const { org, key } = await t.createOrgWithKey();
  await t.services.orgs.suspend(t.operatorCtx, org.id, "auth suite");
  return { id: org.id, key };
}

/** The operation's URL acting on `orgId`; every other id is well-formed and unknown. */
function urlFor(op: Operation, orgId: string): string {
  let url = op.path;
  for (const param of op.pathParams) {
    const value =
      param.name === "org_id"
        ? orgId
        : param.idPrefix === null
          ? param.key
          : typeid(param.idPrefix).toString();
    url = url.replace(`{${param.name}}`, encodeURIComponent(value));
  }
  return url;
}

/** Access is decided before the body is validated, so an empty object is body enough. */
function bodyFor(op: Operation): { body?: unknown } {
  return op.method === "POST" || op.method === "PATCH" || op.method === "PUT" ? { body: {} } : {};
}

function send(
  op: Operation,
  orgId: string,
  credential: { key: string | undefined } | { headers: Record<string, string> },
): Promise<TestResponse> {
  const auth = "headers" in credential ? { key: undefined, headers: credential.headers } : credential;
  return t.request(op.method, urlFor(op, orgId), { ...auth, ...bodyFor(op) });
}

/** The status, an RFC 9457 body with the code and a request id; a mismatch prints the body. */
function expectProblem(res: TestResponse, status: number, code: string): void {
  expectStatus(res, status);
  expect(res.headers.get("content-type"), res.text).toMatch(/^application\/problem\+json/);
  expect(res.body.code, res.text).toBe(code);
  expect(res.body.request_id, res.text).toEqual(expect.any(String));
  expect(String(res.body.request_id), res.text).not.toBe("");
  expect(res.headers.get("x-request-id"), res.text).toBe(res.body.request_id);
}

function expectAuthChallenge(res: TestResponse): void {
  expect(res.headers.get("www-authenticate"), res.text).toMatch(/^Bearer /);
}

/** Flip the last checksum character: the key keeps its shape but no longer adds up. */
function breakChecksum(key: string): string {
  return `${key.slice(0, -1)}${key.endsWith("A") ? "B" : "A"}`;
}

function keyWithoutScope(orgId: string, scope: Scope): Promise<string> {
  return t.createKey(
    orgId,
    ORG_SCOPES.filter((s) => s !== scope),
  );
}

// ---------------------------------------------------------------------------------------------------

describe("the auth suite covers every /v1 operation", () => {
  it("finds the operations in the OpenAPI document", () => {
    expect(operations.length).toBeGreaterThan(0);
  });

  it("publishes an access rule on every operation that is not explicitly public", () => {
    const unguarded = operations.filter((op) => op.access === undefined && !op.isPublic).map((op) => op.name);
    expect(unguarded, "spread ...guarded(rule) into these routes, or mark them security: []").toEqual([]);
  });

  it("lets no public operation carry an access rule as well", () => {
    const contradictory = operations
      .filter((op) => op.isPublic && op.access !== undefined)
      .map((op) => op.name);
    expect(contradictory).toEqual([]);
  });

  it("runs over the same operations that /openapi.json serves", async () => {
    const res = await t.request("GET", "/openapi.json");
    expectStatus(res, 200);
    expect(discoverOperations(res.body).map((op) => op.name)).toEqual(operations.map((op) => op.name));
  });

  it("documents every /v1 route the app serves, so none escapes the suite", () => {
    const documented = new Set(operations.map((op) => op.name));
    const served = new Set(
      t.app.routes
        .filter((r) => r.method !== "ALL" && r.path.startsWith("/v1/"))
        .map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, "{$1}")}`),
    );
    expect([...served].filter((name) => !documented.has(name))).toEqual([]);
  });
});

describe.each(guardedOperations.map((op) => [op.name, op] as const))("%s", (_name, op) => {
  it("refuses a request without a credential: 401 unauthenticated with a WWW-Authenticate challenge", async () => {
    const res = await send(op, orgA.id, { key: undefined });
    expectProblem(res, 401, "unauthenticated");
    expectAuthChallenge(res);
  });

  it("refuses a garbage bearer credential: 401 invalid_credential", async () => {
    const res = await send(op, orgA.id, { key: "not-a-key" });
    expectProblem(res, 401, "invalid_credential");
    expectAuthChallenge(res);
  });

  it("refuses a key whose checksum does not add up: 401 invalid_credential", async () => {
    const res = await send(op, orgA.id, { key: breakChecksum(orgA.key) });
    expectProblem(res, 401, "invalid_credential");
    expectAuthChallenge(res);
  });

  it("refuses a broken key sent as X-API-Key: 401 invalid_credential", async () => {
    const res = await send(op, orgA.id, { headers: { "X-API-Key": breakChecksum(orgA.key) } });
    expectProblem(res, 401, "invalid_credential");
  });

  it("refuses a well-formed key that was never issued: 401 invalid_credential", async () => {
    const res = await send(op, orgA.id, { key: generateKey(PREFIXES.orgKeyPrefix, "live") });
    expectProblem(res, 401, "invalid_credential");
  });

  it("refuses a well-formed operator key that was never issued: 401 invalid_credential", async () => {
    const res = await send(op, orgA.id, { key: generateKey(PREFIXES.operatorKeyPrefix, "live") });
    expectProblem(res, 401, "invalid_credential");
  });

  it("refuses the key of a deleted organization: 401 invalid_credential", async () => {
    const res = await send(op, deleted.id, { key: deleted.key });
    expectProblem(res, 401, "invalid_credential");
  });

  if (op.hasOrgInPath) {
    it("answers another organization's id with 404 not_found, revealing nothing of it", async () => {
      const res = await send(op, orgB.id, { key: orgA.key });
      expectProblem(res, 404, "not_found");
      expect(res.text).not.toContain(orgB.name);
    });

    it("answers another organization's id with 404 even to a key without scopes", async () => {
      const res = await send(op, orgB.id, { key: await t.createKey(orgA.id, []) });
      expectProblem(res, 404, "not_found");
      expect(res.text).not.toContain(orgB.name);
    });

    it("answers another organization's id with 404 even to a suspended organization's key", async () => {
      const res = await send(op, orgB.id, { key: suspended.key });
      expectProblem(res, 404, "not_found");
      expect(res.text).not.toContain(orgB.name);
    });
  }

  const rule = op.access;
  if (rule.kind === "operator" || rule.kind === "operator_or_user") {
    it(
      op.hasOrgInPath
        ? "refuses an organization key even on its own organization: 403 operator_only"
        : "refuses an organization key: 403 operator_only",
      async () => {
        const res = await send(op, orgA.id, { key: orgA.key });
        expectProblem(res, 403, "operator_only");
      },
    );
    return;
  }

  if (rule.kind === "user") {
    it("refuses an organization key: 403 forbidden (a signed-in person must do this)", async () => {
      const res = await send(op, orgA.id, { key: orgA.key });
      expectProblem(res, 403, "forbidden");
    });
    return;
  }

  if (rule.kind === "org") {
    it(`refuses a key of the right organization holding every scope but '${rule.scope}': 403 insufficient_scope`, async () => {
      const res = await send(op, orgA.id, { key: await keyWithoutScope(orgA.id, rule.scope) });
      expectProblem(res, 403, "insufficient_scope");
      expect(res.body.detail, res.text).toContain(rule.scope);
    });
  }

  if ("allowSuspended" in rule && rule.allowSuspended === true) {
    it("lets a suspended organization's key through (its rule allows suspended organizations)", async () => {
      // A fresh organization: if the operation changes something, no other test sees it.
      const own = await suspendedOrgWithKey();
      const res = await send(op, own.id, { key: own.key });
      expect(res.status, res.text).toBeLessThan(500);
      if (res.status >= 400) {
        expect(res.body.code, res.text).not.toBe("organization_suspended");
        expect(res.headers.get("content-type"), res.text).toMatch(/^application\/problem\+json/);
      }
    });
  } else {
    it("refuses a suspended organization's key: 403 organization_suspended", async () => {
      const res = await send(op, suspended.id, { key: suspended.key });
      expectProblem(res, 403, "organization_suspended");
    });
  }
});
