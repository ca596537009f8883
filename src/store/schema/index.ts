export { apiKeys } from "./api-keys.ts";
export { auditEvents } from "./audit-events.ts";
export { idempotencyKeys } from "./idempotency-keys.ts";
export { operatorKeys } from "./operator-keys.ts";
export { organizations } from "./organizations.ts";
