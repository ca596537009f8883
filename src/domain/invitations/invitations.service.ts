import { randomBytes } from "node:crypto";
import type { Clock } from "../../lib/clock.ts";
import { decodeCursor, type Page, toPage } from "../../lib/cursor.ts";
import { AppError, notFound } from "../../lib/errors.ts";
import { sha256Hex } from "../../lib/hash.ts";
import { isId, newId } from "../../lib/ids.ts";
import type { AuditChanges } from "../audit/audit.types.ts";
import { auditEvent } from "../audit/audit-event.ts";
import { holdsAll, type Principal, type RequestContext, ROLE_SCOPES, type Role } from "../auth/principal.ts";
import { enqueueMail } from "../mail/mail.ts";
import { loadOrg } from "../orgs/orgs.service.ts";
import type { Organization } from "../orgs/orgs.types.ts";
import type { QuotaGuard } from "../quotas/quotas.service.ts";
import type { Stores, Transactor } from "../stores.ts";
import { emitEvent, invitationSummary } from "../webhooks/event-data.ts";
import { invitationEmail } from "./invitation-email.ts";
import type {
  CreateInvitationInput,
  Invitation,
  InvitationStatus,
  ListInvitationsInput,
} from "./invitations.types.ts";

/** An invitation is good for a week, as on the reference platforms; a resend starts the week again. */
export const INVITATION_TTL_MS = 7 * 24 * 60 * 60 * 1000;

/** 32 random bytes: 256 bits, beyond guessing; base64url so it survives a URL and an email client. */
const TOKEN_BYTES = 32;

export function newInvitationToken(): string {
  return randomBytes(TOKEN_BYTES).toString("base64url");
}

/** The status a client sees: a pending invitation past its expiry is expired, whether or not a row says so yet. */
export function invitationStatus(invitation: Invitation, now: Date): InvitationStatus {
  return invitation.status === "pending" && invitation.expiresAt.getTime() <= now.getTime()
    ? "expired"
    : invitation.status;
}

/**
 * Nobody invites above themselves: the invited role's scopes must all be held by the inviter, and an inviter
 * confined to some projects can only hand out those. The operator may invite anyone.
 */
function checkCeiling(principal: Principal, role: Role, projectIds: string[] | null): void {
  if (principal.kind === "operator" || principal.kind === "user") {
    return;
  }
  if (!holdsAll(principal.scopes, ROLE_SCOPES[role])) {
    throw new AppError("role_ceiling", `You cannot invite someone as '${role}': it holds scopes you do not`);
  }
  const own = principal.kind === "member" ? principal.projectIds : null;
  if (own !== null && (projectIds === null || projectIds.some((p) => !own.includes(p)))) {
    throw new AppError("role_ceiling", "You can only give access to projects you have access to yourself");
  }
}

function requireLive(org: Organization): void {
  if (org.status === "deleted") {
    throw new AppError("invalid_state_transition", `Organization '${org.id}' is deleted`);
  }
}

/** The token names no pending invitation: unknown, used, revoked or replaced all read the same. */
function unknownToken(): AppError {
  return new AppError("not_found", "No pending invitation matches this token");
}

function iso(date: Date | null): string | null {
  return date === null ? null : date.toISOString();
}

export function createInvitationsService(deps: {
  db: Transactor;
  stores: Pick<Stores, "invitations" | "orgs">;
  clock: Clock;
  /** Pending invitations and members count against the plan. */
  quotas: QuotaGuard;
  /** Where links in emails point (PUBLIC_URL), without a trailing slash. */
  publicUrl: string;
}) {
  const { clock } = deps;

  async function load(
    stores: Pick<Stores, "invitations">,
    orgId: string,
    id: string,
    forUpdate: boolean,
  ): Promise<Invitation> {
    const found = !isId("inv", id)
      ? undefined
      : forUpdate
        ? await stores.invitations.findForUpdate(orgId, id)
        : await stores.invitations.find(orgId, id);
    if (found === undefined) {
      throw notFound("Invitation", id);
    }
    return found;
  }

  /** Validated project access: every id must be a live project of this organization. */
  async function checkProjects(
    stores: Pick<Stores, "invitations">,
    orgId: string,
    projectIds: string[] | null,
  ): Promise<string[] | null> {
    if (projectIds === null) {
      return null;
    }
    const unique = [...new Set(projectIds)];
    const wellFormed = unique.filter((p) => isId("prj", p));
    const existing = new Set(
      wellFormed.length === 0 ? [] : await stores.invitations.existingProjectIds(orgId, wellFormed),
    );
    const errors = projectIds.flatMap((p, i) =>
      existing.has(p)
        ? []
        : [
            {
              path: `project_ids.${i}`,
              message: `Project '${p.slice(0, 80)}' not found in this organization`,
            },
          ],
    );
    const first = errors[0];
    if (first !== undefined) {
      throw new AppError("validation_failed", `${first.path}: ${first.message}`, { errors });
    }
    return unique;
  }

  return {
    /** The instant statuses are judged at when invitations are shown. */
    now: (): Date => clock.now(),

    async create(ctx: RequestContext, orgId: string, input: CreateInvitationInput): Promise<Invitation> {
      const requested = input.projectIds ?? null;
      checkCeiling(ctx.principal, input.role, requested);
      return deps.db.transaction(async (stores) => {
        const org = await loadOrg(stores, orgId, true);
        requireLive(org);
        const projectIds = await checkProjects(stores, orgId, requested);
        if (await stores.invitations.isMemberByEmail(orgId, input.email)) {
          throw new AppError("already_member", `'${input.email}' is already a member of this organization`);
        }
        const now = clock.now();
        await stores.invitations.expireLapsed(orgId, input.email, now);
        const admission = await deps.quotas.enforce(stores, orgId, "invitations");
        const token = newInvitationToken();
        const invitation: Invitation = {
          id: newId("inv"),
          orgId,
          email: input.email,
          role: input.role,
          projectIds,
          status: "pending",
          expiresAt: new Date(now.getTime() + INVITATION_TTL_MS),
          invitedBy: ctx.principal.id,
          acceptedBy: null,
          acceptedAt: null,
          revokedAt: null,
          sendCount: 1,
          lastSentAt: now,
          createdAt: now,
        };
        if (!(await stores.invitations.insert({ ...invitation, tokenHash: sha256Hex(token) }))) {
          throw new AppError(
            "invitation_pending",
            `'${input.email}' already has a pending invitation; resend or revoke it`,
          );
        }
        await deps.quotas.recordAlerts(stores, admission);
        await enqueueMail(
          stores.mailOutbox,
          invitationEmail({
            invitation,
            orgName: org.displayName ?? org.name,
            token,
            publicUrl: deps.publicUrl,
          }),
          clock,
        );
        const changes: AuditChanges = {
          email: { to: invitation.email },
          role: { to: invitation.role },
          project_ids: { to: invitation.projectIds },
          status: { to: "pending" },
          expires_at: { to: iso(invitation.expiresAt) },
        };
        await stores.audit.insert(
          auditEvent(
            ctx,
            {
              orgId,
              action: "invitation.created",
              targetType: "invitation",
              targetId: invitation.id,
              changes,
            },
            clock,
          ),
        );
        await emitEvent(
          stores,
          orgId,
          "invitation.created",
          { org_id: orgId, invitation: invitationSummary(invitation) },
          clock,
        );
        return invitation;
      });
    },

    async get(orgId: string, id: string): Promise<Invitation> {
      await loadOrg(deps.stores, orgId);
      return load(deps.stores, orgId, id, false);
    },

    async list(orgId: string, input: ListInvitationsInput): Promise<Page<Invitation>> {
      await loadOrg(deps.stores, orgId);
      const rows = await deps.stores.invitations.list({
        orgId,
        limit: input.limit,
        after: decodeCursor(input.cursor, "inv"),
        status: input.status,
        now: clock.now(),
      });
      return toPage(rows, input.limit);
    },

    async revoke(ctx: RequestContext, orgId: string, id: string): Promise<Invitation> {
      return deps.db.transaction(async (stores) => {
        await loadOrg(stores, orgId, true);
        const invitation = await load(stores, orgId, id, true);
        const now = clock.now();
        if (invitation.status !== "pending") {
          throw new AppError("invalid_state_transition", `Invitation '${id}' is ${invitation.status}`);
        }
        const revoked = await stores.invitations.update(orgId, id, { status: "revoked", revokedAt: now });
        await stores.audit.insert(
          auditEvent(
            ctx,
            {
              orgId,
              action: "invitation.revoked",
              targetType: "invitation",
              targetId: id,
              changes: { status: { from: invitationStatus(invitation, now), to: "revoked" } },
            },
            clock,
          ),
        );
        return revoked;
      });
    },

    /** A new token (the old one stops working), a new week, and the email again. */
    async resend(ctx: RequestContext, orgId: string, id: string): Promise<Invitation> {
      return deps.db.transaction(async (stores) => {
        const org = await loadOrg(stores, orgId, true);
        requireLive(org);
        const invitation = await load(stores, orgId, id, true);
        if (invitation.status !== "pending") {
          throw new AppError(
            "invalid_state_transition",
            `Invitation '${id}' is ${invitation.status}; create a new one instead`,
          );
        }
        // Re-issuing grants the role again: the same ceiling as inviting.
        checkCeiling(ctx.principal, invitation.role, invitation.projectIds);
        const now = clock.now();
        const token = newInvitationToken();
        const resent = await stores.invitations.update(orgId, id, {
          tokenHash: sha256Hex(token),
          expiresAt: new Date(now.getTime() + INVITATION_TTL_MS),
          sendCount: invitation.sendCount + 1,
          lastSentAt: now,
        });
        await enqueueMail(
          stores.mailOutbox,
          invitationEmail({
            invitation: resent,
            orgName: org.displayName ?? org.name,
            token,
            publicUrl: deps.publicUrl,
          }),
          clock,
        );
        await stores.audit.insert(
          auditEvent(
            ctx,
            {
              orgId,
              action: "invitation.resent",
              targetType: "invitation",
              targetId: id,
              changes: {
                send_count: { from: invitation.sendCount, to: resent.sendCount },
                expires_at: { from: iso(invitation.expiresAt), to: iso(resent.expiresAt) },
              },
            },
            clock,
          ),
        );
        return resent;
      });
    },

    /**
     * The signed-in user named by the invitation joins the organization with its role and projects. The
     * organization and then the invitation are locked, so of two accepts of one token exactly one wins.
     */
    async accept(ctx: RequestContext, token: string): Promise<Invitation> {
      const user = ctx.principal;
      if (user.kind !== "user") {
        throw new AppError("forbidden", "Accepting an invitation needs a signed-in user");
      }
      const found = await deps.stores.invitations.findByTokenHash(sha256Hex(token));
      if (found === undefined) {
        throw unknownToken();
      }
      return deps.db.transaction(async (stores) => {
        const org = await stores.orgs.findForUpdate(found.orgId);
        if (org === undefined || org.status === "deleted") {
          throw unknownToken();
        }
        const invitation = await stores.invitations.findForUpdate(found.orgId, found.id);
        // Re-read under the lock: a parallel accept, a revoke or a resend may have just committed.
        if (invitation === undefined || invitation.status !== "pending") {
          throw unknownToken();
        }
        if ((await stores.invitations.findByTokenHash(sha256Hex(token)))?.id !== invitation.id) {
          throw unknownToken();
        }
        const now = clock.now();
        if (invitationStatus(invitation, now) === "expired") {
          throw new AppError(
            "invitation_expired",
            `This invitation expired at ${invitation.expiresAt.toISOString()}; ask for a new one`,
          );
        }
        if (user.email === null || user.email.toLowerCase() !== invitation.email.toLowerCase()) {
          throw new AppError(
            "invitation_email_mismatch",
            "This invitation is for another email address than the one you are signed in with",
          );
        }
        if (org.status === "suspended") {
          throw new AppError("organization_suspended", `Organization '${org.id}' is suspended`);
        }
        if ((await stores.memberships.find(org.id, user.id)) !== undefined) {
          throw new AppError("already_member", `You are already a member of organization '${org.id}'`);
        }
        const admission = await deps.quotas.enforce(stores, org.id, "members");
        await stores.memberships.insert({
          orgId: org.id,
          userId: user.id,
          role: invitation.role,
          projectIds: invitation.projectIds,
          invitedBy: invitation.invitedBy,
          createdAt: now,
          updatedAt: now,
        });
        await deps.quotas.recordAlerts(stores, admission);
        const accepted = await stores.invitations.update(org.id, invitation.id, {
          status: "accepted",
          acceptedBy: user.id,
          acceptedAt: now,
        });
        await stores.audit.insert(
          auditEvent(
            ctx,
            {
              orgId: org.id,
              action: "invitation.accepted",
              targetType: "invitation",
              targetId: invitation.id,
              changes: { status: { from: "pending", to: "accepted" }, accepted_by: { to: user.id } },
            },
            clock,
          ),
        );
        await stores.audit.insert(
          auditEvent(
            ctx,
            {
              orgId: org.id,
              action: "member.added",
              targetType: "member",
              targetId: user.id,
              changes: {
                role: { to: invitation.role },
                project_ids: { to: invitation.projectIds },
                invitation_id: { to: invitation.id },
              },
            },
            clock,
          ),
        );
        await emitEvent(
          stores,
          org.id,
          "invitation.accepted",
          { org_id: org.id, invitation: invitationSummary(accepted), user_id: user.id },
          clock,
        );
        await emitEvent(
          stores,
          org.id,
          "member.added",
          {
            org_id: org.id,
            member: { user_id: user.id, role: invitation.role, project_ids: invitation.projectIds },
            source: "invitation",
            invitation_id: invitation.id,
          },
          clock,
        );
        return accepted;
      });
    },
  };
}

export type InvitationsService = ReturnType<typeof createInvitationsService>;
