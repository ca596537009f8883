import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { RUNTIME_FLAGS } from "../src/runtime-flags.ts";

/**
 * Real server and CLI processes for the tests that need them (start-up, two processes on one database):
 * `node src/main.ts` as `npm start` runs it, with only the variables a test sets.
 */

export const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** Generous: initdb plus a first start on a loaded 2-core machine. The 15 s is measured, not asserted. */
export const READY_TIMEOUT_MS = 60_000;
export const EXIT_TIMEOUT_MS = 30_000;

/** Variables this suite sets itself; anything inherited from the shell running the tests is dropped. */
const OWN_VARIABLES = [
  "PORT",
  "HOST",
  "DATABASE_URL",
  "DATABASE_POOL_MAX",
  "ORGPLANE_DATA_DIR",
  "EMBEDDED_PG_PORT",
  "KEY_PREFIX",
  "OPERATOR_KEY_PREFIX",
  "LOG_LEVEL",
  "TRUST_PROXY",
  "SHUTDOWN_TIMEOUT_MS",
  "ORGPLANE_CONFIG",
  "ORGPLANE_PRESET",
];

export type Exit = { code: number | null; signal: NodeJS.Signals | null };

export type Proc = {
  child: ChildProcess;
  pid: number;
  output(): string;
  stdout(): string;
  stderr(): string;
  exited: Promise<Exit>;
  /** Resolves once the combined output matches; rejects if the process exits first or time runs out. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<void>;
};

const running = new Set<Proc>();

/** For afterAll: only a failed test leaves a process behind; kill its whole group (Node and its PostgreSQL). */
export async function killRunning(): Promise<void> {
  for (const proc of running) {
    try {
      process.kill(-proc.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
    await proc.exited;
  }
}

/** `runtimeFlags: false`: node without RUNTIME_FLAGS, as an operator's own command line might start it. */
export function spawnNode(
  args: string[],
  env: Record<string, string>,
  options: { runtimeFlags?: boolean } = {},
): Proc {
  const base = { ...process.env };
  for (const name of OWN_VARIABLES) {
    delete base[name];
  }
  // detached: the process leads its own group, so cleanup can kill it with its PostgreSQL in one call.
  // The flags `npm start` and the orgplane bin run with (src/runtime-flags.ts).
  const child = spawn(process.execPath, [...(options.runtimeFlags === false ? [] : RUNTIME_FLAGS), ...args], {
    cwd: ROOT,
    env: { ...base, HOST: "127.0.0.1", ...env },
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (child.pid === undefined) {
    throw new Error(`could not spawn ${args.join(" ")}`);
  }
  let out = "";
  let err = "";
  const listeners = new Set<() => void>();
  child.stdout?.on("data", (chunk: Buffer) => {
    out += chunk.toString("utf8");
    for (const l of listeners) {
      l();
    }
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    err += chunk.toString("utf8");
    for (const l of listeners) {
      l();
    }
  });
  const exited = new Promise<Exit>((resolve) => {
    child.once("close", (code, signal) => resolve({ code, signal }));
  });
  const proc: Proc = {
    child,
    pid: child.pid,
    output: () => out + err,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitForOutput(pattern, timeoutMs = READY_TIMEOUT_MS) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (pattern.test(out + err)) {
            done();
            resolve();
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(
            new Error(`no output matching ${pattern} within ${timeoutMs} ms:\n${(out + err).slice(-3000)}`),
          );
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        exited.then((exit) => {
          done();
          reject(
            new Error(`exited (${JSON.stringify(exit)}) before ${pattern}:\n${(out + err).slice(-3000)}`),
          );
        });
        check();
      });
    },
  };
  running.add(proc);
  exited.then(() => running.delete(proc));
  return proc;
}

export function startServer(env: Record<string, string>): Proc {
  return spawnNode(["src/main.ts"], env);
}

export function cli(args: string[], env: Record<string, string>): Proc {
  return spawnNode(["src/cli/main.ts", ...args], env);
}

export async function waitForExit(proc: Proc): Promise<Exit> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`still running after ${EXIT_TIMEOUT_MS} ms:\n${proc.output().slice(-3000)}`)),
      EXIT_TIMEOUT_MS,
    );
  });
  try {
    return await Promise.race([proc.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** SIGTERM to the server alone (not its group), as an orchestrator sends it; then its exit. */
export async function stop(proc: Proc): Promise<Exit> {
  process.kill(proc.pid, "SIGTERM");
  return waitForExit(proc);
}

/** Polls /readyz until 200; returns the milliseconds from `since`. Fails fast if the process dies. */
export async function waitReady(proc: Proc, port: number, since: number): Promise<number> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let exit: Exit | undefined;
  proc.exited.then((e) => {
    exit = e;
  });
  while (Date.now() < deadline) {
    if (exit !== undefined) {
      throw new Error(`exited ${JSON.stringify(exit)} before ready:\n${proc.output().slice(-3000)}`);
    }
    try {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(2000) });
      await res.body?.cancel();
      if (res.status === 200) {
        return performance.now() - since;
      }
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`/readyz not 200 within ${READY_TIMEOUT_MS} ms:\n${proc.output().slice(-3000)}`);
}

export async function api(
  port: number,
  method: string,
  path: string,
  key: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown>; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: {
      Authorization: `Bearer ${key}`,
      ...(body === undefined ? {} : { "Content-Type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text === "" ? {} : (JSON.parse(text) as Record<string, unknown>), text };
}
