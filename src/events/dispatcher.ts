import type { Broadcasting } from '../transport/types.ts';
import type { LamportClock } from './clock.ts';
import { EVENT_EXCHANGE, eventMessage, makeEvent, routingKeyFor } from './event.ts';

/** Buffered task events are flushed together as one `task.multi` message, as a Celery worker does. */
const FLUSH_AT = 24;

/**
 * Sends events on `celeryev` (Celery's EventDispatcher). `task-*` events are buffered and sent as
 * one list-bodied message per tick; `worker-*` events go at once. Sending never throws: an event
 * lost to a broker hiccup must not fail a task.
 */
export class EventDispatcher {
  /** Task events (`-E`); worker events are sent whenever the dispatcher exists. */
  taskEvents: boolean;
  private buffer: Record<string, unknown>[] = [];
  private flushScheduled = false;

  constructor(
    private readonly broadcast: Broadcasting,
    readonly hostname: string,
    private readonly clock: LamportClock,
    opts: { taskEvents?: boolean; onError?: (err: unknown) => void } = {},
  ) {
    this.taskEvents = opts.taskEvents ?? false;
    this.onError = opts.onError ?? (() => {});
  }

  private readonly onError: (err: unknown) => void;

  /** Send one event now. */
  async send(type: string, fields: Record<string, unknown> = {}): Promise<void> {
    const event = makeEvent(type, this.hostname, this.clock.forward(), fields);
    await this.broadcast.publishExchange(EVENT_EXCHANGE, routingKeyFor(type), eventMessage(event, this.hostname)).catch(this.onError);
  }

  /**
   * Buffer a task event (when task events are on). Pass a function when the fields cost something
   * to build (a result's repr): it is called only if the event is sent.
   */
  task(type: string, fields: Record<string, unknown> | (() => Record<string, unknown>)): void {
    if (!this.taskEvents) return;
    this.buffer.push(makeEvent(type, this.hostname, this.clock.forward(), typeof fields === 'function' ? fields() : fields));
    if (this.buffer.length >= FLUSH_AT) void this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => void this.flush());
    }
  }

  async flush(): Promise<void> {
    this.flushScheduled = false;
    if (this.buffer.length === 0) return;
    const batch = this.buffer;
    this.buffer = [];
    await this.broadcast.publishExchange(EVENT_EXCHANGE, 'task.multi', eventMessage(batch, this.hostname)).catch(this.onError);
  }
}
