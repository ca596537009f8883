import { parentPort, workerData } from "node:worker_threads";
import { turnBatch } from "../lib/turn-batch.ts";
import { createOutboundClient, type OutboundResult } from "./outbound-http.ts";

/*
 * The worker thread of createThreadedOutboundClient (outbound-http.ts): the same SSRF-guarded client, run off
 * the main thread. Asked for POSTs as a message of `{ id, url, headers, body, timeoutMs }` (a turn's worth), it
 * answers `{ id, result }` once each POST is over, those that ended in the same turn as one message (each
 * message wakes the main thread); `post` never throws, so every request is answered.
 */

export type ThreadRequest = {
  id: number;
  url: string;
  headers: Record<string, string>;
  body: Uint8Array | string;
  timeoutMs: number;
};

export type ThreadAnswer = { id: number; result: OutboundResult };

if (parentPort === null) {
  throw new Error("outbound-thread.ts runs as a worker thread (createThreadedOutboundClient)");
}
const port = parentPort;
const { allowPrivate, maxSocketsPerHost } = workerData as {
  allowPrivate: boolean;
  maxSocketsPerHost?: number;
};
const client = createOutboundClient({
  allowPrivate,
  ...(maxSocketsPerHost === undefined ? {} : { maxSocketsPerHost }),
});

/** The answers of one turn, sent as one message at its end. */
const answer = turnBatch<ThreadAnswer>(Number.POSITIVE_INFINITY, (answers) => port.postMessage(answers));

port.on("message", (requests: ThreadRequest[]) => {
  for (const request of requests) {
    const body =
      typeof request.body === "string"
        ? request.body
        : Buffer.from(request.body.buffer, request.body.byteOffset, request.body.byteLength);
    void client
      .post(request.url, { headers: request.headers, body, timeoutMs: request.timeoutMs })
      .then((result) => answer({ id: request.id, result }));
  }
});
