/**
 * Exchanges on the SQLite broker (events, remote control, mingle, gossip): a log of broadcast
 * messages with a position per subscriber, for any number of processes on one file.
 *
 *  - celeriac_broadcast: one row per published message, ids in publish order (AUTOINCREMENT, so
 *    an id is never reused after pruning and `sqlite_sequence` is the head of the log).
 *  - celeriac_subscribers: one row per subscription (exchange, binding key, its position = the
 *    last id it has read, its process, and when it last said it was alive).
 *
 * As on Redis and RabbitMQ, a subscriber sees only what is published after it subscribed (it
 * starts at the head), a message no live binding takes is not stored at all (kombu drops it),
 * and delivery is no_ack, at most once. Fanout, topic and direct bindings follow AMQP's rules;
 * a direct exchange's subscription is a reply queue like the Redis one: what arrives between
 * subscribe and close is delivered, then the binding goes. A subscription's message TTL drops
 * what it reads too late, as the TTL of the AMQP queue would.
 *
 * Reading: one loop per transport reads the log past the lowest position of its subscriptions
 * (ids, keys and times first, an envelope only for a row some subscription takes), woken like
 * the task queue (ChangeFeed: in-process notify, file events of other processes' commits,
 * polling as the floor). Nobody subscribed in this process: no loop, no timer.
 *
 * Upkeep, every second while a process has subscriptions: write its positions and liveness,
 * drop subscriptions whose process is gone (same host) or silent for a minute, and delete the
 * messages every live subscriber has read, or older than five minutes (the longest TTL Celery
 * gives a broadcast queue).
 */
import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import { CeleriacError } from '../../errors.ts';
import { fromEnvelope, toEnvelope } from '../../protocol/envelope.ts';
import type { Message } from '../../protocol/message.ts';
import { bindingMatches } from '../topic.ts';
import type { Broadcasting, ExchangeSpec, Subscription, SubscriptionSpec } from '../types.ts';
import { type ChangeFeed, pidAlive } from './db.ts';

/** A subscription that has not said it is alive for this long is gone (a stalled one comes back at its next touch). */
const STALE_MS = 60_000;
/** Messages are kept at most this long, read or not. */
const MAX_AGE_MS = 300_000;
const TOUCH_MS = 1000;
/** At most this many log rows per read. */
const BATCH = 500;
/** Shortest pause between two reads: under load, commits of other processes wake the loop thousands of times a second. */
const MIN_GAP_MS = 5;

const SQL = {
  head: "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'celeriac_broadcast'), 0) AS head",
  bindings: 'SELECT binding_key FROM celeriac_subscribers WHERE exchange = ? AND seen_at >= ?',
  publish: `INSERT INTO celeriac_broadcast (exchange, routing_key, envelope, published_at)
            VALUES (@exchange, @routingKey, @envelope, @now)`,
  read: 'SELECT id, exchange, routing_key, published_at FROM celeriac_broadcast WHERE id > ? ORDER BY id LIMIT ?',
  envelope: 'SELECT envelope FROM celeriac_broadcast WHERE id = ?',
  subscribe: `INSERT INTO celeriac_subscribers (id, exchange, binding_key, queue, position, owner_pid, owner_host, seen_at)
              VALUES (@id, @exchange, @bindingKey, @queue, @position, @pid, @host, @now)
              ON CONFLICT (id) DO UPDATE SET position = excluded.position, seen_at = excluded.seen_at`,
  unsubscribe: 'DELETE FROM celeriac_subscribers WHERE id = ?',
  ownerPids: 'SELECT DISTINCT owner_pid FROM celeriac_subscribers WHERE owner_host = ?',
  dropPid: 'DELETE FROM celeriac_subscribers WHERE owner_host = ? AND owner_pid = ?',
  dropStale: 'DELETE FROM celeriac_subscribers WHERE seen_at < ?',
  minPosition: 'SELECT min(position) AS p FROM celeriac_subscribers',
  // Ids grow with time: the first young row bounds what is too old, scanning only what goes.
  firstYoung: 'SELECT id FROM celeriac_broadcast WHERE published_at >= ? ORDER BY id LIMIT 1',
  prune: 'DELETE FROM celeriac_broadcast WHERE id <= ?',
} as const;

type Statements = { [K in keyof typeof SQL]: Database.Statement };
type Deliver = (message: Message, routingKey: string) => void;

interface Sub {
  id: string;
  spec: SubscriptionSpec;
  deliver: Deliver;
  /** The last log id this subscription has looked at. */
  position: number;
  closed: boolean;
}

interface LogRow {
  id: number;
  exchange: string;
  routing_key: string;
  published_at: number;
}

export interface SqliteBroadcastDeps {
  db: Database.Database;
  feed: ChangeFeed;
  host: string;
  maxPollMs: number;
  /** The transport's batched write: runs in the next IMMEDIATE transaction, resolves after commit. */
  write: (run: () => void, wake: boolean) => Promise<void>;
  log: (line: string) => void;
}

export class SqliteBroadcasting implements Broadcasting {
  private readonly sql: Statements;
  private readonly subs = new Map<string, Sub>();
  private loop: Promise<void> | null = null;
  private stopLoop: AbortController | null = null;
  private touchTimer: NodeJS.Timeout | null = null;
  private lastRead = 0;
  private closed = false;

  constructor(private readonly deps: SqliteBroadcastDeps) {
    this.sql = Object.fromEntries(Object.entries(SQL).map(([k, q]) => [k, deps.db.prepare(q)])) as Statements;
  }

  async publishExchange(exchange: ExchangeSpec, routingKey: string, message: Message): Promise<void> {
    this.assertOpen();
    const envelope = toEnvelope(message, { exchange: exchange.name, routingKey, deliveryTag: randomUUID() });
    // A plain read, outside the write lock: with nobody listening, publishing writes nothing and locks nothing.
    // A subscription committed after this read started after the message, as far as anyone can tell.
    const bound = this.sql.bindings.all(exchange.name, Date.now() - STALE_MS) as { binding_key: string }[];
    if (!bound.some((b) => bindingMatches(exchange.type, b.binding_key, routingKey))) return;
    await this.deps.write(() => this.sql.publish.run({ exchange: exchange.name, routingKey, envelope, now: Date.now() }), true);
  }

  async subscribe(spec: SubscriptionSpec, onMessage: Deliver): Promise<Subscription> {
    this.assertOpen();
    const sub: Sub = { id: randomUUID(), spec, deliver: onMessage, position: 0, closed: false };
    // In the write transaction: a message is either before the head we start at, or sees our binding.
    await this.deps.write(() => {
      sub.position = (this.sql.head.get() as { head: number }).head;
      this.sql.subscribe.run(this.row(sub, Date.now()));
    }, false);
    this.subs.set(sub.id, sub);
    this.start();
    return {
      close: async () => {
        if (sub.closed) return;
        sub.closed = true;
        this.subs.delete(sub.id);
        if (this.subs.size === 0) this.stop();
        if (!this.closed) await this.deps.write(() => this.sql.unsubscribe.run(sub.id), false).catch(() => undefined);
      },
    };
  }

  /** Synchronous, before the transport's last flush: our subscriptions go with the connection. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const subs = [...this.subs.values()];
    this.subs.clear();
    this.stop();
    try {
      this.deps.db.transaction(() => {
        for (const sub of subs) this.sql.unsubscribe.run(sub.id);
      }).immediate();
    } catch {
      // Busy: the rows are dropped by the next upkeep of another process (this pid is gone by then).
    }
    for (const sub of subs) sub.closed = true;
  }

  private row(sub: Sub, now: number) {
    const { spec } = sub;
    return { id: sub.id, exchange: spec.exchange.name, bindingKey: spec.bindingKey, queue: spec.queue, position: sub.position, pid: process.pid, host: this.deps.host, now };
  }

  private start(): void {
    if (this.loop || this.closed) return;
    const stop = new AbortController();
    this.stopLoop = stop;
    this.loop = this.run(stop.signal).finally(() => {
      if (this.stopLoop === stop) this.loop = null;
    });
    this.touchTimer = setInterval(() => this.touch(), TOUCH_MS).unref();
  }

  private stop(): void {
    this.stopLoop?.abort();
    this.stopLoop = null;
    this.loop = null;
    if (this.touchTimer) clearInterval(this.touchTimer);
    this.touchTimer = null;
  }

  private async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const gap = this.lastRead + MIN_GAP_MS - Date.now();
      if (gap > 0) await new Promise((r) => setTimeout(r, gap));
      if (signal.aborted) return;
      this.lastRead = Date.now();
      let more = false;
      try {
        more = this.read();
      } catch (err) {
        const code = String((err as { code?: unknown }).code);
        if (!code.startsWith('SQLITE_BUSY')) this.deps.log(`sqlite broker: could not read broadcast messages: ${(err as Error).message}`);
      }
      if (!more) await this.deps.feed.wait(this.deps.maxPollMs, signal);
    }
  }

  /** One read of the log for every subscription of this process; true when there is more to read. */
  private read(): boolean {
    const subs = [...this.subs.values()];
    if (subs.length === 0) return false;
    const from = Math.min(...subs.map((s) => s.position));
    const s = this.sql;
    const taken: { row: LogRow; envelope: string; to: Sub[] }[] = [];
    // One snapshot: the rows and the head agree, so positions never skip an unread row.
    const { rows, head } = this.deps.db.transaction(() => {
      const rows = s.read.all(from, BATCH) as LogRow[];
      for (const row of rows) {
        const to = subs.filter((sub) => sub.position < row.id && wants(sub.spec, row));
        if (to.length > 0) taken.push({ row, envelope: (s.envelope.get(row.id) as { envelope: string }).envelope, to });
      }
      return { rows, head: (s.head.get() as { head: number }).head };
    }).deferred();
    const last = rows.length === BATCH ? rows[BATCH - 1]!.id : head;
    for (const sub of subs) sub.position = Math.max(sub.position, last);
    for (const { row, envelope, to } of taken) this.deliver(row, envelope, to);
    return rows.length === BATCH;
  }

  private deliver(row: LogRow, envelope: string, to: Sub[]): void {
    let message: Message;
    try {
      message = fromEnvelope(envelope).message;
    } catch {
      return; // no_ack: what cannot be read is dropped, as kombu's consumer would fail on it
    }
    const now = Date.now();
    for (const sub of to) {
      if (sub.closed) continue;
      const ttl = sub.spec.messageTtlMs;
      if (ttl !== undefined && ttl > 0 && row.published_at + ttl < now) continue;
      try {
        sub.deliver(message, row.routing_key);
      } catch (err) {
        this.deps.log(`sqlite broker: a subscriber of ${sub.spec.exchange.name} failed: ${(err as Error).message}`);
      }
    }
  }

  /** Say we are alive and where we are, then prune what nobody needs any more. */
  private touch(): void {
    if (this.closed || this.subs.size === 0) return;
    const now = Date.now();
    const subs = [...this.subs.values()];
    void this.deps.write(() => {
      const s = this.sql;
      for (const sub of subs) if (!sub.closed) s.subscribe.run(this.row(sub, now));
      for (const { owner_pid: pid } of s.ownerPids.all(this.deps.host) as { owner_pid: number }[]) {
        if (pid !== process.pid && !pidAlive(pid)) s.dropPid.run(this.deps.host, pid);
      }
      s.dropStale.run(now - STALE_MS);
      const head = (s.head.get() as { head: number }).head;
      const read = (s.minPosition.get() as { p: number | null }).p ?? head;
      const young = (s.firstYoung.get(now - MAX_AGE_MS) as { id: number } | undefined)?.id ?? head + 1;
      s.prune.run(Math.max(read, young - 1));
    }, false).catch(() => undefined);
  }

  private assertOpen(): void {
    if (this.closed) throw new CeleriacError('the SQLite broker is closed');
  }
}

function wants(spec: SubscriptionSpec, row: LogRow): boolean {
  return spec.exchange.name === row.exchange && bindingMatches(spec.exchange.type, spec.bindingKey, row.routing_key);
}
