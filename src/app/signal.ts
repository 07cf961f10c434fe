import { createLogger, type Logger } from '../common/log.ts';

/** A signal's receiver: gets one object with the sender and Celery's arguments; may be async. */
export type Receiver<A> = (args: A) => unknown;

export interface ConnectOptions {
  /**
   * Only events from this sender: the object Celery sends as `sender`, or a task name (matches a
   * task sender of that name, and the name string the publish signals send).
   */
  sender?: unknown;
}

interface Connection<A> {
  receiver: Receiver<A>;
  sender: unknown;
}

let errorLog: Logger | undefined;

/** Where a receiver's error is logged (the worker points it at its own logger). */
export function setSignalLogger(log: Logger): void {
  errorLog = log;
}

/**
 * One of Celery's signals (`celery.utils.dispatch.Signal`): receivers are called in the order they
 * were connected, each awaited when it returns a promise. An error in a receiver is logged and the
 * next one runs, as Celery's `send_robust`; it never reaches the task or the worker.
 */
export class Signal<A extends { sender: unknown }> {
  // Replaced on each change, so a send in progress keeps the list it started with.
  private connections: readonly Connection<A>[] = [];

  constructor(readonly name: string) {}

  /** The connected receivers (Celery's `receivers`); empty when nobody listens. */
  get receivers(): readonly Receiver<A>[] {
    return this.connections.map((c) => c.receiver);
  }

  /** True when at least one receiver is connected: the cheap check made before building arguments. */
  get connected(): boolean {
    return this.connections.length > 0;
  }

  /** Connect a receiver; connecting it again for the same sender does nothing. Returns the receiver. */
  connect<R extends Receiver<A>>(receiver: R, options: ConnectOptions = {}): R {
    if (typeof receiver !== 'function') throw new TypeError(`signals.${this.name}.connect: the receiver must be a function, got ${typeof receiver}`);
    const sender = options.sender;
    if (!this.connections.some((c) => c.receiver === receiver && c.sender === sender)) this.connections = [...this.connections, { receiver, sender }];
    return receiver;
  }

  /** Disconnect a receiver (for that sender, when it was connected with one); false when it was not connected. */
  disconnect(receiver: Receiver<A>, options: ConnectOptions = {}): boolean {
    const before = this.connections.length;
    this.connections = this.connections.filter((c) => !(c.receiver === receiver && c.sender === options.sender));
    return this.connections.length !== before;
  }

  /**
   * Call the receivers for this sender. Returns nothing when they all ran synchronously, else a
   * promise that settles (never rejects) once the async ones have finished.
   */
  send(args: A): Promise<void> | undefined {
    const list = this.connections;
    for (let i = 0; i < list.length; i++) {
      const c = list[i]!;
      if (!matches(c.sender, args.sender)) continue;
      const out = this.call(c.receiver, args);
      if (out) return out.then(() => this.sendFrom(list, i + 1, args));
    }
    return undefined;
  }

  private async sendFrom(list: readonly Connection<A>[], from: number, args: A): Promise<void> {
    for (let i = from; i < list.length; i++) {
      const c = list[i]!;
      if (matches(c.sender, args.sender)) await this.call(c.receiver, args);
    }
  }

  private call(receiver: Receiver<A>, args: A): Promise<void> | undefined {
    try {
      const out = receiver(args);
      if (typeof (out as PromiseLike<unknown> | null)?.then === 'function') {
        return Promise.resolve(out).then(
          () => undefined,
          (err: unknown) => this.logError(receiver, err),
        );
      }
    } catch (err) {
      this.logError(receiver, err);
    }
    return undefined;
  }

  private logError(receiver: Receiver<A>, err: unknown): void {
    const log = (errorLog ??= createLogger({ level: 'WARNING' }));
    const detail = err instanceof Error ? (err.stack ?? `${err.name}: ${err.message}`) : String(err);
    log.error(`Signal handler ${receiver.name || '<anonymous>'} for ${this.name} raised: ${detail}`);
  }
}

function matches(wanted: unknown, sender: unknown): boolean {
  if (wanted === undefined || wanted === sender) return true;
  return typeof wanted === 'string' && typeof sender === 'object' && sender !== null && (sender as { name?: unknown }).name === wanted;
}
