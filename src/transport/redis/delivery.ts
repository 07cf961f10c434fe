import type { DeliveryInfo, Message } from '../../protocol/message.ts';
import type { Delivery } from '../types.ts';

/** A message fetched and recorded in `unacked`, until it is settled. */
export interface Held {
  tag: string;
  queue: string;
  /** The envelope as fetched: bytes when large (fromEnvelope). */
  raw: string | Buffer;
}

/** What a delivery asks of its transport when it is settled. */
export interface Settler {
  release(h: Held): void;
  ack(h: Held): Promise<void>;
  requeue(h: Held, push: 'LPUSH' | 'RPUSH'): Promise<void>;
  deadLetter(h: Held, reason: string | undefined): Promise<void>;
}

/** A fetched message; settled once (later calls do nothing). */
export class RedisDelivery implements Delivery {
  private settled = false;

  constructor(
    private readonly settler: Settler,
    private readonly held: Held,
    readonly message: Message,
    readonly info: DeliveryInfo,
    readonly properties?: Record<string, unknown>,
  ) {}

  get deliveryTag(): string {
    return this.held.tag;
  }

  get queue(): string {
    return this.held.queue;
  }

  ack(): Promise<void> {
    return this.settle() ? this.settler.ack(this.held) : SETTLED;
  }

  /** requeue: back at the head of its queue, marked redelivered; else into the dead letters. */
  reject(requeue: boolean, reason?: string): Promise<void> {
    if (!this.settle()) return SETTLED;
    return requeue ? this.settler.requeue(this.held, 'LPUSH') : this.settler.deadLetter(this.held, reason);
  }

  restore(): Promise<void> {
    return this.settle() ? this.settler.requeue(this.held, 'RPUSH') : SETTLED;
  }

  private settle(): boolean {
    if (this.settled) return false;
    this.settled = true;
    this.settler.release(this.held);
    return true;
  }
}

const SETTLED = Promise.resolve();
