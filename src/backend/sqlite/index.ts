/**
 * `sqlite://path/to/file.db`: key-value result store in a SQLite file (same URL forms as the
 * SQLite broker, and it may be the same file: the table is `celeriac_kv`). Safe for several
 * processes (WAL, busy_timeout). Expired rows read as missing; they are deleted when read
 * and by an occasional sweep. Options (code or URL query): busy_timeout (ms, default 10000),
 * synchronous (off | normal | full, default normal).
 */
import type Database from 'better-sqlite3';
import { CeleriacError, DatabaseFileGone } from '../../errors.ts';
import { assertSameFile, ChangeFeed, fileIdentity, Vacuum, maskUrl, mergeOptions, numberOption, openDatabase, parseSynchronous, sqlitePath } from '../../transport/sqlite/db.ts';
import type { KeyValueStore, KeyValueStoreOptions } from '../types.ts';
import { TickBatch } from '../../common/tick-batch.ts';

type Write = { key: string; value: string; expiresAt: number | null };

// A rowid table: the key's index holds only keys, the values sit in rows appended in rowid order.
// WITHOUT ROWID (files made before 2026-12-03 keep it) puts values in the key's B-tree, where a
// few thousand 100 KB results made every later insert 4x slower.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS celeriac_kv (
  key        TEXT PRIMARY KEY,
  value      TEXT NOT NULL,
  expires_at INTEGER
);
CREATE INDEX IF NOT EXISTS celeriac_kv_expires ON celeriac_kv (expires_at) WHERE expires_at IS NOT NULL;
`;

const LIVE = '(expires_at IS NULL OR expires_at > @now)';
const SQL = {
  get: 'SELECT value, expires_at FROM celeriac_kv WHERE key = ?',
  mget: `SELECT key, value FROM celeriac_kv WHERE key IN (SELECT value FROM json_each(@keys)) AND ${LIVE}`,
  set: `INSERT INTO celeriac_kv (key, value, expires_at) VALUES (@key, @value, @expiresAt)
        ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`,
  delete: 'DELETE FROM celeriac_kv WHERE key = ?',
  deleteExpiredKey: 'DELETE FROM celeriac_kv WHERE key = @key AND expires_at <= @now',
  sweep: 'DELETE FROM celeriac_kv WHERE expires_at IS NOT NULL AND expires_at <= ?',
  // Missing or expired counts as 0; a ttl given resets the expiry, none keeps the current one.
  // JS numbers bind as REAL: cast so the text stored is "6", not "6.0".
  incr: `INSERT INTO celeriac_kv (key, value, expires_at) VALUES (@key, CAST(@by AS INTEGER), @expiresAt)
         ON CONFLICT (key) DO UPDATE SET
           value = CASE WHEN ${LIVE} THEN CAST(value AS INTEGER) + CAST(@by AS INTEGER) ELSE CAST(@by AS INTEGER) END,
           expires_at = CASE WHEN @expiresAt IS NOT NULL THEN @expiresAt WHEN ${LIVE} THEN expires_at END
         RETURNING CAST(value AS INTEGER) AS n`,
} as const;

const SWEEP_EVERY_MS = 60_000;

export class SqliteStore implements KeyValueStore {
  readonly url: string;
  readonly file: string;
  private readonly db: Database.Database;
  private readonly sql: { [K in keyof typeof SQL]: Database.Statement };
  private readonly feed: ChangeFeed;
  private readonly identity: string | null;
  private readonly vacuum: Vacuum;
  private lastSweep = 0;
  private closed = false;
  /** Writes of this turn: one transaction commits them all. */
  private readonly writes: TickBatch<Write>;

  constructor(url: URL, options: KeyValueStoreOptions = {}) {
    const opts = mergeOptions(url, options);
    this.url = maskUrl(url);
    this.file = sqlitePath(url);
    this.db = openDatabase(this.file, {
      busyTimeoutMs: numberOption('busy_timeout', opts.busy_timeout, 10_000),
      synchronous: parseSynchronous(opts.synchronous),
    }, SCHEMA);
    this.identity = fileIdentity(this.file);
    this.vacuum = new Vacuum(this.db);
    this.sql = Object.fromEntries(Object.entries(SQL).map(([k, q]) => [k, this.db.prepare(q)])) as SqliteStore['sql'];
    this.feed = new ChangeFeed(this.file);
    const writeAll = this.db.transaction((writes: Write[]) => {
      for (const w of writes) this.sql.set.run(w);
    });
    this.writes = new TickBatch((writes) => {
      writeAll(writes);
      this.written();
    });
  }

  /** Another process held the write lock past busy_timeout: the next try may pass. */
  isTransient(err: unknown): boolean {
    const code = (err as { code?: unknown } | null)?.code;
    return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
  }

  async get(key: string): Promise<string | null> {
    return this.read(key);
  }

  async mget(keys: readonly string[]): Promise<(string | null)[]> {
    this.assertOpen();
    this.writes.flush();
    if (keys.length === 0) return [];
    const rows = this.sql.mget.all({ keys: JSON.stringify(keys), now: Date.now() }) as { key: string; value: string }[];
    const found = new Map(rows.map((r) => [r.key, r.value]));
    return keys.map((k) => found.get(k) ?? null);
  }

  /**
   * Writes are batched per event-loop turn: the results finished in one turn share one
   * transaction (a commit each cost more than the write). Any other call commits them first, so
   * every call still sees the writes made before it.
   */
  set(key: string, value: string, ttlSeconds: number | null): Promise<void> {
    if (this.closed) return Promise.reject(this.closedError());
    return this.writes.add({ key, value, expiresAt: expiry(ttlSeconds) });
  }

  flushWrites(): void {
    this.writes.flush();
  }

  async delete(key: string): Promise<void> {
    this.assertOpen();
    this.writes.flush();
    this.sql.delete.run(key);
    this.written();
  }

  async incr(key: string, by: number, ttlSeconds: number | null): Promise<number> {
    this.assertOpen();
    this.writes.flush();
    // One statement, so atomic across processes (SQLite serializes writers).
    const row = this.sql.incr.get({ key, by: Math.trunc(by), expiresAt: expiry(ttlSeconds), now: Date.now() }) as { n: number };
    this.written();
    return row.n;
  }

  /** Poll the key (5 ms doubling to 50 ms), waking early on writes to the file. Never rejects. */
  async waitForChange(key: string, timeoutMs: number, signal?: AbortSignal, lastSeen?: string | null): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let pause = 5;
    try {
      const before = lastSeen === undefined ? this.read(key) : lastSeen;
      if (this.read(key) !== before) return;
      for (;;) {
        const left = deadline - Date.now();
        if (left <= 0 || signal?.aborted || this.closed) return;
        await this.feed.wait(Math.min(pause, left), signal);
        pause = Math.min(pause * 2, 50);
        if (this.closed) return;
        // A waiter on a deleted or replaced file would wait forever: say so instead.
        assertSameFile(this.file, this.identity, 'result');
        if (this.read(key) !== before) return;
      }
    } catch (err) {
      if (err instanceof DatabaseFileGone) throw err;
      // Busy or closed: the caller reads again and decides; waiting must not fail.
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.writes.flush();
    this.closed = true;
    this.vacuum.stop();
    this.feed.close();
    this.db.close();
  }

  private read(key: string): string | null {
    this.assertOpen();
    this.writes.flush();
    const now = Date.now();
    const row = this.sql.get.get(key) as { value: string; expires_at: number | null } | undefined;
    if (!row) return null;
    if (row.expires_at === null || row.expires_at > now) return row.value;
    // Expired: delete lazily (only now, so reading a missing key never takes the write lock).
    this.sql.deleteExpiredKey.run({ key, now });
    return null;
  }

  private written(): void {
    const now = Date.now();
    if (now - this.lastSweep > SWEEP_EVERY_MS) {
      this.lastSweep = now;
      this.sql.sweep.run(now);
    }
    this.feed.notify();
  }

  private assertOpen(): void {
    if (this.closed) throw this.closedError();
  }

  private closedError(): CeleriacError {
    return new CeleriacError(`result store ${this.url} is closed`);
  }
}

function expiry(ttlSeconds: number | null): number | null {
  return ttlSeconds === null ? null : Date.now() + Math.round(ttlSeconds * 1000);
}

export function createSqliteStore(url: URL, options: KeyValueStoreOptions): KeyValueStore {
  return new SqliteStore(url, options);
}
