import { describe, expect, it } from "vitest";
import { turnBatch } from "./turn-batch.ts";

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("turnBatch", () => {
  it("hands over what one turn added, in order, at the end of the turn", async () => {
    const sent: number[][] = [];
    const add = turnBatch<number>(10, (items) => sent.push(items));
    add(1);
    add(2);
    add(3);
    expect(sent).toEqual([]);
    await nextTurn();
    expect(sent).toEqual([[1, 2, 3]]);
    add(4);
    await nextTurn();
    expect(sent).toEqual([[1, 2, 3], [4]]);
  });

  it("sends a group as soon as it is full, and the rest at the end of the turn", async () => {
    const sent: number[][] = [];
    const add = turnBatch<number>(3, (items) => sent.push(items));
    for (let i = 1; i <= 7; i++) {
      add(i);
    }
    expect(sent).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    await nextTurn();
    expect(sent).toEqual([[1, 2, 3], [4, 5, 6], [7]]);
    await nextTurn();
    expect(sent.length).toBe(3);
  });
});
