import type { Clock } from "../../lib/clock.ts";
import type { Telemetry } from "../observability/telemetry.ts";
import type { AuthorizeService } from "./authorize.service.ts";

/**
 * The authorize service telling `telemetry` of every decision about a known key (a key that does not exist
 * belongs to no organization, so no organization's export sees it). The route and the fast path both call
 * through this, so every decision is counted once.
 */
export function observedAuthorize(
  service: AuthorizeService,
  telemetry: Telemetry,
  clock: Clock,
): AuthorizeService {
  return {
    ...service,
    async authorize(input) {
      const decision = await service.authorize(input);
      const { key, limit } = decision;
      if (key !== undefined) {
        telemetry.authorizeDecision({
          orgId: key.orgId,
          projectId: key.projectId,
          keyId: key.id,
          category: input.category,
          allowed: decision.allowed,
          reason: decision.reason,
          cost: input.cost,
          limit:
            limit === undefined || limit.decision.unavailable === true
              ? undefined
              : { limit: limit.limit, remaining: limit.decision.remaining },
          at: clock.now(),
        });
      }
      return decision;
    },
  };
}
