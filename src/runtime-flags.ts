/**
 * The Node/V8 flags Orgplane's server runs with (docs/adr/0008-no-memory-reducer.md). V8 reads them when it
 * sets up the heap, before any of our code runs, so they go on the command line: the npm scripts `start`,
 * `dev` and `orgplane`, and the `orgplane` bin's shebang, carry them (test/runtime-flags.test.ts holds those
 * to this list), and the tests and benches start servers with them.
 *
 * `--no-memory-reducer`: V8's memory reducer is meant for idle browser tabs. About 100 s after the last full
 * GC (its watchdog) it runs a compacting full GC with `reduce_memory` and shrinks the young generation; on a
 * server answering thousands of requests a second that was a stop-the-world pause of 83-98 ms, followed by
 * two more full GCs within 7 s and scavenges 6-8 times as often for the 10 s measured after it (ADR 0008).
 * Full GCs still run whenever the old generation reaches its limit.
 */
export const RUNTIME_FLAGS: readonly string[] = ["--no-memory-reducer"];

/** The flags of RUNTIME_FLAGS this process was started without (`process.execArgv`). */
export function missingRuntimeFlags(execArgv: readonly string[]): string[] {
  return RUNTIME_FLAGS.filter((flag) => !execArgv.includes(flag));
}
