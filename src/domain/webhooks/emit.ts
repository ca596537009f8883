import type { Clock } from "../../lib/clock.ts";
import { newId } from "../../lib/ids.ts";
import type { Stores } from "../stores.ts";
import type { NewWebhookEvent, WebhookEvent } from "./webhooks.types.ts";

/**
 * Write an event into the outbox through `stores`, which must be bound to the transaction of the change
 * that causes it: the event commits with the change or not at all. The store assigns the organization's
 * next sequence number and creates one pending delivery per active endpoint subscribed to the type; the
 * delivery workers are woken when the transaction commits.
 */
export async function emitWebhookEvent(
  stores: Pick<Stores, "webhooks">,
  event: NewWebhookEvent,
  clock: Clock,
): Promise<WebhookEvent> {
  return stores.webhooks.appendEvent({ id: newId("evt"), ...event, createdAt: clock.now() });
}
