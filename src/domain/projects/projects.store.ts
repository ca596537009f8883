import type { ListProjectsQuery, Project } from "./projects.types.ts";

export type ProjectsStore = {
  /** False when the slug is held by another live project of the organization. */
  insert(project: Project): Promise<boolean>;
  /** A live (not deleted) project of the organization. */
  find(orgId: string, id: string): Promise<Project | undefined>;
  /** Like `find`, row-locking the project for the rest of the transaction. */
  findForUpdate(orgId: string, id: string): Promise<Project | undefined>;
  /** Writes every mutable field of `project`; false when the new slug is taken. */
  update(project: Project): Promise<boolean>;
  /** Live projects, newest first, `limit + 1` rows. */
  list(query: ListProjectsQuery): Promise<Project[]>;
};
