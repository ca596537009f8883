import { and, desc, eq, inArray, isNull, lt, sql } from "drizzle-orm";
import type { ProjectsStore } from "../domain/projects/projects.store.ts";
import type { Executor } from "./db.ts";
import { isUniqueViolation } from "./pg-errors.ts";
import { projects } from "./schema/projects.ts";

export function createProjectsStore(db: Executor): ProjectsStore {
  const live = (orgId: string, id: string) =>
    and(eq(projects.orgId, orgId), eq(projects.id, id), isNull(projects.deletedAt));
  // The first page of an org's live projects (the usage report and the project list read it): a named
  // prepared statement, built once per store and parsed once per connection.
  let firstPage: ReturnType<typeof prepareFirstPage> | undefined;
  const prepareFirstPage = () =>
    db
      .select()
      .from(projects)
      .where(and(eq(projects.orgId, sql.placeholder("orgId")), isNull(projects.deletedAt)))
      .orderBy(desc(projects.id))
      .limit(sql.placeholder("limit"))
      .prepare("projects_first_page");

  return {
    async insert(project) {
      const rows = await db
        .insert(projects)
        .values(project)
        .onConflictDoNothing({
          target: [projects.orgId, projects.slug],
          where: sql`${projects.deletedAt} is null`,
        })
        .returning({ id: projects.id });
      return rows.length === 1;
    },

    async find(orgId, id) {
      const [row] = await db.select().from(projects).where(live(orgId, id));
      return row;
    },

    async findForUpdate(orgId, id) {
      const [row] = await db.select().from(projects).where(live(orgId, id)).for("update");
      return row;
    },

    async update(project) {
      const { id, orgId, createdAt, createdBy, ...fields } = project;
      try {
        await db
          .update(projects)
          .set(fields)
          .where(and(eq(projects.orgId, orgId), eq(projects.id, id)));
        return true;
      } catch (err) {
        // The caller turns `false` into a 409 and rolls the transaction back.
        if (isUniqueViolation(err, "projects_org_slug_live_key")) {
          return false;
        }
        throw err;
      }
    },

    async list(query) {
      if (query.onlyIds !== null && query.onlyIds.length === 0) {
        return [];
      }
      if (query.onlyIds === null && query.state === undefined && query.after === undefined) {
        firstPage ??= prepareFirstPage();
        return firstPage.execute({ orgId: query.orgId, limit: query.limit + 1 });
      }
      const conditions = [eq(projects.orgId, query.orgId), isNull(projects.deletedAt)];
      if (query.onlyIds !== null) {
        conditions.push(inArray(projects.id, [...query.onlyIds]));
      }
      if (query.state !== undefined) {
        conditions.push(eq(projects.state, query.state));
      }
      if (query.after !== undefined) {
        conditions.push(lt(projects.id, query.after));
      }
      return db
        .select()
        .from(projects)
        .where(and(...conditions))
        .orderBy(desc(projects.id))
        .limit(query.limit + 1);
    },
  };
}
