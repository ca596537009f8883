import type { ListOrgsQuery, Organization } from "./orgs.types.ts";

export type OrgsStore = {
  /** False when the slug is held by another organization that is not deleted. */
  insert(org: Organization): Promise<boolean>;
  find(id: string): Promise<Organization | undefined>;
  /** Row-locks the organization for the rest of the transaction. */
  findForUpdate(id: string): Promise<Organization | undefined>;
  /** Writes every field of `org`; false when the new slug is taken. */
  update(org: Organization): Promise<boolean>;
  /** Newest first, `limit + 1` rows. */
  list(query: ListOrgsQuery): Promise<Organization[]>;
};
