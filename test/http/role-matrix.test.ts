/**
 * The role matrix: every role × every organization route in the OpenAPI document. A role whose
 * documented scopes (ROLE_SCOPES, docs/roles.md) include the route's scope gets past the scope check;
 * any other role is refused with exactly 403 insufficient_scope. Routes are discovered from the
 * document (`x-orgplane-access`), so routes added later join the matrix on their own.
 */
import { readFile } from "node:fs/promises";
import { typeid } from "typeid-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROLE_SCOPES, ROLES, type Role } from "../../src/domain/auth/principal.ts";
import { buildApi, openApiDocument } from "../../src/http/api.ts";
import { createTestContext, expectStatus, type TestContext, type TestResponse } from "../harness.ts";

type Rule = { kind: string; scope?: string };
type Operation = {
  name: string;
  method: string;
  path: string;
  rule: Rule;
  /** Path parameter → the id prefix of its documented example (`key_01jd…` → `key`). */
  idPrefixes: Record<string, string>;
  /** Path parameters that name a catalog key (a quota) → their documented example. */
  keys: Record<string, string>;
};

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const HTTP_METHODS = ["get", "put", "post", "patch", "delete"] as const;

function discover(document: unknown): Operation[] {
  if (!isRecord(document) || !isRecord(document.paths)) {
    throw new Error("The OpenAPI document has no paths");
  }
  const found: Operation[] = [];
  for (const [path, item] of Object.entries(document.paths)) {
    if (!path.startsWith("/v1/") || !isRecord(item)) {
      continue;
    }
    for (const method of HTTP_METHODS) {
      const op = item[method];
      if (!isRecord(op) || !isRecord(op["x-orgplane-access"])) {
        continue;
      }
      const raw = op["x-orgplane-access"];
      if (typeof raw.kind !== "string") {
        throw new Error(`${method} ${path}: x-orgplane-access has no kind`);
      }
      const rule: Rule =
        typeof raw.scope === "string" ? { kind: raw.kind, scope: raw.scope } : { kind: raw.kind };
      const idPrefixes: Record<string, string> = {};
      const keys: Record<string, string> = {};
      for (const param of Array.isArray(op.parameters) ? op.parameters : []) {
        if (!isRecord(param) || param.in !== "path" || typeof param.name !== "string") {
          continue;
        }
        const example = param.example ?? (isRecord(param.schema) ? param.schema.example : undefined);
        const match = typeof example === "string" ? /^([a-z]+)_[0-9a-z]{26}$/.exec(example) : null;
        if (match?.[1] === undefined) {
          if (typeof example === "string" && /^[a-z][a-z0-9_]{0,63}$/.test(example)) {
            // A catalog key (a quota): the documented example is used as it is.
            keys[param.name] = example;
            continue;
          }
          throw new Error(`${method} ${path}: path parameter '${param.name}' has no id-shaped example`);
        }
        idPrefixes[param.name] = match[1];
      }
      found.push({
        name: `${method.toUpperCase()} ${path}`,
        method: method.toUpperCase(),
        path,
        rule,
        idPrefixes,
        keys,
      });
    }
  }
  return found;
}

const operations = discover(JSON.parse(JSON.stringify(openApiDocument(buildApi()))));

let t: TestContext;
beforeAll(async () => {
  t = await createTestContext();
});
afterAll(() => t.close());

/** A fresh organization for each request: an allowed mutation (deleting the org) must not leak into the next. */
async function send(op: Operation, role: Role): Promise<TestResponse> {
  const org = await t.createOrg();
  const { token } = await t.createMember(org.id, role);
  // Every id but the organization's is well-formed and unknown: access is decided before it is looked up.
  const url = op.path.replace(/\{(\w+)\}/g, (_match, name: string) =>
    name === "org_id" ? org.id : (op.keys[name] ?? typeid(op.idPrefixes[name] ?? name).toString()),
  );
  const withBody = op.method === "POST" || op.method === "PATCH" || op.method === "PUT";
  return t.request(op.method, url, { key: token, ...(withBody ? { body: {} } : {}) });
}

/** Past access control: whatever comes next (400 for the empty body, 404 for the unknown id) is not a refusal. */
function expectNotRefusedForScope(res: TestResponse): void {
  expect(res.status, res.text).toBeLessThan(500);
  expect(res.status, res.text).not.toBe(401);
  if (res.status === 404) {
    // The caller's own organization is never the thing not found.
    expect(String(res.body.detail), res.text).not.toMatch(/^Organization /);
  }
  if (res.status === 403) {
    expect(res.body.code, res.text).not.toBe("insufficient_scope");
    expect(res.body.code, res.text).not.toBe("operator_only");
  }
}

describe("docs/roles.md", () => {
  it("documents exactly the scopes each role holds", async () => {
    const text = await readFile(new URL("../../docs/roles.md", import.meta.url), "utf8");
    const documented: Record<string, string[]> = Object.fromEntries(ROLES.map((r) => [r, []]));
    for (const line of text.split("\n")) {
      const match = /^\| `([a-z]+:[a-z]+)` \|(.*)\|$/.exec(line);
      if (match?.[1] === undefined || match[2] === undefined) {
        continue;
      }
      const scope = match[1];
      match[2].split("|").forEach((cell, i) => {
        const role = ROLES[i];
        if (role !== undefined && cell.trim() === "✓") {
          documented[role]?.push(scope);
        }
      });
    }
    for (const role of ROLES) {
      expect(documented[role]?.sort(), role).toEqual([...ROLE_SCOPES[role]].sort());
    }
  });
});

describe("the role matrix covers the organization routes", () => {
  it("finds org-scoped operations, including the members routes", () => {
    const names = operations.filter((op) => op.rule.kind === "org").map((op) => op.name);
    expect(names).toEqual(
      expect.arrayContaining([
        "GET /v1/organizations/{org_id}/members",
        "PATCH /v1/organizations/{org_id}/members/{member_id}",
        "DELETE /v1/organizations/{org_id}/members/{member_id}",
      ]),
    );
  });
});

describe.each(ROLES.map((role) => [role] as const))("as %s", (role) => {
  for (const op of operations) {
    const rule = op.rule;
    if (rule.kind === "org" && rule.scope !== undefined) {
      const scope = rule.scope;
      const allowed = ROLE_SCOPES[role].some((s) => s === scope);
      it(`${op.name} (${scope}): ${allowed ? "allowed" : "403 insufficient_scope"}`, async () => {
        const res = await send(op, role);
        if (allowed) {
          expectNotRefusedForScope(res);
        } else {
          expectStatus(res, 403);
          expect(res.body.code, res.text).toBe("insufficient_scope");
          expect(res.body.detail, res.text).toContain(scope);
        }
      });
    } else if (rule.kind === "operator") {
      it(`${op.name} (operator): 403 operator_only`, async () => {
        const res = await send(op, role);
        expectStatus(res, 403);
        expect(res.body.code, res.text).toBe("operator_only");
      });
    } else {
      // operator_or_user, user, any: a signed-in person is let through whatever their role.
      it(`${op.name} (${rule.kind}): allowed`, async () => {
        expectNotRefusedForScope(await send(op, role));
      });
    }
  }
});
