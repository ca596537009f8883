import type { Clock } from "../../lib/clock.ts";
import { decodeCursor, type Page, toPage } from "../../lib/cursor.ts";
import { AppError, notFound } from "../../lib/errors.ts";
import { isId, newId } from "../../lib/ids.ts";
import type { JsonValue } from "../../lib/json.ts";
import { SLUG_BASE_MAX, slugify, slugSuffix } from "../../lib/slug.ts";
import type { AuditChanges } from "../audit/audit.types.ts";
import { auditEvent, diffViews } from "../audit/audit-event.ts";
import type { Principal, RequestContext } from "../auth/principal.ts";
import { loadOrg } from "../orgs/orgs.service.ts";
import type { QuotaGuard } from "../quotas/quotas.service.ts";
import type { Stores, Transactor } from "../stores.ts";
import type { CreateProjectInput, Project, ProjectState, UpdateProjectInput } from "./projects.types.ts";

/** Generated slugs that collide get a random suffix; five tries make a repeat collision ~impossible. */
const SLUG_ATTEMPTS = 5;

/**
 * The projects a principal may see: null for every project of its organization; a project key sees its
 * own project only, a member restricted to some projects sees those.
 */
export function visibleProjectIds(principal: Principal): readonly string[] | null {
  if (principal.kind === "api_key") {
    return principal.projectId === null ? null : [principal.projectId];
  }
  if (principal.kind === "member") {
    return principal.projectIds;
  }
  return null;
}

export function canSeeProject(principal: Principal, projectId: string): boolean {
  const visible = visibleProjectIds(principal);
  return visible === null || visible.includes(projectId);
}

/** A live project of the organization that the principal may see, or a 404 quoting the caller's id. */
export async function loadProject(
  stores: Pick<Stores, "projects">,
  principal: Principal,
  orgId: string,
  id: string,
  forUpdate = false,
): Promise<Project> {
  const project =
    !isId("prj", id) || !canSeeProject(principal, id)
      ? undefined
      : forUpdate
        ? await stores.projects.findForUpdate(orgId, id)
        : await stores.projects.find(orgId, id);
  if (project === undefined) {
    throw notFound("Project", id);
  }
  return project;
}

function auditView(p: Project): Record<string, JsonValue> {
  return {
    name: p.name,
    slug: p.slug,
    state: p.state,
    metadata: p.metadata,
    deleted_at: p.deletedAt?.toISOString() ?? null,
  };
}

function diff(before: Project | undefined, after: Project): AuditChanges {
  return diffViews(before === undefined ? undefined : auditView(before), auditView(after));
}

export type ListProjectsInput = {
  limit: number;
  cursor: string | undefined;
  state: ProjectState | undefined;
};

export function createProjectsService(deps: {
  db: Transactor;
  stores: Pick<Stores, "orgs" | "projects">;
  clock: Clock;
  /** Live projects count against the plan. */
  quotas: QuotaGuard;
}) {
  function slugTaken(slug: string): AppError {
    return new AppError(
      "slug_taken",
      `Slug '${slug}' is already taken by another project of this organization`,
    );
  }

  function requireLiveOrg(status: string, orgId: string): void {
    if (status === "deleted") {
      throw new AppError("invalid_state_transition", `Organization '${orgId}' is deleted`);
    }
  }

  /** Lock the organization and the project, apply `change`, write both it and its audit event. */
  function mutate(
    ctx: RequestContext,
    orgId: string,
    id: string,
    action: string,
    change: (project: Project, now: Date) => Project,
  ): Promise<Project> {
    return deps.db.transaction(async (stores) => {
      const org = await loadOrg(stores, orgId, true);
      requireLiveOrg(org.status, orgId);
      const before = await loadProject(stores, ctx.principal, orgId, id, true);
      const now = deps.clock.now();
      const after = change(before, now);
      const changes = diff(before, after);
      if (Object.keys(changes).length === 0) {
        return before;
      }
      const written = { ...after, updatedAt: now };
      if (!(await stores.projects.update(written))) {
        throw slugTaken(written.slug);
      }
      await stores.audit.insert(
        auditEvent(ctx, { orgId, action, targetType: "project", targetId: id, changes }, deps.clock),
      );
      return written;
    });
  }

  return {
    async create(ctx: RequestContext, orgId: string, input: CreateProjectInput): Promise<Project> {
      if (visibleProjectIds(ctx.principal) !== null) {
        // A credential confined to some projects would create one it then could not see.
        throw new AppError("forbidden", "A credential confined to projects cannot create projects");
      }
      const slugGiven = input.slug !== undefined;
      const base = input.slug ?? slugify(input.name, "project");
      for (let attempt = 0; attempt < SLUG_ATTEMPTS; attempt++) {
        // 48 + "-" + 6 stays within the 64 characters a slug may have.
        const slug = attempt === 0 ? base : `${base.slice(0, SLUG_BASE_MAX)}-${slugSuffix()}`;
        const now = deps.clock.now();
        const project: Project = {
          id: newId("prj"),
          orgId,
          name: input.name,
          slug,
          state: input.state ?? "active",
          metadata: input.metadata ?? {},
          createdBy: ctx.principal.id,
          createdAt: now,
          updatedAt: now,
          deletedAt: null,
        };
        const created = await deps.db.transaction(async (stores) => {
          const org = await loadOrg(stores, orgId, true);
          requireLiveOrg(org.status, orgId);
          const admission = await deps.quotas.enforce(stores, orgId, "projects");
          if (!(await stores.projects.insert(project))) {
            return false;
          }
          await deps.quotas.recordAlerts(stores, admission);
          await stores.audit.insert(
            auditEvent(
              ctx,
              {
                orgId,
                action: "project.created",
                targetType: "project",
                targetId: project.id,
                changes: diff(undefined, project),
              },
              deps.clock,
            ),
          );
          return true;
        });
        if (created) {
          return project;
        }
        if (slugGiven) {
          throw slugTaken(slug);
        }
      }
      throw new AppError("slug_taken", `Could not find a free slug for '${base}'; pass one explicitly`);
    },

    async list(principal: Principal, orgId: string, input: ListProjectsInput): Promise<Page<Project>> {
      await loadOrg(deps.stores, orgId);
      const rows = await deps.stores.projects.list({
        orgId,
        limit: input.limit,
        after: decodeCursor(input.cursor, "prj"),
        state: input.state,
        onlyIds: visibleProjectIds(principal),
      });
      return toPage(rows, input.limit);
    },

    async get(principal: Principal, orgId: string, id: string): Promise<Project> {
      await loadOrg(deps.stores, orgId);
      return loadProject(deps.stores, principal, orgId, id);
    },

    update(ctx: RequestContext, orgId: string, id: string, patch: UpdateProjectInput): Promise<Project> {
      return mutate(ctx, orgId, id, "project.updated", (project) => ({ ...project, ...patch }));
    },

    /** Soft delete: the project disappears and its keys stop authenticating at once. */
    delete(ctx: RequestContext, orgId: string, id: string): Promise<Project> {
      return mutate(ctx, orgId, id, "project.deleted", (project, now) => ({ ...project, deletedAt: now }));
    },
  };
}

export type ProjectsService = ReturnType<typeof createProjectsService>;
