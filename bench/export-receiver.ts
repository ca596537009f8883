/**
 * The receivers of bench:authorize's export comparison (bench/authorize.ts): one node:http server, in a child
 * process of its own (`node bench/export-receiver.ts`), that takes what a healthy Grafana stack would —
 * Prometheus remote-write and Loki pushes — and counts them, answering at once.
 *   Remote-write: any POST that is not a Loki push and carries `X-Prometheus-Remote-Write-Version` or a
 *     protobuf body; its body is read and counted, not decoded (decoding 10,000 orgs' pushes every interval
 *     would cost the cores Orgplane is measured on; the exporter's own tests read series back through a real
 *     Prometheus). Answers 204 as Prometheus does.
 *   Loki: POST …/loki/api/v1/push with a JSON body: parsed, its streams and lines counted, each stream's
 *     `org_id` label checked against the org the credentials were given to (another org's lines under these
 *     credentials would be a leak across tenants). Answers 204 as Loki does.
 *   Both: basic auth `id:token`, where the bench derived every org's token from SEED
 *     (`exportToken(seed, id)`), so a token that did not survive encryption at rest arrives wrong and is
 *     refused with 401 and counted; the protocol headers each exporter must send are checked too, and
 *     a push carrying its own token in the body is counted as a leak.
 * The bench's side (`ExportReceiverClient`): POST /__orgs {id: orgId} names each credential's org; POST
 * /__mark starts a counting window; GET /__stats answers the totals, the window's counts per credential id,
 * and the problems seen.
 */
import { createHmac } from "node:crypto";
import { createServer, type IncomingHttpHeaders } from "node:http";

/** The token the bench gives the credential `id`, which the receiver expects back: HMAC-SHA256 under the seed. */
export function exportToken(seed: string, id: string): string {
  return createHmac("sha256", seed).update(id).digest("base64url");
}

export type ExportKind = "prometheus" | "loki";

type KindCounts = {
  pushes: number;
  bytes: number;
  /** Loki only: the lines and streams of the accepted pushes. */
  lines: number;
  streams: number;
  /** Refused with 401: no basic auth, or a token other than the one the bench configured. */
  badAuth: number;
};

type KindWindow = KindCounts & {
  /** Accepted pushes per credential id within the window. */
  perId: Record<string, number>;
};

export type ExportReceiverStats = {
  totals: Record<ExportKind, KindCounts>;
  window: { seconds: number } & Record<ExportKind, KindWindow>;
  /** What was wrong, with how often: a missing header, a wrong org_id label… */
  problems: Record<string, number>;
};

function emptyCounts(): KindCounts {
  return { pushes: 0, bytes: 0, lines: 0, streams: 0, badAuth: 0 };
}

function header(headers: IncomingHttpHeaders, name: string): string {
  const value = headers[name];
  return typeof value === "string" ? value : "";
}

/** The id and token of a basic Authorization header, else undefined. */
function basicAuth(headers: IncomingHttpHeaders): { id: string; token: string } | undefined {
  const value = header(headers, "authorization");
  if (!value.startsWith("Basic ")) {
    return undefined;
  }
  const decoded = Buffer.from(value.slice("Basic ".length), "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  return colon < 0 ? undefined : { id: decoded.slice(0, colon), token: decoded.slice(colon + 1) };
}

/** Streams and lines of a Loki push body, and the org_id labels it carries; undefined when it is not one. */
function lokiPush(text: string): { streams: number; lines: number; orgIds: Set<string> } | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (
    typeof parsed !== "object" ||
    parsed === null ||
    !("streams" in parsed) ||
    !Array.isArray(parsed.streams)
  ) {
    return undefined;
  }
  let lines = 0;
  const orgIds = new Set<string>();
  for (const stream of parsed.streams as unknown[]) {
    if (typeof stream !== "object" || stream === null) {
      return undefined;
    }
    const labels = "stream" in stream ? stream.stream : undefined;
    const values = "values" in stream ? stream.values : undefined;
    if (!Array.isArray(values)) {
      return undefined;
    }
    lines += values.length;
    const orgId =
      typeof labels === "object" && labels !== null && "org_id" in labels ? String(labels.org_id) : "";
    orgIds.add(orgId);
  }
  return { streams: parsed.streams.length, lines, orgIds };
}

async function runReceiver(): Promise<void> {
  const port = Number(process.env.PORT);
  const seed = process.env.SEED ?? "";
  if (!(port > 0) || seed === "") {
    throw new Error("PORT and SEED must be set");
  }
  /** Credential id → the org it was configured on. */
  const orgOf = new Map<string, string>();
  const expected = new Map<string, string>();
  const totals: Record<ExportKind, KindCounts> = { prometheus: emptyCounts(), loki: emptyCounts() };
  let window: Record<ExportKind, KindWindow> = {
    prometheus: { ...emptyCounts(), perId: {} },
    loki: { ...emptyCounts(), perId: {} },
  };
  let windowStart = performance.now();
  const problems = new Map<string, number>();
  const problem = (what: string) => problems.set(what, (problems.get(what) ?? 0) + 1);

  const tokenFor = (id: string): string => {
    let token = expected.get(id);
    if (token === undefined) {
      token = exportToken(seed, id);
      expected.set(id, token);
    }
    return token;
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const url = req.url ?? "";
      const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
      if (req.method === "POST" && !url.startsWith("/__")) {
        const kind: ExportKind | undefined = url.includes("/loki/api/v1/push")
          ? "loki"
          : header(req.headers, "x-prometheus-remote-write-version") !== "" ||
              header(req.headers, "content-type").includes("protobuf")
            ? "prometheus"
            : undefined;
        if (kind === undefined) {
          problem(`POST ${url.slice(0, 60)}: neither a Loki push nor a remote-write`);
          res.writeHead(404).end();
          return;
        }
        const auth = basicAuth(req.headers);
        if (auth === undefined || auth.token !== tokenFor(auth.id)) {
          totals[kind].badAuth++;
          window[kind].badAuth++;
          res.writeHead(401).end();
          return;
        }
        if (body.includes(auth.token)) {
          problem(`${kind}: the push's body holds its own token`);
        }
        let lines = 0;
        let streams = 0;
        if (kind === "prometheus") {
          if (header(req.headers, "x-prometheus-remote-write-version") !== "0.1.0") {
            problem("prometheus: X-Prometheus-Remote-Write-Version is not 0.1.0");
          }
          if (header(req.headers, "content-encoding") !== "snappy") {
            problem("prometheus: Content-Encoding is not snappy");
          }
          if (header(req.headers, "content-type") !== "application/x-protobuf") {
            problem("prometheus: Content-Type is not application/x-protobuf");
          }
        } else {
          const push = lokiPush(body.toString("utf8"));
          if (push === undefined) {
            problem("loki: the body is not a JSON push ({streams: [{stream, values}]})");
            res.writeHead(400).end();
            return;
          }
          lines = push.lines;
          streams = push.streams;
          const orgId = orgOf.get(auth.id);
          if (orgId === undefined) {
            problem("loki: a push under credentials the bench gave no org");
          } else if ([...push.orgIds].some((labelled) => labelled !== orgId)) {
            // One key for all: the count is the finding, and a list of org ids would drown the report.
            problem("loki: a stream labelled with another org_id than the org of the credentials");
          }
        }
        for (const counts of [totals[kind], window[kind]]) {
          counts.pushes++;
          counts.bytes += body.length;
          counts.lines += lines;
          counts.streams += streams;
        }
        window[kind].perId[auth.id] = (window[kind].perId[auth.id] ?? 0) + 1;
        res.writeHead(204).end();
        return;
      }
      if (req.method === "POST" && url === "/__orgs") {
        for (const [id, orgId] of Object.entries(
          JSON.parse(body.toString("utf8")) as Record<string, string>,
        )) {
          orgOf.set(id, orgId);
        }
        res.writeHead(204).end();
        return;
      }
      if (req.method === "POST" && url === "/__mark") {
        window = { prometheus: { ...emptyCounts(), perId: {} }, loki: { ...emptyCounts(), perId: {} } };
        windowStart = performance.now();
        res.writeHead(204).end();
        return;
      }
      if (req.method === "GET" && url === "/__stats") {
        const stats: ExportReceiverStats = {
          totals,
          window: { seconds: (performance.now() - windowStart) / 1000, ...window },
          problems: Object.fromEntries(problems),
        };
        const json = JSON.stringify(stats);
        res.writeHead(200, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(json) });
        res.end(json);
        return;
      }
      if (req.method === "GET" && url === "/") {
        res.writeHead(200).end("ok");
        return;
      }
      res.writeHead(404).end();
    });
  });
  // The exporters keep their connections open between intervals, as they would to Grafana.
  server.keepAliveTimeout = 60_000;
  server.listen(port, "127.0.0.1");
  process.once("SIGTERM", () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}

/** The bench's side of the receiver. */
export class ExportReceiverClient {
  readonly port: number;

  constructor(port: number) {
    this.port = port;
  }

  /** Names the org of each credential id, so Loki's org_id labels can be checked. */
  async setOrgs(orgs: Record<string, string>): Promise<void> {
    const res = await fetch(`http://127.0.0.1:${this.port}/__orgs`, {
      method: "POST",
      body: JSON.stringify(orgs),
    });
    if (res.status !== 204) {
      throw new Error(`the export receiver refused the orgs: ${res.status}`);
    }
  }

  /** Starts a new counting window. */
  async mark(): Promise<void> {
    const res = await fetch(`http://127.0.0.1:${this.port}/__mark`, { method: "POST" });
    await res.body?.cancel();
  }

  async stats(): Promise<ExportReceiverStats> {
    const res = await fetch(`http://127.0.0.1:${this.port}/__stats`);
    return (await res.json()) as ExportReceiverStats;
  }
}

if (import.meta.main) {
  await runReceiver();
}
