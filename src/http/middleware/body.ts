import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { AppError } from "../../lib/errors.ts";

export const MAX_BODY_BYTES = 1024 * 1024;
/** JSON nested deeper than this is refused before validation walks it (no stack exhaustion). */
const MAX_JSON_DEPTH = 32;

export const limitBody: MiddlewareHandler = bodyLimit({
  maxSize: MAX_BODY_BYTES,
  onError: () => {
    throw new AppError("payload_too_large", `The request body exceeds ${MAX_BODY_BYTES} bytes`);
  },
});

function depthExceeds(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const item = stack.pop();
    if (item === undefined) {
      break;
    }
    const [node, depth] = item;
    if (node !== null && typeof node === "object") {
      if (depth > max) {
        return true;
      }
      for (const child of Object.values(node)) {
        stack.push([child, depth + 1]);
      }
    }
  }
  return false;
}

/** A non-empty body as JSON: refused unless its media type is JSON, it parses, and it is not too deep. */
export function parseJsonBody(text: string, contentType: string | undefined): unknown {
  const mediaType = contentType?.split(";")[0]?.trim().toLowerCase() ?? "";
  if (!/^application\/([\w.-]+\+)?json$/.test(mediaType)) {
    throw new AppError(
      "unsupported_media_type",
      "Send the body as JSON with 'Content-Type: application/json'",
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new AppError("malformed_json", "The request body is not valid JSON");
  }
  if (depthExceeds(parsed, MAX_JSON_DEPTH)) {
    throw new AppError("validation_failed", `JSON nested deeper than ${MAX_JSON_DEPTH} levels`, {
      errors: [{ path: "", message: `nested deeper than ${MAX_JSON_DEPTH} levels` }],
    });
  }
  return parsed;
}

/**
 * Every request body is JSON or nothing. Checked once here, so the validators never see a body that
 * is not JSON (Hono's would silently treat it as `{}`).
 */
export const requireJsonBody: MiddlewareHandler<{ Variables: { jsonBody: unknown } }> = async (c, next) => {
  if (c.req.method === "GET" || c.req.method === "HEAD" || c.req.method === "OPTIONS") {
    return next();
  }
  const text = await c.req.text();
  if (text.trim().length === 0) {
    return next();
  }
  // Kept: a handler that checks its body by hand (usage ingestion) does not parse it a second time.
  c.set("jsonBody", parseJsonBody(text, c.req.header("Content-Type")));
  return next();
};
