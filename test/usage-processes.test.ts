import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Fleet, startFleet } from "./fleet.ts";
import { reachableTempDir } from "./fresh.ts";
import { api, waitForExit } from "./process.ts";

/**
 * Usage batches on real server processes: an acknowledged batch survives a `kill -9`, and a batch in flight
 * at the kill is all there or not there at all (events, rollups and the credit debit commit together).
 * No timing is involved: the kill follows an acknowledgement, with other batches still in flight.
 */

/** Its own catalog: one costed sum meter and one count meter, credits ample, no request rate limits. */
const CATALOG = `
key_prefix: sk
meters:
  - { key: calls, unit: request, aggregation: sum }
  - { key: jobs, unit: job, aggregation: count }
credit_costs:
  calls: "0.001"
plans:
  - key: metered
    name: Metered
    tier: metered
    price: null
    monthly_credits: "1000000"
    quotas: {}
    features: {}
    visibility: public
default_plan: metered
fallback_plan: metered
`;
const INITIAL_MILLICREDITS = 1_000_000 * 1000;

type UsageEvent = { id: string; type: string; time: string; data?: { value: number } };
type Outcome = { index: number; id: string; status: string; reason: string };
type Batch = { events: UsageEvent[]; calls: number; jobs: number };

let fleet: Fleet;
const dirs: string[] = [];

beforeAll(async () => {
  const dir = await reachableTempDir("usage-catalog", dirs);
  const file = join(dir, "orgplane.yaml");
  await writeFile(file, CATALOG);
  fleet = await startFleet("usageproc", 1, { ORGPLANE_CONFIG: file });
}, 120_000);

afterAll(async () => {
  await fleet?.close();
  for (const dir of dirs) {
    await rm(dir, { recursive: true, force: true });
  }
}, 60_000);

/** A fresh organization and an org key, through the first server. */
async function orgWithKey(label: string): Promise<{ orgId: string; key: string }> {
  const port = fleet.ports[0] ?? 0;
  const org = await api(port, "POST", "/v1/organizations", fleet.operatorKey, { name: `Usage ${label}` });
  expect(org.status, org.text).toBe(201);
  const orgId = String(org.body.id);
  const created = await api(port, "POST", `/v1/organizations/${orgId}/api-keys`, fleet.operatorKey, {
    name: "reporter",
  });
  expect(created.status, created.text).toBe(201);
  // The credit account opened now, so the first batches do not all race to create it (that race has a
  // test of its own in test/http/usage.test.ts).
  const credits = await api(port, "GET", `/v1/organizations/${orgId}/credits`, fleet.operatorKey);
  expect(credits.status, credits.text).toBe(200);
  return { orgId, key: String(created.body.key) };
}

/** `size` events with ids unique to `label`: calls of 1–3 and every fourth a job. */
function makeBatch(label: string, size: number): Batch {
  const time = new Date().toISOString();
  let calls = 0;
  let jobs = 0;
  const events = Array.from({ length: size }, (_, i): UsageEvent => {
    const id = `${label}-${String(i).padStart(4, "0")}`;
    if (i % 4 === 3) {
      jobs += 1;
      return { id, type: "jobs", time };
    }
    const value = (i % 3) + 1;
    calls += value;
    return { id, type: "calls", time, data: { value } };
  });
  return { events, calls, jobs };
}

async function send(port: number, key: string, batch: Batch) {
  return api(port, "POST", "/v1/usage/events", key, { events: batch.events });
}

/** The org's totals since a day ago, and its credit balance in thousandths of a credit. */
async function state(
  port: number,
  orgId: string,
): Promise<{ calls: number; jobs: number; millicredits: number }> {
  const from = new Date(Date.now() - 86_400_000).toISOString();
  const to = new Date(Date.now() + 3_600_000).toISOString();
  const res = await api(
    port,
    "GET",
    `/v1/organizations/${orgId}/usage?from=${from}&to=${to}`,
    fleet.operatorKey,
  );
  expect(res.status, res.text).toBe(200);
  const totals = res.body.totals as { meter: string; value: number }[];
  const credits = await api(port, "GET", `/v1/organizations/${orgId}/credits`, fleet.operatorKey);
  expect(credits.status, credits.text).toBe(200);
  const balance = String(credits.body.balance);
  // Exact: the balance has at most three decimals here (0.001 a unit).
  const [int = "0", frac = ""] = balance.split(".");
  expect(frac.length, balance).toBeLessThanOrEqual(3);
  return {
    calls: totals.find((x) => x.meter === "calls")?.value ?? Number.NaN,
    jobs: totals.find((x) => x.meter === "jobs")?.value ?? Number.NaN,
    millicredits: Number(int) * 1000 + Number(frac.padEnd(3, "0")),
  };
}

describe("usage batches through a kill -9", () => {
  it("every acknowledged event is there after a restart: resending answers all duplicate, totals match", async () => {
    const { orgId, key } = await orgWithKey("acked");
    const { proc: victim, port } = await fleet.start();
    const batches = Array.from({ length: 24 }, (_, b) => makeBatch(`ack-${String(b).padStart(2, "0")}`, 100));
    // Four senders at once, each batch answered 200 with every event accepted.
    let next = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next < batches.length) {
          const batch = batches[next] as Batch;
          next += 1;
          const res = await send(port, key, batch);
          expect(res.status, res.text).toBe(200);
          expect(res.body).toMatchObject({ accepted: 100, duplicates: 0, rejected: 0 });
        }
      }),
    );
    // Killed the moment the last answer arrived: nothing was flushed on a way out.
    process.kill(victim.pid, "SIGKILL");
    expect((await waitForExit(victim)).signal).toBe("SIGKILL");

    const { port: again } = await fleet.start();
    const calls = batches.reduce((s, b) => s + b.calls, 0);
    const jobs = batches.reduce((s, b) => s + b.jobs, 0);
    const before = await state(again, orgId);
    expect(before).toEqual({ calls, jobs, millicredits: INITIAL_MILLICREDITS - calls });
    for (const batch of batches) {
      const res = await send(again, key, batch);
      expect(res.status, res.text).toBe(200);
      expect(res.body).toMatchObject({ accepted: 0, duplicates: 100, rejected: 0 });
    }
    expect(await state(again, orgId)).toEqual(before);
  }, 120_000);

  it("a batch in flight at the kill is all or nothing: resent, it is all accepted or all duplicate", async () => {
    const { orgId, key } = await orgWithKey("inflight");
    const { proc: victim, port } = await fleet.start();
    const WORKERS = 6;
    const SIZE = 1000;
    const sent: { batch: Batch; acknowledged: boolean }[] = [];
    let acknowledged = 0;
    let inFlight = 0;
    let inFlightAtKill = -1;
    let killed = false;
    let serial = 0;
    const answers: string[] = [];
    const refusals: string[] = [];
    await Promise.all(
      Array.from({ length: WORKERS }, async () => {
        while (!killed) {
          const batch = makeBatch(`big-${String(serial).padStart(3, "0")}`, SIZE);
          serial += 1;
          const record = { batch, acknowledged: false };
          sent.push(record);
          inFlight += 1;
          let res: Awaited<ReturnType<typeof send>> | undefined;
          try {
            res = await send(port, key, batch);
          } catch {
            // The connection died with the process: not acknowledged.
          } finally {
            inFlight -= 1;
          }
          if (res?.status === 200) {
            answers.push(res.text);
            record.acknowledged = true;
            acknowledged += 1;
            if (acknowledged >= 8 && !killed) {
              killed = true;
              // The other workers' batches are on their way or being written right now.
              inFlightAtKill = inFlight;
              process.kill(victim.pid, "SIGKILL");
            }
          } else if (res !== undefined) {
            refusals.push(`${res.status}: ${res.text.slice(0, 500)}`);
          }
        }
      }),
    );
    expect((await waitForExit(victim)).signal).toBe("SIGKILL");
    expect(inFlightAtKill).toBeGreaterThanOrEqual(1);
    expect(refusals).toEqual([]);
    // Every answer before the kill accepted its whole batch.
    for (const text of answers) {
      expect(JSON.parse(text), text.slice(0, 2000)).toMatchObject({
        accepted: SIZE,
        duplicates: 0,
        rejected: 0,
      });
    }
    expect(sent.filter((s) => !s.acknowledged).length).toBeGreaterThanOrEqual(1);

    const { port: again } = await fleet.start();
    // What survived, read before anything is resent.
    const survived = await state(again, orgId);

    let committedCalls = 0;
    let committedJobs = 0;
    const verdicts: string[] = [];
    for (const { batch, acknowledged: acked } of sent) {
      const res = await send(again, key, batch);
      expect(res.status, res.text).toBe(200);
      const body = res.body as { accepted: number; duplicates: number; rejected: number; events: Outcome[] };
      expect(body.rejected).toBe(0);
      expect(body.accepted + body.duplicates).toBe(SIZE);
      // Never a mix: the batch's transaction committed whole or not at all.
      expect(
        [0, SIZE],
        `${batch.events[0]?.id}: ${body.accepted} accepted, ${body.duplicates} duplicate`,
      ).toContain(body.accepted);
      if (acked) {
        expect(body.duplicates, "an acknowledged batch must be there").toBe(SIZE);
      }
      if (body.duplicates === SIZE) {
        committedCalls += batch.calls;
        committedJobs += batch.jobs;
      }
      verdicts.push(`${acked ? "acked" : "unacked"}:${body.duplicates === SIZE ? "there" : "absent"}`);
    }
    // The rollups and the ledger held exactly the committed batches (no half batch in either).
    expect(survived, verdicts.join(" ")).toEqual({
      calls: committedCalls,
      jobs: committedJobs,
      millicredits: INITIAL_MILLICREDITS - committedCalls,
    });
    // And now every batch is there exactly once.
    const calls = sent.reduce((s, x) => s + x.batch.calls, 0);
    const jobs = sent.reduce((s, x) => s + x.batch.jobs, 0);
    expect(await state(again, orgId)).toEqual({ calls, jobs, millicredits: INITIAL_MILLICREDITS - calls });
  }, 180_000);
});
