import type { Message } from '../../protocol/message.ts';
import { bindingMatches } from '../topic.ts';
import type { Broadcasting, ExchangeSpec, Subscription, SubscriptionSpec } from '../types.ts';

interface Binding {
  spec: SubscriptionSpec;
  deliver: (message: Message, routingKey: string) => void;
}

/** In-process exchanges: each subscription is a binding that receives a copy of matching messages. */
export class MemoryBroadcasting implements Broadcasting {
  private readonly bindings = new Set<Binding>();

  async publishExchange(exchange: ExchangeSpec, routingKey: string, message: Message): Promise<void> {
    for (const b of [...this.bindings]) {
      if (b.spec.exchange.name !== exchange.name) continue;
      if (!bindingMatches(exchange.type, b.spec.bindingKey, routingKey)) continue;
      const copy: Message = { ...message, headers: { ...message.headers }, properties: { ...message.properties }, body: Buffer.from(message.body) };
      // Delivered on a later tick, as from a socket: a publisher never runs its subscribers inline.
      setImmediate(() => b.deliver(copy, routingKey));
    }
  }

  async subscribe(spec: SubscriptionSpec, onMessage: (message: Message, routingKey: string) => void): Promise<Subscription> {
    const binding: Binding = { spec, deliver: onMessage };
    this.bindings.add(binding);
    return { close: async () => void this.bindings.delete(binding) };
  }
}
