/**
 * Exchanges on Redis exactly as kombu's Redis transport has them, so Python workers, `celery
 * inspect` and `celery events` share them with celeriac:
 *
 *  - fanout (and topic: Celery declares `celeryev` as fanout on Redis) = pub/sub. PUBLISH on
 *    `<global_keyprefix>/<db>.<exchange>[/<routing key>]`; a subscription PSUBSCRIBEs
 *    `…/<db>.<exchange>[/<binding key with # → *>]` and SADDs its binding
 *    `<binding key>\x06\x16\x06\x16<queue>` to `_kombu.binding.<exchange>` (SREM on close), as kombu
 *    does although it never reads it back. The routing key of a received message is the part of the
 *    channel after `<exchange>/`; a topic subscription drops what its AMQP pattern does not match
 *    (a Redis `*` also spans dots).
 *  - direct (the `reply.celery.pidbox` replies): publishing reads `_kombu.binding.<exchange>` and
 *    LPUSHes to every queue whose binding routing key equals the message's (nothing bound: the
 *    message is dropped, as kombu); a subscription SADDs its binding, BRPOPs its lists (1 s
 *    timeout) on a connection of its own, and on close SREMs the binding and DELetes the lists.
 *
 * Everything is no_ack, as kombu's pidbox and event consumers: a message is delivered at most once.
 *
 * Connections: all pattern subscriptions of a transport share one subscriber connection, opened
 * with the first and closed with the last (ioredis PSUBSCRIBEs again after a reconnection). It
 * is not the wake-up connection (wakeup.ts), which subscribes again itself on each new connection,
 * after asking its client id, nor the result store's, which belongs to another component with
 * another URL. A direct subscription blocks its connection in BRPOP, so each has its own, closed
 * with it at once (a blocked connection cannot be reused before its BRPOP returns). Publishing
 * uses the transport's command connection.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { CeleriacError } from '../../errors.ts';
import { fromEnvelope, toEnvelope } from '../../protocol/envelope.ts';
import type { Message } from '../../protocol/message.ts';
import { topicMatches } from '../topic.ts';
import type { Broadcasting, ExchangeSpec, Subscription, SubscriptionSpec } from '../types.ts';
import type { LineLogger } from './connection.ts';
import type { KombuKeys } from './keys.ts';

type Deliver = (message: Message, routingKey: string) => void;

export interface BroadcastDeps {
  /** The transport's command connection. */
  client: Redis;
  keys: KombuKeys;
  /** A new connection (subscriber, or one for BRPOP); the caller closes it. */
  connect: () => Redis;
  /** Called after LPUSHing to lists, so the transport's own consumers look at once. */
  pushed: () => void;
  log: LineLogger;
}

interface PatternSub {
  spec: SubscriptionSpec;
  deliver: Deliver;
  closed: boolean;
}

const RETRY_MS = 1000;

export class RedisBroadcasting implements Broadcasting {
  private sub: Redis | undefined;
  /** Pattern → its subscriptions, while any is open; `ready` resolves once PSUBSCRIBEd. */
  private readonly patterns = new Map<string, { subs: Set<PatternSub>; ready: Promise<unknown> }>();
  private readonly open = new Set<Subscription>();
  private refs = 0;
  private closed = false;
  private warnedUndecodable = false;

  constructor(private readonly deps: BroadcastDeps) {}

  async publishExchange(exchange: ExchangeSpec, routingKey: string, message: Message): Promise<void> {
    const { client, keys } = this.deps;
    const envelope = toEnvelope(message, { exchange: exchange.name, routingKey, deliveryTag: randomUUID() });
    if (exchange.type !== 'direct') {
      await client.publish(keys.channel(exchange.name, routingKey), envelope);
      return;
    }
    const members = await client.smembers(keys.binding(exchange.name));
    const queues = new Set(members.map((m) => m.split(keys.sep)).filter(([rk]) => rk === routingKey).map((parts) => parts[2] ?? ''));
    queues.delete('');
    if (queues.size === 0) return; // kombu drops a message no binding takes
    const list = (q: string) => keys.list(q, keys.step(message.properties.priority));
    if (queues.size === 1) await client.lpush(list([...queues][0]!), envelope);
    else {
      const pipe = client.pipeline();
      for (const q of queues) pipe.lpush(list(q), envelope);
      const replies = (await pipe.exec()) ?? [];
      const failed = replies.find(([err]) => err);
      if (failed) throw failed[0];
    }
    this.deps.pushed();
  }

  async subscribe(spec: SubscriptionSpec, onMessage: Deliver): Promise<Subscription> {
    if (this.closed) throw new CeleriacError('the Redis broker connection is closed');
    const deliver: Deliver = (message, routingKey) => {
      try {
        onMessage(message, routingKey);
      } catch (err) {
        this.deps.log.warning(`redis broker: a subscriber of ${spec.exchange.name} failed: ${(err as Error).message}`);
      }
    };
    const subscription = spec.exchange.type === 'direct' ? await this.subscribeDirect(spec, deliver) : await this.subscribePattern(spec, deliver);
    this.open.add(subscription);
    return subscription;
  }

  /** Close every subscription (the transport is closing). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.open].map((s) => s.close().catch(() => undefined)));
    this.sub?.disconnect();
    this.sub = undefined;
  }

  private member(spec: SubscriptionSpec): string {
    // kombu's _queue_bind: the pattern field is empty for fanout (and for direct) exchanges.
    return this.deps.keys.bindingMember(spec.bindingKey, '', spec.queue);
  }

  private async subscribePattern(spec: SubscriptionSpec, deliver: Deliver): Promise<Subscription> {
    const { client, keys } = this.deps;
    const pattern = keys.pattern(spec.exchange.name, spec.bindingKey);
    const entry: PatternSub = { spec, deliver, closed: false };
    await client.sadd(keys.binding(spec.exchange.name), this.member(spec));
    this.refs++;
    let p = this.patterns.get(pattern);
    if (!p) {
      const subscriber = this.subscriber();
      p = { subs: new Set(), ready: subscriber.psubscribe(pattern) };
      this.patterns.set(pattern, p);
    }
    p.subs.add(entry);
    try {
      await p.ready;
    } catch (err) {
      await this.release(pattern, entry);
      throw err;
    }
    const subscription: Subscription = {
      close: async () => {
        if (entry.closed) return;
        this.open.delete(subscription);
        await this.release(pattern, entry);
        await client.srem(keys.binding(spec.exchange.name), this.member(spec)).catch(() => 0);
      },
    };
    return subscription;
  }

  private async release(pattern: string, entry: PatternSub): Promise<void> {
    entry.closed = true;
    const p = this.patterns.get(pattern);
    if (p?.subs.delete(entry) && p.subs.size === 0) {
      this.patterns.delete(pattern);
      if (this.refs > 1) await this.sub?.punsubscribe(pattern).catch(() => undefined);
    }
    if (--this.refs === 0) {
      this.sub?.disconnect();
      this.sub = undefined;
    }
  }

  private subscriber(): Redis {
    if (this.sub) return this.sub;
    const sub = this.deps.connect();
    sub.on('pmessage', (pattern: string, channel: string, data: string) => this.onPublished(pattern, channel, data));
    return (this.sub = sub);
  }

  private onPublished(pattern: string, channel: string, data: string): void {
    const p = this.patterns.get(pattern);
    if (!p || !data) return;
    let message: Message;
    let infoKey: string;
    try {
      const d = fromEnvelope(data);
      message = d.message;
      infoKey = d.delivery.routingKey;
    } catch (err) {
      if (!this.warnedUndecodable) {
        this.warnedUndecodable = true;
        this.deps.log.warning(`redis broker: ignoring what is not a message on channel ${JSON.stringify(channel)}: ${(err as Error).message}`);
      }
      return;
    }
    for (const s of [...p.subs]) {
      if (s.closed) continue;
      // Without fanout_patterns the channel has no routing key: the envelope's is the best there is.
      const routingKey = this.deps.keys.routingKeyOf(s.spec.exchange.name, channel) || infoKey;
      if (s.spec.exchange.type === 'topic' && !topicMatches(s.spec.bindingKey, routingKey)) continue;
      s.deliver(message, routingKey);
    }
  }

  private async subscribeDirect(spec: SubscriptionSpec, deliver: Deliver): Promise<Subscription> {
    const { client, keys } = this.deps;
    const binding = keys.binding(spec.exchange.name);
    const member = this.member(spec);
    const lists = keys.lists([spec.queue]);
    await client.sadd(binding, member);
    const conn = this.deps.connect();
    let closed = false;
    const loop = async (): Promise<void> => {
      let failing = false;
      while (!closed) {
        let popped: [string, string] | null;
        try {
          if (failing) await client.sadd(binding, member); // lost with a Redis restart without persistence
          popped = await conn.brpop(...lists, 1);
          failing = false;
        } catch {
          if (closed) return;
          failing = true;
          await new Promise((r) => setTimeout(r, RETRY_MS));
          continue;
        }
        if (!popped || closed) continue;
        let message: Message;
        let routingKey: string;
        try {
          const d = fromEnvelope(popped[1]);
          message = d.message;
          routingKey = d.delivery.routingKey || spec.bindingKey;
        } catch {
          continue; // no_ack: what cannot be read is dropped, as kombu's consumer would fail on it
        }
        deliver(message, routingKey);
      }
    };
    void loop();
    const subscription: Subscription = {
      close: async () => {
        if (closed) return;
        closed = true;
        this.open.delete(subscription);
        conn.disconnect();
        await client
          .multi()
          .srem(binding, member)
          .del(...lists)
          .exec()
          .catch(() => null);
      },
    };
    return subscription;
  }
}
