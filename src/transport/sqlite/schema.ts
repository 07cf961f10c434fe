/**
 * Tables of the SQLite broker (the exchanges' two are described in broadcast.ts). Distinct names so the result store (celeriac_kv) can live in
 * the same file.
 *
 * A row is ready when `owner IS NULL AND delayed = 0`. `delayed = 1` marks a message whose
 * eta is still in the future (visible_at); fetch promotes due ones. Keeping "delayed" as its
 * own flag lets the ready index stay ordered by (queue, priority, id) without scanning past
 * thousands of scheduled rows on every poll.
 *
 * The envelope lives in celeriac_payloads, keyed by delivery tag (a requeued copy keeps it):
 * SQLite rewrites a whole row on every UPDATE, overflow pages included, so with the envelope in
 * the row each lock, lock refresh and eta promotion of a 100 MB message wrote 100 MB again.
 * `celeriac_messages.envelope` is '' for new rows; rows written by earlier versions still have it.
 */
export const BROKER_SCHEMA = `
CREATE TABLE IF NOT EXISTS celeriac_messages (
  id             INTEGER PRIMARY KEY AUTOINCREMENT,
  queue          TEXT    NOT NULL,
  priority       INTEGER NOT NULL DEFAULT 0,
  visible_at     INTEGER NOT NULL,
  delayed        INTEGER NOT NULL DEFAULT 0,
  envelope       TEXT    NOT NULL,
  delivery_tag   TEXT    NOT NULL,
  delivery_count INTEGER NOT NULL DEFAULT 0,
  owner          TEXT,
  owner_pid      INTEGER,
  owner_host     TEXT,
  locked_until   INTEGER
);
CREATE INDEX IF NOT EXISTS celeriac_messages_ready
  ON celeriac_messages (queue, priority DESC, id) WHERE owner IS NULL AND delayed = 0;
CREATE INDEX IF NOT EXISTS celeriac_messages_delayed
  ON celeriac_messages (queue, visible_at) WHERE delayed = 1;
CREATE INDEX IF NOT EXISTS celeriac_messages_locked
  ON celeriac_messages (locked_until) WHERE owner IS NOT NULL;
CREATE INDEX IF NOT EXISTS celeriac_messages_owner
  ON celeriac_messages (owner) WHERE owner IS NOT NULL;
CREATE TABLE IF NOT EXISTS celeriac_payloads (
  id           INTEGER PRIMARY KEY,
  delivery_tag TEXT    NOT NULL UNIQUE,
  envelope     TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS celeriac_dead_letters (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  queue        TEXT    NOT NULL,
  envelope     TEXT    NOT NULL,
  delivery_tag TEXT    NOT NULL,
  reason       TEXT,
  dead_at      INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS celeriac_broadcast (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  exchange     TEXT    NOT NULL,
  routing_key  TEXT    NOT NULL,
  envelope     TEXT    NOT NULL,
  published_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS celeriac_subscribers (
  id           TEXT    PRIMARY KEY,
  exchange     TEXT    NOT NULL,
  binding_key  TEXT    NOT NULL,
  queue        TEXT    NOT NULL,
  position     INTEGER NOT NULL,
  owner_pid    INTEGER NOT NULL,
  owner_host   TEXT    NOT NULL,
  seen_at      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS celeriac_subscribers_exchange ON celeriac_subscribers (exchange, seen_at);
`;

const UNLOCK = 'owner = NULL, owner_pid = NULL, owner_host = NULL, locked_until = NULL';
const MINE = 'id = @id AND owner = @owner AND delivery_count = @count';
const COPY_COLS = 'queue, priority, visible_at, delayed, envelope, delivery_tag, delivery_count';
const ENVELOPE = 'coalesce((SELECT p.envelope FROM celeriac_payloads p WHERE p.delivery_tag = m.delivery_tag), m.envelope)';

export const SQL = {
  insert: `INSERT INTO celeriac_messages (queue, priority, visible_at, delayed, envelope, delivery_tag)
           VALUES (@queue, @priority, @visibleAt, @delayed, '', @deliveryTag)`,
  insertPayload: 'INSERT INTO celeriac_payloads (delivery_tag, envelope) VALUES (@deliveryTag, @envelope)',
  deletePayload: 'DELETE FROM celeriac_payloads WHERE delivery_tag = ?',
  promoteDue: 'UPDATE celeriac_messages SET delayed = 0 WHERE queue = ? AND delayed = 1 AND visible_at <= ?',
  // Never our own: a live consumer whose event loop stalled past the timeout still runs what it holds.
  reclaimExpired: `UPDATE celeriac_messages SET ${UNLOCK} WHERE owner IS NOT NULL AND locked_until <= ? AND owner <> ?`,
  selectReady: `SELECT id, queue, priority, delivery_tag, delivery_count FROM celeriac_messages
                WHERE queue = ? AND owner IS NULL AND delayed = 0 ORDER BY priority DESC, id LIMIT ?`,
  envelope: `SELECT ${ENVELOPE} AS envelope FROM celeriac_messages m WHERE m.id = ?`,
  lock: `UPDATE celeriac_messages SET owner = @owner, owner_pid = @pid, owner_host = @host,
         locked_until = @until, delivery_count = delivery_count + 1 WHERE id = @id`,
  refresh: 'UPDATE celeriac_messages SET locked_until = ? WHERE owner = ?',
  lockedPids: 'SELECT DISTINCT owner_pid FROM celeriac_messages WHERE owner IS NOT NULL AND owner_host = ?',
  releasePid: `UPDATE celeriac_messages SET ${UNLOCK} WHERE owner IS NOT NULL AND owner_host = ? AND owner_pid = ?`,
  releaseOwner: `UPDATE celeriac_messages SET ${UNLOCK} WHERE owner = ?`,
  ack: `DELETE FROM celeriac_messages WHERE ${MINE}`,
  restore: `UPDATE celeriac_messages SET ${UNLOCK} WHERE ${MINE}`,
  requeueCopy: `INSERT INTO celeriac_messages (${COPY_COLS})
                SELECT queue, priority, @now, 0, envelope, delivery_tag, delivery_count
                FROM celeriac_messages WHERE ${MINE}`,
  deadLetterCopy: `INSERT INTO celeriac_dead_letters (queue, envelope, delivery_tag, reason, dead_at)
                   SELECT queue, ${ENVELOPE}, delivery_tag, @reason, @now FROM celeriac_messages m WHERE ${MINE}`,
  // Ready plus scheduled (eta) rows; written as two conditions so each uses its partial index.
  purgeReadyPayloads: `DELETE FROM celeriac_payloads WHERE delivery_tag IN
                       (SELECT delivery_tag FROM celeriac_messages WHERE queue = ? AND owner IS NULL AND delayed = 0)`,
  purgeDelayedPayloads: `DELETE FROM celeriac_payloads WHERE delivery_tag IN
                         (SELECT delivery_tag FROM celeriac_messages WHERE queue = ? AND delayed = 1)`,
  purgeReady: 'DELETE FROM celeriac_messages WHERE queue = ? AND owner IS NULL AND delayed = 0',
  purgeDelayed: 'DELETE FROM celeriac_messages WHERE queue = ? AND delayed = 1',
  size: `SELECT (SELECT count(*) FROM celeriac_messages WHERE queue = @queue AND owner IS NULL AND delayed = 0)
              + (SELECT count(*) FROM celeriac_messages WHERE queue = @queue AND delayed = 1) AS n`,
} as const;

export interface ReadyRow {
  id: number;
  queue: string;
  priority: number;
  delivery_tag: string;
  delivery_count: number;
}
