import { parentPort, workerData } from "node:worker_threads";
import { createOutboundClient, type OutboundResult } from "./outbound-http.ts";

/*
 * The worker thread of createThreadedOutboundClient (outbound-http.ts): the same SSRF-guarded client, run off
 * the main thread. Asked `{ id, url, headers, body, timeoutMs }`, it answers `{ id, result }` once the POST
 * is over; `post` never throws, so every request is answered.
 */

export type ThreadRequest = {
  id: number;
  url: string;
  headers: Record<string, string>;
  body: Uint8Array | string;
  timeoutMs: number;
};

export type ThreadAnswer = { id: number; result: OutboundResult };

const port = parentPort;
if (port === null) {
  throw new Error("outbound-thread.ts runs as a worker thread (createThreadedOutboundClient)");
}
const { allowPrivate, maxSocketsPerHost } = workerData as {
  allowPrivate: boolean;
  maxSocketsPerHost?: number;
};
const client = createOutboundClient({
  allowPrivate,
  ...(maxSocketsPerHost === undefined ? {} : { maxSocketsPerHost }),
});

port.on("message", (request: ThreadRequest) => {
  const body =
    typeof request.body === "string"
      ? request.body
      : Buffer.from(request.body.buffer, request.body.byteOffset, request.body.byteLength);
  void client
    .post(request.url, { headers: request.headers, body, timeoutMs: request.timeoutMs })
    .then((result) => port.postMessage({ id: request.id, result } satisfies ThreadAnswer));
});
