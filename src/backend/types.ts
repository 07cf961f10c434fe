/**
 * Result backends are a small key-value core (KeyValueStore); Celery's result bookkeeping
 * (meta format, states, never overwriting SUCCESS, waiting) is written once above it in
 * key-value-backend.ts.
 */
export interface KeyValueStore {
  readonly url: string;
  get(key: string): Promise<string | null>;
  mget(keys: readonly string[]): Promise<(string | null)[]>;
  /** Store `value` under `key`, expiring after `ttlSeconds` (none when null). */
  set(key: string, value: string, ttlSeconds: number | null): Promise<void>;
  delete(key: string): Promise<void>;
  /** Atomically add `by` to an integer value (missing counts as 0); returns the new value. */
  incr(key: string, by: number, ttlSeconds: number | null): Promise<number>;
  /**
   * Resolve when the value of `key` differs from `lastSeen` (default: its value at call time),
   * or after `timeoutMs`. Pass the value last read to close the gap between reading and waiting.
   * Stores with a change feed (Redis pub/sub) wake at once; others may poll. Never rejects.
   */
  waitForChange(key: string, timeoutMs: number, signal?: AbortSignal, lastSeen?: string | null): Promise<void>;
  close(): Promise<void>;
}

export interface KeyValueStoreOptions {
  [option: string]: unknown;
}

export type KeyValueStoreFactory = (url: URL, options: KeyValueStoreOptions) => KeyValueStore;
