import type { PresetName } from "../src/infra/catalog-file.ts";

/**
 * Each preset's usage view (GET /v1/organizations/{org_id}/usage → `summary`): the fields of its reference
 * platform's usage page, in order.
 */
export const SUMMARY_FIELDS: Record<PresetName, string[]> = {
  // GET /v1/organizations/billing/usage/current and …/usage/breakdown (docs/presets/multimodal-search.md).
  "multimodal-search": [
    "current_month_usage",
    "estimated_cost_usd",
    "billing_period_start",
    "billing_period_end",
    "by_operation",
  ],
  // The reference's OrgUsage.
  "llm-router": [
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "prompt_tokens_cost",
    "completion_tokens_cost",
    "total_tokens_cost",
    "prompt_tokens_cost_savings",
    "completion_tokens_cost_savings",
    "total_tokens_cost_savings",
    "num_requests",
    "num_apps",
  ],
  // The reference's GET /v1/organizations/{orgID}/usage `usage` object.
  "managed-postgres": ["totals", "projects", "storage_history"],
  // The reference's ExtendedOrganizationUsageCount.
  "rag-search": [
    "search_tokens",
    "message_tokens",
    "dataset_count",
    "user_count",
    "file_storage",
    "message_count",
    "search_count",
    "chunk_count",
    "bytes_ingested",
    "tokens_ingested",
    "ocr_pages_ingested",
    "website_pages_scraped",
    "events_ingested",
    "current_months_message_count",
  ],
};
