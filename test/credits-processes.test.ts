import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Fleet, startFleet } from "./fleet.ts";
import { api, waitForExit } from "./process.ts";

/**
 * Credits debited by POST /v1/authorize on real server processes sharing one PostgreSQL: exactness across
 * two processes, and every acknowledged debit still in the ledger after a `kill -9`.
 */

let fleet: Fleet;
let portA: number;
let portB: number;
let operatorKey: string;
let databaseUrl: string;

beforeAll(async () => {
  fleet = await startFleet("credproc", 2);
  [portA = 0, portB = 0] = fleet.ports;
  ({ operatorKey, databaseUrl } = fleet);
}, 120_000);

afterAll(() => fleet?.close(), 60_000);

/** An organization with exactly `balance` credits, limits out of the way, and one key. */
async function orgWithBalance(balance: number): Promise<{ orgId: string; key: string }> {
  const org = await api(portA, "POST", "/v1/organizations", operatorKey, { name: "Credits Process Inc" });
  expect(org.status, org.text).toBe(201);
  const orgId = String(org.body.id);
  const limits = await api(portA, "PATCH", `/v1/organizations/${orgId}/rate-limits`, operatorKey, {
    rate_limits: { metadata: 10_000_000 },
  });
  expect(limits.status, limits.text).toBe(200);
  const view = await api(portA, "GET", `/v1/organizations/${orgId}/credits`, operatorKey);
  expect(view.status, view.text).toBe(200);
  const current = Number(view.body.balance);
  if (current !== balance) {
    const adjust = await api(portA, "POST", `/v1/organizations/${orgId}/credits/adjustments`, operatorKey, {
      amount: String(balance - current),
      reason: "test starting balance",
    });
    expect(adjust.status, adjust.text).toBe(201);
  }
  const created = await api(portA, "POST", `/v1/organizations/${orgId}/api-keys`, operatorKey, { name: "k" });
  expect(created.status, created.text).toBe(201);
  return { orgId, key: String(created.body.key) };
}

/** The ledger's debits of authorize for the org, and the account's balance, straight from PostgreSQL. */
async function ledger(orgId: string): Promise<{ debits: number; balance: string; sum: string }> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    const { rows } = await db.query<{ debits: string; balance: string; sum: string }>(
      `select (select count(*) from credit_entries where org_id = $1 and type = 'debit' and source = 'authorize')::text as debits,
              (select balance::text from credit_accounts where org_id = $1) as balance,
              (select sum(amount)::text from credit_entries where org_id = $1) as sum`,
      [orgId],
    );
    const row = rows[0];
    if (row === undefined) {
      throw new Error("no ledger row");
    }
    return { debits: Number(row.debits), balance: row.balance, sum: row.sum };
  } finally {
    await db.end();
  }
}

describe("authorize debits on real server processes", () => {
  it("1,000 parallel debits of 1 credit on a balance of 100 across two processes: exactly 100 succeed", async () => {
    const { orgId, key } = await orgWithBalance(100);
    const decisions: Record<string, unknown>[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 40 }, async (_, worker) => {
        while (next < 1000) {
          next += 1;
          const res = await api(worker % 2 === 0 ? portA : portB, "POST", "/v1/authorize", operatorKey, {
            key,
            category: "metadata",
            credits: "1",
          });
          expect(res.status, res.text).toBe(200);
          decisions.push(res.body);
        }
      }),
    );
    expect(decisions).toHaveLength(1000);
    expect(decisions.filter((d) => d.allowed === true)).toHaveLength(100);
    expect(decisions.filter((d) => d.allowed !== true).map((d) => d.reason)).toEqual(
      Array.from({ length: 900 }, () => "insufficient_credits"),
    );
    const after = await ledger(orgId);
    expect(after.debits).toBe(100);
    expect(Number(after.balance)).toBe(0);
    expect(Number(after.sum)).toBe(0);
  }, 120_000);

  it("keeps every acknowledged debit through a kill -9, and the balance equal to the ledger", async () => {
    const { orgId, key } = await orgWithBalance(1_000_000);
    const { proc: victim, port } = await fleet.start();

    let acknowledged = 0;
    let inFlight = 0;
    let maxInFlight = 0;
    let killed = false;
    const workers = 8;
    await Promise.all(
      Array.from({ length: workers }, async () => {
        while (!killed) {
          inFlight += 1;
          maxInFlight = Math.max(maxInFlight, inFlight);
          try {
            const res = await api(port, "POST", "/v1/authorize", operatorKey, {
              key,
              category: "metadata",
              credits: "1",
            });
            if (res.status === 200 && res.body.allowed === true) {
              acknowledged += 1;
              if (acknowledged >= 300 && !killed) {
                killed = true;
                // Debits are in flight on the other workers' connections at this moment.
                process.kill(victim.pid, "SIGKILL");
              }
            }
          } catch {
            // The connection died with the process: not acknowledged.
          } finally {
            inFlight -= 1;
          }
        }
      }),
    );
    expect((await waitForExit(victim)).signal).toBe("SIGKILL");
    const after = await ledger(orgId);
    // Every acknowledged debit is committed; at most the requests in flight at the kill may also be.
    expect(after.debits).toBeGreaterThanOrEqual(acknowledged);
    expect(after.debits).toBeLessThanOrEqual(acknowledged + workers);
    expect(Number(after.balance)).toBe(1_000_000 - after.debits);
    expect(after.sum).toBe(after.balance);

    // Restarted on the same database, a server sees the same balance and goes on debiting.
    const { port: againPort } = await fleet.start();
    const view = await api(againPort, "GET", `/v1/organizations/${orgId}/credits`, operatorKey);
    expect(Number(view.body.balance)).toBe(1_000_000 - after.debits);
    const one = await api(againPort, "POST", "/v1/authorize", operatorKey, {
      key,
      category: "metadata",
      credits: "1",
    });
    expect(one.body).toMatchObject({ allowed: true, credits: { debited: true } });
    expect((await ledger(orgId)).debits).toBe(after.debits + 1);
  }, 120_000);
});
