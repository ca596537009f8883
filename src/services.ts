import { createApiKeysService, type KeyPrefixes } from "./domain/api-keys/api-keys.service.ts";
import { createKeyUsageTracker } from "./domain/api-keys/key-usage.ts";
import { createAuditService } from "./domain/audit/audit.service.ts";
import { createAuthenticator } from "./domain/auth/authenticator.ts";
import type { IdentityVerifier } from "./domain/auth/identity.ts";
import { createIdempotencyService } from "./domain/idempotency/idempotency.service.ts";
import { createInvitationsService } from "./domain/invitations/invitations.service.ts";
import { createMembersService } from "./domain/members/members.service.ts";
import { createOrgsService } from "./domain/orgs/orgs.service.ts";
import { createProjectsService } from "./domain/projects/projects.service.ts";
import type { Services } from "./http/env.ts";
import type { Clock } from "./lib/clock.ts";
import type { Database } from "./store/db.ts";

/** PUBLIC_URL's own default (config.ts) with the default port. */
const DEFAULT_PUBLIC_URL = "http://localhost:8080";

/** Build every service over one database. Shared by the server and the test harness. */
export function createServices(
  database: Database,
  options: {
    clock: Clock;
    prefixes: KeyPrefixes;
    identity: IdentityVerifier | undefined;
    /** Where links in emails point (PUBLIC_URL); tests that do not read emails may leave it out. */
    publicUrl?: string;
  },
): Services {
  const { stores, transactor: db } = database;
  const { clock, prefixes } = options;
  // One per process: authentication records each key's last use here; main.ts flushes it in batches.
  const keyUsage = createKeyUsageTracker({ store: stores.apiKeys, clock });
  return {
    orgs: createOrgsService({ db, stores, clock }),
    apiKeys: createApiKeysService({ db, stores, clock, prefixes, keyUsage }),
    audit: createAuditService({ stores }),
    idempotency: createIdempotencyService({ store: stores.idempotency, clock }),
    authenticator: createAuthenticator({ stores, clock, prefixes, identity: options.identity, keyUsage }),
    members: createMembersService({ db, stores, clock }),
    invitations: createInvitationsService({
      db,
      stores,
      clock,
      publicUrl: (options.publicUrl ?? DEFAULT_PUBLIC_URL).replace(/\/+$/, ""),
    }),
    projects: createProjectsService({ db, stores, clock }),
  };
}
