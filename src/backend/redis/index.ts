/**
 * The Redis result store, as Celery's RedisBackend (`celery/backends/redis.py`): `set` is
 * SETEX (or SET without expiry) and PUBLISH on a channel named like the key (no DB prefix),
 * atomically, so Python clients subscribed to `celery-task-meta-<id>` wake at once, and so do
 * we. The writes of one event-loop turn share one script run (STORE_MANY).
 * URLs and connection options: see src/transport/redis/connection.ts (same schemes; sentinel
 * needs `?master_name=`).
 *
 * `set` outlives a short outage as Celery's RedisBackend.set (`ensure` with its retry_policy):
 * on a connection error it is retried up to 20 times, at once and then every second, logging each
 * retry; option `retry_policy: {max_retries, interval_start, interval_step, interval_max}` changes
 * that (seconds, Celery's names). Reads are not retried (the callers poll again), as in Celery.
 *
 * waitForChange SUBSCRIBEs on one subscriber connection shared by every waiter of this store,
 * reference-counting the channels; it subscribes first, then reads the key, and only waits if
 * the value still equals the one the caller saw, so no update between reading and waiting is lost.
 * A task the caller has just sent is read once, after its SUBSCRIBE is confirmed (`listening`):
 * that read cannot miss a later publish, so the second read is saved (one command in four of a
 * client's round trip). When its message came in with the confirmation, that is the value
 * (`received`), and it is not read at all. A message that arrives while its waiter is between two
 * waits is kept (`lastMessage`), so a STARTED and a SUCCESS in one read wake it with the SUCCESS.
 * Every second the waited-on keys are read again (one MGET), so a lost message (a subscription
 * dropped with its connection) delays a waiter by that second at most, never for ever.
 */
import { Redis } from 'ioredis';
import { booleanOption } from '../../transport/redis/keys.ts';
import { type LineLogger, lineLogger, maskUrl, mergeOptions, numberOption, OutageLog, closeClient, redisOptions, subscriberOptions, transientError } from '../../transport/redis/connection.ts';
import { redisArg } from '../../common/redis-arg.ts';
import { TickBatch } from '../../common/tick-batch.ts';
import type { ChordPart, ChordProgress, KeyValueStore, KeyValueStoreOptions } from '../types.ts';
import { addChordPart, addToChord, chordParts, deleteChord } from './chord.ts';
import { defineIndexCommands, indexedSince, setIndexed } from './indexed.ts';

export class RedisStore implements KeyValueStore {
  readonly url: string;
  readonly client: Redis;
  private readonly openSubscriber: () => Redis;
  private sub: Redis | undefined;
  private readonly listeners = new Map<string, Set<Listener>>();
  private fallback: NodeJS.Timeout | undefined;
  private fallbackRunning = false;
  /** Channel → its SUBSCRIBE (true once subscribed, false if it failed), while anyone waits on it or it is leaving. */
  private readonly subscribed = new Map<string, Promise<boolean>>();
  /** Channel → the last message it brought: one that came between two waits of a waiter is not lost. */
  private readonly lastMessage = new Map<string, string>();
  /** Channels nobody waits on any more, unsubscribed together by `leave`. */
  private readonly leaving = new Set<string>();
  private leaveTimer: NodeJS.Timeout | undefined;

  /** Writes of this turn: one script run, one promise. */
  private readonly writes = new TickBatch<PendingWrite>((batch) => this.flush(batch));
  private readonly retry: RetryPolicy;
  private readonly log: LineLogger;
  private closed = false;
  /** Celery's `result_chord_ordered` transport option: chord results in header order (a zset), else in completion order (a list). */
  private readonly chordOrdered: boolean;

  constructor(url: URL, options: KeyValueStoreOptions = {}) {
    const opts = mergeOptions(url, options);
    this.url = maskUrl(url);
    const connection = redisOptions(url, opts);
    this.retry = retryPolicy(opts.retry_policy);
    this.chordOrdered = booleanOption('result_chord_ordered', opts.result_chord_ordered, true);
    this.log = lineLogger(opts.logger);
    const outage = new OutageLog(`redis result backend ${this.url}`, this.log, this.url);
    this.client = outage.watch(new Redis(connection));
    this.client.defineCommand('celeriacStoreMany', { lua: STORE_MANY });
    defineIndexCommands(this.client);
    this.openSubscriber = () => outage.watch(new Redis({ ...subscriberOptions(connection), maxRetriesPerRequest: 1 }));
  }

  get(key: string): Promise<string | null> {
    return this.client.get(key);
  }

  async mget(keys: readonly string[]): Promise<(string | null)[]> {
    return keys.length === 0 ? [] : this.client.mget(...keys);
  }

  /**
   * Writes are batched per event-loop turn: every result finished in the same turn goes out in
   * one script run (one socket write, one round trip), each still a SETEX + PUBLISH pair.
   */
  set(key: string, value: string, ttlSeconds: number | null): Promise<void> {
    return this.writes.add({ key, value: redisArg(value), ttlSeconds });
  }

  setBytes(key: string, value: Buffer, ttlSeconds: number | null): Promise<void> {
    return this.writes.add({ key, value, ttlSeconds });
  }

  flushWrites(): void {
    this.writes.flush();
  }

  private async flush(batch: PendingWrite[]): Promise<void> {
    const { maxRetries, start, step, max } = this.retry;
    for (let retries = 0; ; retries++) {
      try {
        await this.writeBatch(batch);
        return;
      } catch (err) {
        if (this.closed || !transientError(err) || retries >= maxRetries) throw err;
        const wait = Math.min(start + step * retries, max);
        this.log.warning(`Connection to Redis lost: Retry (${retries + 1}/${maxRetries}) ${wait ? `in ${wait.toFixed(2)} second${wait === 1 ? '' : 's'}` : 'now'}.`);
        await new Promise((r) => setTimeout(r, wait * 1000));
      }
    }
  }

  /**
   * One script run per run of writes with the same TTL (results share one), in order: far fewer
   * commands to build and parse than a MULTI of 2 per write.
   */
  private async writeBatch(batch: readonly PendingWrite[]): Promise<void> {
    for (let start = 0; start < batch.length; ) {
      const ttl = ttlMs(batch[start]!);
      let end = start + 1;
      while (end < batch.length && end - start < MAX_PER_SCRIPT && ttlMs(batch[end]!) === ttl) end++;
      const part = batch.slice(start, end);
      const args: (string | Buffer)[] = part.map((w) => w.key);
      args.push(String(ttl));
      for (const w of part) args.push(w.value);
      await (this.client as StoringRedis).celeriacStoreMany(part.length, ...args);
      start = end;
    }
  }

  async delete(key: string): Promise<void> {
    await this.client.del(key);
  }

  async incr(key: string, by: number, ttlSeconds: number | null): Promise<number> {
    const multi = this.client.multi().incrby(key, by);
    if (ttlSeconds !== null && Number.isInteger(ttlSeconds) && ttlSeconds > 0) multi.expire(key, ttlSeconds);
    else if (ttlSeconds !== null) multi.pexpire(key, Math.max(1, Math.round(ttlSeconds * 1000)));
    const replies = await check(multi.exec());
    return Number(replies[0]?.[1]);
  }

  /** Chords join as Celery's RedisBackend does (src/backend/redis/chord.ts). */
  addChordPart(groupId: string, part: ChordPart, ttlSeconds: number | null): Promise<ChordProgress> {
    return addChordPart(this.client, groupId, part, ttlSeconds, this.chordOrdered);
  }

  chordParts(groupId: string): Promise<string[]> {
    return chordParts(this.client, groupId, this.chordOrdered);
  }

  addToChord(groupId: string): Promise<void> {
    return addToChord(this.client, groupId);
  }

  deleteChord(groupId: string): Promise<void> {
    return deleteChord(this.client, groupId);
  }

  async waitForChange(key: string, timeoutMs: number, signal?: AbortSignal, lastSeen?: string | null, seenWhileListening = false): Promise<string | undefined> {
    if (signal?.aborted || timeoutMs <= 0) return undefined;
    let wake!: (value?: string) => void;
    const changed = new Promise<string | undefined>((resolve) => (wake = resolve));
    const listener: Listener = { wake, before: undefined };
    const release = this.listen(key, listener);
    const timer = setTimeout(wake, timeoutMs);
    const aborted = () => wake();
    signal?.addEventListener('abort', aborted, { once: true });
    try {
      const before = lastSeen === undefined ? await this.client.get(key) : lastSeen;
      listener.before = before; // from now on the fallback read compares with it
      if (seenWhileListening) {
        const last = this.lastMessage.get(key);
        if (last !== undefined && last !== before) return last; // it came in the same read as the one that woke the caller
      } else {
        await Promise.race([this.subscribed.get(key), changed]); // subscribed before the re-read
        const now = await this.client.get(key);
        if (now !== before) return now ?? undefined;
      }
      // The message carries the value written (Celery publishes it), so nobody needs to read it again.
      return await changed;
    } catch {
      // Never rejects: connection trouble ends the wait; the caller reads again.
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', aborted);
      release();
    }
    return undefined;
  }

  setIndexed(key: string, value: string, ttlSeconds: number, index: string, member: string): Promise<void> {
    return setIndexed(this.client, key, value, ttlSeconds, index, member);
  }

  indexedSince(index: string, since: number | null, maxAgeMs: number, limit: number): Promise<{ members: string[]; next: number }> {
    return indexedSince(this.client, index, since, maxAgeMs, limit);
  }

  /** The SUBSCRIBE travels with the caller's first read, so a wait after it starts subscribed. */
  listenEarly(key: string): () => void {
    return this.listen(key, { wake: () => undefined, before: undefined });
  }

  listening(key: string): Promise<boolean> {
    return this.subscribed.get(key) ?? Promise.resolve(false);
  }

  received(key: string): string | undefined {
    return this.lastMessage.get(key);
  }

  /** Redis errors a retry may cure (the connection, a server loading or failing over). */
  isTransient(err: unknown): boolean {
    return transientError(err);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const set of this.listeners.values()) for (const l of set) l.wake();
    this.listeners.clear();
    this.subscribed.clear();
    this.lastMessage.clear();
    this.leaving.clear();
    clearTimeout(this.leaveTimer);
    this.stopFallback();
    this.sub?.disconnect();
    await closeClient(this.client);
  }

  /**
   * Add a listener for the key's channel; returns its release. The last release leaves the channel
   * a little later, with others in one UNSUBSCRIBE, not on the way of the result just received.
   */
  private listen(channel: string, listener: Listener): () => void {
    let set = this.listeners.get(channel);
    if (!set) {
      this.listeners.set(channel, (set = new Set()));
      const stillSubscribed = this.leaving.delete(channel) && this.subscribed.has(channel);
      if (!stillSubscribed) this.subscribed.set(channel, this.subscriber().subscribe(channel).then(() => true, () => false));
    }
    set.add(listener);
    this.fallback ??= setInterval(() => void this.fallbackRead(), FALLBACK_READ_MS);
    return () => {
      if (!set.delete(listener) || set.size > 0 || this.listeners.get(channel) !== set) return;
      this.listeners.delete(channel);
      this.lastMessage.delete(channel);
      this.leaving.add(channel);
      if (!this.leaveTimer) {
        this.leaveTimer = setTimeout(() => this.leave(), LEAVE_AFTER_MS);
        this.leaveTimer.unref();
      }
      if (this.listeners.size === 0) this.stopFallback();
    };
  }

  private leave(): void {
    this.leaveTimer = undefined;
    const channels = [...this.leaving];
    this.leaving.clear();
    for (const c of channels) this.subscribed.delete(c);
    if (channels.length > 0) this.sub?.unsubscribe(...channels).catch(() => undefined);
  }

  /**
   * Read every waited-on key again (one MGET per 1,000), so a result whose message was lost (a
   * subscription dropped with its connection, a PUBLISH that never came) wakes its waiters anyway.
   */
  private async fallbackRead(): Promise<void> {
    if (this.fallbackRunning) return;
    this.fallbackRunning = true;
    try {
      const keys = [...this.listeners.keys()];
      for (let i = 0; i < keys.length; i += 1000) {
        const part = keys.slice(i, i + 1000);
        const values = await this.client.mget(...part);
        part.forEach((key, j) => {
          const value = values[j] ?? null;
          for (const l of [...(this.listeners.get(key) ?? [])]) if (l.before !== undefined && value !== l.before) l.wake(value ?? undefined);
        });
      }
    } catch {
      // An outage: the next tick reads again.
    } finally {
      this.fallbackRunning = false;
    }
  }

  private stopFallback(): void {
    if (this.fallback) clearInterval(this.fallback);
    this.fallback = undefined;
  }

  private subscriber(): Redis {
    if (this.sub) return this.sub;
    const sub = this.openSubscriber();
    sub.on('message', (channel: string, value: string) => {
      if (this.listeners.has(channel)) this.lastMessage.set(channel, value);
      for (const l of [...(this.listeners.get(channel) ?? [])]) l.wake(value);
    });
    // After a lost connection ioredis subscribes again only if it had been ready: wake everyone, who
    // read again and subscribe anew, so nobody sleeps through the gap.
    let dropped = false;
    sub.on('close', () => {
      dropped = true;
      // ioredis subscribes again by itself: until then a read proves nothing about the feed.
      for (const channel of this.subscribed.keys()) this.subscribed.set(channel, Promise.resolve(false));
    });
    sub.on('ready', () => {
      if (dropped) for (const set of this.listeners.values()) for (const l of set) l.wake();
      dropped = false;
    });
    return (this.sub = sub);
  }
}

/**
 * KEYS: result keys; ARGV[1]: their TTL in ms (0: none); ARGV[1 + i]: the value of KEYS[i].
 * Celery's SETEX (SET without expiry) then PUBLISH on the channel named like the key, for every
 * key, atomically as a MULTI would.
 */
const STORE_MANY = `
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local value = ARGV[1 + i]
  if ttl == 0 then
    redis.call('SET', key, value)
  elseif ttl % 1000 == 0 then
    redis.call('SETEX', key, ttl / 1000, value)
  else
    redis.call('SET', key, value, 'PX', ttl)
  end
  redis.call('PUBLISH', key, value)
end
return #KEYS
`;
/** Writes per script run: keeps each run short (Redis runs nothing else meanwhile). */
const MAX_PER_SCRIPT = 500;

/** How long a channel nobody waits on stays subscribed, gathering unsubscribes into one command. */
const LEAVE_AFTER_MS = 50;

/** How often waited-on keys are read again, in case their message was lost. */
const FALLBACK_READ_MS = 1000;

interface Listener {
  wake: (value?: string) => void;
  /** The value the waiter last saw; undefined until it has read it. */
  before: string | null | undefined;
}

function ttlMs(w: PendingWrite): number {
  return w.ttlSeconds === null ? 0 : Math.max(1, Math.round(w.ttlSeconds * 1000));
}

interface StoringRedis extends Redis {
  celeriacStoreMany(numKeys: number, ...args: (string | Buffer)[]): Promise<number>;
}

interface PendingWrite {
  key: string;
  /** Bytes when long, made at once: a long string would otherwise live until the flush. */
  value: string | Buffer;
  ttlSeconds: number | null;
}

interface RetryPolicy {
  maxRetries: number;
  /** Seconds. */
  start: number;
  step: number;
  max: number;
}

/** Celery's default result-backend retry_policy, with the given one merged over it. */
function retryPolicy(option: unknown): RetryPolicy {
  const o = (option && typeof option === 'object' ? option : {}) as Record<string, unknown>;
  const num = (name: string, fallback: number) => {
    const v = o[name] ?? o[name.replace(/_(\w)/g, (_, c: string) => c.toUpperCase())];
    return v === undefined || v === null ? fallback : numberOption(`retry_policy.${name}`, v, fallback);
  };
  return { maxRetries: num('max_retries', 20), start: num('interval_start', 0), step: num('interval_step', 1), max: num('interval_max', 1) };
}

async function check(replies: Promise<[Error | null, unknown][] | null>): Promise<[Error | null, unknown][]> {
  const r = (await replies) ?? [];
  const err = r.find(([e]) => e)?.[0];
  if (err) throw err;
  return r;
}

export function createRedisStore(url: URL, options: KeyValueStoreOptions): KeyValueStore {
  return new RedisStore(url, options);
}

/** The URL schemes this store serves. */
export const REDIS_STORES = { 'redis:': createRedisStore, 'rediss:': createRedisStore, 'redis+socket:': createRedisStore, 'sentinel:': createRedisStore } as const;
