import { randomUUID } from 'node:crypto';
import { LamportClock } from '../events/clock.ts';
import type { Broadcasting, Subscription } from '../transport/types.ts';
import { type ControlRequest, jsonMessage, PIDBOX_EXCHANGE, readJson, REPLY_EXCHANGE, replyQueue } from './pidbox.ts';

export interface CallOptions {
  /** Node names to address; all nodes when omitted. */
  destination?: string[];
  /** Seconds to collect replies (default 1, as Celery). */
  timeout?: number;
  /** Stop after this many replies (default: the number of destinations, if given). */
  limit?: number;
  /** Send without waiting for replies (a cast). */
  reply?: boolean;
  pattern?: string;
  matcher?: 'glob' | 'pcre';
}

export type Replies = Array<Record<string, unknown>>;

/** The client side of remote control: broadcast a command, collect `{node: reply}` answers. */
export class Mailbox {
  constructor(
    private readonly broadcast: Broadcasting,
    readonly oid: string,
    readonly clock: LamportClock = new LamportClock(),
  ) {}

  async call(method: string, args: Record<string, unknown> = {}, opts: CallOptions = {}): Promise<Replies> {
    const timeoutMs = (opts.timeout ?? 1) * 1000;
    const request: ControlRequest = {
      method,
      arguments: args,
      destination: opts.destination ?? null,
      pattern: opts.pattern ?? null,
      matcher: opts.matcher ?? null,
    };
    const headers = { clock: this.clock.forward(), expires: Date.now() / 1000 + timeoutMs / 1000 };
    if (opts.reply === false) {
      await this.broadcast.publishExchange(PIDBOX_EXCHANGE, '', jsonMessage(request, headers, 2));
      return [];
    }
    const ticket = randomUUID();
    request.ticket = ticket;
    request.reply_to = { exchange: REPLY_EXCHANGE.name, routing_key: this.oid };
    const limit = opts.limit ?? opts.destination?.length;
    const replies: Replies = [];
    let finish!: () => void;
    const done = new Promise<void>((resolve) => (finish = resolve));
    this.waiting.set(ticket, (body) => {
      replies.push(body);
      if (limit !== undefined && replies.length >= limit) finish();
    });
    const timer = setTimeout(finish, timeoutMs);
    try {
      await this.listen();
      await this.broadcast.publishExchange(PIDBOX_EXCHANGE, '', jsonMessage(request, headers, 2));
      await done;
    } finally {
      clearTimeout(timer);
      this.waiting.delete(ticket);
      if (this.waiting.size === 0) await this.unlisten();
    }
    return replies;
  }

  /** Calls waiting for replies, by ticket. */
  private readonly waiting = new Map<string, (body: Record<string, unknown>) => void>();
  private subscription: Promise<Subscription> | undefined;

  /**
   * One consumer of the reply queue for all the calls in flight: a consumer per call would take
   * (and drop) the replies meant for the others, since they share the queue.
   */
  private listen(): Promise<Subscription> {
    this.subscription ??= this.broadcast.subscribe(
      { exchange: REPLY_EXCHANGE, bindingKey: this.oid, queue: replyQueue(this.oid), messageTtlMs: 300_000, expiresMs: 10_000 },
      (message) => {
        const deliver = this.waiting.get(String(message.headers.ticket));
        if (!deliver) return;
        this.clock.adjust(message.headers.clock);
        try {
          const body = readJson(message);
          if (body && typeof body === 'object' && !Array.isArray(body)) deliver(body as Record<string, unknown>);
        } catch {
          // not a reply: ignored, as Celery's mailbox does
        }
      },
    );
    return this.subscription;
  }

  private async unlisten(): Promise<void> {
    const s = this.subscription;
    this.subscription = undefined;
    await (await s?.catch(() => undefined))?.close();
  }
}
