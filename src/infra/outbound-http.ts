import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from "node:dns";
import http from "node:http";
import https from "node:https";
import type { LookupFunction } from "node:net";
import { performance } from "node:perf_hooks";
import { Worker } from "node:worker_threads";
import { isNonPublicAddress } from "../domain/webhooks/url-policy.ts";
import { turnBatch } from "../lib/turn-batch.ts";
import type { ThreadAnswer, ThreadRequest } from "./outbound-thread.ts";

/**
 * The HTTP client for everything Orgplane POSTs to a URL an organization chose: webhook deliveries and the
 * observability export (Prometheus remote-write, Loki push). One SSRF guard for all of them.
 */

/** The part of an error answer's body kept: enough to see what the receiver said. */
const BODY_EXCERPT_BYTES = 512;
/** A receiver answering more than this is cut off: nothing past the excerpt is used. */
const BODY_READ_LIMIT_BYTES = 64 * 1024;
/** Sockets per host kept open for reuse: a caller's whole in-flight budget may go to one host. */
const DEFAULT_MAX_SOCKETS_PER_HOST = 64;

export type OutboundRequest = {
  /** Header names and values as sent. Never echoed in an error. */
  headers: Record<string, string>;
  body: Buffer | string;
  /** The whole request (connect, send, answer) is abandoned after this long. */
  timeoutMs: number;
};

/** What came of one POST. Success is a 2xx answer; anything else carries `error`. Never holds a header. */
export type OutboundResult = {
  /** The HTTP status, or null when none came (refused, timed out, blocked). */
  status: number | null;
  /** Why it failed (a non-2xx status and the start of the body, a timeout, a refusal); null on a 2xx. */
  error: string | null;
  /** Milliseconds from the start of the request to its end. */
  latencyMs: number;
  /** The first bytes of the answer's body (at most 512), as text, trimmed. */
  bodyExcerpt: string;
};

export type OutboundClient = {
  /** Never throws: every failure is a result with an error. */
  post(url: string, request: OutboundRequest): Promise<OutboundResult>;
  /**
   * Until the returned release is called, POSTs asked for may be kept back and started together at the
   * release: a caller starting a burst of POSTs over several turns (its work cut into slices) hands them over
   * as one. Holds nest; a POST asked for outside any hold starts as usual. The plain client starts every POST
   * at once (its release does nothing); the threaded one sends a held burst to its thread as one message.
   */
  hold(): () => void;
  /** Close idle connections kept for reuse. */
  close(): void;
};

/** Refused before connecting: the address is not one that may be reached. */
class BlockedAddressError extends Error {
  override name = "BlockedAddressError";
}

/**
 * A resolver that refuses non-public addresses: the check runs on the addresses the socket will connect to,
 * after resolution, so a hostname re-pointed at 127.0.0.1 after the URL was saved (DNS rebinding) is still
 * refused. Node calls it for every new connection to a hostname (never for an IP literal).
 */
function guardedLookup(allowPrivate: boolean): LookupFunction {
  return (hostname: string, options: LookupOptions, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err !== null) {
        callback(err, "", 0);
        return;
      }
      if (!allowPrivate) {
        const blocked = addresses.find((a) => isNonPublicAddress(a.address) !== false);
        if (blocked !== undefined) {
          callback(
            new BlockedAddressError(
              `refused: ${hostname} resolves to ${blocked.address}, which is not a public address`,
            ),
            "",
            0,
          );
          return;
        }
      }
      if (options.all === true) {
        callback(null, addresses);
        return;
      }
      const first = addresses[0];
      if (first === undefined) {
        callback(new Error(`${hostname} did not resolve`), "", 0);
        return;
      }
      callback(null, first.address, first.family);
    });
  };
}

function describe(err: unknown, timeoutMs: number, timedOut: boolean): string {
  if (timedOut) {
    return `timed out after ${timeoutMs / 1000} s`;
  }
  if (err instanceof BlockedAddressError) {
    return err.message;
  }
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e.code === "string" ? e.code : undefined;
  const message = typeof e.message === "string" ? e.message : String(err);
  if (code === "ECONNREFUSED") {
    return `connection refused (${message.replace(/^connect /, "")})`;
  }
  return code === undefined || message.includes(code) ? message : `${message} (${code})`;
}

/**
 * One POST per call over node:http/node:https with keep-alive sockets, no redirects followed (a 3xx is a
 * failure), the whole request bounded by its timeout, and the answer's body read only up to a small cap.
 * Unless `allowPrivate`, http:// URLs, IP literals and resolved addresses outside the public unicast space
 * are refused before a connection is made. Errors are built from the URL's host, the status and the body,
 * never from the request's headers (which carry credentials).
 */
export function createOutboundClient(options: {
  allowPrivate: boolean;
  maxSocketsPerHost?: number;
}): OutboundClient {
  const lookup = guardedLookup(options.allowPrivate);
  const agentOptions = {
    keepAlive: true,
    maxSockets: options.maxSocketsPerHost ?? DEFAULT_MAX_SOCKETS_PER_HOST,
  };
  const httpAgent = new http.Agent(agentOptions);
  const httpsAgent = new https.Agent(agentOptions);

  function refusal(url: URL): string | undefined {
    if (options.allowPrivate) {
      return undefined;
    }
    if (url.protocol !== "https:") {
      return "refused: only https:// endpoints may be delivered to";
    }
    // Node resolves no IP literal, so the guarded lookup never sees one: literals are judged here. Names
    // (`localhost` included) are judged by the addresses they resolve to, at connect time.
    if (isNonPublicAddress(url.hostname) === true) {
      return `refused: ${url.hostname} is not a public address`;
    }
    return undefined;
  }

  return {
    post(target: string, request: OutboundRequest): Promise<OutboundResult> {
      const started = performance.now();
      const elapsed = () => Math.round(performance.now() - started);
      let url: URL;
      try {
        url = new URL(target);
      } catch {
        return Promise.resolve({
          status: null,
          error: "the endpoint URL is not valid",
          latencyMs: 0,
          bodyExcerpt: "",
        });
      }
      if (url.protocol !== "https:" && url.protocol !== "http:") {
        return Promise.resolve({
          status: null,
          error: "refused: only http:// and https:// endpoints may be delivered to",
          latencyMs: 0,
          bodyExcerpt: "",
        });
      }
      const refused = refusal(url);
      if (refused !== undefined) {
        return Promise.resolve({ status: null, error: refused, latencyMs: 0, bodyExcerpt: "" });
      }
      const isHttps = url.protocol === "https:";
      return new Promise<OutboundResult>((resolve) => {
        let settled = false;
        let timedOut = false;
        const finish = (result: Omit<OutboundResult, "latencyMs">) => {
          if (settled) {
            return;
          }
          settled = true;
          clearTimeout(timer);
          resolve({ ...result, latencyMs: elapsed() });
        };
        const body = typeof request.body === "string" ? Buffer.from(request.body, "utf8") : request.body;
        const req = (isHttps ? https : http).request(url, {
          method: "POST",
          agent: isHttps ? httpsAgent : httpAgent,
          lookup,
          headers: { ...request.headers, "content-length": String(body.length) },
        });
        const timer = setTimeout(() => {
          timedOut = true;
          req.destroy();
        }, request.timeoutMs);
        req.on("error", (err) =>
          finish({ status: null, error: describe(err, request.timeoutMs, timedOut), bodyExcerpt: "" }),
        );
        req.on("response", (res) => {
          const status = res.statusCode ?? 0;
          const chunks: Buffer[] = [];
          let read = 0;
          res.on("data", (chunk: Buffer) => {
            if (read < BODY_EXCERPT_BYTES) {
              chunks.push(chunk);
            }
            read += chunk.length;
            if (read > BODY_READ_LIMIT_BYTES) {
              // Enough: the socket is dropped rather than drained.
              res.destroy();
              done();
            }
          });
          const done = () => {
            const excerpt = Buffer.concat(chunks).subarray(0, BODY_EXCERPT_BYTES).toString("utf8").trim();
            if (status >= 200 && status < 300) {
              finish({ status, error: null, bodyExcerpt: excerpt });
              return;
            }
            if (status >= 300 && status < 400) {
              const location = String(res.headers.location ?? "").slice(0, 200);
              finish({
                status,
                error: `HTTP ${status}: redirects are not followed${location === "" ? "" : ` (location: ${location})`}`,
                bodyExcerpt: excerpt,
              });
              return;
            }
            finish({
              status,
              error: `HTTP ${status}${excerpt === "" ? "" : `: ${excerpt}`}`,
              bodyExcerpt: excerpt,
            });
          };
          res.on("end", done);
          res.on("error", (err) =>
            finish({ status, error: describe(err, request.timeoutMs, timedOut), bodyExcerpt: "" }),
          );
        });
        req.end(body);
      });
    },
    hold() {
      return () => {};
    },
    close() {
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}

/**
 * The same client with its work on a worker thread of its own (src/infra/outbound-thread.ts): connecting,
 * writing, reading and parsing the answer cost the calling thread only a message each way. The exporters use
 * it, so a hundred and more pushes a second stay off the thread that answers the API (about 250 µs of its
 * time each, measured on the bench machine, against 40 µs for the two messages).
 *
 * The worker starts at the first POST. Should it stop (it never throws on its own), the POSTs it held are
 * answered with an error and the next POST starts another. Bodies are copied to the worker, not transferred:
 * a Buffer may share its memory with others.
 *
 * Messages go once a turn each way, not once a POST (`turnBatch`): the POSTs asked for in one turn of the event
 * loop go to the worker as one message at the end of that turn, and the worker answers the POSTs that
 * ended in one of its turns as one message (outbound-thread.ts). Each message wakes the other thread, and on
 * a virtual machine waking a thread that sleeps on the other CPU costs several microseconds of both
 * (docs/adr/0004, "Answers written once a turn"), and the woken thread may take the CPU of the thread that
 * answers the API. A caller whose burst of POSTs spans several turns (the metrics exporter builds its pushes in
 * slices) holds the client for the burst (`hold()`): the burst goes as one message, the thread wakes once for
 * it, and a receiver answers pushes sent together about together.
 */
export function createThreadedOutboundClient(options: {
  allowPrivate: boolean;
  maxSocketsPerHost?: number;
}): OutboundClient {
  let worker: Worker | undefined;
  /**
   * The POSTs in flight, by slot: a slot's id is its index, freed slots are reused. An array and a free list
   * rather than a map of ids: a long-lived map with an insert and a delete per POST would keep rebuilding
   * hash tables that end up in the old generation (docs/adr/0004, "Promoted garbage").
   */
  const waiting: Array<{ resolve: (result: OutboundResult) => void; started: number } | undefined> = [];
  const free: number[] = [];
  let closed = false;
  /**
   * The POSTs asked for in one turn, to the worker as one message at its end; each goes only to the worker it
   * was asked of. One that stopped (or was closed) meanwhile has had its POSTs answered by `answerAll`, and
   * their slots may already serve new POSTs, so they are not sent on.
   */
  type Asked = { target: Worker; request: ThreadRequest };
  /** Open holds (`hold()`), and what their turns asked for meanwhile, sent when the last is released. */
  let holds = 0;
  let held: Asked[] = [];
  function deliver(asked: readonly Asked[]): void {
    const current = worker;
    const requests = asked.filter((a) => a.target === current).map((a) => a.request);
    if (current !== undefined && requests.length > 0) {
      current.postMessage(requests);
    }
  }
  const send = turnBatch<Asked>(Number.POSITIVE_INFINITY, (asked) => {
    if (holds > 0) {
      held.push(...asked);
    } else {
      deliver(asked);
    }
  });

  function answerAll(error: string): void {
    for (let id = 0; id < waiting.length; id++) {
      const entry = waiting[id];
      if (entry !== undefined) {
        waiting[id] = undefined;
        free.push(id);
        entry.resolve({
          status: null,
          error,
          latencyMs: Math.round(performance.now() - entry.started),
          bodyExcerpt: "",
        });
      }
    }
  }

  function start(): Worker {
    const started = new Worker(new URL("./outbound-thread.ts", import.meta.url), {
      workerData: options,
      name: "orgplane-outbound-http",
    });
    // Waiting POSTs hold the process open through their own callers; an idle worker does not.
    started.unref();
    started.on("message", (answers: ThreadAnswer[]) => {
      for (const answer of answers) {
        const entry = waiting[answer.id];
        if (entry === undefined) {
          continue;
        }
        waiting[answer.id] = undefined;
        free.push(answer.id);
        entry.resolve(answer.result);
      }
    });
    const lost = (why: string) => {
      if (worker === started) {
        worker = undefined;
        answerAll(why);
      }
    };
    started.on("error", (err) => lost(`the outbound HTTP thread failed: ${err.message}`));
    started.on("exit", () => lost("the outbound HTTP thread stopped"));
    return started;
  }

  return {
    post(url: string, request: OutboundRequest): Promise<OutboundResult> {
      if (closed) {
        return Promise.resolve({
          status: null,
          error: "the client is closed",
          latencyMs: 0,
          bodyExcerpt: "",
        });
      }
      worker ??= start();
      const target = worker;
      return new Promise<OutboundResult>((resolve) => {
        const id = free.pop() ?? waiting.length;
        waiting[id] = { resolve, started: performance.now() };
        const asked: ThreadRequest = {
          id,
          url,
          headers: request.headers,
          // A view is cloned with the whole of its memory: one into a larger buffer (a pool slab, a queue's
          // buffer) is copied to its own bytes first.
          body:
            typeof request.body === "string" || request.body.byteLength === request.body.buffer.byteLength
              ? request.body
              : new Uint8Array(request.body),
          timeoutMs: request.timeoutMs,
        };
        send({ target, request: asked });
      });
    },
    hold() {
      holds += 1;
      let released = false;
      return () => {
        if (released) {
          return;
        }
        released = true;
        holds -= 1;
        if (holds === 0 && held.length > 0) {
          // The turn that released may itself have asked for more: those follow at its end, as usual.
          const burst = held;
          held = [];
          deliver(burst);
        }
      };
    },
    close() {
      closed = true;
      held = [];
      const stopping = worker;
      worker = undefined;
      answerAll("the client is closed");
      void stopping?.terminate();
    },
  };
}
