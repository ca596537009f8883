import { z } from "@hono/zod-openapi";
import type { Project, UpdateProjectInput } from "../../domain/projects/projects.types.ts";
import { BoundedJsonObject, storableText, Timestamp } from "./common.ts";
import { SLUG_PATTERN } from "./organization.ts";

const ProjectState = z.enum(["active", "archived"]).openapi("ProjectState");

const projectFields = {
  name: storableText(z.string().trim().min(1).max(128)).openapi({ example: "Search backend" }),
  slug: z
    .string()
    .trim()
    .toLowerCase()
    .regex(SLUG_PATTERN, "lower-case letters, digits and inner hyphens, at most 64 characters")
    .openapi({ example: "search-backend", description: "Unique among the organization's live projects" }),
  state: ProjectState,
  metadata: BoundedJsonObject,
};

export const CreateProjectBody = z
  .strictObject({
    name: projectFields.name,
    slug: projectFields.slug.optional().openapi({ description: "Generated from the name when absent" }),
    state: projectFields.state.optional().openapi({ description: "Defaults to active" }),
    metadata: projectFields.metadata.optional(),
  })
  .openapi("CreateProject");

export const UpdateProjectBody = z
  .strictObject({
    name: projectFields.name.optional(),
    slug: projectFields.slug.optional(),
    state: projectFields.state.optional(),
    metadata: projectFields.metadata.optional().openapi({ description: "Replaces the whole object" }),
  })
  .openapi("UpdateProject");

export function toUpdateProjectInput(body: z.infer<typeof UpdateProjectBody>): UpdateProjectInput {
  const out: UpdateProjectInput = {};
  if (body.name !== undefined) out.name = body.name;
  if (body.slug !== undefined) out.slug = body.slug;
  if (body.state !== undefined) out.state = body.state;
  if (body.metadata !== undefined) out.metadata = body.metadata;
  return out;
}

export const ProjectSchema = z
  .object({
    id: z.string().openapi({ example: "prj_01jd0v4n6qf9yb5c8h2m3k7x1z" }),
    object: z.literal("project"),
    org_id: z.string(),
    name: z.string(),
    slug: z.string(),
    state: ProjectState,
    metadata: z.record(z.string(), z.unknown()),
    created_by: z.string().nullable().openapi({ description: "Id of the credential that created it" }),
    created_at: Timestamp,
    updated_at: Timestamp,
    deleted_at: Timestamp.nullable(),
  })
  .openapi("Project");

export function toProjectResponse(p: Project): z.infer<typeof ProjectSchema> {
  return {
    id: p.id,
    object: "project",
    org_id: p.orgId,
    name: p.name,
    slug: p.slug,
    state: p.state,
    metadata: p.metadata,
    created_by: p.createdBy,
    created_at: p.createdAt.toISOString(),
    updated_at: p.updatedAt.toISOString(),
    deleted_at: p.deletedAt?.toISOString() ?? null,
  };
}
