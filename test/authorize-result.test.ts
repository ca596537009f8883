/**
 * The fast path's shortcuts against the route's own definitions: `plainAuthorizeInput` must take only
 * bodies `AuthorizeBody` takes, giving the same input; `authorizeResultJson` must write exactly
 * `JSON.stringify(toAuthorizeResult(…))`.
 */
import { describe, expect, it } from "vitest";
import type { AuthorizeDecision } from "../src/domain/authorize/authorize.service.ts";
import {
  AuthorizeBody,
  authorizeInput,
  authorizeResultJson,
  plainAuthorizeInput,
  toAuthorizeResult,
} from "../src/http/schemas/authorize.ts";
import { testPlan } from "./plans.ts";

const KEY = "sk_live_3lpN7T9j5hLNDFMtyStf3Gsb8UpkwSRsBTeUM7";

describe("plainAuthorizeInput", () => {
  const bodies: unknown[] = [
    { key: KEY, category: "search" },
    { key: KEY, category: "search", cost: 5, scope: "usage:write", credits: "2.5" },
    { key: KEY, category: "search", cost: 1_000_000 },
    { key: KEY, category: "search", cost: 1_000_001 },
    { key: KEY, category: "search", cost: 0 },
    { key: KEY, category: "search", cost: 1.5 },
    { key: KEY, category: "search", cost: "1" },
    { key: ` ${KEY}`, category: "search" },
    { key: `${KEY}\n`, category: "search" },
    { key: "", category: "search" },
    { key: "   ", category: "search" },
    { key: "x".repeat(256), category: "search" },
    { key: "x".repeat(257), category: "search" },
    { key: "a\u0000b", category: "search" },
    { key: KEY, category: "Search" },
    { key: KEY, category: "a".repeat(33) },
    { key: KEY, category: "search", scope: "nope" },
    { key: KEY, category: "search", scope: "orgs:read" },
    { key: KEY, category: "search", credits: "-1" },
    { key: KEY, category: "search", credits: "01" },
    { key: KEY, category: "search", credits: 2 },
    { key: KEY, category: "search", extra: true },
    JSON.parse(`{"key":"${KEY}","category":"search","__proto__":{"x":1}}`),
    { key: KEY },
    { category: "search" },
    [KEY, "search"],
    null,
    "text",
    42,
  ];
  it.each(bodies.map((body, i) => [i, body]))("agrees with AuthorizeBody on body %i", (_i, body) => {
    const plain = plainAuthorizeInput(body);
    const parsed = AuthorizeBody.safeParse(body);
    if (plain !== undefined) {
      // Taken by the shortcut: the schema takes it too, with the same result.
      expect(parsed.success).toBe(true);
      expect(plain).toEqual(parsed.success ? authorizeInput(parsed.data) : undefined);
    }
  });

  it("takes the plain bodies products send", () => {
    expect(plainAuthorizeInput({ key: KEY, category: "search" })).toEqual({
      key: KEY,
      category: "search",
      cost: 1,
      scope: undefined,
      credits: undefined,
    });
    expect(plainAuthorizeInput({ key: KEY, category: "search", cost: 3, credits: "0.5" })).toBeDefined();
  });
});

describe("authorizeResultJson", () => {
  // Only the fields the result reads; the rest of a key and a plan version do not reach it.
  const key = {
    id: "key_01m8a1z4m2fk0tsp0crqetcrgg",
    orgId: "org_01m8a1z49vfk0tsnycdh72cxqx",
    projectId: null,
    scopes: ["orgs:read", "usage:write"],
  } as unknown as NonNullable<AuthorizeDecision["key"]>;
  const plan = {
    key: "pro",
    version: 3,
    definition: testPlan("pro", { tier: 'Pro "plus"' }),
  } as unknown as NonNullable<AuthorizeDecision["plan"]>;
  const outcome = (
    allowed: boolean,
    unavailable = false,
    category = "search",
    limit = 600,
  ): NonNullable<AuthorizeDecision["limit"]> => ({
    category,
    limit,
    windowSeconds: 60,
    resetSeconds: 3,
    decision: {
      allowed,
      limit,
      remaining: allowed ? 599 : 0,
      resetAt: new Date("2031-06-01T12:00:03.123Z"),
      retryAfterSeconds: allowed ? 0 : 0.2,
      ...(unavailable ? { unavailable: true as const } : {}),
    },
  });
  const decisions: AuthorizeDecision[] = [
    {
      allowed: false,
      reason: "key_not_found",
      key: undefined,
      plan: undefined,
      limit: undefined,
      credits: undefined,
    },
    { allowed: true, reason: null, key, plan, limit: outcome(true), credits: undefined },
    { allowed: false, reason: "rate_limited", key, plan, limit: outcome(false), credits: undefined },
    // The same category at another limit, and categories whose text needs escaping (a catalog may hold them).
    { allowed: true, reason: null, key, plan, limit: outcome(true, false, "search", 7), credits: undefined },
    {
      allowed: true,
      reason: null,
      key,
      plan,
      limit: outcome(true, false, 'sé"ar\\ch\u2028'),
      credits: undefined,
    },
    {
      allowed: false,
      reason: "rate_limited",
      key,
      plan,
      limit: outcome(false, false, 'sé"ar\\ch\u2028'),
      credits: undefined,
    },
    {
      allowed: false,
      reason: "rate_limiter_unavailable",
      key,
      plan,
      limit: outcome(false, true),
      credits: undefined,
    },
    { allowed: true, reason: null, key, plan, limit: outcome(true, true), credits: undefined },
    {
      allowed: true,
      reason: null,
      key: { ...key, projectId: "prj_01m8a1z49vfk0tsnycdh72cxqx" },
      plan,
      limit: undefined,
      credits: { required: "2.5", debited: true, balance: "97.5", entryId: "crt_01m8a1z49vfk0tsnycdh72cxqx" },
    },
    {
      allowed: false,
      reason: "insufficient_credits",
      key,
      plan,
      limit: outcome(true),
      credits: { required: "200", debited: false, balance: "-3", entryId: null },
    },
  ];
  it.each(decisions.map((d) => [d.reason, d]))("writes %s exactly as JSON.stringify does", (_r, d) => {
    expect(authorizeResultJson(d)).toBe(JSON.stringify(toAuthorizeResult(d)));
  });
});
