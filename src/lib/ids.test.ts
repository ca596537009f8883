import { TypeID } from "typeid-js";
import { describe, expect, it } from "vitest";
import { isId, newId } from "./ids.ts";

describe("newId", () => {
  it("mints TypeIDs that typeid-js parses, of UUID version 7 and the RFC 9562 variant", () => {
    for (let i = 0; i < 2000; i++) {
      const id = newId("req");
      const parsed = TypeID.fromString(id);
      expect(parsed.getType()).toBe("req");
      const uuid = parsed.toUUID();
      expect(uuid[14]).toBe("7");
      expect(["8", "9", "a", "b"]).toContain(uuid[19]);
      expect(isId("req", id)).toBe(true);
    }
  });

  it("encodes the creation time in the first 48 bits, so ids sort by it", () => {
    const before = Date.now();
    const id = newId("org");
    const after = Date.now();
    const ms = Number.parseInt(TypeID.fromString(id).toUUID().replaceAll("-", "").slice(0, 12), 16);
    expect(ms).toBeGreaterThanOrEqual(before);
    expect(ms).toBeLessThanOrEqual(after);
  });

  it("sorts ids minted in the same millisecond in the order they were minted", () => {
    const ids = Array.from({ length: 10_000 }, () => newId("aud"));
    expect([...ids].sort()).toEqual(ids);
  });

  it("draws distinct ids across pool refills", () => {
    const ids = new Set(Array.from({ length: 5000 }, () => newId("key")));
    expect(ids.size).toBe(5000);
  });
});
