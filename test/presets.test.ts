import { readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { DEFAULT_PRESET, loadPreset, PRESETS, type PresetName } from "../src/infra/catalog-file.ts";
import { createFreshDatabase, reachableTempDir } from "./fresh.ts";
import { createTestContext, expectStatus } from "./harness.ts";
import { SUMMARY_FIELDS } from "./presets.ts";
import { api, killRunning, spawnNode, stop, waitForExit, waitReady } from "./process.ts";
import { freePort } from "./util.ts";

/** What each preset promises about its platform's organization model. */
const EXPECTED: Record<
  PresetName,
  { plans: string[]; categories: string[]; quotas: string[]; meters: string[] }
> = {
  "multimodal-search": {
    plans: ["free", "pro", "team", "enterprise"],
    categories: ["metadata", "data", "search", "upload", "compute"],
    quotas: ["api_keys", "namespaces", "collections", "documents"],
    meters: ["upload_mb", "video_minutes"],
  },
  "llm-router": {
    plans: ["trial", "startup", "growth", "scale", "enterprise"],
    categories: ["requests"],
    quotas: ["projects", "generated_tokens_per_month"],
    meters: ["prompt_tokens", "completion_tokens", "requests"],
  },
  "managed-postgres": {
    plans: ["vibe", "ship", "business"],
    categories: [],
    quotas: ["projects", "previews", "storage_bytes", "connections"],
    meters: ["storage_bytes", "connections", "previews", "jobs_succeeded", "jobs_failed"],
  },
  "rag-search": {
    plans: ["free", "hobby", "professional"],
    categories: [],
    quotas: ["datasets", "chunks", "file_storage_bytes", "messages_per_month", "members"],
    meters: ["search_tokens", "message_tokens", "datasets", "chunks", "file_storage_bytes"],
  },
};

const tempDirs: string[] = [];
const tempDir = (label: string) => reachableTempDir(label, tempDirs);

afterAll(async () => {
  await killRunning();
  for (const dir of tempDirs) {
    await rm(dir, { recursive: true, force: true });
  }
});

describe("the presets", () => {
  for (const name of PRESETS) {
    it(`${name}: loads, its plans sync and are listed, and the organization view shows plan, subscription and quotas`, async () => {
      const catalog = await loadPreset(name);
      const expected = EXPECTED[name];
      expect(catalog.preset).toBe(name);
      expect(catalog.categories.map((c) => c.key)).toEqual(expected.categories);
      expect(catalog.meters.map((m) => m.key)).toEqual(expect.arrayContaining(expected.meters));
      expect(
        catalog.usageView?.map((f) => f.name),
        `${name} usage view`,
      ).toEqual(SUMMARY_FIELDS[name]);
      for (const plan of catalog.plans) {
        expect(Object.keys(plan.quotas), `${name}/${plan.key} quotas`).toEqual(
          expect.arrayContaining(expected.quotas),
        );
        expect(Object.keys(plan.rateLimits).sort(), `${name}/${plan.key} has a limit per category`).toEqual(
          [...expected.categories].sort(),
        );
      }
      const t = await createTestContext({ catalog });
      try {
        const { org, key } = await t.createOrgWithKey();
        const res = await t.request<{ data: { key: string; version: number }[] }>("GET", "/v1/plans", {
          key,
        });
        expectStatus(res, 200);
        expect(res.body.data.map((p) => p.key)).toEqual(expected.plans);
        expect(res.body.data.every((p) => p.version === 1)).toBe(true);
        expect((await t.services.catalog.defaultPlan()).key).toBe(catalog.defaultPlan);

        // What the preset's docs page maps to the organization view: the plan's tier, the subscription, each quota.
        const view = await t.request<{
          plan: { key: string; tier: string };
          subscription: { status: string; current_period_end: string };
          quotas: { quota: string; limit: number | null }[];
        }>("GET", `/v1/organizations/${org.id}`, { key });
        expectStatus(view, 200);
        const plan = catalog.plans.find((p) => p.key === catalog.defaultPlan);
        expect(view.body.plan).toMatchObject({ key: catalog.defaultPlan, tier: plan?.tier });
        expect(view.body.subscription).toMatchObject({
          status: expect.any(String),
          current_period_end: expect.any(String),
        });
        expect(view.body.quotas.map((q) => q.quota)).toEqual(expect.arrayContaining(expected.quotas));

        // The usage view: the reference's usage fields, as `summary`.
        const usage = await t.request<{ summary: Record<string, unknown> }>(
          "GET",
          `/v1/organizations/${org.id}/usage`,
          { key },
        );
        expectStatus(usage, 200);
        expect(Object.keys(usage.body.summary)).toEqual(SUMMARY_FIELDS[name]);
      } finally {
        await t.close();
      }
    });
  }

  it("multimodal-search grants 1,000 / 100,000 / 1,000,000 / custom monthly credits", async () => {
    const catalog = await loadPreset("multimodal-search");
    expect(catalog.plans.map((p) => p.monthlyCredits)).toEqual(["1000", "100000", "1000000", null]);
  });

  it("llm-router limits every plan to 200 requests per minute", async () => {
    const catalog = await loadPreset("llm-router");
    expect(catalog.plans.map((p) => p.rateLimits.requests)).toEqual([200, 200, 200, 200, 200]);
  });
});

describe("start-up with a preset or a catalog file", () => {
  // A pool, not one client: the servers below start concurrently, each on a database of its own.
  let admin: pg.Pool;
  const databases: string[] = [];

  beforeAll(() => {
    admin = new pg.Pool({ connectionString: inject("adminDatabaseUrl"), max: 2 });
  });
  afterAll(async () => {
    for (const name of databases) {
      await admin.query(`drop database if exists ${name} with (force)`);
    }
    await admin.end();
  });

  async function freshDatabase(): Promise<string> {
    const { name, url } = await createFreshDatabase(admin, "preset");
    databases.push(name);
    return url;
  }

  /** Boot a real server, read the plans with the operator key it wrote, stop it. */
  async function bootAndListPlans(args: string[], env: Record<string, string>): Promise<string[]> {
    const dir = await tempDir("preset");
    const port = await freePort();
    const server = spawnNode(args, {
      DATABASE_URL: await freshDatabase(),
      ORGPLANE_DATA_DIR: dir,
      PORT: String(port),
      ...env,
    });
    await waitReady(server, port, performance.now());
    const key = (await readFile(join(dir, "operator-key"), "utf8")).trim();
    const plans = await api(port, "GET", "/v1/plans", key);
    expect(plans.status, plans.text).toBe(200);
    expect(await stop(server), server.output().slice(-2000)).toEqual({ code: 0, signal: null });
    return (plans.body.data as { key: string }[]).map((p) => p.key);
  }

  describe.concurrent("node src/main.ts with ORGPLANE_PRESET", () => {
    for (const name of PRESETS) {
      it(`boots ${name} to /readyz on a fresh database and serves its plans`, async () => {
        const listed = await bootAndListPlans(["src/main.ts"], { ORGPLANE_PRESET: name });
        expect(listed).toEqual(expect.arrayContaining(EXPECTED[name].plans));
      }, 120_000);
    }
  });

  it(`serves ${DEFAULT_PRESET} when nothing is chosen, and 'orgplane serve --preset' picks another`, async () => {
    expect(await bootAndListPlans(["src/main.ts"], {})).toEqual(EXPECTED[DEFAULT_PRESET].plans);
    expect(await bootAndListPlans(["src/cli/main.ts", "serve", "--preset", "managed-postgres"], {})).toEqual(
      EXPECTED["managed-postgres"].plans,
    );
  }, 120_000);

  it("serves the plans of an orgplane.yaml named by ORGPLANE_CONFIG", async () => {
    const dir = await tempDir("config");
    const file = join(dir, "orgplane.yaml");
    await writeFile(
      file,
      "plans:\n  - { key: solo, name: Solo, tier: solo, price: null, monthly_credits: '5' }\ndefault_plan: solo\nfallback_plan: solo\n",
    );
    expect(await bootAndListPlans(["src/main.ts"], { ORGPLANE_CONFIG: file })).toEqual(["solo"]);
  }, 120_000);

  it("stops start-up with one line naming the file, line, column and mistake, and status 1", async () => {
    const dir = await tempDir("bad");
    const file = join(dir, "orgplane.yaml");
    await writeFile(
      file,
      "plans:\n  - key: free\n    name: Free\n    tier: free\n    price: null\n    monthly_credits: 1000\ndefault_plan: free\nfallback_plan: free\n",
    );
    for (const args of [["src/main.ts"], ["src/cli/main.ts", "serve"]]) {
      const proc = spawnNode(args, { ORGPLANE_CONFIG: file, ORGPLANE_DATA_DIR: join(dir, "never-created") });
      expect(await waitForExit(proc), proc.output()).toEqual({ code: 1, signal: null });
      expect(proc.stderr()).toBe(
        `orgplane: invalid catalog ${file}:6:22: plans[0].monthly_credits must be a decimal string\n`,
      );
      expect(proc.stdout(), "nothing else is printed").toBe("");
    }
  }, 60_000);

  it("refuses an unknown preset, and a preset together with a file, in one line", async () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ ORGPLANE_PRESET: "crm" }, /^orgplane: invalid configuration: ORGPLANE_PRESET must be one of /],
      [
        { ORGPLANE_PRESET: "llm-router", ORGPLANE_CONFIG: "/etc/orgplane.yaml" },
        /^orgplane: invalid configuration: ORGPLANE_PRESET cannot be set together with ORGPLANE_CONFIG/,
      ],
    ];
    for (const [env, message] of cases) {
      const proc = spawnNode(["src/main.ts"], {
        ORGPLANE_DATA_DIR: join(tmpdir(), "orgplane-never-created"),
        ...env,
      });
      expect(await waitForExit(proc), proc.output()).toEqual({ code: 1, signal: null });
      const lines = proc.stderr().trimEnd().split("\n");
      expect(lines, proc.stderr()).toHaveLength(1);
      expect(lines[0]).toMatch(message);
    }
  }, 60_000);
});
