/**
 * The Redis broker, wire-compatible with kombu 5's Redis transport: Python Celery workers and
 * clients share queues, `unacked` bookkeeping and the visibility-timeout restore with celeriac.
 * URLs: see connection.ts. Transport options (code or URL query):
 *   visibility_timeout     seconds before another consumer restores an unacknowledged message (3600)
 *   global_keyprefix       prefix of every broker key ("")
 *   queue_order_strategy   round_robin (default) | priority | sorted, as kombu
 *   priority_steps         [0, 3, 6, 9]; priority p goes to the list of the largest step ≤ p, and
 *                          LOWER steps are consumed first (kombu's order, the reverse of AMQP)
 *   sep                    "\x06\x16"; unacked_mutex_expire (300 s); unacked_restore_limit (none)
 *   fanout_prefix          true: pub/sub channels are "/<db>.<exchange>" (default), false: "<exchange>",
 *                          or a string with "{db}" (kombu's keyprefix_fanout)
 *   fanout_patterns        true (default): the routing key is part of the channel name
 *   logger                 { warning(msg), info(msg) } for connection trouble (default: stderr)
 *
 * Beyond kombu: a fetch takes messages and records them in `unacked` in one Lua script, so a
 * consumer killed at any instant loses nothing (kombu's BRPOP-then-record can); the script does not
 * decode envelopes, and records them under tags of its own, restored to the queue they came from
 * (fetch.lua); idle waiting never pops (wakeup.ts); reject(false) keeps a dead letter on the list
 * `<queue>.celeriac.dead` (JSON {reason, queue, time, delivery_tag, envelope}); settling twice does
 * nothing, and a restore or reject of a message no longer in `unacked` (restored by a visibility
 * pass) pushes nothing. Acks issued in one tick share one script run. Acks, rejects and restores
 * outlive a connection loss or a Redis restart (retried until they reach Redis, within the
 * visibility timeout), so a message the worker settled is not delivered again. As in kombu,
 * restored and requeued messages go to the queue's step-0 list whatever their priority, and
 * capabilities.delaysEta is false (the worker holds ETA tasks unacknowledged, so an ETA beyond
 * visibility_timeout is delivered again).
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { CeleriacError } from '../../errors.ts';
import { envelopeBytes, fromEnvelope, toEnvelope, undecodableMessage } from '../../protocol/envelope.ts';
import { dumps } from '../../protocol/json.ts';
import type { DeliveryInfo, Message } from '../../protocol/message.ts';
import type { Binding, Broadcasting, DeadLetters, Delivery, Transport, TransportCapabilities, TransportOptions } from '../types.ts';
import { waitReady } from './startup.ts';
import { closeClient, lineLogger, transientError, maskUrl, mergeOptions, numberOption, OutageLog, redisOptions, subscriberOptions } from './connection.ts';
import { markRedelivered } from './envelope-edit.ts';
import { RedisBroadcasting } from './broadcast.ts';
import { booleanOption, fanoutPrefix, KombuKeys, parseQueueOrder, parseSteps, type QueueOrder } from './keys.ts';
import { restoreLost, restoreVisible, type RestoreOptions } from './restore.ts';
import { type FetchReply, type ScriptedRedis, withScripts } from './scripts.ts';
import { type Held, RedisDelivery, type Settler } from './delivery.ts';
import { PushBatch } from './pushes.ts';
import { Wakeup } from './wakeup.ts';
import { TickBatch } from '../../common/tick-batch.ts';

const RESTORE_EVERY_MS = 10_000;
/** Envelopes from this size on are written and kept as bytes (envelopeBytes, fromEnvelope). */
const LARGE_ENVELOPE = 64 * 1024;
const SAFETY_POLL_MS = 1000;
const MAX_BACKOFF_MS = 50;
/** Most messages one script run takes: keeps each run short (Redis runs nothing else meanwhile). */
const MAX_PER_SCRIPT = 500;
/** Envelopes one fetch script returns at most, in bytes, when the caller sets no limit (one message, whatever its size, still comes). */
const MAX_SCRIPT_BYTES = 32 * 1024 * 1024;
/** Tags per ack script run: they are unpacked onto Lua's stack, which holds a few thousand. */
const MAX_ACKS_PER_SCRIPT = 2000;

export class RedisTransport implements Transport {
  readonly url: string;
  readonly capabilities: TransportCapabilities = { delaysEta: false, deadLetters: true, maxFetch: MAX_PER_SCRIPT };
  readonly keys: KombuKeys;
  readonly client: ScriptedRedis;
  /** Events and remote control (broadcast.ts). */
  readonly broadcast: Broadcasting;
  private readonly broadcasting: RedisBroadcasting;
  private readonly restoreOptions: RestoreOptions;
  private readonly order: QueueOrder;
  private readonly wake: Wakeup;
  private readonly pushes: PushBatch;
  private readonly declared = new Set<string>();
  private readonly held = new Map<string, Held>();
  private cycle: string[] = [];
  /** The last fetch took an envelope of LARGE_ENVELOPE bytes or more. */
  private largeSeen = false;
  /** The wake-up generation before the fetch script that left these lists empty: a change after it is told. */
  private emptied: { generation: number; lists: string } | undefined;
  /** Acks of one turn share one script run and one promise. */
  private readonly acks = new TickBatch<string>((tags) => this.sendAcks(tags));
  private lastRestore = 0;
  private closed = false;
  private keepAlive: NodeJS.Timeout | undefined;
  /** The worker hostname recorded with each fetched message (workerRestoreLost), or "". */
  private holder = '';
  /** kombu's connect_timeout (Celery's broker_connection_timeout), in ms. */
  private readonly connectTimeoutMs: number;

  constructor(url: URL, options: TransportOptions = {}) {
    const opts = mergeOptions(url, options);
    this.url = maskUrl(url);
    const connection = redisOptions(url, opts);
    const sep = typeof opts.sep === 'string' && opts.sep ? opts.sep : undefined;
    this.keys = new KombuKeys(
      String(opts.global_keyprefix ?? ''), sep, parseSteps(opts.priority_steps),
      fanoutPrefix(opts.fanout_prefix, connection.db ?? 0), booleanOption('fanout_patterns', opts.fanout_patterns, true),
    );
    this.order = parseQueueOrder(opts.queue_order_strategy);
    const limit = numberOption('unacked_restore_limit', opts.unacked_restore_limit, 0);
    this.restoreOptions = {
      visibilityTimeoutS: numberOption('visibility_timeout', opts.visibility_timeout ?? opts.visibilityTimeout, 3600),
      mutexExpireS: numberOption('unacked_mutex_expire', opts.unacked_mutex_expire, 300),
      limit: limit > 0 ? Math.floor(limit) : undefined,
    };
    this.connectTimeoutMs = numberOption('connect_timeout', opts.connect_timeout, 4) * 1000;
    const log = lineLogger(opts.logger);
    const outage = new OutageLog(`redis broker ${this.url}`, log, this.url);
    this.client = withScripts(outage.watch(new Redis(connection)));
    this.pushes = new PushBatch(this.client, this.keys);
    this.wake = new Wakeup(
      this.client,
      () => outage.watch(new Redis({ ...subscriberOptions(connection), autoResubscribe: false, maxRetriesPerRequest: 1 })),
      (reason) => log.info(`redis broker ${this.url}: no key-change notifications (${reason}); idle consumers poll every ${MAX_BACKOFF_MS} ms`),
    );
    this.broadcast = this.broadcasting = new RedisBroadcasting({
      client: this.client,
      keys: this.keys,
      connect: () => outage.watch(new Redis(subscriberOptions(connection))),
      pushed: () => this.wake.notify(),
      log,
    });
  }

  connect(timeoutMs: number): Promise<void> {
    return waitReady(this.client, timeoutMs, true);
  }

  async declareQueue(queue: string): Promise<void> {
    this.assertOpen();
    if (this.client.status !== 'ready') await waitReady(this.client, this.connectTimeoutMs);
    // kombu binds the queue to the direct exchange of the same name, routing key = queue name.
    await this.client.sadd(this.keys.binding(queue), this.keys.bindingMember(queue, '', queue));
    this.declared.add(queue);
  }

  /** kombu's bindings: the `_kombu.binding.<exchange>` sets. */
  async listBindings(): Promise<Binding[]> {
    this.assertOpen();
    const head = this.keys.binding('');
    const out: Binding[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await this.client.scan(cursor, 'MATCH', `${head.replace(/[*?[\]\\]/g, '\\$&')}*`, 'COUNT', 1000);
      for (const key of keys) {
        for (const member of await this.client.smembers(key)) {
          const [routingKey = '', , queue = ''] = member.split(this.keys.sep);
          out.push({ queue, exchange: key.slice(head.length), routingKey });
        }
      }
      cursor = next;
    } while (cursor !== '0');
    return out;
  }

  async publish(queue: string, message: Message, route?: { exchange?: string; routingKey?: string }): Promise<void> {
    this.assertOpen();
    // Not connected: fail within the connection timeout with the reason, not ioredis' retry error.
    if (this.client.status !== 'ready') await waitReady(this.client, this.connectTimeoutMs);
    if (!this.declared.has(queue)) await this.declareQueue(queue); // once per queue, as kombu's producer
    const target = { exchange: route?.exchange ?? '', routingKey: route?.routingKey ?? queue, deliveryTag: randomUUID() };
    const envelope = message.body.length * (4 / 3) >= LARGE_ENVELOPE ? envelopeBytes(message, target) : toEnvelope(message, target);
    await this.pushes.push(this.keys.list(queue, this.keys.step(message.properties.priority)), envelope);
    this.wake.notify();
  }


  async fetch(queues: readonly string[], max: number, timeoutMs: number, signal?: AbortSignal, maxBytes = Infinity): Promise<Delivery[]> {
    const names = [...new Set(queues)];
    if (this.closed || signal?.aborted || names.length === 0 || max < 1) return [];
    this.keepAlive ??= this.startKeepAlive();
    const deadline = Date.now() + timeoutMs;
    let pause = 1;
    for (;;) {
      // No await unless there is something to wait for: a fetch sent ahead of a batch leaves before the batch runs.
      const restoring = this.maybeRestoreVisible();
      if (restoring) await restoring;
      this.acks.flush();
      if (this.closed || signal?.aborted) return [];
      const since = this.wake.generation;
      const watching = this.wake.watch(this.keys.lists(names));
      const notified = typeof watching === 'boolean' ? watching : await watching;
      if (this.closed) return [];
      const lists = names.join('\0');
      // The last fetch left these lists empty and nothing has changed them since: wait for a change
      // (once: the safety poll still runs the script).
      const emptied = notified && this.emptied?.generation === since && this.emptied.lists === lists;
      this.emptied = undefined;
      const asked = Math.min(Math.floor(max), MAX_PER_SCRIPT);
      const got = emptied ? { deliveries: [], capped: false } : await this.take(names, asked, maxBytes);
      if (got.deliveries.length > 0) {
        if (got.deliveries.length < asked && !got.capped && notified) this.emptied = { generation: since, lists };
        return got.deliveries;
      }
      const left = deadline - Date.now();
      if (left <= 0) return [];
      await this.wake.wait(Math.min(left, notified ? SAFETY_POLL_MS : pause), since, signal);
      pause = Math.min(pause * 2, MAX_BACKOFF_MS);
    }
  }

  flushAcks(): void {
    this.acks.flush();
  }

  async purge(queue: string): Promise<number> {
    this.assertOpen();
    const multi = this.client.multi();
    for (const step of this.keys.steps) multi.llen(this.keys.list(queue, step)).del(this.keys.list(queue, step));
    const replies = settled(await multi.exec());
    return replies.filter((_, i) => i % 2 === 0).reduce((n: number, v) => n + Number(v), 0);
  }

  async listDeadLetters(queue: string, limit: number): Promise<DeadLetters> {
    this.assertOpen();
    const key = this.keys.dead(queue);
    const [count, raw] = await Promise.all([this.client.llen(key), limit > 0 ? this.client.lrange(key, 0, limit - 1) : Promise.resolve([])]);
    return { count, items: raw.map(deadRecordInfo) };
  }

  async size(queue: string): Promise<number> {
    this.assertOpen();
    const pipe = this.client.pipeline();
    for (const step of this.keys.steps) pipe.llen(this.keys.list(queue, step));
    return settled(await pipe.exec()).reduce((n: number, v) => n + Number(v), 0);
  }

  recordHolder(holder: string): void {
    this.holder = holder;
  }

  async restoreLost(holder: string): Promise<number> {
    this.assertOpen();
    return this.woken(await restoreLost(this.client, this.keys, holder));
  }

  /** Run the visibility-timeout restore now (it also runs at the first fetch and every 10 s while fetching). */
  async restoreVisible(): Promise<number> {
    this.assertOpen();
    return this.woken(await restoreVisible(this.client, this.keys, this.restoreOptions));
  }

  /** Our own pushes into our lists are not told to us (wakeup.ts): wake our waiting fetches here. */
  private woken(restored: number): number {
    if (restored > 0) this.wake.notify();
    return restored;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.keepAlive);
    this.acks.flush();
    await this.acks.settled();
    // kombu's restore_at_shutdown: what we hold goes back to the front, in its original order.
    for (const h of [...this.held.values()].reverse()) {
      await this.move(h, [this.keys.list(h.queue)], markRedelivered(h.raw.toString()), 'RPUSH').catch(() => 0);
    }
    this.held.clear();
    await this.broadcasting.close();
    this.wake.close();
    await closeClient(this.client);
  }

  /**
   * While this consumer lives, the messages it holds (running, waiting for their ETA or a slot) get
   * a fresh delivery time in `unacked_index`, several times per visibility timeout: no restore, ours
   * or kombu's, gives a live worker's long task to another worker. A dead consumer stops refreshing,
   * and its messages come back after the timeout as before.
   */
  private startKeepAlive(): NodeJS.Timeout {
    const every = Math.max(250, Math.min((this.restoreOptions.visibilityTimeoutS * 1000) / 4, 60_000));
    const timer = setInterval(() => void this.refreshHeld().catch(() => undefined), every);
    timer.unref();
    return timer;
  }

  private async refreshHeld(): Promise<void> {
    if (this.held.size === 0 || this.closed) return;
    const now = (Date.now() / 1000).toFixed(6);
    const tags = [...this.held.keys()];
    for (let i = 0; i < tags.length; i += 1000) {
      // XX: a message settled meanwhile is not put back in the index.
      await this.client.zadd(this.keys.unackedIndex, 'XX', ...tags.slice(i, i + 1000).flatMap((t) => [now, t]));
    }
  }

  private maybeRestoreVisible(): Promise<unknown> | undefined {
    const now = Date.now();
    if (now - this.lastRestore < RESTORE_EVERY_MS || this.closed) return undefined;
    this.lastRestore = now;
    // A failure here (connection) shows up in the fetch script right after.
    return restoreVisible(this.client, this.keys, this.restoreOptions).catch(() => 0);
  }

  /** One fetch script run over the queues in round-robin order; `capped`: it stopped at `maxBytes`. */
  private async take(names: string[], max: number, maxBytes: number): Promise<{ deliveries: Delivery[]; capped: boolean }> {
    this.acks.flush();
    const order = this.queueOrder(names);
    const lists = this.keys.lists(order);
    const id = randomUUID();
    // After a large envelope, replies come as bytes: a large one stays bytes (fromEnvelope reads
    // its body from them), the others become text as ioredis would have made them.
    const fetch = this.largeSeen ? this.client.celeriacFetchBuffer : this.client.celeriacFetch;
    const [header, ...envelopes]: FetchReply = await fetch.call(this.client,
      4 + lists.length, this.keys.unacked, this.keys.unackedIndex, this.keys.fetchRecord(id), this.keys.holders(), ...lists,
      max, (Date.now() / 1000).toFixed(6), order.length, this.order === 'round_robin' ? '1' : '0', id, this.holder,
      Number.isFinite(maxBytes) ? Math.max(1, Math.floor(maxBytes)) : MAX_SCRIPT_BYTES, ...order,
    );
    const head = header.toString();
    const capped = head[0] === '1';
    const queueIndexes = order.length > 1 ? head.slice(2).split(',') : undefined;
    this.largeSeen = envelopes.some((raw) => raw !== null && raw.length >= LARGE_ENVELOPE);
    const deliveries: Delivery[] = [];
    for (let i = 0; i < envelopes.length; i++) {
      const raw = envelopes[i];
      if (raw == null) continue; // acknowledged since (a re-sent fetch)
      const queue = order[queueIndexes ? Number(queueIndexes[i]) - 1 : 0]!;
      if (this.order === 'round_robin' && this.cycle.at(-1) !== queue) this.cycle = [...this.cycle.filter((q) => q !== queue), queue];
      deliveries.push(this.toDelivery({ tag: `${id}-${i + 1}`, queue, raw: typeof raw === 'string' || raw.length >= LARGE_ENVELOPE ? raw : raw.toString() }));
    }
    return { deliveries, capped };
  }

  /** kombu's cycles: round robin rotates a queue to the end after a pop from it; sorted is alphabetical. */
  private queueOrder(names: string[]): string[] {
    if (this.order === 'sorted') return [...names].sort();
    if (this.order === 'priority') return names;
    this.cycle = [...this.cycle.filter((q) => names.includes(q)), ...names.filter((q) => !this.cycle.includes(q))];
    return this.cycle;
  }

  private toDelivery(h: Held): Delivery {
    let message: Message;
    let info: DeliveryInfo;
    let properties: Record<string, unknown> | undefined;
    try {
      const d = fromEnvelope(h.raw);
      message = d.message;
      info = d.delivery;
      properties = d.properties;
    } catch (err) {
      // Still recorded in unacked: hand it to the worker, which rejects it into the dead letters.
      message = undecodableMessage(h.raw, err);
      info = { exchange: '', routingKey: h.queue, redelivered: false };
    }
    this.held.set(h.tag, h);
    return new RedisDelivery(this.settler, h, message, info, properties);
  }

  /** What deliveries call when settled: one object per transport, not closures per delivery. */
  private readonly settler: Settler = {
    release: (h) => void this.held.delete(h.tag),
    ack: (h) => this.ack(h.tag),
    requeue: async (h, push) => this.move(h, [this.keys.list(h.queue)], markRedelivered(h.raw.toString()), push),
    deadLetter: async (h, reason) => this.move(h, [this.keys.dead(h.queue)], this.deadRecord(h, reason), 'LPUSH'),
  };

  private deadRecord(h: Held, reason: string | undefined): string {
    return dumps({ reason: reason ?? null, queue: h.queue, time: Date.now() / 1000, delivery_tag: h.tag, envelope: h.raw.toString() });
  }

  private async move(h: Held, lists: string[], payload: string, push: 'RPUSH' | 'LPUSH'): Promise<void> {
    await this.persist(() => this.client.celeriacMove(2 + lists.length, this.keys.unacked, this.keys.unackedIndex, ...lists, h.tag, '', payload, push));
    if (this.holder) await this.client.hdel(this.keys.holders(), h.tag).catch(() => 0);
    if (push === 'RPUSH' || lists[0] !== this.keys.dead(h.queue)) this.wake.notify();
  }

  /**
   * ZREM unacked_index + HDEL unacked (kombu's QoS.ack). The acks go out at the end of their turn,
   * or before a fetch: Redis runs commands in order, and acks queued behind a fetch script would
   * wait for it, and so would the tasks they start.
   */
  private ack(tag: string): Promise<void> {
    return this.acks.add(tag);
  }

  private sendAcks(tags: string[]): Promise<void> {
    return this.persist(async () => {
      for (let i = 0; i < tags.length; i += MAX_ACKS_PER_SCRIPT) {
        await this.client.celeriacAck(3, this.keys.unacked, this.keys.unackedIndex, this.keys.holders(), this.holder ? '1' : '0', ...tags.slice(i, i + MAX_ACKS_PER_SCRIPT));
      }
    });
  }

  /**
   * Run a settlement (ack, reject, restore) until it reaches Redis: through a connection loss or a
   * restart it is retried (100 ms, doubling to 1 s) until it succeeds, the transport closes, or the
   * visibility timeout is over (by then the message is due for redelivery anyway). One given up
   * would leave its message in `unacked`, delivered again although the worker had settled it.
   * Each is idempotent (a tag settles once in Redis).
   */
  private async persist<T>(op: () => Promise<T>): Promise<T> {
    const giveUp = Date.now() + this.restoreOptions.visibilityTimeoutS * 1000;
    for (let delay = 100; ; delay = Math.min(delay * 2, 1000)) {
      try {
        return await op();
      } catch (err) {
        if (this.closed || !transientError(err) || Date.now() + delay > giveUp) throw err;
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new CeleriacError(`transport ${this.url} is closed`);
  }
}


/** The replies of a pipeline or MULTI; throws the first error (connection lost, aborted transaction). */
function settled(replies: [Error | null, unknown][] | null): unknown[] {
  if (!replies) throw new CeleriacError('Redis transaction aborted');
  const failed = replies.find(([err]) => err);
  if (failed) throw failed[0];
  return replies.map(([, v]) => v);
}

export function createRedisTransport(url: URL, options: TransportOptions): Transport {
  return new RedisTransport(url, options);
}

/** The URL schemes this broker serves (see connection.ts). */
export const REDIS_TRANSPORTS = { 'redis:': createRedisTransport, 'rediss:': createRedisTransport, 'redis+socket:': createRedisTransport, 'sentinel:': createRedisTransport } as const;

/** A dead record (deadRecord above) for monitors; a record it cannot read keeps its text as the reason. */
function deadRecordInfo(raw: string): DeadLetters['items'][number] {
  try {
    const r = JSON.parse(raw) as { reason?: unknown; time?: unknown; envelope?: unknown };
    return { reason: typeof r.reason === 'string' ? r.reason : null, time: typeof r.time === 'number' ? r.time : null, envelope: typeof r.envelope === 'string' ? r.envelope : null };
  } catch {
    return { reason: raw.slice(0, 200), time: null, envelope: null };
  }
}
