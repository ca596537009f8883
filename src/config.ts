import { resolve } from "node:path";
import { z } from "zod";
import { DEFAULT_PRESET, PRESETS, type PresetName } from "./infra/catalog-file.ts";
import { parseSecretKeys, type SecretKey, SecretKeyError } from "./infra/secret-box.ts";
import type { StripeConfig } from "./infra/stripe.ts";
import { KEY_PREFIX_PATTERN } from "./lib/api-key-format.ts";

const bool = z.enum(["true", "false", "1", "0"]).transform((v) => v === "true" || v === "1");
const PORT_MESSAGE = "must be a port number from 1 to 65535";
const port = z.coerce
  .number({ error: PORT_MESSAGE })
  .int({ error: PORT_MESSAGE })
  .min(1, { error: PORT_MESSAGE })
  .max(65535, { error: PORT_MESSAGE });

const EnvSchema = z
  .object({
    PORT: port.default(8080),
    HOST: z.string().min(1).max(255).default("0.0.0.0"),
    DATABASE_URL: z
      .string()
      .regex(/^postgres(ql)?:\/\//, "must be a postgres:// or postgresql:// URL")
      .optional(),
    DATABASE_POOL_MAX: z.coerce.number().int().min(1).max(500).default(20),
    ORGPLANE_DATA_DIR: z.string().min(1).default(".orgplane"),
    EMBEDDED_PG_PORT: port.default(54329),
    KEY_PREFIX: z
      .string()
      .regex(KEY_PREFIX_PATTERN, "must be 1–16 lower-case letters or digits")
      .default("sk"),
    OPERATOR_KEY_PREFIX: z
      .string()
      .regex(KEY_PREFIX_PATTERN, "must be 1–16 lower-case letters or digits")
      .default("op"),
    LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
    TRUST_PROXY: bool.default(false),
    OIDC_JWKS_URL: z.url({ protocol: /^https?$/ }).optional(),
    OIDC_ISSUER: z.string().min(1).max(2048).optional(),
    OIDC_AUDIENCE: z.string().min(1).max(2048).optional(),
    OIDC_ORG_CLAIM: z.string().min(1).max(128).default("org_id"),
    SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).max(600_000).default(10_000),
    SMTP_URL: z
      .url({ protocol: /^smtps?$/, error: "must be an smtp:// or smtps:// URL" })
      .max(2048)
      .optional(),
    MAIL_FROM: z.string().trim().min(3).max(320).default("Orgplane <no-reply@localhost>"),
    PUBLIC_URL: z
      .url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" })
      .max(2048)
      .optional(),
    STRIPE_SECRET_KEY: z.string().trim().min(1).max(255).optional(),
    STRIPE_WEBHOOK_SECRET: z.string().trim().min(1).max(255).optional(),
    STRIPE_API_BASE: z
      .url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" })
      .max(2048)
      .optional(),
    ORGPLANE_CONFIG: z.string().trim().min(1).max(4096).optional(),
    ORGPLANE_PRESET: z.enum(PRESETS, { error: `must be one of ${PRESETS.join(", ")}` }).optional(),
    REDIS_URL: z
      .url({ protocol: /^rediss?$/, error: "must be a redis:// or rediss:// URL" })
      .max(2048)
      .optional(),
    USAGE_LATE_WINDOW_HOURS: z.coerce
      .number({ error: "must be a whole number of hours" })
      .int({ error: "must be a whole number of hours" })
      .min(1, { error: "must be at least 1 hour" })
      .max(840, { error: "must be at most 840 hours (35 days, the dedup window)" })
      .default(168),
    USAGE_RETENTION_MONTHS: z.coerce
      .number({ error: "must be a whole number of months" })
      .int({ error: "must be a whole number of months" })
      .min(2, { error: "must be at least 2 months" })
      .max(120, { error: "must be at most 120 months" })
      .default(13),
    WEBHOOK_ALLOW_PRIVATE: bool.default(false),
    ORGPLANE_SECRET_KEY: z
      .string()
      .max(16_384)
      .transform((text, ctx) => {
        try {
          return parseSecretKeys(text);
        } catch (err) {
          // The parser's messages name positions and problems, never the key.
          ctx.addIssue({
            code: "custom",
            message: err instanceof SecretKeyError ? err.message : "is invalid",
          });
          return z.NEVER;
        }
      })
      .optional(),
    INTEGRATIONS_ALLOW_PRIVATE: bool.default(false),
    METRICS_PUSH_INTERVAL_SECONDS: z.coerce
      .number({ error: "must be a whole number of seconds" })
      .int({ error: "must be a whole number of seconds" })
      .min(1, { error: "must be at least 1 second" })
      .max(3600, { error: "must be at most 3600 seconds" })
      .default(15),
    LOKI_ALLOWED_SAMPLE_RATE: z.coerce
      .number({ error: "must be a number from 0 to 1" })
      .min(0, { error: "must be a number from 0 to 1" })
      .max(1, { error: "must be a number from 0 to 1" })
      .default(0),
    LOKI_BUFFER_LINES: z.coerce
      .number({ error: "must be a whole number of lines" })
      .int({ error: "must be a whole number of lines" })
      .min(1, { error: "must be at least 1 line" })
      .max(1_000_000, { error: "must be at most 1000000 lines" })
      .default(10_000),
    RATE_LIMIT_FAILURE_MODE: z
      .enum(["open", "closed"], { error: "must be open or closed" })
      .default("closed"),
  })
  .refine((e) => e.ORGPLANE_CONFIG === undefined || e.ORGPLANE_PRESET === undefined, {
    path: ["ORGPLANE_PRESET"],
    message: "cannot be set together with ORGPLANE_CONFIG (the file is the whole catalog)",
  })
  .refine((e) => e.OIDC_JWKS_URL === undefined || e.OIDC_ISSUER !== undefined, {
    path: ["OIDC_ISSUER"],
    message: "is required when OIDC_JWKS_URL is set",
  })
  .refine((e) => e.OIDC_JWKS_URL === undefined || e.OIDC_AUDIENCE !== undefined, {
    path: ["OIDC_AUDIENCE"],
    message: "is required when OIDC_JWKS_URL is set",
  })
  .refine((e) => e.KEY_PREFIX !== e.OPERATOR_KEY_PREFIX, {
    path: ["OPERATOR_KEY_PREFIX"],
    message: "must differ from KEY_PREFIX",
  });

export type Config = {
  port: number;
  host: string;
  databaseUrl: string | undefined;
  databasePoolMax: number;
  dataDir: string;
  embeddedPgPort: number;
  keyPrefix: string;
  operatorKeyPrefix: string;
  logLevel: z.infer<typeof EnvSchema>["LOG_LEVEL"];
  trustProxy: boolean;
  shutdownTimeoutMs: number;
  /** Outgoing email; undefined: messages stay in the outbox table and the log. May hold a password. */
  smtpUrl: string | undefined;
  mailFrom: string;
  /** Where links in emails point, without a trailing slash. */
  publicUrl: string;
  /** Member sign-in; undefined when OIDC_JWKS_URL is unset. */
  oidc: { jwksUrl: string; issuer: string; audience: string; orgClaim: string } | undefined;
  /** Stripe: both secrets are optional; without them the billing routes answer 409. */
  stripe: StripeConfig;
  /** The catalog: ORGPLANE_CONFIG (an orgplane.yaml, absolute path) or a preset; the default preset when neither. */
  catalog: { configFile: string | undefined; preset: PresetName };
  /** Shared rate limits across processes; undefined: limits are counted in this process's memory. May hold a password. */
  redisUrl: string | undefined;
  /** What a rate-limit decision answers while Redis is unreachable: refuse (closed) or allow (open). */
  rateLimitFailureMode: "open" | "closed";
  /** USAGE_LATE_WINDOW_HOURS, USAGE_RETENTION_MONTHS. */
  usage: { lateWindowHours: number; retentionMonths: number };
  /**
   * WEBHOOK_ALLOW_PRIVATE: webhook endpoints may be http:// and private, loopback or link-local addresses
   * (a self-hosted install delivering inside its own network). Off by default: https and public addresses only.
   */
  webhooks: { allowPrivate: boolean };
  /**
   * ORGPLANE_SECRET_KEY: the keys sealing stored secrets (integration tokens), the first sealing, all
   * opening. Key material: never logged. Undefined: the key file under the data directory (generated on
   * first start; src/infra/secret-box.ts).
   */
  secretKeys: SecretKey[] | undefined;
  /**
   * Per-organization observability export (docs/integrations.md). `allowPrivate` (INTEGRATIONS_ALLOW_PRIVATE)
   * lets integration endpoints be http:// and private or loopback addresses, as WEBHOOK_ALLOW_PRIVATE does for
   * webhooks. `metricsPushIntervalSeconds`: how often each org's series are remote-written;
   * `lokiAllowedSampleRate`: the share of allowed authorize decisions sent to Loki (denials always are);
   * `lokiBufferLines`: lines kept per organization while its Loki cannot be reached (the oldest are dropped).
   */
  integrations: {
    allowPrivate: boolean;
    metricsPushIntervalSeconds: number;
    lokiAllowedSampleRate: number;
    lokiBufferLines: number;
  };
};

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** The only reader of process.env. An empty variable counts as unset. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const parsed = EnvSchema.safeParse(present);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const name = String(issue?.path[0] ?? "configuration");
    const given = present[name];
    const shown =
      given === undefined ||
      name === "DATABASE_URL" ||
      name === "SMTP_URL" ||
      name === "REDIS_URL" ||
      name === "ORGPLANE_SECRET_KEY" ||
      name.startsWith("STRIPE_")
        ? ""
        : ` (got ${JSON.stringify(given.slice(0, 64))})`;
    throw new ConfigError(`invalid configuration: ${name} ${issue?.message ?? "is invalid"}${shown}`);
  }
  const e = parsed.data;
  return {
    port: e.PORT,
    host: e.HOST,
    databaseUrl: e.DATABASE_URL,
    databasePoolMax: e.DATABASE_POOL_MAX,
    dataDir: resolve(e.ORGPLANE_DATA_DIR),
    embeddedPgPort: e.EMBEDDED_PG_PORT,
    keyPrefix: e.KEY_PREFIX,
    operatorKeyPrefix: e.OPERATOR_KEY_PREFIX,
    logLevel: e.LOG_LEVEL,
    trustProxy: e.TRUST_PROXY,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    smtpUrl: e.SMTP_URL,
    mailFrom: e.MAIL_FROM,
    publicUrl: (e.PUBLIC_URL ?? `http://localhost:${e.PORT}`).replace(/\/+$/, ""),
    oidc:
      e.OIDC_JWKS_URL !== undefined && e.OIDC_ISSUER !== undefined && e.OIDC_AUDIENCE !== undefined
        ? {
            jwksUrl: e.OIDC_JWKS_URL,
            issuer: e.OIDC_ISSUER,
            audience: e.OIDC_AUDIENCE,
            orgClaim: e.OIDC_ORG_CLAIM,
          }
        : undefined,
    stripe: {
      secretKey: e.STRIPE_SECRET_KEY,
      webhookSecret: e.STRIPE_WEBHOOK_SECRET,
      apiBase: e.STRIPE_API_BASE,
    },
    catalog: {
      configFile: e.ORGPLANE_CONFIG === undefined ? undefined : resolve(e.ORGPLANE_CONFIG),
      preset: e.ORGPLANE_PRESET ?? DEFAULT_PRESET,
    },
    redisUrl: e.REDIS_URL,
    rateLimitFailureMode: e.RATE_LIMIT_FAILURE_MODE,
    usage: { lateWindowHours: e.USAGE_LATE_WINDOW_HOURS, retentionMonths: e.USAGE_RETENTION_MONTHS },
    webhooks: { allowPrivate: e.WEBHOOK_ALLOW_PRIVATE },
    secretKeys: e.ORGPLANE_SECRET_KEY,
    integrations: {
      allowPrivate: e.INTEGRATIONS_ALLOW_PRIVATE,
      metricsPushIntervalSeconds: e.METRICS_PUSH_INTERVAL_SECONDS,
      lokiAllowedSampleRate: e.LOKI_ALLOWED_SAMPLE_RATE,
      lokiBufferLines: e.LOKI_BUFFER_LINES,
    },
  };
}
