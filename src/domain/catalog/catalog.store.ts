import type { PlanDefinition, PlanVersion } from "./catalog.types.ts";

export type PlanVersionsStore = {
  /**
   * Make the stored catalog match `plans`: a plan whose definition changed (by content hash) gets a new
   * current version; an unchanged one keeps its version; a plan no longer in the file stops being current.
   * Runs under the migration advisory lock at start-up. Returns the current versions.
   */
  sync(plans: PlanDefinition[], hashes: Map<string, string>, at: Date): Promise<PlanVersion[]>;
  findVersion(id: string): Promise<PlanVersion | undefined>;
  findCurrentByKey(key: string): Promise<PlanVersion | undefined>;
  /** Current versions only. */
  listCurrent(): Promise<PlanVersion[]>;
  /** Every version of every plan, newest first within a key. */
  listAllVersions(): Promise<PlanVersion[]>;
};
