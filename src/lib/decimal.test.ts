import { describe, expect, it } from "vitest";
import {
  addDecimal,
  compareDecimal,
  compareSigned,
  decimalOfNumber,
  divideDecimal,
  fromUnits,
  multiplyDecimal,
  multiplyDecimals,
  negateDecimal,
  normalizeDecimal,
  subDecimal,
  sumDecimal,
  toUnits,
} from "./decimal.ts";

describe("compareDecimal", () => {
  it("compares exactly, whatever the number of fraction digits", () => {
    expect(compareDecimal("100", "100.000")).toBe(0);
    expect(compareDecimal("99.999999999999999999", "100")).toBe(-1);
    expect(compareDecimal("100.000000000000000001", "100")).toBe(1);
    expect(compareDecimal("9", "10")).toBe(-1);
    expect(compareDecimal("0.5", "0.25")).toBe(1);
  });
});

describe("signed decimal arithmetic", () => {
  it("adds and subtracts exactly at 18 fraction digits", () => {
    expect(addDecimal("0.1", "0.2")).toBe("0.3");
    expect(subDecimal("100", "100.000000000000000001")).toBe("-0.000000000000000001");
    expect(addDecimal("999999999999999999.999999999999999999", "0.000000000000000001")).toBe(
      "1000000000000000000",
    );
    expect(sumDecimal(["1.5", "-2", "0.25"])).toBe("-0.25");
    expect(sumDecimal([])).toBe("0");
    expect(negateDecimal("0")).toBe("0");
    expect(negateDecimal("-3.10")).toBe("3.1");
  });

  it("normalizes PostgreSQL numeric text", () => {
    expect(normalizeDecimal("12.500000000000000000")).toBe("12.5");
    expect(normalizeDecimal("-0.000000000000000000")).toBe("0");
    expect(normalizeDecimal("100.000000000000000000")).toBe("100");
    expect(toUnits("1")).toBe(10n ** 18n);
    expect(fromUnits(-1n)).toBe("-0.000000000000000001");
  });

  it("refuses what is not a decimal or is finer than 18 digits", () => {
    expect(() => toUnits("1e3")).toThrow(RangeError);
    expect(() => toUnits("0.0000000000000000001")).toThrow(RangeError);
    expect(() => toUnits("")).toThrow(RangeError);
  });

  it("compares signed values and divides with truncation", () => {
    expect(compareSigned("-1", "0.5")).toBe(-1);
    expect(compareSigned("2.0", "2")).toBe(0);
    expect(compareSigned("-0.1", "-0.2")).toBe(1);
    expect(divideDecimal("1", "7")).toBe("0.142857142857142857");
    expect(divideDecimal("10", "4", 0)).toBe("2");
    expect(divideDecimal("-10", "4", 1)).toBe("-2.5");
    expect(multiplyDecimal("0.5", 3)).toBe("1.5");
    expect(() => divideDecimal("1", "0")).toThrow(RangeError);
  });
});

describe("multiplyDecimals", () => {
  it("multiplies exactly and rounds the 18th digit as asked", () => {
    expect(multiplyDecimals("1500", "0.000002")).toBe("0.003");
    expect(multiplyDecimals("0.000000000000000001", "0.5", "up")).toBe("0.000000000000000001");
    expect(multiplyDecimals("0.000000000000000001", "0.4", "half_up")).toBe("0");
    expect(multiplyDecimals("0.000000000000000001", "0.5", "half_up")).toBe("0.000000000000000001");
    expect(multiplyDecimals("-2.5", "4")).toBe("-10");
  });
});

describe("decimalOfNumber", () => {
  it("prints JSON numbers as exact decimals without exponents", () => {
    expect(decimalOfNumber(12)).toBe("12");
    expect(decimalOfNumber(0.25)).toBe("0.25");
    expect(decimalOfNumber(1e-7)).toBe("0.0000001");
    expect(decimalOfNumber(1e21)).toBe("1000000000000000000000");
    expect(decimalOfNumber(-1)).toBeUndefined();
    expect(decimalOfNumber(Number.NaN)).toBeUndefined();
  });
});
