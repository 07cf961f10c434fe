/**
 * Events and remote control over RabbitMQ, declared as Celery / kombu declare them, so Python
 * and celeriac workers, clients and monitors share them:
 *
 * - publishExchange: the exchange is declared once per connection with the type and durability
 *   of its ExchangeSpec (celeryev: topic, durable; celery.pidbox: fanout; reply.celery.pidbox:
 *   direct; neither durable), then basic.publish with the message's properties and headers as
 *   py-amqp sends them (wire.ts) and the body bytes as they are, confirmed.
 * - subscribe: the exchange, the private queue (not durable, auto-delete, x-message-ttl and
 *   x-expires typed `I`), its binding ('' for fanout), then basic.consume no_ack=true on the
 *   consumer channel. close() cancels the consumer and deletes the queue.
 * - After a reconnection every open subscription is declared and consumed again (before the new
 *   connection is used). A consumer RabbitMQ cancels (its queue was deleted) is started again.
 */
import type { ConsumeMessage } from 'amqplib';
import type { Message } from '../../protocol/message.ts';
import type { Broadcasting, ExchangeSpec, Subscription, SubscriptionSpec } from '../types.ts';
import { confirmPublish, type Link, type Session } from './connection.ts';
import { declareExchange, declareSubscriptionQueue, forgetQueue, type DeclareContext } from './declare.ts';
import { messageFromAmqp, publishOptions } from './wire.ts';

type OnMessage = (message: Message, routingKey: string) => void;

class Sub {
  closed = false;
  /** The session consumed on, with its consumer tag once basic.consume-ok arrived. */
  attached: { s: Session; ready: Promise<void>; tag?: string } | undefined;

  constructor(
    readonly spec: SubscriptionSpec,
    readonly onMessage: OnMessage,
  ) {}
}

export class AmqpBroadcasting implements Broadcasting {
  private readonly subs = new Set<Sub>();
  private closed = false;

  constructor(
    private readonly link: Link,
    private readonly ctx: DeclareContext,
    private readonly waitMs: number,
    /** Publishes in flight, awaited by the transport's close(). */
    private readonly track: (p: Promise<void>) => Promise<void>,
  ) {}

  publishExchange(exchange: ExchangeSpec, routingKey: string, message: Message): Promise<void> {
    return this.track(this.publishConfirmed(exchange, routingKey, message));
  }

  private async publishConfirmed(exchange: ExchangeSpec, routingKey: string, message: Message): Promise<void> {
    const options = publishOptions(message);
    const deadline = Date.now() + this.waitMs;
    for (;;) {
      const s = await this.link.ready(Math.max(1, deadline - Date.now()));
      try {
        await declareExchange(s, exchange, this.ctx);
        await confirmPublish(s, exchange.name, routingKey, message.body, options);
        return;
      } catch (err) {
        if (s.alive || this.closed) throw err;
      }
    }
  }

  async subscribe(spec: SubscriptionSpec, onMessage: OnMessage): Promise<Subscription> {
    const sub = new Sub(spec, onMessage);
    const s = await this.link.ready(this.waitMs);
    this.subs.add(sub);
    try {
      await this.attach(s, sub);
    } catch (err) {
      // Lost meanwhile: the next connection consumes it (restore); anything else is the caller's.
      if (s.alive) {
        this.subs.delete(sub);
        throw err;
      }
    }
    return { close: () => this.unsubscribe(sub) };
  }

  /** A new connection: declare and consume every open subscription again. */
  async resume(s: Session): Promise<void> {
    for (const sub of [...this.subs]) await this.attach(s, sub);
  }

  /** Stop delivering (the transport closes; the connection goes with it). */
  close(): void {
    this.closed = true;
    for (const sub of this.subs) sub.closed = true;
    this.subs.clear();
  }

  private attach(s: Session, sub: Sub): Promise<void> {
    if (sub.attached?.s === s) return sub.attached.ready;
    const attached: NonNullable<Sub['attached']> = { s, ready: Promise.resolve() };
    sub.attached = attached;
    attached.ready = (async () => {
      await declareSubscriptionQueue(s, sub.spec, this.ctx);
      const reply = await s.con.consume(sub.spec.queue, (msg) => this.arrived(s, sub, attached, msg), { noAck: true });
      attached.tag = reply.consumerTag;
    })();
    attached.ready.catch(() => {
      if (sub.attached === attached) sub.attached = undefined;
    });
    return attached.ready;
  }

  private arrived(s: Session, sub: Sub, attached: NonNullable<Sub['attached']>, msg: ConsumeMessage | null): void {
    if (msg === null) {
      // RabbitMQ cancelled the consumer (the queue was deleted): declare and consume again.
      forgetQueue(s, sub.spec.queue);
      if (sub.attached === attached) sub.attached = undefined;
      if (!sub.closed && s.alive) {
        this.attach(s, sub).catch((err: unknown) => this.ctx.log.warning(`AMQP broker ${this.ctx.url}: cannot consume ${JSON.stringify(sub.spec.queue)} again (${(err as Error).message})`));
      }
      return;
    }
    if (sub.closed || !s.alive) return;
    const { message } = messageFromAmqp(msg, sub.spec.queue);
    try {
      sub.onMessage(message, msg.fields.routingKey);
    } catch (err) {
      this.ctx.log.warning(`AMQP broker ${this.ctx.url}: subscriber of ${JSON.stringify(sub.spec.queue)} failed: ${(err as Error).message}`);
    }
  }

  private async unsubscribe(sub: Sub): Promise<void> {
    if (sub.closed) return;
    sub.closed = true;
    this.subs.delete(sub);
    await this.detach(sub);
  }

  /** basic.cancel and queue.delete, on a live connection (else the queue is auto-deleted anyway). */
  private async detach(sub: Sub): Promise<void> {
    const a = sub.attached;
    sub.attached = undefined;
    if (!a) return;
    try {
      await a.ready; // a consumer being started is cancelled once it exists
      if (!a.s.alive || a.tag === undefined) return;
      await a.s.con.cancel(a.tag);
      forgetQueue(a.s, sub.spec.queue);
      await a.s.admin((ch) => ch.deleteQueue(sub.spec.queue));
    } catch {
      // The connection went meanwhile: the auto-delete queue goes with its consumer.
    }
  }
}
