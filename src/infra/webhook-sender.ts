import type { WebhookAttempt, WebhookRequest, WebhookSender } from "../domain/webhooks/sender.ts";
import { createOutboundClient } from "./outbound-http.ts";

/**
 * The webhook HTTP client: one POST per attempt through the shared outbound client (src/infra/outbound-http.ts):
 * keep-alive sockets, no redirects followed (a 3xx is a failed attempt), the whole attempt bounded by its
 * timeout, and the answer's body read only up to a small cap. Unless `allowPrivate`, IP literals and resolved
 * addresses outside the public unicast space are refused before a connection is made.
 */
export function createWebhookSender(options: {
  allowPrivate: boolean;
  maxSocketsPerHost?: number;
}): WebhookSender {
  const client = createOutboundClient(options);
  return {
    async send(request: WebhookRequest): Promise<WebhookAttempt> {
      const { status, error, latencyMs } = await client.post(request.url, {
        headers: request.headers,
        body: request.body,
        timeoutMs: request.timeoutMs,
      });
      return { status, error, latencyMs };
    },
    close() {
      client.close();
    },
  };
}
