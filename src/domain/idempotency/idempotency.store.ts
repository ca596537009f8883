export type StoredResponse = { status: number; contentType: string; body: string };

export type IdempotencyRecord = {
  fingerprint: string;
  state: "processing" | "completed";
  lockedUntil: Date;
  response: StoredResponse | null;
};

export type IdempotencyStore = {
  /**
   * Claims `(scope, key)` for a new request. The claim succeeds when no record exists, when the
   * record is older than `expiredBefore`, or when it is a processing record whose lock has lapsed
   * (its process died). Returns undefined when claimed, else the record that stands.
   */
  claim(input: {
    scope: string;
    key: string;
    fingerprint: string;
    now: Date;
    lockedUntil: Date;
    expiredBefore: Date;
  }): Promise<IdempotencyRecord | undefined>;
  complete(scope: string, key: string, response: StoredResponse): Promise<void>;
  release(scope: string, key: string): Promise<void>;
  deleteOlderThan(before: Date): Promise<number>;
};
