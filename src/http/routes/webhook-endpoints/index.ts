import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { registerCreateWebhookEndpoint } from "./create-webhook-endpoint.ts";
import { registerDeleteWebhookEndpoint } from "./delete-webhook-endpoint.ts";
import { registerGetWebhookDelivery } from "./get-webhook-delivery.ts";
import { registerGetWebhookEndpoint } from "./get-webhook-endpoint.ts";
import { registerListWebhookDeliveries } from "./list-webhook-deliveries.ts";
import { registerListWebhookEndpoints } from "./list-webhook-endpoints.ts";
import { registerRedeliverWebhookDelivery } from "./redeliver-webhook-delivery.ts";
import { registerRotateWebhookSecret } from "./rotate-webhook-secret.ts";
import { registerTestWebhookEndpoint } from "./test-webhook-endpoint.ts";
import { registerUpdateWebhookEndpoint } from "./update-webhook-endpoint.ts";

export function registerWebhookEndpointRoutes(api: OpenAPIHono<AppEnv>): void {
  registerCreateWebhookEndpoint(api);
  registerListWebhookEndpoints(api);
  registerGetWebhookEndpoint(api);
  registerUpdateWebhookEndpoint(api);
  registerDeleteWebhookEndpoint(api);
  registerRotateWebhookSecret(api);
  registerTestWebhookEndpoint(api);
  registerListWebhookDeliveries(api);
  registerGetWebhookDelivery(api);
  registerRedeliverWebhookDelivery(api);
}
