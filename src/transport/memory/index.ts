/**
 * `memory://[name]`: an in-process broker for tests and demos. Every transport opened with the
 * same URL host in one process shares the same queues, so an app's client and worker see each
 * other. Highest priority first, FIFO within a priority; rejected-without-requeue messages are
 * kept in `deadLetters`; unsettled deliveries go back to their queue when the transport closes.
 */
import { randomUUID } from 'node:crypto';
import { CeleriacError } from '../../errors.ts';
import { fromEnvelope, toEnvelope } from '../../protocol/envelope.ts';
import type { Message } from '../../protocol/message.ts';
import { MemoryBroadcasting } from './broadcast.ts';
import type { Delivery, Transport, TransportCapabilities, TransportOptions } from '../types.ts';

/** Held as the kombu envelope string, so consumers get a copy exactly as from a real broker. */
interface Entry {
  envelope: string;
  deliveryTag: string;
  priority: number;
  seq: number;
  redelivered: boolean;
}

export interface MemoryDeadLetter {
  queue: string;
  message: Message;
  reason: string | null;
  time: Date;
}

/** Queues are arrays kept sorted by priority (highest first), FIFO within a priority. */
function insert(q: Entry[], e: Entry, front: boolean): void {
  // Binary search: before the first entry of lower priority (or, for front, of lower-or-equal).
  let [lo, hi] = [0, q.length];
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const p = q[mid]!.priority;
    if (p > e.priority || (!front && p === e.priority)) lo = mid + 1;
    else hi = mid;
  }
  q.splice(lo, 0, e);
}

class Broker {
  readonly queues = new Map<string, Entry[]>();
  readonly broadcast = new MemoryBroadcasting();
  readonly deadLetters: MemoryDeadLetter[] = [];
  readonly waiters = new Set<() => void>();
  seq = 0;

  queue(name: string): Entry[] {
    let q = this.queues.get(name);
    if (!q) this.queues.set(name, (q = []));
    return q;
  }

  put(queue: string, e: Entry, front = false): void {
    insert(this.queue(queue), e, front);
    for (const w of [...this.waiters]) w();
  }
}

const brokers = new Map<string, Broker>();

export class MemoryTransport implements Transport {
  readonly url: string;
  readonly capabilities: TransportCapabilities = { delaysEta: false, deadLetters: true };
  private readonly broker: Broker;
  readonly broadcast: MemoryBroadcasting;
  private readonly unsettled = new Map<Entry, string>();
  private closed = false;

  constructor(url: URL, _options: TransportOptions = {}) {
    this.url = `memory://${url.host}`;
    let broker = brokers.get(url.host);
    if (!broker) brokers.set(url.host, (broker = new Broker()));
    this.broker = broker;
    this.broadcast = broker.broadcast;
  }

  /** Messages rejected without requeue on this broker (shared by its transports). */
  get deadLetters(): readonly MemoryDeadLetter[] {
    return this.broker.deadLetters;
  }

  async declareQueue(queue: string): Promise<void> {
    this.broker.queue(queue);
  }

  async publish(queue: string, message: Message, route?: { exchange?: string; routingKey?: string }): Promise<void> {
    if (this.closed) throw new CeleriacError(`transport ${this.url} is closed`);
    const p = Number(message.properties.priority);
    const deliveryTag = randomUUID();
    this.broker.put(queue, {
      envelope: toEnvelope(message, { exchange: route?.exchange ?? '', routingKey: route?.routingKey ?? queue, deliveryTag }),
      deliveryTag,
      priority: Number.isFinite(p) ? Math.trunc(p) : 0,
      seq: this.broker.seq++,
      redelivered: false,
    });
  }

  async fetch(queues: readonly string[], max: number, timeoutMs: number, signal?: AbortSignal): Promise<Delivery[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.closed || signal?.aborted) return [];
      const got = this.take(queues, max);
      if (got.length > 0) return got;
      const left = deadline - Date.now();
      if (left <= 0) return [];
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.broker.waiters.delete(done);
          signal?.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, left);
        this.broker.waiters.add(done);
        signal?.addEventListener('abort', done, { once: true });
      });
    }
  }

  async purge(queue: string): Promise<number> {
    return this.broker.queues.get(queue)?.splice(0).length ?? 0;
  }

  async size(queue: string): Promise<number> {
    return this.broker.queues.get(queue)?.length ?? 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const [e, queue] of this.unsettled) this.broker.put(queue, { ...e, redelivered: true }, true);
    this.unsettled.clear();
    for (const w of [...this.broker.waiters]) w();
  }

  /** Best head across the queues (priority, then publish order), until `max` are taken. */
  private take(queues: readonly string[], max: number): Delivery[] {
    const qs = [...new Set(queues)].map((name) => ({ name, q: this.broker.queue(name) }));
    const out: Delivery[] = [];
    while (out.length < max) {
      let best: { name: string; q: Entry[] } | undefined;
      for (const c of qs) {
        const [h, b] = [c.q[0], best?.q[0]];
        if (h && (!b || h.priority > b.priority || (h.priority === b.priority && h.seq < b.seq))) best = c;
      }
      if (!best) break;
      out.push(this.deliver(best.name, best.q.shift()!));
    }
    return out;
  }

  private deliver(queue: string, e: Entry): Delivery {
    this.unsettled.set(e, queue);
    const settle = async (fn: () => void): Promise<void> => {
      if (!this.unsettled.delete(e)) return; // settled already, or given back by close()
      fn();
    };
    const { message, delivery, properties } = fromEnvelope(e.envelope);
    return {
      message,
      info: { ...delivery, redelivered: e.redelivered, priority: e.priority },
      properties,
      deliveryTag: e.deliveryTag,
      queue,
      ack: () => settle(() => {}),
      reject: (requeue, reason) => settle(() => {
        if (requeue) this.broker.put(queue, { ...e, seq: this.broker.seq++, redelivered: true });
        else this.broker.deadLetters.push({ queue, message, reason: reason ?? null, time: new Date() });
      }),
      restore: () => settle(() => this.broker.put(queue, { ...e, redelivered: true }, true)),
    };
  }
}

export function createMemoryTransport(url: URL, options: TransportOptions): Transport {
  return new MemoryTransport(url, options);
}
