/**
 * The RabbitMQ broker (AMQP 0-9-1), wire-compatible with Celery 5 / kombu's py-amqp transport:
 * Python and celeriac workers and clients share queues. URLs and options: see options.ts.
 *
 * - declareQueue: what Celery declares (declare.ts); publish declares its queue once per connection.
 * - publish: publisher confirms for every message; resolves once RabbitMQ confirmed it. Properties
 *   and header types as py-amqp sends them (wire.ts); body = the raw serialized bytes. Published
 *   to the default exchange with routing key = queue, as Celery routes by queue; with another
 *   exchange, the queue is bound to it with the routing key first (declare.ts: declareRoute).
 * - fetch: push consumers and a local buffer (consumer.ts). ack → basic.ack, those of one turn
 *   in one frame where they can (acks.ts); reject(true) and
 *   restore → basic.nack requeue: RabbitMQ puts the message back at its original position, as
 *   for Celery's reject/requeue, so it is the next one delivered (consumer.ts: requeue); reject(false) → RabbitMQ dead-letters only through queue
 *   arguments, which Celery's queues do not have: a copy goes to the durable queue
 *   `<queue>.celeriac.dead` with the header `x-celeriac-reason` (confirmed), then the original is
 *   acked. Delivery tags are "<connection generation>.<AMQP delivery tag>".
 * - Connection loss (connection.ts): reconnection with backoff, logged once per outage; queues
 *   and consumers restored. Deliveries of the lost connection settle as no-ops (RabbitMQ delivers
 *   them again); publish waits up to publish_timeout for the broker, and publishes again if the
 *   connection dropped before the confirm; fetch rejects at once while the broker is unreachable.
 * - broadcast: the celeryev / pidbox exchanges and subscriber queues as Celery declares them
 *   (broadcast.ts), subscriptions consumed again after a reconnection.
 * - capabilities: no ETA delay in the broker (the worker holds ETA tasks), dead letters as above;
 *   it pushes: the fetch that gives the worker's room sets the prefetch (consumer.ts).
 */
import { CeleriacError } from '../../errors.ts';
import type { Message } from '../../protocol/message.ts';
import type { DeadLetters, Delivery, Transport, TransportCapabilities, TransportOptions } from '../types.ts';
import { amqpCode, confirmPublish, Link, type Session, withTimeout } from './connection.ts';
import { AmqpBroadcasting } from './broadcast.ts';
import { type Arrival, Consumer } from './consumer.ts';
import { declareDeadLetterQueue, declareRoute, declareTaskQueue, forgetQueue, type DeclareContext } from './declare.ts';
import { type AmqpSettings, amqpSettings } from './options.ts';
import { messageFromAmqp, publishOptions } from './wire.ts';

const NOT_FOUND = 404;
export const DEAD_LETTER_SUFFIX = '.celeriac.dead';
export const REASON_HEADER = 'x-celeriac-reason';

export class AmqpTransport implements Transport {
  readonly url: string;
  readonly capabilities: TransportCapabilities = { delaysEta: false, deadLetters: true, pushes: true };
  readonly settings: AmqpSettings;
  /** celeryev and pidbox exchanges, declared as Celery does (broadcast.ts). */
  readonly broadcast: AmqpBroadcasting;
  private readonly ctx: DeclareContext;
  private readonly link: Link;
  private readonly consumer: Consumer;
  /** Queues declared through this transport, declared again on every new connection. */
  private readonly declared = new Set<string>();
  private readonly routes = new Map<string, [exchange: string, routingKey: string, queue: string]>();
  /** Publishes not confirmed yet: close() lets them finish. */
  private readonly inflight = new Set<Promise<void>>();
  private closed = false;
  private closing: Promise<void> | undefined;

  constructor(url: URL, options: TransportOptions = {}) {
    this.settings = amqpSettings(url, options);
    this.url = this.settings.url;
    this.ctx = { url: this.url, maxPriority: this.settings.maxPriority, log: this.settings.log, warned: new Set() };
    this.consumer = new Consumer((s, q) => this.declareOn(s, q), (s, q) => forgetQueue(s, q), (msg) => this.settings.log.warning(`AMQP broker ${this.url}: ${msg}`));
    this.link = new Link(this.settings, (s) => this.restore(s), (s) => this.consumer.lost(s));
    this.broadcast = new AmqpBroadcasting(this.link, this.ctx, this.settings.publishTimeoutMs, (p) => this.track(p));
  }

  async connect(timeoutMs: number): Promise<void> {
    await this.link.ready(timeoutMs);
  }

  async declareQueue(queue: string): Promise<void> {
    const s = await this.link.ready(this.settings.publishTimeoutMs);
    await this.declareOn(s, queue);
  }

  publish(queue: string, message: Message, route?: { exchange?: string; routingKey?: string }): Promise<void> {
    return this.track(this.publishConfirmed(queue, message, route));
  }

  private track(p: Promise<void>): Promise<void> {
    this.inflight.add(p);
    const forget = () => void this.inflight.delete(p);
    p.then(forget, forget);
    return p;
  }

  private async publishConfirmed(queue: string, message: Message, route?: { exchange?: string; routingKey?: string }): Promise<void> {
    const exchange = route?.exchange ?? '';
    // Celery routes by queue through the default exchange, where the routing key must be the queue name.
    const routingKey = exchange === '' ? queue : route?.routingKey ?? queue;
    const content = message.body;
    const options = publishOptions(message);
    const deadline = Date.now() + this.settings.publishTimeoutMs;
    for (;;) {
      const s = await this.link.ready(Math.max(1, deadline - Date.now()));
      try {
        await this.declareOn(s, queue);
        if (exchange !== '') await this.routeOn(s, exchange, routingKey, queue);
        await confirmPublish(s, exchange, routingKey, content, options);
        return;
      } catch (err) {
        // Lost before the confirm: the broker may or may not have it; publish again (at least once).
        if (s.alive || this.closed) throw err;
      }
    }
  }

  async fetch(queues: readonly string[], max: number, timeoutMs: number, signal?: AbortSignal): Promise<Delivery[]> {
    const names = [...new Set(queues)];
    if (this.closed || signal?.aborted || names.length === 0 || max < 1) return [];
    const s = await this.link.now();
    let got: Arrival[];
    try {
      got = await this.consumer.fetch(s, names, Math.floor(max), timeoutMs, signal);
    } catch (err) {
      if (s.alive) throw err;
      throw new CeleriacError(`AMQP broker ${this.url}: connection lost while fetching (${(s.reason ?? (err as Error)).message}); reconnecting`);
    }
    return got.map((a) => this.toDelivery(a));
  }

  flushAcks(): void {
    this.consumer.flushAcks();
  }

  async purge(queue: string): Promise<number> {
    const s = await this.link.ready(this.settings.publishTimeoutMs);
    return this.orZero(s.admin((ch) => ch.purgeQueue(queue)));
  }

  /** The count only: reading a dead letter off a RabbitMQ queue would need taking it. */
  async listDeadLetters(queue: string): Promise<DeadLetters> {
    return { count: await this.size(queue + DEAD_LETTER_SUFFIX), items: [] };
  }

  async size(queue: string): Promise<number> {
    const s = await this.link.ready(this.settings.publishTimeoutMs);
    return this.orZero(s.admin((ch) => ch.checkQueue(queue)));
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await withTimeout(Promise.allSettled(this.inflight), 5000).catch(() => undefined);
      this.closed = true;
      this.broadcast.close();
      await withTimeout(this.consumer.close(), 2000).catch(() => undefined);
      await this.link.close();
    })();
    return this.closing;
  }

  /** The declarations of this transport, again on a new connection; then its consumers. */
  private async restore(s: Session): Promise<void> {
    for (const q of this.declared) await declareTaskQueue(s, q, this.ctx);
    for (const [exchange, routingKey, queue] of this.routes.values()) await declareRoute(s, exchange, routingKey, queue);
    await this.consumer.resume(s);
    await this.broadcast.resume(s);
  }

  private declareOn(s: Session, queue: string): Promise<void> {
    this.declared.add(queue);
    return declareTaskQueue(s, queue, this.ctx);
  }

  private routeOn(s: Session, exchange: string, routingKey: string, queue: string): Promise<void> {
    this.routes.set(`${exchange}\0${routingKey}\0${queue}`, [exchange, routingKey, queue]);
    return declareRoute(s, exchange, routingKey, queue);
  }

  private async orZero(op: Promise<{ messageCount: number }>): Promise<number> {
    try {
      return (await op).messageCount;
    } catch (err) {
      if (amqpCode(err) === NOT_FOUND) return 0;
      throw err;
    }
  }

  private toDelivery(a: Arrival): Delivery {
    const { s, msg, queue } = a;
    const { message, info } = messageFromAmqp(msg, queue);
    let settled = false;
    const settle = async (run: () => Promise<void> | void): Promise<void> => {
      if (settled) return;
      settled = true;
      this.consumer.release(s);
      // On a dead connection there is nothing to settle: RabbitMQ redelivers the message.
      if (!s.alive) return;
      try {
        await run();
      } catch (err) {
        if (s.alive) throw err;
      }
    };
    const requeue = () => this.consumer.requeue(s, queue, msg);
    return {
      message,
      info,
      properties: receivedProperties(message),
      deliveryTag: `${s.gen}.${msg.fields.deliveryTag}`,
      queue,
      ack: () => settle(() => this.consumer.ack(s, msg)),
      reject: (again, reason) => settle(again ? requeue : () => this.deadLetter(a, message, reason)),
      restore: () => settle(requeue),
    };
  }

  private async deadLetter(a: Arrival, message: Message, reason: string | undefined): Promise<void> {
    const { s, msg, queue } = a;
    const dead = queue + DEAD_LETTER_SUFFIX;
    await declareDeadLetterQueue(s, dead, this.ctx);
    const options = publishOptions({ ...message, headers: { ...message.headers, [REASON_HEADER]: reason ?? null } });
    delete options.expiration; // a per-message TTL would expire the dead letter too
    delete options.userId; // RabbitMQ refuses a user_id other than ours
    await confirmPublish(s, '', dead, msg.content, options);
    await this.consumer.ack(s, msg);
  }
}

export function createAmqpTransport(url: URL, options: TransportOptions): Transport {
  return new AmqpTransport(url, options);
}

/** The URL schemes this broker serves. */
export const AMQP_TRANSPORTS = { 'amqp:': createAmqpTransport, 'amqps:': createAmqpTransport } as const;

/** py-amqp's `message.properties`, in its order, which kombu hands to Celery's request. */
const AMQP_PROPERTY_ORDER = ['delivery_mode', 'priority', 'correlation_id', 'reply_to', 'expiration', 'message_id', 'timestamp', 'type', 'user_id', 'app_id'];

function receivedProperties(message: Message): Record<string, unknown> {
  const out: Record<string, unknown> = { content_type: message.contentType, content_encoding: message.contentEncoding, application_headers: message.headers };
  for (const k of AMQP_PROPERTY_ORDER) if (message.properties[k] !== undefined) out[k] = message.properties[k];
  return out;
}
