import { describe, expect, it } from "vitest";
import { compareDecimal } from "./decimal.ts";

describe("compareDecimal", () => {
  it("compares exactly, whatever the number of fraction digits", () => {
    expect(compareDecimal("100", "100.000")).toBe(0);
    expect(compareDecimal("99.999999999999999999", "100")).toBe(-1);
    expect(compareDecimal("100.000000000000000001", "100")).toBe(1);
    expect(compareDecimal("9", "10")).toBe(-1);
    expect(compareDecimal("0.5", "0.25")).toBe(1);
  });
});
