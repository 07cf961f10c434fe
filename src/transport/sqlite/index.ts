/**
 * The embedded default broker: one SQLite file shared by any number of client and worker
 * processes on one machine (WAL mode, BEGIN IMMEDIATE for every fetch).
 *
 * URLs, as SQLAlchemy's: `sqlite:///rel/file.db` (relative to the current directory),
 * `sqlite:////abs/file.db`; also `sqlite://file.db` and `sqlite://` (= ./celeriac.db); the
 * directory must exist. The file is created owner-only (0600). Transport options, given in code or in the URL query
 * (the query wins; camelCase or snake_case):
 *   visibility_timeout  seconds before a locked message of a consumer that stopped refreshing
 *                       its lock is delivered again (default 1800)
 *   busy_timeout        ms to wait for another process's write lock (default 10000)
 *   synchronous         off | normal | full (default normal: survives crashes, not power loss)
 *   polling_interval    longest pause between polls while idle, seconds (default 0.1)
 *   logger              { warning(msg) } for trouble reading broadcast messages (default: stderr)
 *
 * Redelivery: a live consumer keeps extending the locks it holds; on the same host, locks of
 * processes that no longer exist are released at the next fetch (so a kill -9'ed worker's
 * messages come back within seconds); otherwise locks expire after the visibility timeout.
 * Settling is idempotent: a second ack/reject/restore of one delivery does nothing, and a
 * delivery whose lock was lost (expired, given to another consumer) settles nothing.
 * size() and purge() cover ready and scheduled (future eta) messages, not locked ones.
 * A row that cannot be decoded is delivered with content type
 * application/x-celeriac-undecodable and its raw text as body, for the worker to reject.
 *
 * Exchanges (events, remote control, mingle, gossip): broadcast.ts.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type Database from 'better-sqlite3';
import { CeleriacError } from '../../errors.ts';
import { fromEnvelope, toEnvelope, undecodableMessage } from '../../protocol/envelope.ts';
import { parsePythonDate } from '../../protocol/json.ts';
import type { DeliveryInfo, Message } from '../../protocol/message.ts';
import type { Binding, DeadLetters, Delivery, Transport, TransportCapabilities, TransportOptions } from '../types.ts';
import { assertSameFile, ChangeFeed, fileIdentity, Vacuum, maskUrl, mergeOptions, numberOption, openDatabase, parseSynchronous, pidAlive, sqlitePath } from './db.ts';
import { BROKER_SCHEMA, SQL, type ReadyRow } from './schema.ts';
import { SqliteBroadcasting } from './broadcast.ts';

const DEAD_OWNER_CHECK_MS = 2000;

type Statements = { [K in keyof typeof SQL]: Database.Statement };

interface PendingWrite {
  run: () => void;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class SqliteTransport implements Transport {
  readonly url: string;
  readonly capabilities: TransportCapabilities = { delaysEta: true, deadLetters: true };
  readonly file: string;
  readonly visibilityTimeoutMs: number;
  /** This instance's lock owner id: host, pid and a random part. */
  readonly owner: string;
  readonly broadcast: SqliteBroadcasting;
  private readonly host = os.hostname();
  private readonly db: Database.Database;
  private readonly sql: Statements;
  private readonly feed: ChangeFeed;
  /** Device and inode of the file we opened: see assertSameFile. */
  private readonly identity: string | null;
  private readonly vacuum: Vacuum;
  private readonly maxPollMs: number;
  private readonly refreshTimer: NodeJS.Timeout;
  private writes: PendingWrite[] = [];
  private wakeAfterFlush = false;
  private inflight = 0;
  private lastDeadCheck = 0;
  private closed = false;
  private readonly declared = new Set<string>();

  constructor(url: URL, options: TransportOptions = {}) {
    const opts = mergeOptions(url, options);
    this.url = maskUrl(url);
    this.file = sqlitePath(url);
    this.visibilityTimeoutMs = numberOption('visibility_timeout', opts.visibility_timeout, 1800) * 1000;
    this.maxPollMs = Math.max(5, numberOption('polling_interval', opts.polling_interval, 0.1) * 1000);
    this.db = openDatabase(this.file, {
      busyTimeoutMs: numberOption('busy_timeout', opts.busy_timeout, 10_000),
      synchronous: parseSynchronous(opts.synchronous),
    }, BROKER_SCHEMA);
    this.identity = fileIdentity(this.file);
    this.vacuum = new Vacuum(this.db);
    this.sql = Object.fromEntries(Object.entries(SQL).map(([k, q]) => [k, this.db.prepare(q)])) as Statements;
    this.owner = `${this.host}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.feed = new ChangeFeed(this.file);
    const logger = opts.logger as { warning?: (line: string) => void } | undefined;
    this.broadcast = new SqliteBroadcasting({
      db: this.db,
      feed: this.feed,
      host: this.host,
      maxPollMs: this.maxPollMs,
      write: (run, wake) => this.write(run, wake),
      log: typeof logger?.warning === 'function' ? (line) => logger.warning!(line) : (line) => void process.stderr.write(`celeriac: ${line}\n`),
    });
    const every = Math.max(50, Math.min(this.visibilityTimeoutMs / 3, 10_000));
    this.refreshTimer = setInterval(() => this.refreshLocks(), every).unref();
  }

  async declareQueue(queue: string): Promise<void> {
    this.assertOpen();
    this.declared.add(queue);
  }

  /**
   * Task queues (each bound to the direct exchange of its name, as kombu's virtual transports do:
   * those declared here and those holding messages) and the exchanges' subscriptions.
   */
  async listBindings(): Promise<Binding[]> {
    this.assertOpen();
    const queues = new Set([...this.declared, ...(this.db.prepare('SELECT DISTINCT queue FROM celeriac_messages').pluck().all() as string[])]);
    const subscribers = this.db.prepare('SELECT queue, exchange, binding_key AS routingKey FROM celeriac_subscribers').all() as Binding[];
    return [...[...queues].map((q) => ({ queue: q, exchange: q, routingKey: q })), ...subscribers];
  }

  async publish(queue: string, message: Message, route?: { exchange?: string; routingKey?: string }): Promise<void> {
    this.assertOpen();
    assertSameFile(this.file, this.identity, 'broker');
    const deliveryTag = randomUUID();
    const envelope = toEnvelope(message, { exchange: route?.exchange ?? '', routingKey: route?.routingKey ?? queue, deliveryTag });
    const p = Number(message.properties.priority);
    const priority = Number.isFinite(p) ? Math.trunc(p) : 0;
    const now = Date.now();
    const eta = typeof message.headers.eta === 'string' ? parsePythonDate(message.headers.eta)?.getTime() : undefined;
    const visibleAt = eta !== undefined && eta > now ? eta : now;
    const row = { queue, priority, visibleAt, delayed: visibleAt > now ? 1 : 0, deliveryTag };
    return this.write(() => {
      this.sql.insert.run(row);
      this.sql.insertPayload.run({ deliveryTag, envelope });
    }, true);
  }

  async fetch(queues: readonly string[], max: number, timeoutMs: number, signal?: AbortSignal): Promise<Delivery[]> {
    const names = [...new Set(queues)];
    const deadline = Date.now() + timeoutMs;
    let pause = 5;
    for (;;) {
      if (this.closed || signal?.aborted || names.length === 0 || max < 1) return [];
      try {
        this.releaseDeadOwners();
        const got = this.take(names, Math.floor(max));
        if (got.length > 0) return got;
      } catch (err) {
        // Another process held the write lock past busy_timeout: treat as empty, poll again.
        if (!String((err as { code?: unknown }).code).startsWith('SQLITE_BUSY')) throw err;
      }
      const left = deadline - Date.now();
      if (left <= 0) return [];
      await this.feed.wait(Math.min(pause, left), signal);
      // On the wake-up path only: a stat per idle poll costs nothing, and a busy consumer gets here soon enough.
      if (!this.closed) assertSameFile(this.file, this.identity, 'broker');
      pause = Math.min(pause * 2, this.maxPollMs);
    }
  }

  async purge(queue: string): Promise<number> {
    this.assertOpen();
    const s = this.sql;
    return this.db.transaction(() => {
      s.purgeReadyPayloads.run(queue);
      s.purgeDelayedPayloads.run(queue);
      return s.purgeReady.run(queue).changes + s.purgeDelayed.run(queue).changes;
    }).immediate();
  }

  async listDeadLetters(queue: string, limit: number): Promise<DeadLetters> {
    this.assertOpen();
    const { n } = this.db.prepare('SELECT count(*) AS n FROM celeriac_dead_letters WHERE queue = ?').get(queue) as { n: number };
    const rows = this.db.prepare('SELECT reason, dead_at, envelope FROM celeriac_dead_letters WHERE queue = ? ORDER BY id DESC LIMIT ?').all(queue, limit) as { reason: string | null; dead_at: number; envelope: string }[];
    return { count: n, items: rows.map((r) => ({ reason: r.reason, time: r.dead_at / 1000, envelope: r.envelope })) };
  }

  async size(queue: string): Promise<number> {
    this.assertOpen();
    return (this.sql.size.get({ queue }) as { n: number }).n;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.refreshTimer);
    this.vacuum.stop();
    this.flush();
    this.broadcast.close();
    try {
      // Like an AMQP connection closing: whatever we still hold goes back to the queue now.
      this.sql.releaseOwner.run(this.owner);
    } catch {
      // The locks expire on their own (visibility timeout).
    }
    this.inflight = 0;
    this.feed.close();
    this.db.close();
  }

  /** One IMMEDIATE transaction: make due/expired rows ready, pick the best rows, lock them. */
  private take(queues: string[], max: number): Delivery[] {
    const now = Date.now();
    const s = this.sql;
    const rows = this.db.transaction(() => {
      for (const q of queues) s.promoteDue.run(q, now);
      s.reclaimExpired.run(now, this.owner);
      let picked = queues.flatMap((q) => s.selectReady.all(q, max) as ReadyRow[]);
      if (queues.length > 1) picked = picked.sort((a, b) => b.priority - a.priority || a.id - b.id).slice(0, max);
      const lock = { owner: this.owner, pid: process.pid, host: this.host, until: now + this.visibilityTimeoutMs, id: 0 };
      for (const r of picked) s.lock.run({ ...lock, id: r.id });
      return picked;
    }).immediate();
    this.inflight += rows.length;
    // Read after the commit: the rows are ours now, and a large envelope does not hold the write lock.
    return rows.map((r) => this.toDelivery(r, (s.envelope.get(r.id) as { envelope: string } | undefined)?.envelope ?? ''));
  }

  private toDelivery(row: ReadyRow, envelope: string): Delivery {
    let message: Message;
    let info: DeliveryInfo;
    let properties: Record<string, unknown> | undefined;
    try {
      const d = fromEnvelope(envelope);
      message = d.message;
      properties = d.properties;
      info = { ...d.delivery, redelivered: d.delivery.redelivered || row.delivery_count > 0 };
    } catch (err) {
      // Never drop it (and never leave it locked by us with no delivery to settle): the worker rejects it with the reason.
      message = undecodableMessage(envelope, err);
      info = { exchange: '', routingKey: row.queue, redelivered: row.delivery_count > 0, priority: row.priority };
    }
    const key = { id: row.id, owner: this.owner, count: row.delivery_count + 1 };
    let settled = false;
    const settle = (run: () => void, wake: boolean): Promise<void> => {
      if (settled) return Promise.resolve();
      settled = true;
      this.inflight = Math.max(0, this.inflight - 1);
      return this.write(run, wake);
    };
    const s = this.sql;
    return {
      message,
      info,
      properties,
      deliveryTag: row.delivery_tag,
      queue: row.queue,
      // The payload goes with the last copy of the message (a requeued copy keeps the delivery tag).
      ack: () => settle(() => { if (s.ack.run(key).changes) s.deletePayload.run(row.delivery_tag); }, false),
      reject: (requeue, reason) => requeue
        ? settle(() => { s.requeueCopy.run({ ...key, now: Date.now() }); s.ack.run(key); }, true)
        : settle(() => {
          s.deadLetterCopy.run({ ...key, now: Date.now(), reason: reason ?? null });
          if (s.ack.run(key).changes) s.deletePayload.run(row.delivery_tag);
        }, false),
      restore: () => settle(() => s.restore.run(key), true),
    };
  }

  /** Writes issued in the same tick share one transaction; each promise resolves after commit. */
  flushAcks(): void {
    this.flush();
  }

  private write(run: () => void, wake: boolean): Promise<void> {
    if (this.closed) return Promise.reject(new CeleriacError(`transport ${this.url} is closed`));
    return new Promise((resolve, reject) => {
      if (this.writes.length === 0) setImmediate(() => this.flush());
      this.writes.push({ run, resolve, reject });
      this.wakeAfterFlush ||= wake;
    });
  }

  private flush(): void {
    const batch = this.writes;
    if (batch.length === 0) return;
    this.writes = [];
    const wake = this.wakeAfterFlush;
    this.wakeAfterFlush = false;
    const errors = new Map<PendingWrite, unknown>();
    try {
      this.db.transaction(() => {
        for (const w of batch) {
          try {
            w.run();
          } catch (err) {
            errors.set(w, err);
          }
        }
      }).immediate();
    } catch (err) {
      for (const w of batch) w.reject(err);
      return;
    }
    for (const w of batch) (errors.has(w) ? w.reject(errors.get(w)) : w.resolve());
    if (wake) this.feed.notify();
  }

  /** Keep our locks alive while we hold any, so only a dead or stalled consumer loses them. */
  private refreshLocks(): void {
    if (this.closed || this.inflight === 0) return;
    try {
      this.sql.refresh.run(Date.now() + this.visibilityTimeoutMs, this.owner);
    } catch {
      // Busy for longer than busy_timeout: try again at the next tick, well before expiry.
    }
  }

  /** Release rows locked by processes of this host that no longer exist (at most every 2 s). */
  private releaseDeadOwners(): void {
    const now = Date.now();
    if (now - this.lastDeadCheck < DEAD_OWNER_CHECK_MS) return;
    this.lastDeadCheck = now;
    for (const { owner_pid: pid } of this.sql.lockedPids.all(this.host) as { owner_pid: number | null }[]) {
      if (pid !== null && pid !== process.pid && !pidAlive(pid)) this.sql.releasePid.run(this.host, pid);
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new CeleriacError(`transport ${this.url} is closed`);
  }
}

export function createSqliteTransport(url: URL, options: TransportOptions): Transport {
  return new SqliteTransport(url, options);
}
