import type { z } from "@hono/zod-openapi";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Role } from "../../src/domain/auth/principal.ts";
import { INVITATION_TTL_MS } from "../../src/domain/invitations/invitations.service.ts";
import type { OutboxMessage } from "../../src/domain/mail/mail.types.ts";
import { createApp } from "../../src/http/app.ts";
import type { ProblemBody } from "../../src/http/problem.ts";
import type { InvitationSchema } from "../../src/http/schemas/invitation.ts";
import type { Logger } from "../../src/infra/logger.ts";
import { createMailer, createSmtpTransport, logOnlyTransport, type Mailer } from "../../src/infra/mailer.ts";
import { createHttpMetrics } from "../../src/infra/metrics.ts";
import type { Clock } from "../../src/lib/clock.ts";
import { newId } from "../../src/lib/ids.ts";
import { createMailWakeSource } from "../../src/store/mail.store.pg.ts";
import { classifyStorageError } from "../../src/store/pg-errors.ts";
import { projects } from "../../src/store/schema/projects.ts";
import {
  createManualClock,
  createTestContext,
  expectStatus,
  type ListBody,
  type ManualClock,
  requestThrough,
  type TestContext,
  type TestResponse,
  uniqueName,
} from "../harness.ts";
import { eventually, type Received, type SmtpReceiver, startSmtp } from "../smtp.ts";

type InvitationBody = z.infer<typeof InvitationSchema>;

/** Every line any logger of this file wrote: the app's request log and the mailer's. */
const logLines: string[] = [];
/** Every token this file saw: none may appear in `logLines`. */
const tokensSeen = new Set<string>();

function captureLogger(): Logger {
  return pino({ level: "debug" }, { write: (line: string) => void logLines.push(line) });
}

let t: TestContext;
let clock: ManualClock;
let request: TestContext["request"];
const received: Received[] = [];
let smtp: SmtpReceiver;
let mailer: Mailer;
/** The mailer's clock runs ahead of the app's by this much: how a test lets a retry come due. */
let mailerAheadMs = 0;
const mailerClock: Clock = { now: () => new Date(clock.now().getTime() + mailerAheadMs) };

function startMailer(
  transport = createSmtpTransport({
    url: `smtp://127.0.0.1:${smtp.port}`,
    from: "Orgplane <no-reply@orgplane.test>",
  }),
): Mailer {
  const m = createMailer({
    store: t.database.stores.mailOutbox,
    transport,
    wakeSource: createMailWakeSource(t.database.pool, () => {}),
    clock: mailerClock,
    logger: captureLogger(),
  });
  return m;
}

beforeAll(async () => {
  // Expiry is judged by the services' clock: moved by hand, never slept through.
  clock = createManualClock();
  t = await createTestContext({ clock });
  const app = createApp({
    services: t.services,
    logger: captureLogger(),
    metrics: createHttpMetrics({ defaultMetrics: false }),
    ping: () => t.database.ping(1000),
    rateLimiterStatus: async () => ({ store: "memory", status: "ok", failureMode: null }),
    classifyError: classifyStorageError,
    trustProxy: false,
  });
  request = requestThrough(app, t.operatorKey);
  smtp = await startSmtp(received);
  mailer = startMailer();
  await mailer.start();
});
afterAll(async () => {
  await mailer.stop();
  await smtp.close();
  await t.close();
});

function freshEmail(label = "invitee"): string {
  return `${uniqueName(label)}@example.test`;
}

async function invite(
  orgId: string,
  body: { email: string; role: Role; project_ids?: string[] | null },
  key?: string,
): Promise<InvitationBody> {
  const res = await request<InvitationBody>("POST", `/v1/organizations/${orgId}/invitations`, {
    body,
    ...(key === undefined ? {} : { key }),
  });
  expectStatus(res, 201);
  return res.body;
}

/** The token of the `nth` (1-based) email received for `email`, once it has arrived over SMTP. */
async function tokenFromEmail(email: string, nth = 1): Promise<{ token: string; body: string }> {
  const message = await eventually(`email #${nth} to ${email}`, () => {
    const mine = received.filter((m) => m.to.includes(email.toLowerCase()));
    return mine[nth - 1];
  });
  const match = /#token=([A-Za-z0-9_-]+)/.exec(message.body);
  const token = match?.[1];
  if (token === undefined) {
    throw new Error(`no accept link in the email: ${message.body}`);
  }
  tokensSeen.add(token);
  return { token, body: message.body };
}

async function accept(token: string, userToken: string) {
  return request<InvitationBody>("POST", "/v1/invitations/accept", { key: userToken, body: { token } });
}

async function createProject(orgId: string): Promise<string> {
  const id = newId("prj");
  const now = clock.now();
  await t.database.db.insert(projects).values({
    id,
    orgId,
    name: "Search",
    slug: uniqueName("prj"),
    state: "active",
    metadata: {},
    createdBy: null,
    createdAt: now,
    updatedAt: now,
    deletedAt: null,
  });
  return id;
}

async function expectProblem(res: TestResponse<unknown>, status: number, code: string) {
  expectStatus(res, status);
  expect((res.body as ProblemBody).code, res.text).toBe(code);
}

describe("an invitation's lifecycle", () => {
  it("emails a single-use token over SMTP; accepting makes the signed-in user a member with the role and projects", async () => {
    const org = await t.createOrg();
    const projectId = await createProject(org.id);
    const email = freshEmail();
    const created = await invite(org.id, { email, role: "viewer", project_ids: [projectId] });
    expect(created).toMatchObject({
      object: "invitation",
      org_id: org.id,
      email,
      role: "viewer",
      project_ids: [projectId],
      status: "pending",
      send_count: 1,
      accepted_by: null,
    });
    expect(Date.parse(created.expires_at) - clock.now().getTime()).toBe(INVITATION_TTL_MS);
    expect(JSON.stringify(created)).not.toMatch(/token|hash/i);

    const { token, body } = await tokenFromEmail(email);
    expect(token.length).toBeGreaterThanOrEqual(43);
    expect(body).toContain(`/invitations/accept#token=${token}`);
    expect(body.split("\n").map((l) => l.trim())).toContain(token);

    const user = await t.signIn({ email: email.toUpperCase() });
    const res = await accept(token, user.token);
    expectStatus(res, 200);
    expect(res.body).toMatchObject({ id: created.id, status: "accepted", accepted_by: user.userId });

    const membership = await t.database.stores.memberships.find(org.id, user.userId);
    expect(membership).toMatchObject({ role: "viewer", projectIds: [projectId] });

    // The new member acts in the organization with the role's scopes.
    const asMember = await t.signIn({ subject: user.subject, email, orgId: org.id });
    const list = await request<ListBody<InvitationBody>>("GET", `/v1/organizations/${org.id}/invitations`, {
      key: asMember.token,
    });
    expectStatus(list, 200);
    expect(list.body.data.map((i) => i.id)).toContain(created.id);

    const audit = await request<ListBody<{ action: string }>>(
      "GET",
      `/v1/organizations/${org.id}/audit-events`,
    );
    expectStatus(audit, 200);
    expect(audit.body.data.map((e) => e.action)).toEqual(
      expect.arrayContaining(["invitation.created", "invitation.accepted", "member.added"]),
    );
  });

  it("works once: a second accept of the same token is 404", async () => {
    const org = await t.createOrg();
    const email = freshEmail();
    await invite(org.id, { email, role: "member" });
    const { token } = await tokenFromEmail(email);
    const user = await t.signIn({ email });
    expectStatus(await accept(token, user.token), 200);
    const again = await accept(token, (await t.signIn({ email })).token);
    await expectProblem(again, 404, "not_found");
  });

  it("lets exactly one of two parallel accepts of one token succeed", async () => {
    const org = await t.createOrg();
    const email = freshEmail();
    await invite(org.id, { email, role: "member" });
    const { token } = await tokenFromEmail(email);
    const [a, b] = await Promise.all([t.signIn({ email }), t.signIn({ email })]);
    if (a === undefined || b === undefined) {
      throw new Error("sign-in failed");
    }
    const results = await Promise.all([accept(token, a.token), accept(token, b.token)]);
    expect(results.map((r) => r.status).sort(), results.map((r) => r.text).join("\n")).toEqual([200, 404]);
    const members = await Promise.all([
      t.database.stores.memberships.find(org.id, a.userId),
      t.database.stores.memberships.find(org.id, b.userId),
    ]);
    expect(members.filter((m) => m !== undefined)).toHaveLength(1);
  });

  it("lists, gets and revokes; a revoked token is 404 on accept", async () => {
    const org = await t.createOrg();
    const email = freshEmail();
    const created = await invite(org.id, { email, role: "member" });
    const { token } = await tokenFromEmail(email);

    const got = await request<InvitationBody>("GET", `/v1/organizations/${org.id}/invitations/${created.id}`);
    expectStatus(got, 200);
    expect(got.body).toEqual(created);

    const revoked = await request<InvitationBody>(
      "DELETE",
      `/v1/organizations/${org.id}/invitations/${created.id}`,
    );
    expectStatus(revoked, 200);
    expect(revoked.body.status).toBe("revoked");
    expect(revoked.body.revoked_at).not.toBeNull();

    await expectProblem(await accept(token, (await t.signIn({ email })).token), 404, "not_found");
    await expectProblem(
      await request("DELETE", `/v1/organizations/${org.id}/invitations/${created.id}`),
      409,
      "invalid_state_transition",
    );
    const pending = await request<ListBody<InvitationBody>>(
      "GET",
      `/v1/organizations/${org.id}/invitations?status=pending`,
    );
    expect(pending.body.data).toEqual([]);
    const revokedList = await request<ListBody<InvitationBody>>(
      "GET",
      `/v1/organizations/${org.id}/invitations?status=revoked`,
    );
    expect(revokedList.body.data.map((i) => i.id)).toEqual([created.id]);
  });

  it("resend mints a new token: the old one stops working, the new one accepts", async () => {
    const org = await t.createOrg();
    const email = freshEmail();
    const created = await invite(org.id, { email, role: "member" });
    const first = await tokenFromEmail(email, 1);
    clock.advance(60_000);
    const resent = await request<InvitationBody>(
      "POST",
      `/v1/organizations/${org.id}/invitations/${created.id}/resend`,
    );
    expectStatus(resent, 200);
    expect(resent.body.send_count).toBe(2);
    expect(Date.parse(resent.body.expires_at)).toBe(clock.now().getTime() + INVITATION_TTL_MS);
    const second = await tokenFromEmail(email, 2);
    expect(second.token).not.toBe(first.token);

    const user = await t.signIn({ email });
    await expectProblem(await accept(first.token, user.token), 404, "not_found");
    expectStatus(await accept(second.token, user.token), 200);
  });

  it("an expired invitation is 410 on accept and shows as expired; a resend revives it for 7 more days", async () => {
    const org = await t.createOrg();
    const email = freshEmail();
    const created = await invite(org.id, { email, role: "member" });
    const { token } = await tokenFromEmail(email);
    clock.advance(INVITATION_TTL_MS + 1000);
    const user = await t.signIn({ email });
    await expectProblem(await accept(token, user.token), 410, "invitation_expired");
    const got = await request<InvitationBody>("GET", `/v1/organizations/${org.id}/invitations/${created.id}`);
    expect(got.body.status).toBe("expired");
    const expired = await request<ListBody<InvitationBody>>(
      "GET",
      `/v1/organizations/${org.id}/invitations?status=expired`,
    );
    expect(expired.body.data.map((i) => i.id)).toEqual([created.id]);

    const resent = await request<InvitationBody>(
      "POST",
      `/v1/organizations/${org.id}/invitations/${created.id}/resend`,
    );
    expectStatus(resent, 200);
    expect(resent.body.status).toBe("pending");
    expect(Date.parse(resent.body.expires_at)).toBe(clock.now().getTime() + INVITATION_TTL_MS);
    const { token: fresh } = await tokenFromEmail(email, 2);
    expectStatus(await accept(fresh, user.token), 200);
  });

  it("a lapsed invitation does not block a new one for the same address", async () => {
    const org = await t.createOrg();
    const email = freshEmail();
    const lapsed = await invite(org.id, { email, role: "member" });
    await tokenFromEmail(email);
    clock.advance(INVITATION_TTL_MS + 1000);
    const fresh = await invite(org.id, { email, role: "viewer" });
    const old = await request<InvitationBody>("GET", `/v1/organizations/${org.id}/invitations/${lapsed.id}`);
    expect(old.body.status).toBe("expired");
    // The lapsed one cannot be revived next to a pending one.
    await expectProblem(
      await request("POST", `/v1/organizations/${org.id}/invitations/${lapsed.id}/resend`),
      409,
      "invalid_state_transition",
    );
    const { token } = await tokenFromEmail(email, 2);
    const res = await accept(token, (await t.signIn({ email })).token);
    expectStatus(res, 200);
    expect(res.body).toMatchObject({ id: fresh.id, role: "viewer" });
  });
});

describe("refusals", () => {
  it("a second pending invitation for the same address (any case) is 409 invitation_pending", async () => {
    const org = await t.createOrg();
    const email = freshEmail();
    await invite(org.id, { email, role: "member" });
    const res = await request("POST", `/v1/organizations/${org.id}/invitations`, {
      body: { email: email.toUpperCase(), role: "viewer" },
    });
    await expectProblem(res, 409, "invitation_pending");
  });

  it("inviting a current member is 409 already_member; so is accepting when already a member", async () => {
    const org = await t.createOrg();
    const member = await t.createMember(org.id, "member");
    const user = await t.database.stores.users.find(member.userId);
    const email = user?.email;
    if (email == null) {
      throw new Error("the member has no email");
    }
    const res = await request("POST", `/v1/organizations/${org.id}/invitations`, {
      body: { email: email.toUpperCase(), role: "viewer" },
    });
    await expectProblem(res, 409, "already_member");

    // Invited under another address, then signed in with it: already in.
    const other = freshEmail();
    await invite(org.id, { email: other, role: "viewer" });
    const { token } = await tokenFromEmail(other);
    const sameUser = await t.signIn({ subject: member.subject, email: other });
    await expectProblem(await accept(token, sameUser.token), 409, "already_member");
  });

  it("nobody invites above their own role (403 role_ceiling); the operator may invite any role", async () => {
    const org = await t.createOrg();
    const admin = await t.createMember(org.id, "admin");
    const asAdmin = await request("POST", `/v1/organizations/${org.id}/invitations`, {
      key: admin.token,
      body: { email: freshEmail(), role: "owner" },
    });
    await expectProblem(asAdmin, 403, "role_ceiling");
    await invite(org.id, { email: freshEmail(), role: "admin" }, admin.token);

    const narrowKey = await t.createKey(org.id, ["members:write"]);
    const asKey = await request("POST", `/v1/organizations/${org.id}/invitations`, {
      key: narrowKey,
      body: { email: freshEmail(), role: "viewer" },
    });
    await expectProblem(asKey, 403, "role_ceiling");

    const viewer = await t.createMember(org.id, "viewer");
    const asViewer = await request("POST", `/v1/organizations/${org.id}/invitations`, {
      key: viewer.token,
      body: { email: freshEmail(), role: "viewer" },
    });
    await expectProblem(asViewer, 403, "insufficient_scope");

    await invite(org.id, { email: freshEmail(), role: "owner" });
  });

  it("accepting with another email than the invitation's is 403 invitation_email_mismatch", async () => {
    const org = await t.createOrg();
    const email = freshEmail();
    await invite(org.id, { email, role: "member" });
    const { token } = await tokenFromEmail(email);
    const stranger = await t.signIn({ email: freshEmail("stranger") });
    await expectProblem(await accept(token, stranger.token), 403, "invitation_email_mismatch");
    const noEmail = await t.signIn({ email: null });
    await expectProblem(await accept(token, noEmail.token), 403, "invitation_email_mismatch");
    // Still usable by the right person.
    expectStatus(await accept(token, (await t.signIn({ email })).token), 200);
  });

  it("accepting needs a signed-in user, and an unknown token is 404", async () => {
    const res = await request("POST", "/v1/invitations/accept", { body: { token: "x".repeat(43) } });
    await expectProblem(res, 403, "forbidden");
    const user = await t.signIn();
    await expectProblem(await accept("y".repeat(43), user.token), 404, "not_found");
    await expectProblem(await accept("short", user.token), 400, "validation_failed");
  });

  it("project_ids must be projects of this organization", async () => {
    const org = await t.createOrg();
    const otherOrg = await t.createOrg();
    const foreign = await createProject(otherOrg.id);
    const res = await request<ProblemBody>("POST", `/v1/organizations/${org.id}/invitations`, {
      body: { email: freshEmail(), role: "member", project_ids: [foreign] },
    });
    await expectProblem(res, 400, "validation_failed");
    expect(res.body.errors?.[0]?.path).toBe("project_ids.0");
  });

  it("another organization's invitation is 404", async () => {
    const org = await t.createOrg();
    const created = await invite(org.id, { email: freshEmail(), role: "member" });
    const { org: other, key } = await t.createOrgWithKey();
    const res = await request("GET", `/v1/organizations/${other.id}/invitations/${created.id}`, { key });
    await expectProblem(res, 404, "not_found");
    const cross = await request("GET", `/v1/organizations/${org.id}/invitations/${created.id}`, { key });
    await expectProblem(cross, 404, "not_found");
  });
});

describe("the mail outbox", () => {
  it("retries a message the SMTP server refused, and delivers it once the server is back", async () => {
    const port = smtp.port;
    await smtp.close();
    const org = await t.createOrg();
    const email = freshEmail();
    await invite(org.id, { email, role: "member" });
    const failed = await eventually("a failed first attempt", async () => {
      const [row] = await t.database.stores.mailOutbox.listForOrg(org.id, 1);
      return row !== undefined && row.attempts >= 1 && row.lastError !== null ? row : undefined;
    });
    expect(failed.status).toBe("pending");
    expect(failed.nextAttemptAt.getTime()).toBeGreaterThan(mailerClock.now().getTime());

    smtp = await startSmtp(received, port);
    // Past the backoff: the retry is due.
    mailerAheadMs += 10 * 60 * 1000;
    mailer.wake();
    await tokenFromEmail(email);
    const sent = await eventually("the row marked sent", async () => {
      const [row] = await t.database.stores.mailOutbox.listForOrg(org.id, 1);
      return row?.status === "sent" ? row : undefined;
    });
    expect(sent.attempts).toBeGreaterThanOrEqual(2);
  });

  it("without SMTP, marks messages logged and logs id, kind, recipient and subject — never the body", async () => {
    await mailer.stop();
    mailer = startMailer(logOnlyTransport);
    await mailer.start();
    const org = await t.createOrg();
    const email = freshEmail();
    await invite(org.id, { email, role: "member" });
    const row = await eventually<OutboxMessage>("the row marked logged", async () => {
      const [found] = await t.database.stores.mailOutbox.listForOrg(org.id, 1);
      return found?.status === "logged" ? found : undefined;
    });
    const token = /#token=([A-Za-z0-9_-]+)/.exec(row.textBody)?.[1];
    expect(token).toBeDefined();
    if (token !== undefined) {
      tokensSeen.add(token);
    }
    const line = logLines.find((l) => l.includes(row.id));
    expect(line).toBeDefined();
    const logged = JSON.parse(line ?? "{}") as Record<string, unknown>;
    expect(logged).toMatchObject({ mail_id: row.id, kind: "invitation", to: email, subject: row.subject });
    expect(line).not.toContain("accept#token");
  });

  it("no token ever reaches a log line", () => {
    expect(tokensSeen.size).toBeGreaterThan(5);
    expect(logLines.length).toBeGreaterThan(10);
    const all = logLines.join("\n");
    for (const token of tokensSeen) {
      expect(all.includes(token), `token ${token.slice(0, 6)}… is in the log`).toBe(false);
    }
  });
});
