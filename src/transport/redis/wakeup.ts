/**
 * How an idle fetch waits without ever taking a message out of Redis.
 *
 * kombu waits with BRPOP, which removes the message before the consumer has recorded it in
 * `unacked`: a consumer killed in between loses it. Every variant of "BRPOP, then record" keeps
 * that gap, and the lossless blocking pops (BLMOVE/BRPOPLPUSH into a per-consumer list) store
 * in-flight messages where kombu's visibility restore never looks. So messages are only ever taken by
 * the atomic fetch script, and waiting is reduced to "wake me when one of my lists changes":
 *
 *  1. Server-assisted client tracking in its default mode (Redis >= 6, no server configuration):
 *     the command connection enables `CLIENT TRACKING on REDIRECT <subscriber id> NOLOOP`, and a
 *     fetch script that leaves its lists empty reads them last (EXISTS), in the same atomic step.
 *     Redis then tells the subscriber, once, when another client next changes one of them: the
 *     push that a waiter is waiting for, and nothing else. While the lists are not empty the
 *     consumer fetches anyway, and nothing is told. Nothing is consumed, so nothing can be lost,
 *     and Python workers' BRPOPs are not disturbed.
 *  2. NOLOOP: the consumer's own changes are not told (its pops, its restores, its publishes); those
 *     that can fill a list wake it locally (`notify`).
 *  3. A safety poll every `pollMs` (1 s) anyway: a wake-up missed while a connection reconnects costs
 *     at most that delay. Where tracking is not available (old server, proxy, ACL), the caller polls
 *     with a short capped backoff instead.
 *
 * Races: waiters read `generation` before running the fetch script and wait only if it has not
 * moved since, so a change between the script and the wait is never slept through; tracking is
 * (re)enabled before the script runs, and a reconnection of either connection moves `generation`.
 */
import type { Redis } from 'ioredis';
import { transientError } from './connection.ts';

const CHANNEL = '__redis__:invalidate';

export class Wakeup {
  private sub: Redis | undefined;
  /** Tracking is enabled for the current command and subscriber connections (a new one of either clears it). */
  private registered = false;
  /** Connections made so far: tracking belongs to one command connection and one subscriber connection. */
  private connections = 0;
  private subConnections = 0;
  /** The subscriber connection that is subscribed, and its client id. */
  private idOf: { connection: number; id: string } | undefined;
  private registering: Promise<boolean> | undefined;
  private unsupported = false;
  private closed = false;
  private generationCount = 0;
  private readonly waiters = new Set<() => void>();
  private readonly keys = new Set<string>();
  /** The byte lengths of `keys`: most other names told are told apart by length alone. */
  private readonly keyLengths = new Set<number>();

  /** `tracked`: the connection the fetch scripts run on; its reads arm the tracking. */
  constructor(
    private readonly tracked: Redis,
    private readonly openSubscriber: () => Redis,
    private readonly onUnsupported: (reason: string) => void,
  ) {
    tracked.on('ready', () => {
      // A new connection has no tracking, and nothing it read before is watched any more.
      this.connections++;
      this.registered = false;
      this.notify();
    });
  }

  get generation(): number {
    return this.generationCount;
  }

  /** Wake every waiter (a change made through our own connection). */
  notify(): void {
    this.generationCount++;
    for (const w of [...this.waiters]) w();
  }

  /**
   * Make sure changes to `keys` that the next fetch script arms will wake us: true when the server
   * reports changes, false when the caller must poll. Answers at once, without a promise, once
   * registered (a fetch then sends its script in the same turn).
   */
  watch(keys: readonly string[]): boolean | Promise<boolean> {
    for (const k of keys) {
      if (this.keys.has(k)) continue; // every fetch watches its lists again
      this.keys.add(k);
      this.keyLengths.add(Buffer.byteLength(k));
    }
    if (this.unsupported || this.closed) return false;
    if (this.registered) return true;
    this.registering ??= this.register().finally(() => (this.registering = undefined));
    return this.registering;
  }

  /** Resolve after `ms`, on a change after generation `since`, or on abort. Never rejects. */
  wait(ms: number, since: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted || this.generationCount !== since) return resolve();
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      this.waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  close(): void {
    this.closed = true;
    this.notify();
    this.sub?.disconnect();
    this.sub = undefined;
  }

  private signature(): string {
    return `${this.connections}:${this.subConnections}`;
  }

  private async register(): Promise<boolean> {
    for (;;) {
      if (this.unsupported || this.closed) return false;
      try {
        const id = await this.subscriberId();
        const signature = this.signature();
        await this.tracked.call('CLIENT', 'TRACKING', 'on', 'REDIRECT', id, 'NOLOOP');
        if (signature !== this.signature()) continue; // a connection was replaced meanwhile
        this.registered = true;
        return true;
      } catch (err) {
        // A server still loading its data says so with a reply error too (no ready check waits for it here).
        // "The client ID you want redirect to does not exist": the subscriber has just reconnected.
        if ((err as Error).name === 'ReplyError' && !transientError(err) && !/redirect/i.test((err as Error).message)) {
          this.unsupported = true;
          this.onUnsupported((err as Error).message);
        }
        // Connection trouble: start over on a fresh subscriber next time; meanwhile the caller polls.
        this.sub?.disconnect();
        this.sub = undefined;
        this.idOf = undefined;
        return false;
      }
    }
  }

  /** The subscriber connection's client id, once it is subscribed to the invalidations. */
  private async subscriberId(): Promise<string> {
    const sub = this.subscriber();
    if (this.idOf?.connection === this.subConnections) return this.idOf.id;
    // A new connection (ioredis counts it unsubscribed): its id first, as a subscribed one answers nothing else.
    this.idOf = undefined;
    const id = String(await sub.client('ID'));
    const connection = this.subConnections;
    await sub.subscribe(CHANNEL);
    if (connection !== this.subConnections) throw new Error('reconnected while subscribing');
    this.idOf = { connection, id };
    return id;
  }

  private subscriber(): Redis {
    if (this.sub) return this.sub;
    const sub = this.openSubscriber();
    sub.on('messageBuffer', (_channel: Buffer, payload: unknown) => this.onInvalidate(payload));
    sub.on('ready', () => {
      // A new connection: another id, and no subscription (autoResubscribe is off).
      this.subConnections++;
      this.registered = false;
      this.notify();
    });
    this.sub = sub;
    return sub;
  }

  /** An array of key names (bytes); null when the whole keyspace was flushed. */
  private onInvalidate(payload: unknown): void {
    if (!Array.isArray(payload)) return this.notify();
    for (const name of payload as (Buffer | string)[]) {
      const length = typeof name === 'string' ? Buffer.byteLength(name) : name.length;
      if (this.keyLengths.has(length) && this.keys.has(String(name))) return this.notify();
    }
  }
}
