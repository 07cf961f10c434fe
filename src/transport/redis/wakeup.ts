/**
 * How an idle fetch waits without ever taking a message out of Redis.
 *
 * kombu waits with BRPOP, which removes the message before the consumer has recorded it in
 * `unacked`: a consumer killed in between loses it. Every variant of "BRPOP, then record" keeps
 * that gap, and the lossless blocking pops (BLMOVE/BRPOPLPUSH into a per-consumer list) store
 * in-flight messages where kombu's visibility restore never looks. So messages are only ever taken by
 * the atomic fetch script, and waiting is reduced to "wake me when one of my lists changes":
 *
 *  1. Server-assisted client tracking in broadcast mode (Redis >= 6, no server configuration):
 *     one subscriber connection enables `CLIENT TRACKING on REDIRECT <own id> BCAST PREFIX <queue>…`
 *     and SUBSCRIBEs to `__redis__:invalidate`; Redis then sends the name of every key under those
 *     prefixes that any client modifies. A name equal to one of our lists wakes the waiters, who run
 *     the fetch script again. Nothing is consumed, so nothing can be lost, and Python workers'
 *     BRPOPs are not disturbed.
 *  2. A safety poll every `pollMs` (1 s) anyway: a wake-up missed while the subscriber reconnects, or
 *     before tracking is registered again, costs at most that delay. Where tracking is not available
 *     (old server, proxy, ACL), the caller polls with a short capped backoff instead.
 *
 * Races: waiters read `generation` before running the fetch script and wait only if it has not
 * moved since, so a change between the script and the wait is never slept through; tracking is
 * (re)registered before the script runs.
 */
import type { Redis } from 'ioredis';
import { transientError } from './connection.ts';

const CHANNEL = '__redis__:invalidate';

export class Wakeup {
  private sub: Redis | undefined;
  private registered: string | null = null;
  private subscribed = false;
  /** Connections made so far by the subscriber: tracking belongs to one connection. */
  private connections = 0;
  private registering: Promise<boolean> | undefined;
  private unsupported = false;
  private closed = false;
  private generationCount = 0;
  private readonly waiters = new Set<() => void>();
  private readonly keys = new Set<string>();
  /** The byte lengths of `keys`: most names a prefix also covers are told apart by length alone. */
  private readonly keyLengths = new Set<number>();
  private readonly prefixes = new Set<string>();

  constructor(
    private readonly openSubscriber: () => Redis,
    private readonly onUnsupported: (reason: string) => void,
  ) {}

  get generation(): number {
    return this.generationCount;
  }

  /** Wake every waiter (a change made through our own connection). */
  notify(): void {
    this.generationCount++;
    for (const w of [...this.waiters]) w();
  }

  /**
   * Make sure changes to `keys` (lists named `<prefix>…`) wake us: true when the server reports
   * changes, false when the caller must poll. Answers at once, without a promise, once registered
   * (a fetch then sends its script in the same turn).
   */
  watch(prefixes: readonly string[], keys: readonly string[]): boolean | Promise<boolean> {
    for (const k of keys) {
      if (this.keys.has(k)) continue; // every fetch watches its lists again
      this.keys.add(k);
      this.keyLengths.add(Buffer.byteLength(k));
    }
    for (const p of prefixes) this.prefixes.add(p);
    if (this.unsupported || this.closed) return false;
    if (this.registered === minimalPrefixes(this.prefixes).join('\0')) return true;
    return this.registerWatched();
  }

  private async registerWatched(): Promise<boolean> {
    for (;;) {
      if (this.unsupported || this.closed) return false;
      const wanted = minimalPrefixes(this.prefixes);
      const signature = wanted.join('\0');
      if (this.registered === signature) return true;
      if (this.registering === undefined) {
        this.registering = this.register(wanted, signature).finally(() => (this.registering = undefined));
      }
      if (!(await this.registering)) return false;
    }
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

  private async register(prefixes: string[], signature: string): Promise<boolean> {
    try {
      const sub = this.subscriber();
      // Tracking can only be changed outside subscribed mode, and is lost on reconnection.
      this.registered = null;
      if (this.subscribed) await sub.unsubscribe(CHANNEL);
      this.subscribed = false;
      const id = String(await sub.client('ID'));
      const connection = this.connections;
      await sub.call('CLIENT', 'TRACKING', 'off');
      await sub.call('CLIENT', 'TRACKING', 'on', 'REDIRECT', id, 'BCAST', ...prefixes.flatMap((p) => ['PREFIX', p]));
      await sub.subscribe(CHANNEL);
      if (connection !== this.connections) throw new Error('reconnected while registering');
      this.subscribed = true;
      this.registered = signature;
      return true;
    } catch (err) {
      // A server still loading its data says so with a reply error too (no ready check waits for it here).
      if ((err as Error).name === 'ReplyError' && !transientError(err)) {
        this.unsupported = true;
        this.onUnsupported((err as Error).message);
      }
      // Connection trouble: start over on a fresh connection next time; meanwhile the caller polls.
      this.sub?.disconnect();
      this.sub = undefined;
      this.subscribed = false;
      return false;
    }
  }

  private subscriber(): Redis {
    if (this.sub) return this.sub;
    const sub = this.openSubscriber();
    sub.on('messageBuffer', (_channel: Buffer, payload: unknown) => this.onInvalidate(payload));
    sub.on('ready', () => {
      // A new connection has neither our tracking nor our subscription (autoResubscribe is off).
      this.connections++;
      this.registered = null;
      this.subscribed = false;
      this.notify();
    });
    this.sub = sub;
    return sub;
  }

  /**
   * An array of key names (bytes); null when the whole keyspace was flushed. A queue's prefix
   * covers more than its lists: under "celery", every `celery-task-meta-<id>` result written.
   */
  private onInvalidate(payload: unknown): void {
    if (!Array.isArray(payload)) return this.notify();
    for (const name of payload as (Buffer | string)[]) {
      const length = typeof name === 'string' ? Buffer.byteLength(name) : name.length;
      if (this.keyLengths.has(length) && this.keys.has(String(name))) return this.notify();
    }
  }
}

/** Redis refuses overlapping prefixes: keep only those no other one starts with. */
export function minimalPrefixes(all: Iterable<string>): string[] {
  const sorted = [...new Set(all)].sort();
  return sorted.filter((p, i) => !sorted.slice(0, i).some((q) => p.startsWith(q)));
}
