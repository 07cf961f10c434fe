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
  /**
   * Optional, for stores whose wire takes bytes: `set` of text given as its UTF-8 bytes, sent as
   * they are. Long results come this way, so that their text is never joined into one string.
   */
  setBytes?(key: string, value: Buffer, ttlSeconds: number | null): Promise<void>;
  delete(key: string): Promise<void>;
  /** Optional: send the writes queued in this turn now rather than at its end. */
  flushWrites?(): void;
  /** Atomically add `by` to an integer value (missing counts as 0); returns the new value. */
  incr(key: string, by: number, ttlSeconds: number | null): Promise<number>;
  /**
   * Resolve when the value of `key` differs from `lastSeen` (default: its value at call time),
   * or after `timeoutMs`. Pass the value last read to close the gap between reading and waiting.
   * Stores with a change feed (Redis pub/sub) wake at once; others may poll. Resolves with the
   * new value when it is known without another read (undefined: read it). Never rejects.
   * `seenWhileListening`: `lastSeen` was read after `listening(key)` resolved true (or came from
   * a wake), with the listening held since, so no change after it can be missed: no read again.
   */
  waitForChange(key: string, timeoutMs: number, signal?: AbortSignal, lastSeen?: string | null, seenWhileListening?: boolean): Promise<string | undefined | void>;
  /**
   * Optional: start listening to `key`'s change feed now, because a waitForChange on it is likely
   * soon; it then needs no round trip of its own before its read. Returns the release.
   */
  listenEarly?(key: string): () => void;
  /** Optional, with listenEarly: true once the change feed of `key` is live, false if it could not be started. */
  listening?(key: string): Promise<boolean>;
  /** Optional, with listenEarly: the newest value the live change feed of `key` has brought, if any. */
  received?(key: string): string | undefined;
  /**
   * Optional, with indexedSince: set `key` for `ttlSeconds` and record `member` in the sorted
   * `index` at the server's time (ms); members older than the TTL leave the index.
   */
  setIndexed?(key: string, value: string, ttlSeconds: number, index: string, member: string): Promise<void>;
  /**
   * The newest `limit` members recorded in `index` at or after `since` (server ms; null: within
   * the last `maxAgeMs`), and the `since` of the next call (a few seconds back, so a server clock
   * that steps back loses nothing; members may come again).
   */
  indexedSince?(index: string, since: number | null, maxAgeMs: number, limit: number): Promise<{ members: string[]; next: number }>;
  close(): Promise<void>;
  /** Optional: whether an error of this store may pass (a lost connection); waiting goes on through it. */
  isTransient?(err: unknown): boolean;
  /**
   * Optional native chord join (Redis: Celery's `celery-taskset-meta-<gid>.j` sorted set). Record
   * one header part; `count` is the parts recorded, `total` the chord size (+ extra) or null while
   * the client has not set it. Stores without it get a generic join over get/set/incr.
   */
  addChordPart?(groupId: string, part: ChordPart, ttlSeconds: number | null): Promise<ChordProgress>;
  /** Optional, with addChordPart: one more part for the chord (Redis: Celery's `INCRBY .t 1`). */
  addToChord?(groupId: string): Promise<void>;
  /** Optional, with addChordPart: the recorded parts (encoded members), in group_index order. */
  chordParts?(groupId: string): Promise<string[]>;
  /** Optional, with addChordPart: delete the chord's bookkeeping keys. */
  deleteChord?(groupId: string): Promise<void>;
}

export interface ChordPart {
  taskId: string;
  groupIndex: number | null;
  /** Celery's encoded part: `[1, "<task id>", "<STATE>", <result>]`. */
  member: string;
}

export interface ChordProgress {
  count: number;
  total: number | null;
}

export interface KeyValueStoreOptions {
  [option: string]: unknown;
}

export type KeyValueStoreFactory = (url: URL, options: KeyValueStoreOptions) => KeyValueStore;
