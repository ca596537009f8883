/**
 * Items gathered during one turn of the event loop and handed to `send` together at its end (`setImmediate`,
 * the check phase), in the order they were added, in groups of at most `maxBatch`: a group that fills up
 * goes at once, the rest at the end of the turn. Under a light load a turn holds one item and it waits for
 * nothing; under a heavy one, one write, call or wake-up serves many. Used where each item would otherwise
 * cost a system call or a round trip of its own (the authorize fast path's answers, the Redis limiter's
 * decisions, the POSTs handed to the export thread and its answers).
 */
export function turnBatch<T>(maxBatch: number, send: (items: T[]) => void): (item: T) => void {
  let pending: T[] = [];
  function flush(): void {
    if (pending.length === 0) {
      return;
    }
    const items = pending;
    pending = [];
    send(items);
  }
  return (item) => {
    if (pending.length === 0) {
      setImmediate(flush);
    }
    pending.push(item);
    if (pending.length >= maxBatch) {
      flush();
    }
  };
}
