import { createApiKeysService, type KeyPrefixes } from "./domain/api-keys/api-keys.service.ts";
import { createAuditService } from "./domain/audit/audit.service.ts";
import { createAuthenticator } from "./domain/auth/authenticator.ts";
import type { IdentityVerifier } from "./domain/auth/identity.ts";
import { createIdempotencyService } from "./domain/idempotency/idempotency.service.ts";
import { createMembersService } from "./domain/members/members.service.ts";
import { createOrgsService } from "./domain/orgs/orgs.service.ts";
import type { Services } from "./http/env.ts";
import type { Clock } from "./lib/clock.ts";
import type { Database } from "./store/db.ts";

/** Build every service over one database. Shared by the server and the test harness. */
export function createServices(
  database: Database,
  options: { clock: Clock; prefixes: KeyPrefixes; identity: IdentityVerifier | undefined },
): Services {
  const { stores, transactor: db } = database;
  const { clock, prefixes } = options;
  return {
    orgs: createOrgsService({ db, stores, clock }),
    apiKeys: createApiKeysService({ db, stores, clock, prefixes }),
    audit: createAuditService({ stores }),
    idempotency: createIdempotencyService({ store: stores.idempotency, clock }),
    authenticator: createAuthenticator({ stores, clock, prefixes, identity: options.identity }),
    members: createMembersService({ stores }),
  };
}
