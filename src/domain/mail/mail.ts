import type { Clock } from "../../lib/clock.ts";
import { newId } from "../../lib/ids.ts";
import type { MailOutboxStore } from "./mail.store.ts";
import type { MailDraft, OutboxMessage } from "./mail.types.ts";

/**
 * Put an email in the outbox through `store`, which the caller binds to its own transaction: the email and
 * what caused it (an invitation) commit together or not at all, and nothing leaves the process before the
 * commit. The mailer sends it afterwards.
 */
export async function enqueueMail(
  store: Pick<MailOutboxStore, "enqueue">,
  draft: MailDraft,
  clock: Clock,
): Promise<OutboxMessage> {
  const now = clock.now();
  const message: OutboxMessage = {
    id: newId("msg"),
    orgId: draft.orgId,
    toAddress: draft.to,
    // A header is one line: a name with a line break in it must not add headers of its own.
    subject: draft.subject.replace(/[\r\n]+/g, " "),
    textBody: draft.text,
    kind: draft.kind,
    status: "pending",
    attempts: 0,
    nextAttemptAt: now,
    lastError: null,
    createdAt: now,
    sentAt: null,
  };
  await store.enqueue(message);
  return message;
}
