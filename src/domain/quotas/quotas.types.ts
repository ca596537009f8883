/** One quota of an organization's plan: its limit (null = unlimited), what is in use, and where the limit comes from. */
export type QuotaStatus = {
  quota: string;
  limit: number | null;
  current: number;
  source: "plan";
};

/** The answer to "may this organization add `delta` more?" — data, not an exception, on the usage hot path. */
export type QuotaDecision =
  | { allowed: true; quota: string; limit: number | null; current: number }
  | { allowed: false; quota: string; limit: number; current: number };
