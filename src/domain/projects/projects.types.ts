import type { JsonObject } from "../../lib/json.ts";

export type ProjectState = "active" | "archived";

/** The metered child resource of an organization (an app, dataset, namespace or database). */
export type Project = {
  id: string;
  orgId: string;
  name: string;
  slug: string;
  state: ProjectState;
  metadata: JsonObject;
  /** The credential (key, operator key or user) that created it. */
  createdBy: string | null;
  createdAt: Date;
  updatedAt: Date;
  deletedAt: Date | null;
};

export type CreateProjectInput = {
  name: string;
  slug: string | undefined;
  state: ProjectState | undefined;
  metadata: JsonObject | undefined;
};

export type UpdateProjectInput = {
  name?: string;
  slug?: string;
  state?: ProjectState;
  /** Replaces the whole object. */
  metadata?: JsonObject;
};

export type ListProjectsQuery = {
  orgId: string;
  limit: number;
  after: string | undefined;
  state: ProjectState | undefined;
  /** null: every project of the organization; otherwise only these. */
  onlyIds: readonly string[] | null;
};
