import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { CatalogFileSchema } from "../src/domain/catalog/catalog.schema.ts";
import { planContentHash } from "../src/domain/catalog/catalog.service.ts";
import { CatalogError, loadCatalogFile, parseCatalog } from "../src/infra/catalog-file.ts";
import { ROOT } from "./process.ts";

const FILE = "/etc/orgplane/orgplane.yaml";

/** A small valid catalog; tests break one thing in it at a time. */
const VALID = `rate_limit_categories:
  - key: search
  - key: upload
meters:
  - key: upload_mb
    unit: mb
credit_costs:
  upload_mb: "1"
plans:
  - key: free
    name: Free
    tier: free
    price: null
    monthly_credits: "1000"
    rate_limits: { search: 10, upload: 5 }
    quotas: { api_keys: 2, storage_bytes: 1073741824 }
  - key: pro
    name: Pro
    tier: pro
    price: { amount_minor: 4900, currency: usd, interval: month }
    trial_days: 14
    monthly_credits: "100000.5"
    rate_limits: { search: 100 }
    quotas: { api_keys: null }
    features: { sso: true }
    visibility: private
    stripe_price_id: price_1Pro
default_plan: free
fallback_plan: free
`;

/** The one-line error the catalog raises for `source`. */
function errorFor(source: string): string {
  try {
    parseCatalog(source, FILE);
  } catch (err) {
    expect(err).toBeInstanceOf(CatalogError);
    return (err as Error).message;
  }
  throw new Error("the catalog was accepted");
}

const tempDirs: string[] = [];
afterAll(async () => {
  for (const dir of tempDirs) {
    await rm(dir, { recursive: true, force: true });
  }
});

describe("orgplane.yaml", () => {
  it("reads a valid file into the catalog, with defaults for what it leaves out", () => {
    const catalog = parseCatalog(VALID, FILE);
    expect(catalog.categories.map((c) => c.key)).toEqual(["search", "upload"]);
    expect(catalog.creditCosts).toEqual({ upload_mb: "1" });
    expect(catalog.plans[0]).toEqual({
      key: "free",
      name: "Free",
      tier: "free",
      price: null,
      trialDays: 0,
      monthlyCredits: "1000",
      rateLimits: { search: 10, upload: 5 },
      quotas: { api_keys: 2, storage_bytes: 1073741824 },
      features: {},
      visibility: "public",
      stripePriceId: null,
    });
    expect(catalog.plans[1]).toMatchObject({
      price: { amountMinor: 4900, currency: "usd", interval: "month" },
      trialDays: 14,
      monthlyCredits: "100000.5",
      quotas: { api_keys: null },
      visibility: "private",
      stripePriceId: "price_1Pro",
    });
    expect(catalog).toMatchObject({
      defaultPlan: "free",
      fallbackPlan: "free",
      preset: null,
      keyPrefix: null,
    });
  });

  it("names the file, line and column of a value of the wrong kind", () => {
    const source = VALID.replace('monthly_credits: "100000.5"', "monthly_credits: 100000.5");
    expect(errorFor(source)).toBe(
      `invalid catalog ${FILE}:22:22: plans[1].monthly_credits must be a decimal string`,
    );
  });

  it("points at the mapping a required field is missing from", () => {
    const source = VALID.replace("    name: Pro\n", "");
    expect(errorFor(source)).toBe(`invalid catalog ${FILE}:17:5: plans[1].name is required`);
  });

  it("reports YAML syntax errors with their position", () => {
    expect(errorFor(`${VALID}plans: [\n`)).toMatch(new RegExp(`^invalid catalog ${FILE}:\\d+:\\d+: `));
    expect(errorFor(VALID.replace("  - key: search\n", "  - key: search\n   bad: indent\n"))).toMatch(
      /^invalid catalog \/etc\/orgplane\/orgplane\.yaml:3:\d+: /,
    );
  });

  it("refuses a duplicated YAML key", () => {
    expect(
      errorFor(VALID.replace("default_plan: free\n", "default_plan: free\ndefault_plan: pro\n")),
    ).toMatch(/^invalid catalog \/etc\/orgplane\/orgplane\.yaml:\d+:\d+: .*unique/i);
  });

  it("refuses fields it does not know, so a typo is never silently ignored", () => {
    expect(errorFor(VALID.replace("    trial_days: 14\n", "    trail_days: 14\n"))).toMatch(
      /^invalid catalog \/etc\/orgplane\/orgplane\.yaml:17:5: plans\[1\] Unrecognized key: "trail_days"$/,
    );
  });

  it("checks that a plan's rate limits name declared categories", () => {
    expect(errorFor(VALID.replace("rate_limits: { search: 100 }", "rate_limits: { serch: 100 }"))).toBe(
      `invalid catalog ${FILE}:23:27: plans[1].rate_limits.serch names no rate-limit category 'serch'`,
    );
  });

  it("checks that the default and fallback plans are plans of the file", () => {
    expect(errorFor(VALID.replace("default_plan: free", "default_plan: gold"))).toBe(
      `invalid catalog ${FILE}:28:15: default_plan names no plan 'gold'`,
    );
    expect(errorFor(VALID.replace("fallback_plan: free", "fallback_plan: gold"))).toBe(
      `invalid catalog ${FILE}:29:16: fallback_plan names no plan 'gold'`,
    );
  });

  it("refuses a plan key used twice", () => {
    expect(errorFor(VALID.replace("  - key: pro\n", "  - key: free\n"))).toBe(
      `invalid catalog ${FILE}:17:10: plans[1].key 'free' is used twice`,
    );
  });

  it("checks that credit costs name declared meters", () => {
    expect(errorFor(VALID.replace('  upload_mb: "1"', '  upload_gb: "1"'))).toBe(
      `invalid catalog ${FILE}:8:14: credit_costs.upload_gb names no meter 'upload_gb'`,
    );
  });

  it("bounds values: negative quotas, a rate limit of zero, a bad interval", () => {
    expect(errorFor(VALID.replace("api_keys: 2,", "api_keys: -1,"))).toMatch(
      /plans\[0\]\.quotas\.api_keys must be 0 or more$/,
    );
    expect(errorFor(VALID.replace("search: 10,", "search: 0,"))).toMatch(
      /plans\[0\]\.rate_limits\.search must be at least 1 request per minute$/,
    );
    expect(errorFor(VALID.replace("interval: month", "interval: week"))).toMatch(
      /:20:59: plans\[1\]\.price\.interval must be month or year$/,
    );
  });

  it("names the file when it cannot be read", async () => {
    await expect(loadCatalogFile("/nonexistent/orgplane.yaml")).rejects.toThrow(
      "cannot read catalog /nonexistent/orgplane.yaml: ENOENT",
    );
  });

  it("loads a file from disk with its path in errors", async () => {
    const dir = await mkdtemp(join(tmpdir(), "orgplane-catalog-"));
    tempDirs.push(dir);
    const path = join(dir, "orgplane.yaml");
    await writeFile(path, VALID);
    expect((await loadCatalogFile(path)).plans).toHaveLength(2);
    await writeFile(path, VALID.replace('monthly_credits: "1000"', "monthly_credits: 1000"));
    await expect(loadCatalogFile(path)).rejects.toThrow(
      `invalid catalog ${path}:14:22: plans[0].monthly_credits must be a decimal string`,
    );
  });
});

describe("plan content hash", () => {
  it("is the same for the same plan written in another key order, and differs for any edit", () => {
    const [free] = parseCatalog(VALID, FILE).plans;
    if (free === undefined) {
      throw new Error("no plan");
    }
    const reordered = Object.fromEntries(Object.entries(free).reverse()) as typeof free;
    expect(planContentHash(reordered)).toBe(planContentHash(free));
    expect(planContentHash({ ...free, quotas: { ...free.quotas, api_keys: 3 } })).not.toBe(
      planContentHash(free),
    );
  });
});

describe("the editor JSON Schema", () => {
  it("is the one committed at schemas/orgplane.schema.json (npm run catalog-schema:generate)", async () => {
    const committed = JSON.parse(await readFile(join(ROOT, "schemas/orgplane.schema.json"), "utf8")) as {
      properties: Record<string, unknown>;
    };
    const generated = z.toJSONSchema(CatalogFileSchema, { io: "input", target: "draft-2020-12" });
    expect(committed.properties).toEqual(generated.properties);
  });
});
