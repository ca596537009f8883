import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newOperatorKey } from "../../src/domain/api-keys/api-keys.service.ts";
import type { ProblemBody } from "../../src/http/problem.ts";
import { systemClock } from "../../src/lib/clock.ts";
import {
  createTestContext,
  expectStatus,
  PREFIXES,
  type TestContext,
  type TestResponse,
  uniqueName,
} from "../harness.ts";

type Org = { id: string; name: string; slug: string };

let t: TestContext;
beforeAll(async () => {
  t = await createTestContext();
});
afterAll(() => t.close());

function createOrg(idempotencyKey: string, body: Record<string, unknown>, key = t.operatorKey) {
  return t.request<Org>("POST", "/v1/organizations", {
    key,
    body,
    headers: { "Idempotency-Key": idempotencyKey },
  });
}

async function countOrgsNamed(name: string): Promise<number> {
  const { rows } = await t.database.pool.query<{ n: string }>(
    "select count(*) as n from organizations where name = $1",
    [name],
  );
  return Number(rows[0]?.n);
}

function codeOf(res: TestResponse<unknown>): string | undefined {
  return (res.body as Partial<ProblemBody> | undefined)?.code;
}

function expectReplayOf(replay: TestResponse<unknown>, first: TestResponse<unknown>): void {
  expect(replay.status, replay.text).toBe(first.status);
  expect(replay.text).toBe(first.text);
  expect(replay.headers.get("Content-Type")).toBe(first.headers.get("Content-Type"));
  expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
}

describe("Idempotency-Key on POST", () => {
  it("creates one organization for the same request sent twice and replays the first response", async () => {
    const name = uniqueName("idem");
    const key = randomUUID();
    const first = await createOrg(key, { name, metadata: { a: 1 } });
    expectStatus(first, 201);
    expect(first.headers.get("Idempotent-Replayed")).toBeNull();

    const second = await createOrg(key, { name, metadata: { a: 1 } });
    expectReplayOf(second, first);
    expect(second.body.id).toBe(first.body.id);
    expect(second.headers.get("X-Request-Id")).toMatch(/^req_/);
    expect(await countOrgsNamed(name)).toBe(1);
  });

  it("treats the same fields in another order as the same body", async () => {
    const name = uniqueName("idem");
    const key = randomUUID();
    const first = await createOrg(key, { name, currency: "eur", metadata: { x: 1, y: { p: 1, q: 2 } } });
    expectStatus(first, 201);
    const reordered = await createOrg(key, { metadata: { y: { q: 2, p: 1 }, x: 1 }, currency: "eur", name });
    expectReplayOf(reordered, first);
    expect(await countOrgsNamed(name)).toBe(1);
  });

  it("refuses the same key with a different body with 422 idempotency_key_reused", async () => {
    const name = uniqueName("idem");
    const key = randomUUID();
    expectStatus(await createOrg(key, { name }), 201);
    const res = await t.request<ProblemBody>("POST", "/v1/organizations", {
      body: { name: `${name}-other` },
      headers: { "Idempotency-Key": key },
    });
    expectStatus(res, 422);
    expect(res.body.code, res.text).toBe("idempotency_key_reused");
    expect(await countOrgsNamed(`${name}-other`)).toBe(0);
  });

  it("refuses the same key on another endpoint with 422", async () => {
    const org = await t.createOrg();
    const key = randomUUID();
    expectStatus(
      await t.request("POST", `/v1/organizations/${org.id}/api-keys`, {
        body: { name: "k" },
        headers: { "Idempotency-Key": key },
      }),
      201,
    );
    const res = await t.request<ProblemBody>("POST", `/v1/organizations/${org.id}/suspend`, {
      body: { name: "k" },
      headers: { "Idempotency-Key": key },
    });
    expectStatus(res, 422);
    expect(res.body.code, res.text).toBe("idempotency_key_reused");
  });

  it("keeps each credential's keys apart: the same key from another credential is a new request", async () => {
    const { key: secondOperator, plaintext } = newOperatorKey(
      PREFIXES.operatorKeyPrefix,
      "second",
      systemClock,
    );
    await t.database.stores.operatorKeys.insert(secondOperator);
    const name = uniqueName("idem");
    const key = randomUUID();
    const first = await createOrg(key, { name });
    expectStatus(first, 201);
    const other = await createOrg(key, { name }, plaintext);
    expectStatus(other, 201);
    expect(other.headers.get("Idempotent-Replayed")).toBeNull();
    expect(other.body.id).not.toBe(first.body.id);
    expect(await countOrgsNamed(name)).toBe(2);

    // And each credential still replays its own.
    expectReplayOf(await createOrg(key, { name }, plaintext), other);
    expectReplayOf(await createOrg(key, { name }), first);
  });

  it("replays an error response identically, even once the conflict is gone", async () => {
    const slug = uniqueName("held");
    const holder = await t.createOrg({ slug });
    const key = randomUUID();
    const body = { name: uniqueName(), slug };
    const first = await createOrg(key, body);
    expectStatus(first, 409);

    expectStatus(await t.request("DELETE", `/v1/organizations/${holder.id}`), 200);
    const replay = await createOrg(key, body);
    expectReplayOf(replay, first);
    expect(codeOf(replay)).toBe("slug_taken");
  });

  it("refuses an Idempotency-Key that is too long or not ASCII with 400", async () => {
    for (const bad of ["k".repeat(256), "x".repeat(300), "clé"]) {
      const name = uniqueName("idem");
      const res = await t.request<ProblemBody>("POST", "/v1/organizations", {
        body: { name },
        headers: { "Idempotency-Key": bad },
      });
      expectStatus(res, 400);
      expect(res.body.code, res.text).toBe("validation_failed");
      expect(await countOrgsNamed(name)).toBe(0);
    }
    expectStatus(await createOrg("k".repeat(255), { name: uniqueName() }), 201);
  });

  it("ignores Idempotency-Key on methods other than POST", async () => {
    const org = await t.createOrg();
    const key = randomUUID();
    for (const name of ["first", "second"]) {
      const res = await t.request<Org>("PATCH", `/v1/organizations/${org.id}`, {
        body: { name },
        headers: { "Idempotency-Key": key },
      });
      expectStatus(res, 200);
      expect(res.body.name).toBe(name);
      expect(res.headers.get("Idempotent-Replayed")).toBeNull();
    }
  });

  it("creates exactly one organization from 10 parallel requests with one key", async () => {
    const name = uniqueName("idem-race");
    const key = randomUUID();
    const results = await Promise.all(Array.from({ length: 10 }, () => createOrg(key, { name })));
    const created = results.filter((r) => r.status === 201 && r.headers.get("Idempotent-Replayed") === null);
    const replayed = results.filter((r) => r.headers.get("Idempotent-Replayed") === "true");
    const inUse = results.filter((r) => r.status === 409 && codeOf(r) === "idempotency_key_in_use");
    const summary = results.map((r) => `${r.status} ${r.text.slice(0, 120)}`).join("\n");
    expect(created, summary).toHaveLength(1);
    expect(created.length + replayed.length + inUse.length, summary).toBe(10);
    for (const r of replayed) {
      expect(r.text).toBe(created[0]?.text);
    }
    for (const r of inUse) {
      expect(Number(r.headers.get("Retry-After")), summary).toBeGreaterThanOrEqual(1);
    }
    expect(await countOrgsNamed(name)).toBe(1);

    // Once the winner has finished, the key replays.
    const winner = created[0];
    if (winner === undefined) {
      throw new Error(summary);
    }
    expectReplayOf(await createOrg(key, { name }), winner);
  });
});
