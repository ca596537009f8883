import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Organization } from "../src/domain/orgs/orgs.types.ts";
import { emitWebhookEvent } from "../src/domain/webhooks/emit.ts";
import { createWebhooksService } from "../src/domain/webhooks/webhooks.service.ts";
import {
  DISABLE_AFTER_MS,
  RETRY_SCHEDULE_MS,
  type WebhookEndpoint,
  type WebhookEventType,
} from "../src/domain/webhooks/webhooks.types.ts";
import { createWebhookSender } from "../src/infra/webhook-sender.ts";
import { AppError } from "../src/lib/errors.ts";
import { newId } from "../src/lib/ids.ts";
import { createManualClock, createTestContext, type ManualClock, type TestContext } from "./harness.ts";
import { freePort } from "./util.ts";

/**
 * The delivery engine through the services, with a manual clock: tests call `deliverDue()` where a running
 * server's workers would run, and move the clock to each retry's time. Every request a receiver gets is
 * checked with the `standardwebhooks` package, an implementation independent of Orgplane's.
 */

/** Short, so the timeout case does not hold the suite for 15 s; the default is tested as a constant. */
const ATTEMPT_TIMEOUT_MS = 400;

type Hit = {
  path: string;
  headers: Record<string, string>;
  body: string;
  id: string;
  timestamp: number;
  signatures: string[];
};

/** How a receiver path answers: a status (and optional Location), or never (`hang`). */
type Answer = { status: number; location?: string } | "hang";

type Receiver = {
  /** `http://127.0.0.1:<port>/<name>`: a path of its own, answering `answer(name)`. */
  url(name: string): string;
  hits(name: string): Hit[];
  answer(name: string, answer: Answer): void;
  close(): Promise<void>;
};

function flatten(headers: IncomingHttpHeaders): Record<string, string> {
  return Object.fromEntries(
    Object.entries(headers).map(([name, value]) => [
      name,
      Array.isArray(value) ? value.join(", ") : (value ?? ""),
    ]),
  );
}

async function startReceiver(): Promise<Receiver> {
  const hits: Hit[] = [];
  const answers = new Map<string, Answer>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const path = (req.url ?? "/").slice(1);
      hits.push({
        path,
        headers: flatten(req.headers),
        body: Buffer.concat(chunks).toString("utf8"),
        id: String(req.headers["webhook-id"]),
        timestamp: Number(req.headers["webhook-timestamp"]),
        signatures: String(req.headers["webhook-signature"] ?? "").split(" "),
      });
      const answer = answers.get(path) ?? { status: 200 };
      if (answer === "hang") {
        return;
      }
      res.writeHead(answer.status, answer.location === undefined ? {} : { location: answer.location });
      res.end(answer.status >= 400 ? `receiver says ${answer.status}` : "ok");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (name) => `http://127.0.0.1:${port}/${name}`,
    hits: (name) => hits.filter((h) => h.path === name),
    answer: (name, answer) => answers.set(name, answer),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * standardwebhooks' verdict on one request. Its `verify` also refuses a timestamp more than 5 minutes from
 * the real time; where the manual clock has been moved further, the same library signs the message and the
 * signature must be among those sent.
 */
function verify(secret: string, hit: Hit): void {
  const wh = new Webhook(secret);
  if (Math.abs(hit.timestamp - Date.now() / 1000) < 240) {
    wh.verify(hit.body, hit.headers);
    return;
  }
  const expected = wh.sign(hit.id, new Date(hit.timestamp * 1000), hit.body);
  if (!hit.signatures.includes(expected)) {
    throw new Error(`no signature of ${hit.id} verifies with this secret`);
  }
}

function verifies(secret: string, hit: Hit): boolean {
  try {
    verify(secret, hit);
    return true;
  } catch {
    return false;
  }
}

let t: TestContext;
let clock: ManualClock;
let receiver: Receiver;

beforeAll(async () => {
  clock = createManualClock(new Date());
  t = await createTestContext({ clock, webhooks: { attemptTimeoutMs: ATTEMPT_TIMEOUT_MS } });
  receiver = await startReceiver();
});
afterAll(async () => {
  await receiver?.close();
  await t?.close();
});

let serial = 0;
function uniquePath(label: string): string {
  serial += 1;
  return `${label}-${serial}`;
}

async function endpointFor(
  org: Organization,
  url: string,
  eventTypes: WebhookEventType[] = [],
): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
  return t.services.webhooks.createEndpoint(t.operatorCtx, org.id, {
    url,
    description: null,
    eventTypes,
    isActive: true,
  });
}

/** One event written in a transaction of its own (what a service's change does). */
async function emit(orgId: string, type: WebhookEventType = "organization.updated", data = {}) {
  return t.database.transactor.transaction((stores) =>
    emitWebhookEvent(stores, { orgId, type, data }, clock),
  );
}

async function deliveriesOf(orgId: string, endpointId: string) {
  return (
    await t.services.webhooks.listDeliveries(orgId, endpointId, {
      limit: 100,
      cursor: undefined,
      state: undefined,
    })
  ).data;
}

/** Run the engine until nothing is due at the clock's time. */
async function deliverAll(): Promise<void> {
  while ((await t.services.webhooks.deliverDue()) > 0) {
    // Each pass claims a batch; the next one finds what is left.
  }
}

async function expectAppError(promise: Promise<unknown>, code: string): Promise<AppError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AppError);
  expect((err as AppError).code).toBe(code);
  return err as AppError;
}

describe("signed deliveries", () => {
  it("every delivery verifies with standardwebhooks, with the envelope and headers of the contract", async () => {
    const org = await t.createOrg();
    const path = uniquePath("signed");
    const { endpoint, secret } = await endpointFor(org, receiver.url(path));
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const events = [];
    for (let i = 0; i < 3; i++) {
      events.push(await emit(org.id, "organization.updated", { n: i, name: "Ünïcödé ✓" }));
    }
    await deliverAll();
    const hits = receiver.hits(path);
    expect(hits.map((h) => h.id).sort()).toEqual(events.map((e) => e.id).sort());
    for (const hit of hits) {
      // The library's own verify: signature and timestamp (within its 5-minute tolerance of now).
      const payload = new Webhook(secret).verify(hit.body, hit.headers) as Record<string, unknown>;
      const event = events.find((e) => e.id === hit.id);
      expect(payload).toEqual({
        id: event?.id,
        type: "organization.updated",
        created_at: event?.createdAt.toISOString(),
        sequence: event?.sequence,
        data: event?.data,
      });
      expect(hit.headers["content-type"]).toBe("application/json");
      expect(hit.headers["user-agent"]).toMatch(/^Orgplane-Webhooks\/\d+\.\d+\.\d+/);
      expect(hit.timestamp).toBe(Math.floor(clock.now().getTime() / 1000));
      expect(hit.signatures).toHaveLength(1);
    }
    // The per-org sequence runs on without gaps.
    const sequences = events.map((e) => e.sequence);
    expect(sequences).toEqual([sequences[0], (sequences[0] ?? 0) + 1, (sequences[0] ?? 0) + 2]);
    const deliveries = await deliveriesOf(org.id, endpoint.id);
    expect(deliveries).toHaveLength(3);
    for (const d of deliveries) {
      expect(d).toMatchObject({ state: "delivered", attempts: 1, responseStatus: 200, lastError: null });
      expect(d.nextAttemptAt).toBeNull();
      expect(d.latencyMs).toBeGreaterThanOrEqual(0);
      expect(d.deliveredAt).toBeInstanceOf(Date);
    }
    // Newest first.
    expect(deliveries.map((d) => d.id)).toEqual(
      deliveries
        .map((d) => d.id)
        .sort()
        .reverse(),
    );
  });

  it("an endpoint gets only the types it subscribes to; an inactive one gets nothing", async () => {
    const org = await t.createOrg();
    const onlyMembers = uniquePath("members");
    const all = uniquePath("all");
    const inactive = uniquePath("inactive");
    await endpointFor(org, receiver.url(onlyMembers), ["member.added"]);
    await endpointFor(org, receiver.url(all));
    await t.services.webhooks.createEndpoint(t.operatorCtx, org.id, {
      url: receiver.url(inactive),
      description: null,
      eventTypes: [],
      isActive: false,
    });
    const updated = await emit(org.id, "organization.updated");
    const added = await emit(org.id, "member.added", { user_id: "usr_x" });
    await deliverAll();
    expect(receiver.hits(onlyMembers).map((h) => h.id)).toEqual([added.id]);
    expect(
      receiver
        .hits(all)
        .map((h) => h.id)
        .sort(),
    ).toEqual([updated.id, added.id].sort());
    expect(receiver.hits(inactive)).toEqual([]);
  });

  it("during a rotation overlap both secrets sign (each verifies alone); after it only the new one", async () => {
    const org = await t.createOrg();
    const path = uniquePath("rotation");
    const { endpoint, secret: oldSecret } = await endpointFor(org, receiver.url(path));
    const rotated = await t.services.webhooks.rotateSecret(t.operatorCtx, org.id, endpoint.id, {
      expirePreviousInSeconds: 3600,
    });
    const newSecret = rotated.secret;
    expect(newSecret).not.toBe(oldSecret);
    expect(rotated.endpoint.previousSecretExpiresAt?.getTime()).toBe(clock.now().getTime() + 3_600_000);

    const during = await emit(org.id);
    await deliverAll();
    const [hit] = receiver.hits(path);
    expect(hit?.id).toBe(during.id);
    if (hit === undefined) {
      return;
    }
    expect(hit.signatures).toHaveLength(2);
    // A receiver holding either secret accepts the delivery; each signature on its own verifies with one.
    expect(verifies(oldSecret, hit)).toBe(true);
    expect(verifies(newSecret, hit)).toBe(true);
    const alone = (signature: string): Hit => ({
      ...hit,
      signatures: [signature],
      headers: { ...hit.headers, "webhook-signature": signature },
    });
    const [first = "", second = ""] = hit.signatures;
    expect([verifies(newSecret, alone(first)), verifies(oldSecret, alone(first))]).toEqual([true, false]);
    expect([verifies(newSecret, alone(second)), verifies(oldSecret, alone(second))]).toEqual([false, true]);

    clock.advance(3_600_000 + 1000);
    const after = await emit(org.id);
    await deliverAll();
    const late = receiver.hits(path).find((h) => h.id === after.id);
    expect(late?.signatures).toHaveLength(1);
    expect(late !== undefined && verifies(newSecret, late)).toBe(true);
    expect(late !== undefined && verifies(oldSecret, late)).toBe(false);
  });

  it("a rotation without overlap stops the previous secret at once", async () => {
    const org = await t.createOrg();
    const path = uniquePath("rotation-now");
    const { endpoint, secret: oldSecret } = await endpointFor(org, receiver.url(path));
    const { secret } = await t.services.webhooks.rotateSecret(t.operatorCtx, org.id, endpoint.id, {
      expirePreviousInSeconds: 0,
    });
    await emit(org.id);
    await deliverAll();
    const [hit] = receiver.hits(path);
    expect(hit?.signatures).toHaveLength(1);
    expect(hit !== undefined && verifies(secret, hit)).toBe(true);
    expect(hit !== undefined && verifies(oldSecret, hit)).toBe(false);
    await expectAppError(
      t.services.webhooks.rotateSecret(t.operatorCtx, org.id, endpoint.id, {
        expirePreviousInSeconds: 604_801,
      }),
      "validation_failed",
    );
  });
});

describe("retries", () => {
  /**
   * Moves the clock to just before the next attempt's time (nothing is attempted), then to it (one attempt).
   * Returns the hits of `path` so far.
   */
  async function stepToNextAttempt(path: string, orgId: string, endpointId: string, attempt: number) {
    const [delivery] = await deliveriesOf(orgId, endpointId);
    const due = delivery?.nextAttemptAt;
    expect(due, `attempt ${attempt} is scheduled`).toBeInstanceOf(Date);
    const before = receiver.hits(path).length;
    clock.set(new Date((due as Date).getTime() - 1));
    await deliverAll();
    expect(receiver.hits(path).length, `attempt ${attempt} not before its time`).toBe(before);
    clock.set(due as Date);
    await deliverAll();
    expect(receiver.hits(path).length, `attempt ${attempt} at its time`).toBe(before + 1);
  }

  it("a receiver answering 500 is retried exactly on the schedule, then a success is recorded", async () => {
    const org = await t.createOrg();
    const path = uniquePath("flaky");
    receiver.answer(path, { status: 500 });
    const { endpoint, secret } = await endpointFor(org, receiver.url(path));
    const event = await emit(org.id);
    const failedAt = clock.now();
    await deliverAll();
    let [delivery] = await deliveriesOf(org.id, endpoint.id);
    expect(delivery).toMatchObject({ state: "pending", attempts: 1, responseStatus: 500 });
    expect(delivery?.lastError).toContain("500");
    expect(delivery?.lastError).toContain("receiver says 500");
    expect(delivery?.nextAttemptAt?.getTime()).toBe(failedAt.getTime() + RETRY_SCHEDULE_MS[1]);

    for (let attempt = 2; attempt <= 4; attempt++) {
      if (attempt === 4) {
        receiver.answer(path, { status: 204 });
      }
      await stepToNextAttempt(path, org.id, endpoint.id, attempt);
      [delivery] = await deliveriesOf(org.id, endpoint.id);
      if (attempt < 4) {
        // Attempt n failed at the clock's time: the next is RETRY_SCHEDULE_MS[n] later.
        expect(delivery?.nextAttemptAt?.getTime()).toBe(
          clock.now().getTime() + (RETRY_SCHEDULE_MS[attempt] ?? Number.NaN),
        );
      }
    }
    expect(delivery).toMatchObject({
      state: "delivered",
      attempts: 4,
      responseStatus: 204,
      lastError: null,
      nextAttemptAt: null,
    });
    expect(delivery?.latencyMs).toBeGreaterThanOrEqual(0);
    // Every attempt carried the same event id and verified.
    const hits = receiver.hits(path);
    expect(hits.map((h) => h.id)).toEqual([event.id, event.id, event.id, event.id]);
    for (const hit of hits) {
      verify(secret, hit);
    }
    // Recovered: the endpoint is no longer failing.
    expect((await t.services.webhooks.getEndpoint(org.id, endpoint.id)).failingSince).toBeNull();
  });

  it("timeouts and refused connections are failures; after the 8th the delivery has failed", async () => {
    const org = await t.createOrg();
    const path = uniquePath("hang");
    receiver.answer(path, "hang");
    const { endpoint } = await endpointFor(org, receiver.url(path));
    await emit(org.id);
    const first = clock.now();
    await deliverAll();
    let [delivery] = await deliveriesOf(org.id, endpoint.id);
    expect(delivery).toMatchObject({ state: "pending", attempts: 1, responseStatus: null });
    expect(delivery?.lastError).toBe(`timed out after ${ATTEMPT_TIMEOUT_MS / 1000} s`);
    expect(delivery?.latencyMs).toBeGreaterThanOrEqual(ATTEMPT_TIMEOUT_MS - 50);
    expect((await t.services.webhooks.getEndpoint(org.id, endpoint.id)).failingSince).toEqual(first);

    // Then nobody listens there at all.
    const closedPort = await freePort();
    await t.services.webhooks.updateEndpoint(t.operatorCtx, org.id, endpoint.id, {
      url: `http://127.0.0.1:${closedPort}/${path}`,
    });
    for (let attempt = 2; attempt <= RETRY_SCHEDULE_MS.length; attempt++) {
      [delivery] = await deliveriesOf(org.id, endpoint.id);
      const due = delivery?.nextAttemptAt as Date;
      clock.set(new Date(due.getTime() - 1));
      expect(await t.services.webhooks.deliverDue()).toBe(0);
      clock.set(due);
      expect(await t.services.webhooks.deliverDue()).toBe(1);
    }
    [delivery] = await deliveriesOf(org.id, endpoint.id);
    expect(delivery).toMatchObject({
      state: "failed",
      attempts: 8,
      nextAttemptAt: null,
      responseStatus: null,
    });
    expect(delivery?.lastError).toMatch(/^connection refused/);
    // Nothing is attempted any more.
    clock.advance(48 * 3_600_000);
    expect(await t.services.webhooks.deliverDue()).toBe(0);
    // Its only finished delivery in the window failed.
    expect(await t.services.webhooks.deliveryRate7d(org.id)).toBe(0);
    await t.services.webhooks.deleteEndpoint(t.operatorCtx, org.id, endpoint.id);
  });

  it("redeliver makes a new attempt now, whatever the delivery's state", async () => {
    const org = await t.createOrg();
    const path = uniquePath("redeliver");
    const { endpoint, secret } = await endpointFor(org, receiver.url(path));
    const test = await t.services.webhooks.sendTest(t.operatorCtx, org.id, endpoint.id);
    expect(test).toMatchObject({
      state: "delivered",
      attempts: 1,
      responseStatus: 200,
      eventType: "webhook.test",
    });
    receiver.answer(path, { status: 503 });
    const again = await t.services.webhooks.redeliver(t.operatorCtx, org.id, endpoint.id, test.id);
    // A failed redelivery continues the schedule from its attempt count.
    expect(again).toMatchObject({ state: "pending", attempts: 2, responseStatus: 503 });
    expect(again.nextAttemptAt?.getTime()).toBe(clock.now().getTime() + RETRY_SCHEDULE_MS[2]);
    receiver.answer(path, { status: 200 });
    const third = await t.services.webhooks.redeliver(t.operatorCtx, org.id, endpoint.id, test.id);
    expect(third).toMatchObject({ state: "delivered", attempts: 3, responseStatus: 200 });
    const hits = receiver.hits(path);
    expect(hits).toHaveLength(3);
    for (const hit of hits) {
      verify(secret, hit);
      expect(JSON.parse(hit.body)).toMatchObject({
        type: "webhook.test",
        data: { endpoint_id: endpoint.id },
      });
    }
    expect(await t.services.webhooks.deliveryRate7d(org.id)).toBe(1);
  });

  it("a redirect is a failed attempt and is not followed", async () => {
    const org = await t.createOrg();
    const path = uniquePath("moved");
    const target = uniquePath("target");
    receiver.answer(path, { status: 302, location: receiver.url(target) });
    const { endpoint } = await endpointFor(org, receiver.url(path));
    await emit(org.id);
    await deliverAll();
    const [delivery] = await deliveriesOf(org.id, endpoint.id);
    expect(delivery).toMatchObject({ state: "pending", attempts: 1, responseStatus: 302 });
    expect(delivery?.lastError).toContain("redirects are not followed");
    expect(receiver.hits(path)).toHaveLength(1);
    expect(receiver.hits(target)).toHaveLength(0);
    await t.services.webhooks.deleteEndpoint(t.operatorCtx, org.id, endpoint.id);
  });
});

describe("the server's delivery loop", () => {
  it("a slow endpoint takes at most its share of the attempts in flight; the others go on", async () => {
    const engine = createWebhooksService({
      db: t.database.transactor,
      stores: t.database.stores,
      clock,
      sender: createWebhookSender({ allowPrivate: true }),
      allowPrivate: true,
      userAgent: "Orgplane-Webhooks/test",
      attemptTimeoutMs: 1500,
      maxInFlight: 4,
      maxInFlightPerEndpoint: 2,
    });
    const org = await t.createOrg();
    const slowPath = uniquePath("slow");
    const fastPath = uniquePath("fast");
    receiver.answer(slowPath, "hang");
    const { endpoint: slow } = await endpointFor(org, receiver.url(slowPath), ["member.added"]);
    const { endpoint: fast } = await endpointFor(org, receiver.url(fastPath), ["organization.updated"]);
    for (let i = 0; i < 6; i++) {
      await emit(org.id, "member.added", { i });
    }
    const quick = await emit(org.id, "organization.updated");
    const woken = Date.now();
    engine.wake();
    const deadline = woken + 1200;
    while (receiver.hits(fastPath).length === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    // Delivered while the slow endpoint's first attempts still hang (they time out after 1.5 s), and the
    // slow endpoint holds no more than its 2 slots of the 4.
    expect(receiver.hits(fastPath).map((h) => h.id)).toEqual([quick.id]);
    expect(receiver.hits(slowPath)).toHaveLength(2);
    // The rest of the slow endpoint's deliveries follow, two at a time, each failing on the timeout.
    while (receiver.hits(slowPath).length < 6 && Date.now() < woken + 10_000) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(receiver.hits(slowPath)).toHaveLength(6);
    await engine.stop();
    const slowDeliveries = await deliveriesOf(org.id, slow.id);
    expect(slowDeliveries.map((d) => [d.attempts, d.lastError])).toEqual(
      slowDeliveries.map(() => [1, "timed out after 1.5 s"]),
    );
    expect((await deliveriesOf(org.id, fast.id)).map((d) => d.state)).toEqual(["delivered"]);
    await t.services.webhooks.deleteEndpoint(t.operatorCtx, org.id, slow.id);
  }, 20_000);
});

describe("an endpoint failing for 5 days", () => {
  it("is disabled, its owners are emailed, the other endpoints get endpoint_disabled; re-enabling resumes", async () => {
    const org = await t.createOrg({ displayName: "Acme Hooks" });
    const owner = await t.createMember(org.id, "owner");
    await t.createMember(org.id, "admin");
    const failingPath = uniquePath("down");
    const otherPath = uniquePath("healthy");
    receiver.answer(failingPath, { status: 500 });
    const { endpoint: failing } = await endpointFor(org, receiver.url(failingPath), ["organization.updated"]);
    const { endpoint: other, secret: otherSecret } = await endpointFor(org, receiver.url(otherPath), [
      "webhook.endpoint_disabled",
    ]);
    const start = clock.now();
    await emit(org.id);
    await deliverAll();
    expect((await t.services.webhooks.getEndpoint(org.id, failing.id)).failingSince).toEqual(start);

    // An event a day, every attempt failing: still active just before the 5 days are up.
    for (let day = 1; day <= 4; day++) {
      clock.set(new Date(start.getTime() + day * 86_400_000));
      await deliverAll();
      await emit(org.id);
      await deliverAll();
      expect((await t.services.webhooks.getEndpoint(org.id, failing.id)).isActive).toBe(true);
    }
    clock.set(new Date(start.getTime() + DISABLE_AFTER_MS - 1));
    await emit(org.id);
    await deliverAll();
    expect((await t.services.webhooks.getEndpoint(org.id, failing.id)).isActive).toBe(true);

    clock.set(new Date(start.getTime() + DISABLE_AFTER_MS));
    await emit(org.id);
    await deliverAll();
    const disabledAt = clock.now();
    const disabled = await t.services.webhooks.getEndpoint(org.id, failing.id);
    expect(disabled).toMatchObject({ isActive: false, disabledAt, failingSince: start });
    expect(disabled.disabledReason).toMatch(/5 days/);

    // The other endpoint got the event (written with the disable), signed like any delivery.
    await deliverAll();
    const [notice] = receiver.hits(otherPath);
    expect(notice).toBeDefined();
    if (notice !== undefined) {
      verify(otherSecret, notice);
      expect(JSON.parse(notice.body)).toMatchObject({
        type: "webhook.endpoint_disabled",
        data: {
          endpoint_id: failing.id,
          url: failing.url,
          failing_since: start.toISOString(),
          disabled_at: disabledAt.toISOString(),
        },
      });
    }
    expect((await deliveriesOf(org.id, other.id)).map((d) => d.state)).toEqual(["delivered"]);

    // The owner (not the admin) was emailed.
    const mails = (await t.database.stores.mailOutbox.listForOrg(org.id, 20)).filter(
      (m) => m.kind === "webhook_endpoint_disabled",
    );
    expect(mails.map((m) => m.toAddress)).toEqual([`${owner.subject}@example.test`]);
    expect(mails[0]?.subject).toContain("Acme Hooks");
    expect(mails[0]?.textBody).toContain(failing.url);

    // While disabled: no new deliveries, and the pending ones wait.
    const hitsWhileDisabled = receiver.hits(failingPath).length;
    const pending = (await deliveriesOf(org.id, failing.id)).filter((d) => d.state === "pending");
    expect(pending.length).toBeGreaterThan(0);
    await emit(org.id);
    clock.advance(86_400_000);
    await deliverAll();
    expect(receiver.hits(failingPath).length).toBe(hitsWhileDisabled);
    expect((await deliveriesOf(org.id, failing.id)).filter((d) => d.state === "pending")).toHaveLength(
      pending.length,
    );

    // Fixed and re-enabled: the failure record starts over and the waiting deliveries go out.
    receiver.answer(failingPath, { status: 200 });
    const enabled = await t.services.webhooks.updateEndpoint(t.operatorCtx, org.id, failing.id, {
      isActive: true,
    });
    expect(enabled).toMatchObject({
      isActive: true,
      disabledAt: null,
      disabledReason: null,
      failingSince: null,
    });
    await deliverAll();
    expect((await deliveriesOf(org.id, failing.id)).filter((d) => d.state === "pending")).toEqual([]);
    expect(receiver.hits(failingPath).length).toBe(hitsWhileDisabled + pending.length);
    await t.services.webhooks.deleteEndpoint(t.operatorCtx, org.id, failing.id);
  });
});

describe("the SSRF guard", () => {
  it("refuses non-public URLs at create when private addresses are not allowed", async () => {
    const guarded = createWebhooksService({
      db: t.database.transactor,
      stores: t.database.stores,
      clock,
      sender: createWebhookSender({ allowPrivate: false }),
      allowPrivate: false,
      userAgent: "Orgplane-Webhooks/test",
    });
    const org = await t.createOrg();
    const refused = [
      "http://example.com/hook",
      "https://127.0.0.1/hook",
      "https://localhost/hook",
      "https://api.localhost/hook",
      "https://10.1.2.3/hook",
      "https://169.254.169.254/latest/meta-data",
      "https://[::1]/hook",
      "https://[fd00:ec2::254]/hook",
      "https://[::ffff:127.0.0.1]/hook",
      "https://0x7f000001/hook",
      "https://user:pass@example.com/hook",
      "ftp://example.com/hook",
      "not a url",
      `https://example.com/${"a".repeat(2048)}`,
    ];
    for (const url of refused) {
      const err = await expectAppError(
        guarded.createEndpoint(t.operatorCtx, org.id, {
          url,
          description: null,
          eventTypes: [],
          isActive: true,
        }),
        "validation_failed",
      );
      expect(err.errors?.[0]?.path, url).toBe("url");
    }
    const ok = await guarded.createEndpoint(t.operatorCtx, org.id, {
      url: "https://hooks.example.com/orgplane",
      description: null,
      eventTypes: [],
      isActive: true,
    });
    expect(ok.endpoint.url).toBe("https://hooks.example.com/orgplane");
    expect((await guarded.listEndpoints(org.id, { limit: 20, cursor: undefined })).data).toHaveLength(1);
    await guarded.deleteEndpoint(t.operatorCtx, org.id, ok.endpoint.id);
    await guarded.stop();
  });

  it("refuses at connect time a hostname that resolves to a loopback address", async () => {
    const guarded = createWebhooksService({
      db: t.database.transactor,
      stores: t.database.stores,
      clock,
      sender: createWebhookSender({ allowPrivate: false }),
      allowPrivate: false,
      userAgent: "Orgplane-Webhooks/test",
    });
    const org = await t.createOrg();
    const path = uniquePath("rebound");
    const port = new URL(receiver.url(path)).port;
    // Stored as if the name had resolved publicly when saved and been re-pointed since (DNS rebinding).
    const now = clock.now();
    const endpoint: WebhookEndpoint = {
      id: newId("whe"),
      orgId: org.id,
      url: `https://localhost:${port}/${path}`,
      description: null,
      eventTypes: [],
      isActive: true,
      secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
      previousSecret: null,
      previousSecretExpiresAt: null,
      disabledAt: null,
      disabledReason: null,
      failingSince: null,
      createdAt: now,
      updatedAt: now,
    };
    await t.database.stores.webhooks.insertEndpoint(endpoint);
    await emit(org.id);
    while ((await guarded.deliverDue()) > 0) {
      // Until nothing is due.
    }
    const [delivery] = await deliveriesOf(org.id, endpoint.id);
    expect(delivery).toMatchObject({ state: "pending", attempts: 1, responseStatus: null });
    expect(delivery?.lastError).toMatch(
      /^refused: localhost resolves to (127\.0\.0\.1|::1), which is not a public address$/,
    );
    expect(receiver.hits(path)).toEqual([]);
    // An IP literal is judged without a lookup.
    await t.database.stores.webhooks.updateEndpoint(org.id, endpoint.id, {
      url: `https://127.0.0.1:${port}/${path}`,
      updatedAt: now,
    });
    const retried = await guarded.redeliver(t.operatorCtx, org.id, endpoint.id, delivery?.id ?? "");
    expect(retried.lastError).toBe("refused: 127.0.0.1 is not a public address");
    expect(receiver.hits(path)).toEqual([]);
    await t.services.webhooks.deleteEndpoint(t.operatorCtx, org.id, endpoint.id);
    await guarded.stop();
  });
});

describe("the outbox", () => {
  it("numbers one org's events without gaps under 20 concurrent writers, rolled-back ones included", async () => {
    const org = await t.createOrg();
    const path = uniquePath("sequence");
    await endpointFor(org, receiver.url(path));
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        t.database.transactor.transaction(async (stores) => {
          const event = await emitWebhookEvent(
            stores,
            { orgId: org.id, type: "organization.updated", data: { i } },
            clock,
          );
          // Hold the transaction open a moment so the writers overlap.
          await new Promise((resolve) => setTimeout(resolve, 10));
          if (i % 4 === 3) {
            throw new Error(`writer ${i} rolls back`);
          }
          return event;
        }),
      ),
    );
    const committed = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    expect(committed).toHaveLength(15);
    const { rows } = await t.database.pool.query<{ id: string; sequence: string }>(
      "select id, sequence from webhook_events where org_id = $1 order by sequence",
      [org.id],
    );
    const sequences = rows.map((r) => Number(r.sequence));
    const first = sequences[0] ?? 0;
    expect(sequences).toEqual(Array.from({ length: sequences.length }, (_, i) => first + i));
    expect(rows.map((r) => r.id).sort()).toEqual(expect.arrayContaining(committed.map((e) => e.id).sort()));
    expect(rows.filter((r) => committed.some((e) => e.id === r.id))).toHaveLength(15);
    // Each committed event reached the endpoint with its sequence number.
    await deliverAll();
    const delivered = receiver.hits(path).map((h) => JSON.parse(h.body) as { id: string; sequence: number });
    expect(delivered.map((d) => d.id).sort()).toEqual(committed.map((e) => e.id).sort());
    for (const d of delivered) {
      expect(d.sequence).toBe(committed.find((e) => e.id === d.id)?.sequence);
    }
  });

  it("a transaction that emits and then throws leaves no event and no delivery", async () => {
    const org = await t.createOrg();
    const path = uniquePath("rollback");
    await endpointFor(org, receiver.url(path));
    const count = async (table: string) =>
      Number(
        (
          await t.database.pool.query<{ n: string }>(`select count(*) as n from ${table} where org_id = $1`, [
            org.id,
          ])
        ).rows[0]?.n,
      );
    const events = await count("webhook_events");
    await expect(
      t.database.transactor.transaction(async (stores) => {
        await emitWebhookEvent(stores, { orgId: org.id, type: "organization.updated", data: {} }, clock);
        throw new Error("the change fails after its event was written");
      }),
    ).rejects.toThrow("the change fails");
    expect(await count("webhook_events")).toBe(events);
    expect(await count("webhook_deliveries")).toBe(0);
    await deliverAll();
    expect(receiver.hits(path)).toEqual([]);
    // The next event takes the number the rolled-back one would have had.
    const next = await emit(org.id);
    const { rows } = await t.database.pool.query<{ max: string | null }>(
      "select max(sequence) as max from webhook_events where org_id = $1 and id <> $2",
      [org.id, next.id],
    );
    expect(next.sequence).toBe(rows[0]?.max === null ? next.sequence : Number(rows[0]?.max) + 1);
  });

  it("keeps organizations apart: another org's endpoint or delivery is not found", async () => {
    const a = await t.createOrg();
    const b = await t.createOrg();
    const pathA = uniquePath("org-a");
    const pathB = uniquePath("org-b");
    const { endpoint: endpointA } = await endpointFor(a, receiver.url(pathA));
    const { endpoint: endpointB } = await endpointFor(b, receiver.url(pathB));
    const event = await emit(a.id);
    await deliverAll();
    expect(receiver.hits(pathA).map((h) => h.id)).toEqual([event.id]);
    expect(receiver.hits(pathB)).toEqual([]);
    const [delivery] = await deliveriesOf(a.id, endpointA.id);
    expect(delivery?.eventId).toBe(event.id);
    expect(await deliveriesOf(b.id, endpointB.id)).toEqual([]);
    const id = delivery?.id ?? "";
    const w = t.services.webhooks;
    await expectAppError(w.getEndpoint(b.id, endpointA.id), "not_found");
    await expectAppError(
      w.listDeliveries(b.id, endpointA.id, { limit: 10, cursor: undefined, state: undefined }),
      "not_found",
    );
    await expectAppError(w.getDelivery(b.id, endpointA.id, id), "not_found");
    await expectAppError(w.getDelivery(b.id, endpointB.id, id), "not_found");
    await expectAppError(w.redeliver(t.operatorCtx, b.id, endpointB.id, id), "not_found");
    await expectAppError(w.sendTest(t.operatorCtx, b.id, endpointA.id), "not_found");
    await expectAppError(
      w.rotateSecret(t.operatorCtx, b.id, endpointA.id, { expirePreviousInSeconds: 0 }),
      "not_found",
    );
    await expectAppError(
      w.updateEndpoint(t.operatorCtx, b.id, endpointA.id, { isActive: false }),
      "not_found",
    );
    await expectAppError(w.deleteEndpoint(t.operatorCtx, b.id, endpointA.id), "not_found");
    expect((await w.getEndpoint(a.id, endpointA.id)).isActive).toBe(true);
    expect(await w.deliveryRate7d(b.id)).toBeNull();
    expect(await w.deliveryRate7d(a.id)).toBe(1);
  });
});
