import { randomUUID } from 'node:crypto';
import type { Broadcasting, Subscription } from '../transport/types.ts';
import type { LamportClock } from './clock.ts';
import { type CeleryEvent, EVENT_EXCHANGE, eventsIn } from './event.ts';

export interface ReceiverOptions {
  /** Routing-key pattern: `#` for everything, `worker.#` for gossip. */
  bindingKey?: string;
  /** Per-message TTL of the private queue (AMQP), ms. */
  messageTtlMs?: number;
  clock?: LamportClock;
}

/**
 * Receives events from `celeryev` (Celery's EventReceiver): accepts single events and the list
 * bodies of `task.multi`, stamps `local_received`, and advances the clock (not for `task-sent`,
 * whose clock is the client's).
 */
export async function receiveEvents(
  broadcast: Broadcasting,
  onEvent: (event: CeleryEvent) => void,
  opts: ReceiverOptions = {},
): Promise<Subscription> {
  return broadcast.subscribe(
    {
      exchange: EVENT_EXCHANGE,
      bindingKey: opts.bindingKey ?? '#',
      queue: `celeryev.${randomUUID()}`,
      messageTtlMs: opts.messageTtlMs ?? 5000,
      expiresMs: 60_000,
    },
    (message) => {
      let events: CeleryEvent[];
      try {
        events = eventsIn(message);
      } catch {
        return; // not an event: monitors ignore what they cannot read
      }
      for (const event of events) {
        if (opts.clock && event.type !== 'task-sent') opts.clock.adjust(event.clock);
        onEvent({ ...event, local_received: Date.now() / 1000 });
      }
    },
  );
}
