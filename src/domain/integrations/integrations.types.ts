/**
 * Per-organization observability export (docs/integrations.md): an organization hands over push credentials
 * for its own Prometheus (remote-write) and Loki, and Orgplane sends it its series and log lines.
 */
export const INTEGRATION_KINDS = ["prometheus", "loki"] as const;
export type IntegrationKind = (typeof INTEGRATION_KINDS)[number];

/** id and token bounds, as the reference platform's (min 1); the bound keeps rows and headers small. */
export const MAX_CREDENTIAL_CHARS = 1024;
/** A token shorter than this shows no last four characters: four of eleven or fewer give too much away. */
export const MIN_TOKEN_CHARS_FOR_LAST4 = 12;

/** One organization's integration of one kind, its token decrypted: what the exporters send with. */
export type IntegrationConfig = {
  orgId: string;
  kind: IntegrationKind;
  /** The push URL (remote-write, or Loki's base or push URL), checked by the webhook URL rules. */
  endpoint: string;
  /** The basic-auth user (Grafana Cloud's instance id). */
  id: string;
  /** The basic-auth password. Decrypted in memory only: never logged, never answered, never in an error. */
  token: string;
  /** The token's last four characters, or null when it is too short to show any. */
  tokenLast4: string | null;
  createdAt: Date;
  updatedAt: Date;
};

/** How exporting to one integration has gone, since it was last configured. */
export type IntegrationStatus = {
  lastSuccessAt: Date | null;
  lastError: string | null;
  lastErrorAt: Date | null;
  /** Batches given up (Prometheus samples past their retries, Loki batches whose lines were dropped). */
  droppedBatches: number;
  /** Log lines dropped from a full buffer or a given-up batch (Loki). */
  droppedLines: number;
};

/** What GET shows of one integration: never the token. */
export type IntegrationView = {
  endpoint: string;
  id: string;
  tokenLast4: string | null;
  createdAt: Date;
  updatedAt: Date;
} & IntegrationStatus;

export type IntegrationsView = Record<IntegrationKind, IntegrationView | null>;

/** One integration as PUT sends it: `token` may be left out when one of that kind is already stored. */
export type IntegrationInput = { endpoint: string; id: string; token?: string };

/** Per kind: absent leaves it unchanged, null removes it. */
export type IntegrationsInput = Partial<Record<IntegrationKind, IntegrationInput | null>>;

/** What one probe (a single sample sent now) came to. `error` never holds the token. */
export type ProbeResult = {
  ok: boolean;
  /** The HTTP status the endpoint answered, or null when none came (refused, timed out, blocked). */
  status: number | null;
  error: string | null;
  latencyMs: number;
};

/**
 * Sends one sample to an integration now (the exporters implement it: Prometheus remote-write, Loki push).
 * Never throws; every failure is a result with `ok: false`.
 */
export type IntegrationProbe = (config: IntegrationConfig) => Promise<ProbeResult>;

export type IntegrationProbes = Partial<Record<IntegrationKind, IntegrationProbe>>;

/**
 * One exporter's interval for one organization: whether its last push succeeded, and what it dropped since
 * its previous report (added to the totals).
 */
export type IntegrationResult = {
  orgId: string;
  kind: IntegrationKind;
  ok: boolean;
  /** Why the push failed (null when it succeeded). Must not hold the token: see `redactCredentials`. */
  error: string | null;
  droppedBatches: number;
  droppedLines: number;
};

/**
 * Symmetric encryption of stored secrets (src/infra/secret-box.ts: AES-256-GCM under ORGPLANE_SECRET_KEY).
 * `context` is bound to the ciphertext: it opens only with the same context.
 */
export type SecretSealer = {
  /** The key id new ciphertexts are sealed under. */
  currentKeyId: string;
  /** Every key id this process can open. */
  keyIds: readonly string[];
  seal(plaintext: string, context: string): string;
  /** Throws when the ciphertext is malformed, sealed under an unknown key id, or does not authenticate. */
  open(ciphertext: string, context: string): string;
  /** The key id a ciphertext names; undefined when it is not one. */
  keyIdOf(ciphertext: string): string | undefined;
};

/** The sealing context of an integration token: a ciphertext opens only in its own row. */
export function tokenContext(orgId: string, kind: IntegrationKind): string {
  return `org_integrations:${orgId}:${kind}`;
}

export function tokenLast4(token: string): string | null {
  return token.length >= MIN_TOKEN_CHARS_FOR_LAST4 ? token.slice(-4) : null;
}

/**
 * `text` with the integration's token, and the basic-auth credential built from it, replaced: an endpoint
 * may echo the request's Authorization header in an error body, which would otherwise reach `last_error`.
 */
export function redactCredentials(text: string, config: Pick<IntegrationConfig, "id" | "token">): string {
  const basic = Buffer.from(`${config.id}:${config.token}`, "utf8").toString("base64");
  let out = text;
  for (const secret of [basic, config.token]) {
    if (secret !== "") {
      out = out.split(secret).join("[redacted]");
    }
  }
  return out;
}
