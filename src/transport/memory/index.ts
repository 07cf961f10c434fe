/**
 * `memory://[name]`: an in-process broker for tests and demos. Every transport opened with the
 * same URL host in one process shares the same queues, so an app's client and worker see each
 * other. Highest priority first, FIFO within a priority; rejected-without-requeue messages are
 * kept in `deadLetters`; unsettled deliveries go back to their queue when the transport closes.
 */
import { randomUUID } from 'node:crypto';
import { CeleriacError } from '../../errors.ts';
import type { Message } from '../../protocol/message.ts';
import type { Delivery, Transport, TransportCapabilities, TransportOptions } from '../types.ts';

interface Entry {
  message: Message;
  exchange: string;
  routingKey: string;
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

/** One priority-ordered queue: a FIFO array per priority, front restores by unshift. */
class PriorityQueue {
  private readonly buckets = new Map<number, Entry[]>();
  size = 0;

  push(e: Entry, front = false): void {
    let b = this.buckets.get(e.priority);
    if (!b) this.buckets.set(e.priority, (b = []));
    if (front) b.unshift(e);
    else b.push(e);
    this.size++;
  }

  /** The bucket holding the next entry (highest non-empty priority). */
  private best(): Entry[] | undefined {
    let best: Entry[] | undefined;
    let top = -Infinity;
    for (const [p, b] of this.buckets) if (b.length > 0 && p > top) [top, best] = [p, b];
    return best;
  }

  peek(): Entry | undefined {
    return this.best()?.[0];
  }

  shift(): Entry | undefined {
    const e = this.best()?.shift();
    if (e) this.size--;
    return e;
  }

  clear(): number {
    const n = this.size;
    this.buckets.clear();
    this.size = 0;
    return n;
  }
}

class Broker {
  readonly queues = new Map<string, PriorityQueue>();
  readonly deadLetters: MemoryDeadLetter[] = [];
  readonly waiters = new Set<() => void>();
  seq = 0;

  queue(name: string): PriorityQueue {
    let q = this.queues.get(name);
    if (!q) this.queues.set(name, (q = new PriorityQueue()));
    return q;
  }

  put(queue: string, e: Entry, front = false): void {
    this.queue(queue).push(e, front);
    for (const w of [...this.waiters]) w();
  }
}

const brokers = new Map<string, Broker>();

export class MemoryTransport implements Transport {
  readonly url: string;
  readonly capabilities: TransportCapabilities = { delaysEta: false, deadLetters: true };
  private readonly broker: Broker;
  private readonly unsettled = new Map<Entry, string>();
  private closed = false;

  constructor(url: URL, _options: TransportOptions = {}) {
    this.url = `memory://${url.host}`;
    let broker = brokers.get(url.host);
    if (!broker) brokers.set(url.host, (broker = new Broker()));
    this.broker = broker;
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
    this.broker.put(queue, {
      message,
      exchange: route?.exchange ?? '',
      routingKey: route?.routingKey ?? queue,
      deliveryTag: randomUUID(),
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
    return this.broker.queues.get(queue)?.clear() ?? 0;
  }

  async size(queue: string): Promise<number> {
    return this.broker.queues.get(queue)?.size ?? 0;
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
    const qs = [...new Set(queues)].map((n) => [n, this.broker.queues.get(n)] as const);
    const out: Delivery[] = [];
    while (out.length < max) {
      let pick: readonly [string, PriorityQueue] | undefined;
      let head: Entry | undefined;
      for (const [name, q] of qs) {
        const h = q?.peek();
        if (h && (!head || h.priority > head.priority || (h.priority === head.priority && h.seq < head.seq))) {
          [pick, head] = [[name, q!], h];
        }
      }
      if (!pick) break;
      out.push(this.deliver(pick[0], pick[1].shift()!));
    }
    return out;
  }

  private deliver(queue: string, e: Entry): Delivery {
    this.unsettled.set(e, queue);
    const settle = async (fn: () => void): Promise<void> => {
      if (!this.unsettled.delete(e)) return; // settled already, or given back by close()
      fn();
    };
    return {
      message: e.message,
      info: { exchange: e.exchange, routingKey: e.routingKey, redelivered: e.redelivered, priority: e.priority },
      deliveryTag: e.deliveryTag,
      queue,
      ack: () => settle(() => {}),
      reject: (requeue, reason) => settle(() => {
        if (requeue) this.broker.put(queue, { ...e, seq: this.broker.seq++, redelivered: true });
        else this.broker.deadLetters.push({ queue, message: e.message, reason: reason ?? null, time: new Date() });
      }),
      restore: () => settle(() => this.broker.put(queue, { ...e, redelivered: true }, true)),
    };
  }
}

export function createMemoryTransport(url: URL, options: TransportOptions): Transport {
  return new MemoryTransport(url, options);
}
