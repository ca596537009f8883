/**
 * The ingest route checks its batch by hand (parseUsageBatch) instead of walking the zod schema: it must
 * accept nothing the documented schema refuses, and give the handler the same value. Seeded random
 * batches, each a valid one with a few mutations drawn from every way a field can be wrong.
 */
import { describe, expect, it } from "vitest";
import { IngestUsageBody, parseUsageBatch } from "../src/http/schemas/usage.ts";
import { mulberry32 } from "./util.ts";

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

function validEvent(i: number): { [key: string]: Json } {
  return {
    id: `evt_${i}`,
    type: "prompt_tokens",
    subject: "prj_01jd0v4n6qf9yb5c8h2m3k7x1z",
    time: "2026-11-26T10:00:00.123Z",
    data: { value: 12, model: "gpt-4o", ok: true, none: null },
  };
}

const ODD_VALUES: Json[] = [
  "",
  "x".repeat(65),
  "x".repeat(201),
  "x".repeat(1025),
  "a\u0000b",
  0,
  -1,
  1.5,
  true,
  null,
  [],
  [1],
  {},
  { nested: { deep: 1 } },
  "2026-11-26T10:00:00",
  "2026-02-30T10:00:00Z",
  "2026-11-26 10:00:00Z",
  "2026-11-26T10:00:00+01:00",
  "2026-11-26T24:00:00Z",
  "not a time",
];

const FIELDS = ["id", "type", "subject", "time", "data", "specversion", "source", "datacontenttype", "extra"];

function mutate(event: { [key: string]: Json }, random: () => number): void {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;
  const field = pick(FIELDS);
  const roll = random();
  if (roll < 0.2) {
    delete event[field];
  } else if (roll < 0.5 || field !== "data") {
    event[field] = pick(ODD_VALUES);
  } else {
    const data: { [key: string]: Json } = {};
    const members = Math.floor(random() * 40);
    for (let i = 0; i < members; i++) {
      data[i % 7 === 0 ? "x".repeat(1 + Math.floor(random() * 70)) : `m${i}`] = pick(ODD_VALUES);
    }
    event.data = data;
  }
}

describe("parseUsageBatch", () => {
  it("accepts exactly what IngestUsageBody accepts among valid batches", () => {
    const body = { events: [validEvent(0), validEvent(1)] };
    const fast = parseUsageBatch(body);
    expect(fast.ok).toBe(true);
    expect(IngestUsageBody.safeParse(body).success).toBe(true);
  });

  it("never accepts a batch the schema refuses, and hands over what the schema would (2,000 seeded batches)", () => {
    const random = mulberry32(20261126);
    let refusedBoth = 0;
    for (let round = 0; round < 2000; round++) {
      const events = Array.from({ length: 1 + Math.floor(random() * 4) }, (_, i) => validEvent(i));
      for (let m = Math.floor(random() * 3); m > 0; m--) {
        mutate(events[Math.floor(random() * events.length)] ?? {}, random);
      }
      const body: { [key: string]: Json } = { events };
      if (random() < 0.1) {
        body.org_id = random() < 0.5 ? "org_01jd0v4n6qf9yb5c8h2m3k7x1z" : 12;
      }
      if (random() < 0.05) {
        body.unexpected = true;
      }
      const fast = parseUsageBatch(body);
      const schema = IngestUsageBody.safeParse(body);
      if (fast.ok) {
        expect(schema.success, JSON.stringify(body)).toBe(true);
        expect(fast.value).toEqual(schema.data);
      } else if (!schema.success) {
        refusedBoth++;
      }
    }
    // The mutations do produce refusals: the property is not vacuous.
    expect(refusedBoth).toBeGreaterThan(500);
  });

  it("refuses batches of the wrong size or shape", () => {
    expect(parseUsageBatch({ events: [] }).ok).toBe(false);
    expect(parseUsageBatch({ events: Array.from({ length: 1001 }, (_, i) => validEvent(i)) }).ok).toBe(false);
    expect(parseUsageBatch([]).ok).toBe(false);
    expect(parseUsageBatch(null).ok).toBe(false);
    expect(parseUsageBatch({ events: [validEvent(0)] }).ok).toBe(true);
  });
});
