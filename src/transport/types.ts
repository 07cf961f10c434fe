import type { DeliveryInfo, Message } from '../protocol/message.ts';

/**
 * The contract every broker implements (kombu's virtual transport, narrowed): publish to a queue,
 * fetch up to N messages, and settle each delivery exactly once. Routing, prefetch accounting,
 * ETA timers and retries live above it, in the app and the worker.
 */
export interface Transport {
  /** Human-readable URL with the password masked, for banners and logs. */
  readonly url: string;
  readonly capabilities: TransportCapabilities;
  /** Exchanges for events and remote control, when the broker has them. */
  readonly broadcast?: Broadcasting;

  /**
   * One attempt to connect now, taking at most `timeoutMs` (Celery's broker_connection_timeout);
   * rejects with a BrokerConnectionError (src/transport/connect-error.ts). Brokers without a
   * connection omit it.
   */
  connect?(timeoutMs: number): Promise<void>;

  /** Create the queue (and whatever the broker needs for it) if it does not exist. Idempotent. */
  declareQueue(queue: string): Promise<void>;

  /** Put one message on a queue. `exchange`/`routingKey` are recorded as the delivery info. */
  publish(queue: string, message: Message, route?: { exchange?: string; routingKey?: string }): Promise<void>;

  /**
   * Take up to `max` messages from the given queues, waiting at most `timeoutMs` for the first.
   * Each returned delivery is unacknowledged until settled; if its consumer dies, the broker
   * gives it to another consumer (visibility timeout, or connection loss on AMQP).
   * Resolves with [] on timeout or when `signal` aborts. `maxBytes`: stop taking messages once
   * they reach about this many bytes as the broker holds them (Redis: the envelopes, bodies in
   * base64; at least one is taken); a transport that cannot tell before taking them may ignore it.
   */
  fetch(queues: readonly string[], max: number, timeoutMs: number, signal?: AbortSignal, maxBytes?: number): Promise<Delivery[]>;

  /**
   * Optional, for transports that gather the acknowledgements of one event-loop turn: send them
   * now (the worker does once a batch of tasks has started, rather than at the end of the turn).
   */
  flushAcks?(): void;

  /** Remove every ready message of a queue; returns how many were removed. */
  purge(queue: string): Promise<number>;

  /** Number of ready messages in a queue. */
  size(queue: string): Promise<number>;

  /**
   * Optional, where `capabilities.deadLetters`: how many dead letters a queue has and the newest
   * `limit` of them (reason, time, the message's envelope text when the broker can show it).
   * Read-only; for monitors (the dashboard's queues page).
   */
  listDeadLetters?(queue: string, limit: number): Promise<DeadLetters>;

  /**
   * Optional, for brokers where a dead consumer's messages wait out a visibility timeout: record
   * `holder` (a worker's hostname) with each message this transport fetches from now on...
   */
  recordHolder?(holder: string): void;
  /** ...and give back at once what a worker reported lost still held; resolves with how many. One caller wins. */
  restoreLost?(holder: string): Promise<number>;

  /** The broker's bindings of queues to exchanges (`celeriac list bindings`), where it can list them. */
  listBindings?(): Promise<Binding[]>;

  close(): Promise<void>;
}

export interface DeadLetters {
  count: number;
  items: { reason: string | null; time: number | null; envelope: string | null }[];
}

export interface Binding {
  queue: string;
  exchange: string;
  routingKey: string;
}

export interface TransportCapabilities {
  /** Messages whose `eta` header is in the future are held by the broker until due. */
  delaysEta: boolean;
  /** Messages rejected without requeue are kept in a dead-letter store. */
  deadLetters: boolean;
  /** The most messages one fetch returns, when the broker caps it below what was asked: a fetch that returns this many is a full one. */
  maxFetch?: number;
  /**
   * The broker sends messages ahead on its own, up to the room the last fetch gave (AMQP's
   * prefetch); a fetch reads what has arrived. Other brokers are asked for a part of the room at a
   * time, so that the next fetch is under way while a batch runs.
   */
  pushes?: boolean;
}

export interface Delivery {
  readonly message: Message;
  readonly info: DeliveryInfo;
  /** The message's properties as received (kombu's `message.properties`, a task's `self.request.properties`). */
  readonly properties?: Record<string, unknown>;
  /** Unique per delivery (a uuid on the virtual transports, an integer on AMQP). */
  readonly deliveryTag: string;
  /** The queue the message was fetched from. */
  readonly queue: string;
  /** Done: remove the message for good. */
  ack(): Promise<void>;
  /**
   * Not done. `requeue: true` puts it back at the end of its queue; `false` removes it,
   * keeping it as a dead letter with `reason` when the broker can.
   */
  reject(requeue: boolean, reason?: string): Promise<void>;
  /** Give back an unstarted message so it is the next one delivered (warm shutdown). */
  restore(): Promise<void>;
}

export interface TransportOptions {
  /** Seconds before an unacknowledged message of a dead consumer is delivered again. */
  visibilityTimeout?: number;
  [option: string]: unknown;
}

export type TransportFactory = (url: URL, options: TransportOptions) => Transport;

/**
 * Broadcast traffic (events, remote control, mingle, gossip) — kombu's exchanges as Celery uses
 * them. Optional: a transport that has it sets `broadcast`; without it a worker runs alone.
 */
export interface ExchangeSpec {
  name: string;
  /** fanout: every bound queue; topic: bindings whose pattern matches; direct: bindings equal to the key. */
  type: 'fanout' | 'topic' | 'direct';
  durable?: boolean;
  autoDelete?: boolean;
}

export interface SubscriptionSpec {
  exchange: ExchangeSpec;
  /** Routing-key pattern (`worker.#`, `#`) for topic; the key for direct; ignored for fanout. */
  bindingKey: string;
  /** The subscriber's private queue (e.g. `<node>.celery.pidbox`, `celeryev.<uuid>`). */
  queue: string;
  /** Per-message TTL and idle-queue expiry, as Celery declares them on AMQP. */
  messageTtlMs?: number;
  expiresMs?: number;
}

export interface Subscription {
  close(): Promise<void>;
}

export interface Broadcasting {
  publishExchange(exchange: ExchangeSpec, routingKey: string, message: Message): Promise<void>;
  /** Receive without acknowledgement (kombu's no_ack consumers for pidbox and events). */
  subscribe(spec: SubscriptionSpec, onMessage: (message: Message, routingKey: string) => void): Promise<Subscription>;
}
