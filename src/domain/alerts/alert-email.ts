import type { JsonObject } from "../../lib/json.ts";
import { formatDecimal } from "../spending-limits/exact.ts";
import { type Alert, usageThreshold } from "./alerts.types.ts";

export type AlertEmail = { subject: string; text: string };

function field(details: JsonObject, key: string): string | undefined {
  const value = details[key];
  if (typeof value === "string") {
    return value;
  }
  return typeof value === "number" ? String(value) : undefined;
}

/** A decimal figure of the details, formatted for reading (`1,000`); `?` when absent or malformed. */
function figure(details: JsonObject, key: string): string {
  const value = field(details, key);
  if (value === undefined) {
    return "?";
  }
  try {
    return formatDecimal(value);
  } catch {
    return value;
  }
}

function day(date: Date): string {
  return date.toISOString().slice(0, 10);
}

const BASE_PHRASE: Record<string, string> = {
  allocation: "this period's credit allocation",
  hard_limit: "your hard spending limit",
  soft_limit: "your soft spending limit",
};

/**
 * Subject and plain-text body of an alert's email: the organization (name and id), the figure, the period,
 * and what to do about it. Pure, so tests read exactly what recipients get.
 */
export function alertEmail(
  alert: Alert,
  org: { name: string; displayName: string | null },
  publicUrl: string,
): AlertEmail {
  const name = org.displayName ?? org.name;
  const label = `${name} (${alert.orgId})`;
  const d = alert.details;
  const limitsRoute = `PUT ${publicUrl}/v1/organizations/${alert.orgId}/spending-limits`;
  const portalRoute = `POST ${publicUrl}/v1/organizations/${alert.orgId}/billing/portal-session`;
  const docs = `${publicUrl}/docs`;
  const period = `the billing period that started on ${day(alert.periodStart)} (UTC)`;
  const threshold = usageThreshold(alert.type);

  let subject: string;
  let lines: string[];
  if (threshold !== undefined) {
    const base = BASE_PHRASE[field(d, "base_kind") ?? ""] ?? "this period's credit allocation";
    subject = `${name}: ${threshold}% of ${base} used`;
    lines = [
      `${label} has used ${field(d, "percent") ?? threshold}% (${figure(d, "used")} of ${figure(d, "base")} credits) of ${base} in ${period}.`,
      `This alert is sent once per period when usage reaches ${threshold}%.`,
      "",
      "What to do: buy more credits or move to a larger plan in the billing portal",
      `(${portalRoute}), or change the spending limits and alert thresholds (${limitsRoute}).`,
    ];
  } else {
    switch (alert.type) {
      case "soft_limit":
        subject = `${name}: soft spending limit reached`;
        lines = [
          `${label} has used ${figure(d, "used")} credits in ${period}, reaching its soft spending limit of ${figure(d, "limit")} credits.`,
          "Nothing is blocked: the soft limit only warns.",
          "",
          `What to do: check what is using credits, or raise the limit (${limitsRoute}).`,
        ];
        break;
      case "hard_limit": {
        const blocks = field(d, "action") !== "alert";
        subject = blocks
          ? `${name}: hard spending limit reached — billable requests are refused`
          : `${name}: hard spending limit reached`;
        lines = [
          `${label} has used ${figure(d, "used")} credits in ${period}, reaching its hard spending limit of ${figure(d, "limit")} credits.`,
          blocks
            ? "Billable requests are now refused (authorize answers spending_limit_reached) until the next period starts or the limit is raised."
            : "Requests are not blocked: the hard-limit action is 'alert'.",
          "",
          `What to do: raise or remove the hard limit (${limitsRoute}) to resume now.`,
        ];
        break;
      }
      case "credits_low":
        subject = `${name}: credit balance is low`;
        lines = [
          `${label} has ${figure(d, "balance")} credits left, below ${field(d, "percent") ?? "10"}% of this period's allocation of ${figure(d, "allocation")} credits (${period}).`,
          "",
          `What to do: buy credits or move to a larger plan in the billing portal (${portalRoute}).`,
        ];
        break;
      case "payment_failed":
        subject = `${name}: a payment failed`;
        lines = [
          `A payment for the subscription of ${label} failed in ${period}; the subscription is now past due.`,
          "",
          `What to do: update the payment method in the billing portal (${portalRoute}); the next attempt uses it.`,
        ];
        break;
      case "usage_reset":
        subject = `${name}: a new billing period has started`;
        lines = [
          `A new billing period started for ${label} on ${day(alert.periodStart)} (UTC): usage is back to zero${field(d, "allocation") === undefined ? "" : ` and ${figure(d, "allocation")} credits are granted`}.`,
          "Alerts of the new period will be sent again as usage grows.",
          "",
          "Nothing to do.",
        ];
        break;
      case "trial_ending":
        subject = `${name}: the trial is ending`;
        lines = [
          `The trial of ${label} ends on ${field(d, "trial_end") ?? "?"}.`,
          "",
          `What to do: add a payment method in the billing portal (${portalRoute}) to keep the plan.`,
        ];
        break;
      default: {
        // quota_80 / quota_95
        const quota = field(d, "quota") ?? "a quota";
        subject = `${name}: ${alert.type === "quota_95" ? "95" : "80"}% of the ${quota} quota used`;
        lines = [
          `${label} uses ${figure(d, "current")} of its ${figure(d, "limit")} ${quota} (${period}).`,
          "",
          "What to do: remove what is no longer needed, or move to a larger plan in the billing portal",
          `(${portalRoute}).`,
        ];
      }
    }
  }
  const text = [
    ...lines,
    "",
    `API documentation: ${docs}`,
    `Alert ${alert.id} (${alert.type}) for ${period}.`,
    "",
  ].join("\n");
  return { subject, text };
}
