import type { MiddlewareHandler } from "hono";
import { newId } from "../../lib/ids.ts";

/** A caller's id is kept when it is short and plain, so traces join across services; else we mint one. */
const ACCEPTED = /^[A-Za-z0-9._:-]{1,128}$/;

/** The request's id: the caller's X-Request-Id when acceptable, else a new one. */
export function requestIdFrom(incoming: string | undefined): string {
  return incoming !== undefined && ACCEPTED.test(incoming) ? incoming : newId("req");
}

export const requestId: MiddlewareHandler = async (c, next) => {
  const id = requestIdFrom(c.req.header("X-Request-Id"));
  c.set("requestId", id);
  await next();
  c.res.headers.set("X-Request-Id", id);
};
