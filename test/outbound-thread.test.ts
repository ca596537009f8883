import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Worker } from "node:worker_threads";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createThreadedOutboundClient } from "../src/infra/outbound-http.ts";

/**
 * createThreadedOutboundClient: the exporters' client, its HTTP work on a worker thread. Against a real local
 * server: what arrives, what comes back, to which caller, and what refusals, timeouts and close() answer.
 */

type Seen = { path: string; headers: IncomingMessage["headers"]; body: Buffer };

let server: Server;
let base: string;
const seen: Seen[] = [];
/** Requests the server holds without answering (the timeout's). */
const held: ServerResponse[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      seen.push({ path: req.url ?? "", headers: req.headers, body });
      if (req.url === "/hold") {
        held.push(res);
        return;
      }
      if (req.url === "/fail") {
        res.writeHead(500, { "content-type": "text/plain" }).end("the store is down");
        return;
      }
      // Echo: the status says which request this answer belongs to.
      res.writeHead(200, { "content-type": "text/plain" }).end(`got ${body.toString("utf8")}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const res of held) {
    res.destroy();
  }
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe("createThreadedOutboundClient", () => {
  it("sends the headers and exactly the body's bytes, and answers each caller with its own answer", async () => {
    const client = createThreadedOutboundClient({ allowPrivate: true });
    try {
      // A view into a larger buffer: only its own bytes may arrive.
      const slab = Buffer.from("xxxxpayload-0yyyy");
      const one = await client.post(`${base}/one`, {
        headers: { "content-type": "application/x-protobuf", authorization: "Basic aWQ6c2VjcmV0" },
        body: slab.subarray(4, 13),
        timeoutMs: 5000,
      });
      expect(one).toMatchObject({ status: 200, error: null, bodyExcerpt: "got payload-0" });
      const arrived = seen.find((s) => s.path === "/one");
      expect(arrived?.body.toString("utf8")).toBe("payload-0");
      expect(arrived?.headers["content-type"]).toBe("application/x-protobuf");
      expect(arrived?.headers.authorization).toBe("Basic aWQ6c2VjcmV0");
      expect(arrived?.headers["content-length"]).toBe("9");

      // Many at once, strings and buffers: every caller gets the answer to its own request.
      const answers = await Promise.all(
        Array.from({ length: 300 }, (_, i) =>
          client.post(`${base}/many`, {
            headers: {},
            body: i % 2 === 0 ? `n${i}` : Buffer.from(`n${i}`),
            timeoutMs: 5000,
          }),
        ),
      );
      answers.forEach((answer, i) => {
        expect(answer).toMatchObject({ status: 200, error: null, bodyExcerpt: `got n${i}` });
      });

      const failed = await client.post(`${base}/fail`, { headers: {}, body: "x", timeoutMs: 5000 });
      expect(failed).toMatchObject({ status: 500, error: "HTTP 500: the store is down" });
    } finally {
      client.close();
    }
  });

  it("sends the POSTs asked for in one turn as one message, and answers each with its own", async () => {
    const client = createThreadedOutboundClient({ allowPrivate: true });
    const messages = vi.spyOn(Worker.prototype, "postMessage");
    try {
      // The first turn's 40 POSTs, then another turn's 10: two messages to the worker, not 50.
      const first = Array.from({ length: 40 }, (_, i) =>
        client.post(`${base}/turn`, { headers: {}, body: `a${i}`, timeoutMs: 5000 }),
      );
      await new Promise((resolve) => setImmediate(resolve));
      const second = Array.from({ length: 10 }, (_, i) =>
        client.post(`${base}/turn`, { headers: {}, body: `b${i}`, timeoutMs: 5000 }),
      );
      const answers = await Promise.all([...first, ...second]);
      expect(messages).toHaveBeenCalledTimes(2);
      expect(answers.map((a) => a.bodyExcerpt)).toEqual([
        ...Array.from({ length: 40 }, (_, i) => `got a${i}`),
        ...Array.from({ length: 10 }, (_, i) => `got b${i}`),
      ]);
    } finally {
      messages.mockRestore();
      client.close();
    }
  });

  it("keeps the POSTs of a held burst until its release, then sends them as one message", async () => {
    const client = createThreadedOutboundClient({ allowPrivate: true });
    const messages = vi.spyOn(Worker.prototype, "postMessage");
    const arrived = () => seen.filter((s) => s.path === "/burst").length;
    try {
      // A burst over three turns, with a nested hold in the middle: nothing goes before the outer release.
      const release = client.hold();
      const burst = [client.post(`${base}/burst`, { headers: {}, body: "c0", timeoutMs: 5000 })];
      await new Promise((resolve) => setImmediate(resolve));
      const inner = client.hold();
      burst.push(client.post(`${base}/burst`, { headers: {}, body: "c1", timeoutMs: 5000 }));
      await new Promise((resolve) => setImmediate(resolve));
      inner();
      burst.push(client.post(`${base}/burst`, { headers: {}, body: "c2", timeoutMs: 5000 }));
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(messages).not.toHaveBeenCalled();
      expect(arrived()).toBe(0);

      release();
      // Released twice: the second does nothing (it must not undo another caller's hold).
      release();
      const answers = await Promise.all(burst);
      expect(answers.map((a) => a.bodyExcerpt)).toEqual(["got c0", "got c1", "got c2"]);
      expect(messages).toHaveBeenCalledTimes(1);
      expect(arrived()).toBe(3);

      // Outside any hold, a POST goes at the end of its turn as before.
      const other = client.hold();
      other();
      const after = await client.post(`${base}/burst`, { headers: {}, body: "c3", timeoutMs: 5000 });
      expect(after.bodyExcerpt).toBe("got c3");
      expect(messages).toHaveBeenCalledTimes(2);
    } finally {
      messages.mockRestore();
      client.close();
    }
  });

  it("answers the POSTs a stopped thread held with an error, and the next POST starts another", async () => {
    const client = createThreadedOutboundClient({ allowPrivate: true });
    const messages = vi.spyOn(Worker.prototype, "postMessage");
    try {
      const holdsBefore = held.length;
      const inFlight = client.post(`${base}/hold`, { headers: {}, body: "x", timeoutMs: 60_000 });
      await waitUntil(() => held.length > holdsBefore);
      const thread = messages.mock.contexts[0];
      expect(thread).toBeInstanceOf(Worker);
      await (thread as Worker).terminate();
      expect(await inFlight).toMatchObject({ status: null, error: "the outbound HTTP thread stopped" });

      const next = await client.post(`${base}/one`, { headers: {}, body: "again", timeoutMs: 5000 });
      expect(next).toMatchObject({ status: 200, error: null, bodyExcerpt: "got again" });
      expect(messages.mock.contexts[1]).toBeInstanceOf(Worker);
      expect(messages.mock.contexts[1]).not.toBe(thread);
    } finally {
      messages.mockRestore();
      client.close();
    }
  });

  it("refuses what the SSRF guard refuses, before connecting", async () => {
    const client = createThreadedOutboundClient({ allowPrivate: false });
    const before = seen.length;
    try {
      const plain = await client.post(`${base}/guarded`, { headers: {}, body: "x", timeoutMs: 5000 });
      expect(plain).toMatchObject({
        status: null,
        error: "refused: only https:// endpoints may be delivered to",
      });
      const literal = await client.post("https://127.0.0.1:9/x", { headers: {}, body: "x", timeoutMs: 5000 });
      expect(literal).toMatchObject({ status: null, error: "refused: 127.0.0.1 is not a public address" });
      const named = await client.post("https://localhost:9/x", { headers: {}, body: "x", timeoutMs: 5000 });
      expect(named.status).toBeNull();
      expect(named.error).toMatch(/^refused: localhost resolves to .*not a public address$/);
      expect(seen.length).toBe(before);
    } finally {
      client.close();
    }
  });

  it("times a request out, and answers what is in flight when closed and every later call", async () => {
    const client = createThreadedOutboundClient({ allowPrivate: true });
    const timedOut = await client.post(`${base}/hold`, { headers: {}, body: "x", timeoutMs: 300 });
    expect(timedOut).toMatchObject({ status: null, error: "timed out after 0.3 s" });
    expect(timedOut.latencyMs).toBeGreaterThanOrEqual(250);

    const inFlight = client.post(`${base}/hold`, { headers: {}, body: "x", timeoutMs: 60_000 });
    await waitUntil(() => held.length >= 2);
    client.close();
    expect(await inFlight).toMatchObject({ status: null, error: "the client is closed" });
    expect(await client.post(`${base}/one`, { headers: {}, body: "x", timeoutMs: 5000 })).toMatchObject({
      status: null,
      error: "the client is closed",
    });
  });
});

async function waitUntil(condition: () => boolean): Promise<void> {
  const until = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > until) {
      throw new Error("timed out waiting");
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
