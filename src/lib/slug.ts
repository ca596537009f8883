import { randomBytes } from "node:crypto";

/** Room left in a 64-character slug for "-" and a six-character collision suffix. */
export const SLUG_BASE_MAX = 48;

/** A URL-safe slug from a display name: accents dropped, runs of anything else turned into "-". */
export function slugify(name: string, fallback = "org"): string {
  const base = name
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, SLUG_BASE_MAX)
    .replace(/-+$/g, "");
  return base.length > 0 ? base : fallback;
}

/** Six random base-36 characters, appended when a generated slug is taken. */
export function slugSuffix(): string {
  return randomBytes(4).readUInt32BE(0).toString(36).padStart(6, "0").slice(-6);
}
