import { hash } from "node:crypto";

/** SHA-256 as hex, in one call (no Hash object): it runs several times per authorize. */
export function sha256Hex(value: string): string {
  return hash("sha256", value, "hex");
}
