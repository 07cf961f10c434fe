/**
 * Pull-style fetch over AMQP push consumers: one basic.consume (no_ack=false) per fetched queue
 * on the session's `con` channel, deliveries kept in arrival order in a local buffer, and a fetch
 * takes at most `max` of them.
 *
 * Prefetch (basic.qos, global as Celery sets it) is what the caller still holds plus what it asks
 * for: the worker's `max` is the room in its window, so this stays at Celery's prefetch count
 * (concurrency × multiplier), and grows by the ETA tasks a worker holds without counting them,
 * as Celery raises its QoS for them. The buffer never holds more than that, and a fetch never
 * returns more than asked.
 *
 * The consumed queues follow the latest fetch: a queue no longer asked for is cancelled and its
 * buffered deliveries requeued. After a reconnection the same queues are consumed again.
 *
 * Quorum (and stream) queues refuse consumers on a channel with global QoS, closing the whole
 * connection: then the prefetch becomes per consumer (global=false, as Celery 5.5 does for them)
 * from the next connection on. A per-consumer prefetch only applies to consumers started after
 * it is set, so in that mode it is not raised for held messages.
 */
import type { ConsumeMessage } from 'amqplib';
import { ChannelAcks } from './acks.ts';
import type { Session } from './connection.ts';

export interface Arrival {
  s: Session;
  queue: string;
  msg: ConsumeMessage;
}

const MAX_PREFETCH = 65535;

export class Consumer {
  private buffer: Arrival[] = [];
  /** Queues consumed, across sessions. */
  private readonly queues = new Set<string>();
  /** Consumer tags on `session`, by queue. */
  private tags = new Map<string, string>();
  private session: Session | undefined;
  private prefetch = 0;
  private lastMax = 1;
  /** Deliveries of `session` handed to callers and not settled yet. */
  private handedOut = 0;
  private readonly waiters = new Set<() => void>();
  private tail: Promise<unknown> = Promise.resolve();
  private globalQos = true;
  private readonly acks = new WeakMap<Session, ChannelAcks>();

  constructor(
    /** Declare a queue before consuming it (once per session). */
    private readonly ensureQueue: (s: Session, queue: string) => Promise<void>,
    /** RabbitMQ cancelled a consumer (its queue was deleted). */
    private readonly onCancelled: (s: Session, queue: string) => void,
    private readonly warn: (msg: string) => void,
  ) {}

  /** A new session: consume the same queues again (deliveries of the old one are gone). */
  async resume(s: Session): Promise<void> {
    this.session = s;
    this.tags = new Map();
    this.handedOut = 0;
    this.prefetch = 0;
    this.buffer = this.buffer.filter((a) => a.s === s);
    if (this.queues.size === 0) return;
    await this.setPrefetch(s, this.lastMax);
    for (const q of this.queues) await this.start(s, q);
  }

  lost(s: Session): void {
    this.buffer = this.buffer.filter((a) => a.s !== s);
    if (this.session === s) {
      this.session = undefined;
      this.handedOut = 0;
    }
    this.wake();
  }

  /** Acknowledge a handed-out delivery (batched per turn: acks.ts). */
  ack(s: Session, msg: ConsumeMessage): Promise<void> {
    return this.acksOf(s).ack(msg);
  }

  /** Send this turn's acks now; those of a lost session have no channel left to go to. */
  flushAcks(): void {
    if (this.session) this.acks.get(this.session)?.flush();
  }

  private acksOf(s: Session): ChannelAcks {
    let acks = this.acks.get(s);
    if (!acks) this.acks.set(s, (acks = new ChannelAcks(s.con, () => s.alive)));
    return acks;
  }

  /** A handed-out delivery was settled (or given up). */
  release(s: Session): void {
    if (s === this.session && this.handedOut > 0) this.handedOut--;
  }

  async fetch(s: Session, names: string[], max: number, timeoutMs: number, signal?: AbortSignal): Promise<Arrival[]> {
    await this.serial(() => this.follow(s, names, max));
    let got = this.take(s, names, max);
    if (timeoutMs <= 0) {
      // Nothing to wait for, but what the broker already pushed must count: see barrier().
      if (got.length < max && s.alive) {
        await this.serial(() => this.barrier(s, names));
        got = got.concat(this.take(s, names, max - got.length));
      }
      return got;
    }
    const deadline = Date.now() + timeoutMs;
    while (got.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0 || signal?.aborted || !s.alive) break;
      await this.arrival(left, signal);
      got = this.take(s, names, max);
    }
    return got;
  }

  /**
   * Requeue a handed-out delivery so that it is the next one of its queue. Its consumer is
   * cancelled first: RabbitMQ frees the prefetch slot and requeues through different paths, so a
   * live consumer could be pushed the following message before the requeued one is back. The
   * next fetch consumes the queue again.
   */
  requeue(s: Session, queue: string, msg: ConsumeMessage): Promise<void> {
    return this.serial(async () => {
      if (!s.alive) return;
      const tag = this.tags.get(queue);
      if (tag !== undefined && s === this.session) {
        this.tags.delete(queue);
        await s.con.cancel(tag);
        this.nackBuffered(s, queue);
      }
      this.acksOf(s).nack(msg, true);
    });
  }

  /** Cancel the consumers and requeue what was never handed out. */
  async close(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    this.wake();
    if (!s?.alive) return;
    for (const tag of this.tags.values()) await s.con.cancel(tag).catch(() => undefined);
    for (const a of this.buffer) if (a.s === s) this.nack(a);
    this.buffer = [];
  }

  private async follow(s: Session, names: string[], max: number): Promise<void> {
    if (s !== this.session) throw new Error('AMQP connection lost');
    for (const q of [...this.queues]) if (!names.includes(q)) await this.stop(s, q);
    this.lastMax = max;
    await this.setPrefetch(s, this.handedOut + max);
    for (const q of names) {
      if (this.tags.has(q)) continue;
      this.queues.add(q);
      await this.start(s, q);
    }
  }

  private async setPrefetch(s: Session, n: number): Promise<void> {
    const want = Math.max(1, Math.min(n, MAX_PREFETCH));
    if (want === this.prefetch) return;
    await s.con.prefetch(want, this.globalQos);
    this.prefetch = want;
  }

  private async start(s: Session, queue: string): Promise<void> {
    await this.ensureQueue(s, queue);
    let tag: string | undefined; // deliveries can arrive before consume() resolves
    const reply = await s.con.consume(queue, (msg) => this.arrived(s, queue, () => tag, msg), { noAck: false }).catch((err: unknown) => {
      if (this.globalQos && /global qos/i.test(s.reason?.message ?? '')) {
        this.globalQos = false;
        this.warn(`queue ${JSON.stringify(queue)} does not support global QoS (a quorum or stream queue): prefetch is set per consumer from now on`);
      }
      throw err;
    });
    tag = reply.consumerTag;
    this.tags.set(queue, tag);
  }

  private arrived(s: Session, queue: string, tag: () => string | undefined, msg: ConsumeMessage | null): void {
    if (msg === null) {
      // RabbitMQ cancelled the consumer (queue deleted): the next fetch declares and consumes again.
      if (this.tags.get(queue) === tag()) this.tags.delete(queue);
      this.onCancelled(s, queue);
      return;
    }
    if (!s.alive) return;
    this.acksOf(s).delivered(msg);
    this.buffer.push({ s, queue, msg });
    this.wake();
  }

  private async stop(s: Session, queue: string): Promise<void> {
    this.queues.delete(queue);
    const tag = this.tags.get(queue);
    this.tags.delete(queue);
    if (tag !== undefined) await s.con.cancel(tag);
    this.nackBuffered(s, queue);
  }

  /** After cancel-ok nothing more arrives for the queue: give back what it buffered. */
  private nackBuffered(s: Session, queue: string): void {
    this.buffer = this.buffer.filter((a) => {
      if (a.queue !== queue || a.s !== s) return true;
      this.nack(a);
      return false;
    });
  }

  /**
   * Make everything RabbitMQ has decided to push so far arrive: a queue.declare (passive) on the
   * consumer channel is answered by each queue after it handled our earlier acks and pushed what
   * they allowed, and a basic.qos after it is only answered once those deliveries (queued on
   * the channel before it) were written. Used by fetches that do not wait.
   */
  private async barrier(s: Session, names: string[]): Promise<void> {
    if (!s.alive) return;
    for (const q of names) await s.con.checkQueue(q);
    await s.con.prefetch(this.prefetch, this.globalQos);
  }

  private take(s: Session, names: string[], max: number): Arrival[] {
    const out: Arrival[] = [];
    if (max < 1 || this.buffer.length === 0) return out;
    this.buffer = this.buffer.filter((a) => {
      if (a.s !== s || !s.alive) return a.s.alive;
      if (out.length >= max || !names.includes(a.queue)) return true;
      out.push(a);
      return false;
    });
    this.handedOut += out.length;
    return out;
  }

  private arrival(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  private nack(a: Arrival): void {
    try {
      this.acksOf(a.s).nack(a.msg, true);
    } catch {
      // The channel is gone: RabbitMQ requeues everything unacknowledged on it anyway.
    }
  }

  /** Consumer bookkeeping (qos, consume, cancel) one step at a time. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn);
    this.tail = run.catch(() => undefined);
    return run;
  }
}
