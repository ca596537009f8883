import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { missingRuntimeFlags, RUNTIME_FLAGS } from "../src/runtime-flags.ts";
import { killRunning, ROOT, spawnNode, waitForExit } from "./process.ts";

/*
 * The server runs with RUNTIME_FLAGS however an operator starts it the documented ways: the npm scripts and
 * the `orgplane` bin (docs/adr/0008-no-memory-reducer.md).
 */
describe("runtime flags", () => {
  it("the npm scripts that start the server pass every flag to node", async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as {
      scripts: Record<string, string>;
    };
    for (const name of ["start", "dev", "orgplane"]) {
      const words = (pkg.scripts[name] ?? "").split(" ");
      expect(words[0], name).toBe("node");
      expect(missingRuntimeFlags(words.slice(1)), name).toEqual([]);
    }
  });

  it("the orgplane bin's shebang passes every flag to node", async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as {
      bin: Record<string, string>;
    };
    const bin = await readFile(join(ROOT, pkg.bin.orgplane ?? ""), "utf8");
    const shebang = bin.split("\n")[0] ?? "";
    expect(shebang.startsWith("#!/usr/bin/env -S node ")).toBe(true);
    expect(missingRuntimeFlags(shebang.split(" ").slice(2))).toEqual([]);
  });

  it("names the flags a command line lacks", () => {
    expect(missingRuntimeFlags(["--no-memory-reducer", "--trace-gc"])).toEqual([]);
    expect(missingRuntimeFlags(["--trace-gc"])).toEqual([...RUNTIME_FLAGS]);
  });

  it("a server started with them warns of nothing; one started without names what it lacks", async () => {
    // A database that refuses: both stop right after the point where the warning is logged.
    const env = { DATABASE_URL: "postgres://127.0.0.1:1/none", LOG_LEVEL: "info" };
    const [withFlags, without] = [
      spawnNode(["src/main.ts"], env),
      spawnNode(["src/main.ts"], env, { runtimeFlags: false }),
    ];
    try {
      expect((await waitForExit(withFlags)).code).toBe(1);
      expect((await waitForExit(without)).code).toBe(1);
    } finally {
      await killRunning();
    }
    expect(withFlags.output()).toContain("Orgplane failed to start");
    expect(withFlags.output()).not.toContain("missing_node_flags");
    const warning = without
      .stdout()
      .split("\n")
      .find((line) => line.includes("missing_node_flags"));
    expect(warning).toBeDefined();
    expect(JSON.parse(warning ?? "{}")).toMatchObject({ level: 40, missing_node_flags: [...RUNTIME_FLAGS] });
  });
});
