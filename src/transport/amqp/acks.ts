/**
 * Acknowledgements of one consumer channel, sent once per event-loop turn: one basic.ack with
 * multiple=true covers every delivery up to the highest tag below the oldest delivery still
 * unsettled, and only the acks above that go one by one. Tasks acked in arrival order (Celery's
 * default early ack) cost the broker one frame per turn instead of one per message.
 */
import type { Channel, ConsumeMessage } from 'amqplib';

interface PendingAck {
  msg: ConsumeMessage;
  sent: () => void;
}

const tagOf = (m: ConsumeMessage) => m.fields.deliveryTag;

export class ChannelAcks {
  /** Delivery tags pushed with no_ack=false and neither acked nor nacked yet. */
  private readonly unsettled = new Set<number>();
  private pending: PendingAck[] = [];

  constructor(
    private readonly channel: Channel,
    private readonly alive: () => boolean,
  ) {}

  delivered(msg: ConsumeMessage): void {
    this.unsettled.add(tagOf(msg));
  }

  /** basic.nack (requeue): the delivery is settled and no longer holds back a multiple ack. */
  nack(msg: ConsumeMessage, requeue: boolean): void {
    this.unsettled.delete(tagOf(msg));
    this.channel.nack(msg, false, requeue);
  }

  /** Resolves once the ack is handed to the channel, at the end of this turn. */
  ack(msg: ConsumeMessage): Promise<void> {
    return new Promise((sent) => {
      if (this.pending.length === 0) setImmediate(() => this.flush());
      this.pending.push({ msg, sent });
    });
  }

  /** Send the pending acks now (they also go at the end of the turn). */
  flush(): void {
    const batch = this.pending.sort((a, b) => tagOf(a.msg) - tagOf(b.msg));
    this.pending = [];
    for (const p of batch) this.unsettled.delete(tagOf(p.msg));
    try {
      // On a dead channel there is nothing to ack: RabbitMQ delivers these messages again.
      if (this.alive()) this.send(batch.map((p) => p.msg));
    } catch {
      // The channel closed meanwhile: the same.
    }
    for (const p of batch) p.sent();
  }

  private send(sorted: ConsumeMessage[]): void {
    let oldest = Number.POSITIVE_INFINITY;
    for (const t of this.unsettled) if (t < oldest) oldest = t;
    let i = 0;
    while (i < sorted.length && tagOf(sorted[i]!) < oldest) i++;
    if (i > 0) this.channel.ack(sorted[i - 1]!, i > 1);
    for (; i < sorted.length; i++) this.channel.ack(sorted[i]!);
  }
}
