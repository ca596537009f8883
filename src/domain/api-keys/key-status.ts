import type { ApiKeyWithOrg } from "./api-keys.types.ts";

/** Why a stored key is refused outright; a suspended organization is judged per route, not here. */
export type KeyRefusal = "organization_deleted" | "project_deleted" | "key_revoked" | "key_expired";

/** The one judgement of a stored key, shared by authentication and `POST /v1/keys/verify`. */
export function keyRefusal(key: ApiKeyWithOrg, now: Date): KeyRefusal | undefined {
  if (key.orgStatus === "deleted") {
    return "organization_deleted";
  }
  if (key.projectDeleted) {
    return "project_deleted";
  }
  if (key.revokedAt !== null) {
    return "key_revoked";
  }
  if (key.expiresAt !== null && key.expiresAt.getTime() <= now.getTime()) {
    return "key_expired";
  }
  return undefined;
}
