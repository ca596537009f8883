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

/** `2027-02-14 at 10:00 UTC` from an ISO time; the text itself when it is not one. */
function moment(iso: string | undefined): string {
  if (iso === undefined) {
    return "?";
  }
  const at = new Date(iso);
  return Number.isNaN(at.getTime()) ? iso : `${day(at)} at ${at.toISOString().slice(11, 16)} UTC`;
}

type Routes = { portalRoute: string; subscriptionRoute: string };

/** `trial_ending`: when the trial ends, which plan applies then, and what to do either way. */
function trialEnding(
  d: JsonObject,
  name: string,
  label: string,
  routes: Routes,
): { subject: string; lines: string[] } {
  const trialEnd = field(d, "trial_end");
  const trialPlan = `${field(d, "trial_plan_name") ?? "current"} plan (${field(d, "trial_plan") ?? "?"})`;
  const nextPlan = `${field(d, "next_plan_name") ?? "?"} plan (${field(d, "next_plan") ?? "?"})`;
  const price = field(d, "next_plan_price");
  const fallbackKey = field(d, "fallback_plan");
  const fallbackPlan = `${field(d, "fallback_plan_name") ?? "?"} plan (${fallbackKey ?? "?"})`;
  const subject = `${name}: the trial ends on ${trialEnd === undefined ? "?" : day(new Date(trialEnd))}`;
  const first = `The trial of ${label} on the ${trialPlan} ends on ${moment(trialEnd)}.`;
  if (field(d, "at_trial_end") === "fallback") {
    return {
      subject,
      lines: [
        first,
        `The subscription was cancelled, so the organization then moves to the ${nextPlan}, with that plan's limits, quotas and credits${price === undefined ? "" : ` (${price})`}.`,
        "",
        `What to do: nothing, if that is what you want. To keep the ${trialPlan} instead, resume the subscription`,
        `before the trial ends (PUT ${routes.subscriptionRoute} with {"cancel_at_period_end": false})`,
        `and add a payment method in the billing portal (${routes.portalRoute}).`,
      ],
    };
  }
  const lines = [
    first,
    `Then the ${nextPlan} continues${price === undefined ? "" : ` as a paid subscription at ${price}`}; its limits, quotas and credits stay as they are.`,
    "",
    `What to do: to keep it, add a payment method in the billing portal (${routes.portalRoute}) before the trial ends.`,
  ];
  if (fallbackKey !== undefined && fallbackKey !== field(d, "next_plan")) {
    lines.push(
      `To stop instead, cancel before the trial ends (DELETE ${routes.subscriptionRoute}): the organization then moves to the ${fallbackPlan}.`,
    );
  }
  return { subject, lines };
}

/** How a quota's count reads in a sentence. */
const QUOTA_PHRASE: Record<string, string> = {
  members: "members",
  projects: "projects",
  api_keys: "active API keys",
  invitations: "pending invitations",
};

/** `quota_80` / `quota_95`: the quota named, its use and limit, what happens at the limit, what to do. */
function quotaReached(
  type: string,
  d: JsonObject,
  name: string,
  label: string,
  period: string,
  routes: Routes & { quotasRoute: string },
): { subject: string; lines: string[] } {
  const quota = field(d, "quota") ?? "?";
  const phrase = QUOTA_PHRASE[quota] ?? quota;
  const threshold = type === "quota_95" ? 95 : 80;
  const used = Number(field(d, "used"));
  const limit = Number(field(d, "limit"));
  const percent = limit > 0 && Number.isFinite(used) ? Math.floor((used * 100) / limit) : threshold;
  const plan = field(d, "plan");
  return {
    subject: `${name}: ${percent}% of the ${quota} quota used (${figure(d, "used")} of ${figure(d, "limit")})`,
    lines: [
      `${label} now has ${figure(d, "used")} ${phrase}; its plan${plan === undefined ? "" : ` (${plan})`} allows ${figure(d, "limit")}: ${percent}% of the ${quota} quota, reached in ${period}.`,
      "At the limit, creating more is refused (403 quota_exceeded).",
      `This alert is sent at most once per billing period, for the first quota to reach ${threshold}%;`,
      `other quotas may be close as well: ${routes.quotasRoute} lists them all.`,
      "",
      `What to do: remove ${phrase} that are no longer needed, or move to a plan with a higher limit`,
      `(PUT ${routes.subscriptionRoute}, or the billing portal: ${routes.portalRoute}).`,
    ],
  };
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
  const subscriptionRoute = `${publicUrl}/v1/organizations/${alert.orgId}/subscription`;
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
        ({ subject, lines } = trialEnding(d, name, label, { portalRoute, subscriptionRoute }));
        break;
      default:
        ({ subject, lines } = quotaReached(alert.type, d, name, label, period, {
          portalRoute,
          subscriptionRoute,
          quotasRoute: `GET ${publicUrl}/v1/organizations/${alert.orgId}/quotas`,
        }));
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
