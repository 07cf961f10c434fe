import type { Celery } from '../app/celery.ts';
import { setSignalLogger } from '../app/signal.ts';
import { signals } from '../app/signals.ts';
import type { ResultBackend } from '../backend/result-backend.ts';
import type { Delivery, Transport } from '../transport/types.ts';
import { banner } from './banner.ts';
import { connectBroker } from './connect.ts';
import { createLogger, type LogFormat, type Logger } from '../common/log.ts';
import { Autoscaler, ChildPool, InlinePool, parsePoolName, type Pool, type PoolName } from './pool/index.ts';
import { RevokeChecker } from './revokes.ts';
import { Slots } from './slots.ts';
import { handleDelivery, type Held, type StrategyEnv } from './strategy.ts';
import { expandHostname } from './hostname.ts';
import { Cluster } from './cluster.ts';
import { RateLimits } from './rate-limit.ts';
import { RevokedSet } from './revoked-set.ts';
import { loadState, saveState } from './statedb.ts';
import { LamportClock } from '../events/clock.ts';
import type { EventDispatcher } from '../events/dispatcher.ts';
import type { ControlTarget, HeldRequest } from '../control/target.ts';
import { ConfigurationError, DatabaseFileGone, TaskRevokedError } from '../errors.ts';

export interface WorkerOptions {
  /** Queues to consume (default: the app's taskDefaultQueue). */
  queues?: string[];
  /** Tasks run at once on the event loop (default: the app's workerConcurrency). */
  concurrency?: number;
  /** Messages reserved per slot (default: the app's workerPrefetchMultiplier; 0 = no limit). */
  prefetchMultiplier?: number;
  /** Node name, with %h, %n, %d expanded (default `celery@%h`). */
  hostname?: string;
  logger?: Logger;
  /** Print Celery's start-up banner. */
  banner?: boolean;
  /** Send task events (`-E`, worker_send_task_events). */
  taskEvents?: boolean;
  /** Seconds between worker-heartbeat events (default 2). */
  heartbeatInterval?: number;
  withoutHeartbeat?: boolean;
  withoutMingle?: boolean;
  withoutGossip?: boolean;
  /** Answer remote control (default true). */
  control?: boolean;
  /** File that keeps revoked ids and the logical clock across restarts (`--statedb`). */
  statedb?: string;
  /** Where tasks run (`-P`): async (default), threads, processes or solo; Celery's names are accepted too. */
  pool?: string;
  /** The app as children load it (`-A` value): needed by the threads and processes pools. */
  appSpec?: string;
  /** The log format (text or json): the setupLogging signal's, and the pool children's. */
  logFormat?: LogFormat;
  /** Seconds: the defaults of tasks without their own limits (`--time-limit`, `--soft-time-limit`). */
  timeLimit?: number;
  softTimeLimit?: number;
  /** Replace a child after this many tasks (`--max-tasks-per-child`). */
  maxTasksPerChild?: number;
  /** Replace a child whose resident memory passed this many KiB after a task (`--max-memory-per-child`). */
  maxMemoryPerChild?: number;
  /** `--autoscale MAX,MIN`. */
  autoscale?: [number, number];
}

/** Messages reserved at most when the prefetch multiplier is 0 ("no limit"). */
const UNLIMITED_PREFETCH = 10_000;
/** About this many bytes of message bodies per fetch: large messages come in batches whose replies overlap the work. */
const FETCH_BYTES = 2 * 1024 * 1024;
/** At most this many bytes of large message bodies held (the prefetch window still bounds the count). */
const WINDOW_BYTES = 16 * 1024 * 1024;
/** Messages taken by a fetch while their sizes are unknown: a probe, followed at once by a full fetch. */
const FIRST_FETCH = 16;

/**
 * The worker: fetches from its queues within the prefetch window, runs tasks on the event loop up
 * to `concurrency` at once, and shuts down warm (finish running tasks, give back the rest) or cold.
 */
export class Worker implements ControlTarget {
  readonly hostname: string;
  readonly queues: string[];
  readonly clock = new LamportClock();
  readonly revoked = new RevokedSet();
  private revokes: RevokeChecker | undefined;
  readonly startedAt = Date.now() / 1000;
  readonly rateLimits = new RateLimits();
  events: EventDispatcher | undefined;
  cluster: Cluster | undefined;
  concurrency: number;
  prefetchLimit: number;
  /** 1 after a cold shutdown or an error the worker cannot recover from; the CLI exits with it. */
  exitCode = 0;
  readonly log: Logger;
  readonly poolName: PoolName;
  readonly pool: Pool;
  autoscaler: Autoscaler | undefined;
  private readonly slots: Slots;
  private readonly multiplier: number;
  private readonly held = new Set<Held>();
  private readonly processed = new Map<string, number>();
  private readonly stopFetching = new AbortController();
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private transport: Transport | undefined;
  private stopping: Promise<void> | undefined;
  /** The largest message body fetched so far: the size estimate for workerPrefetchBytes. */
  private largestBody = 0;
  /** The largest body of the last fetch: how many the next one takes (FETCH_BYTES). */
  private lastLargest = 0;

  constructor(
    readonly app: Celery,
    private readonly options: WorkerOptions = {},
  ) {
    this.hostname = expandHostname(options.hostname ?? 'celery@%h');
    this.queues = options.queues?.length ? options.queues : [app.conf.taskDefaultQueue];
    this.log = options.logger ?? createLogger();
    const { name, alias } = parsePoolName(options.pool ?? app.conf.workerPool);
    if (name === 'async' && alias) this.log.info(`pool ${alias} is celeriac's async pool: tasks are promises on Node's event loop, its counterpart of ${alias}'s green threads`);
    this.poolName = name;
    const [max, min] = options.autoscale ?? [];
    this.concurrency = name === 'solo' ? 1 : min ?? options.concurrency ?? app.conf.workerConcurrency;
    this.multiplier = options.prefetchMultiplier ?? app.conf.workerPrefetchMultiplier;
    // With autoscale the window is sized for the most children, as Celery's.
    this.prefetchLimit = this.multiplier === 0 ? UNLIMITED_PREFETCH : Math.max(1, (max ?? this.concurrency) * this.multiplier);
    this.pool = this.createPool(name);
    this.slots = new Slots(this.pool.slots(this.concurrency));
    if (max !== undefined && min !== undefined) this.autoscaler = new Autoscaler(this, max, min, this.log);
    for (const task of app.tasks.values()) if (task.options.rateLimit) this.rateLimits.set(task.name, task.options.rateLimit);
  }

  private createPool(name: PoolName): Pool {
    const o = this.options;
    const limits = (o.timeLimit !== undefined || o.softTimeLimit !== undefined) ? { hard: o.timeLimit ?? null, soft: o.softTimeLimit ?? null } : undefined;
    if (name === 'async' || name === 'solo') return new InlinePool(name, this.app, this.log, () => this.concurrency, limits);
    if (!o.appSpec) {
      throw new ConfigurationError(`the ${name} pool loads the app in each child: start the worker with -A (or give WorkerOptions.appSpec, e.g. './tasks.ts:app')`);
    }
    return new ChildPool(this.app, {
      kind: name, size: this.concurrency, appSpec: o.appSpec, hostname: this.hostname, log: this.log, logFormat: o.logFormat,
      maxTasksPerChild: o.maxTasksPerChild ?? this.app.conf.workerMaxTasksPerChild, maxMemoryPerChild: o.maxMemoryPerChild ?? this.app.conf.workerMaxMemoryPerChild, limits,
    });
  }

  /** Connect and start consuming; resolves once the worker is ready. */
  async start(): Promise<void> {
    setSignalLogger(this.log);
    await signals.setupLogging.send({ sender: null, loglevel: this.log.level, logfile: null, format: this.options.logFormat ?? 'text', colorize: false });
    // Task modules first, as Celery's loader before worker_init.
    await this.app.finalize();
    await signals.workerInit.send({ sender: this });
    if (this.options.statedb) loadState(this.options.statedb, this.revoked, this.clock);
    this.transport = await this.app.transport();
    if (this.app.conf.workerRestoreLost) this.transport.recordHolder?.(this.hostname);
    await connectBroker(this.transport, this.app.conf, this.log, this.stopFetching.signal);
    for (const q of this.queues) await this.transport.declareQueue(q);
    const backend = this.app.backendUrl() ? await this.app.backend() : undefined;
    if (this.pool instanceof InlinePool) {
      this.warnUnstoppable();
      // Tasks run in this process (Celery's solo pool): it is the pool's one process, started here.
      await signals.workerProcessInit.send({ sender: null });
    }
    await this.pool.start();
    this.autoscaler?.start();
    if (this.transport.broadcast) this.cluster = new Cluster(this, this.transport.broadcast, this.options);
    if (this.options.banner) process.stdout.write(banner(this, backend));
    await this.cluster?.start();
    this.revokes = new RevokeChecker(backend, this.revoked, this.transport.broadcast !== undefined, this.log);
    await this.revokes.start();
    this.loop = this.consume(this.transport, backend, this.revokes);
    this.log.info(`${this.hostname} ready.`);
    await signals.workerReady.send({ sender: this });
  }

  /** Once, at start-up: a hard limit on the async or solo pool cannot stop synchronous code. */
  private warnUnstoppable(): void {
    const hard = this.options.timeLimit ?? this.app.conf.taskTimeLimit ?? [...this.app.tasks.values()].find((t) => t.options.timeLimit)?.options.timeLimit;
    if (!hard) return;
    this.log.warning(
      `A hard time limit (${hard}s) is set, and the ${this.poolName} pool cannot stop a task that never awaits (a CPU loop): ` +
      'it fails such a task only once it yields. Run CPU-bound tasks with -P processes or -P threads, where the limit stops anything.',
    );
  }

  /** Resolves when the worker has stopped. */
  async join(): Promise<void> {
    await this.loop;
    await this.stopping;
  }

  /** The prefetch window (reserved or running, not yet acknowledged), and how many wait for a slot. */
  private windowCounts(): { window: number; reserved: number; bytes: number } {
    let window = 0;
    let reserved = 0;
    let bytes = 0;
    for (const h of this.held) {
      if (!h.acked && h.state !== 'scheduled') window++;
      if (h.state === 'reserved') reserved++;
      bytes += h.delivery.message.body.length;
    }
    return { window, reserved, bytes };
  }

  /**
   * workerPrefetchBytes: how many more messages fit in the byte budget, and the refill batch. A
   * fetch asks for a count, not bytes, so sizes are estimated by the largest body seen (before
   * any, by brokerMaxMessageSize: the first fetch takes one message).
   */
  private byteRoom(bytes: number): { room: number; batch: number } {
    const limit = this.app.conf.workerPrefetchBytes;
    if (!limit) return { room: Infinity, batch: Infinity };
    const size = Math.max(1, this.largestBody || this.app.conf.brokerMaxMessageSize || limit);
    return { room: Math.floor((limit - bytes) / size), batch: Math.max(1, Math.floor(limit / size / 4)) };
  }

  private get refillBatch(): number {
    return Math.max(1, Math.floor(this.prefetchLimit / 4));
  }

  private async consume(transport: Transport, backend: ResultBackend | undefined, revokes: RevokeChecker): Promise<void> {
    const env: StrategyEnv = {
      app: this.app,
      worker: this,
      hostname: this.hostname,
      log: this.log,
      slots: this.slots,
      backend,
      revokes,
      rateLimits: this.rateLimits,
      events: this.events,
      held: this.held,
      starting: [],
      processed: this.processed,
      pool: this.pool,
      onRelease: () => this.wake?.(),
      flushAcks: () => transport.flushAcks?.(),
    };
    const signal = this.stopFetching.signal;
    /** A fetch sent before the batch it follows was handed out, and what it asked for. */
    let ahead: { fetching: Promise<Delivery[]>; asked: number; bytes: number } | undefined;
    const fetchRoom = (room: { count: number; bytes: number }) => ({ fetching: transport.fetch(this.queues, room.count, 1000, signal, room.bytes), asked: room.count, bytes: room.bytes });
    while (!signal.aborted) {
      let next = ahead;
      ahead = undefined;
      if (!next) {
        const room = this.room([]);
        if (room.count === 0) {
          await this.released(signal);
          continue;
        }
        next = fetchRoom(room);
      }
      let deliveries;
      try {
        deliveries = await next.fetching;
      } catch (err) {
        if (err instanceof DatabaseFileGone) {
          // Retrying cannot help: every later fetch would read a file nobody else writes.
          this.log.critical(`consumer: ${err.message}. Stopping the worker.`);
          this.exitCode = 1;
          void this.shutdown();
          return;
        }
        this.log.error(`consumer: cannot fetch from the broker: ${(err as Error).message}; retrying in 1 s`);
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      let bodyBytes = 0;
      if (deliveries.length > 0) {
        this.lastLargest = 0;
        for (const d of deliveries) {
          bodyBytes += d.message.body.length;
          this.lastLargest = Math.max(this.lastLargest, d.message.body.length);
        }
        this.largestBody = Math.max(this.largestBody, this.lastLargest);
      }
      // A full batch: the queue likely holds more. The next fetch goes out now, and its reply comes
      // back while this batch is decoded and run (large messages come in several small batches).
      // A batch cut short by the byte limit is full too: the broker counts envelopes, larger than
      // the bodies (base64), so such a batch brings fewer than asked but at least half the bytes.
      const full = deliveries.length >= next.asked || (deliveries.length > 0 && bodyBytes >= next.bytes / 2);
      const more = full && !signal.aborted ? this.room(deliveries) : undefined;
      if (more && more.count > 0) {
        ahead = fetchRoom(more);
        ahead.fetching.catch(() => undefined); // awaited, with its error, by the next turn
      }
      for (const delivery of deliveries) {
        if (signal.aborted) {
          await delivery.restore();
          continue;
        }
        const unexpected = (err: unknown) => this.log.critical(`Unexpected error while handling message ${delivery.deliveryTag}: ${(err as Error)?.stack ?? String(err)}`);
        try {
          handleDelivery(env, delivery)?.catch(unexpected);
        } catch (err) {
          unexpected(err);
        }
      }
      // Otherwise the next fetch waits a turn, behind the results of the tasks just started (they
      // start in a microtask: strategy's startBatch), so they leave first; and a broker that answers
      // "nothing" at once (closed, or polling) does not starve the timers.
      if (!ahead) await new Promise((resolve) => queueMicrotask(() => setImmediate(resolve)));
    }
    // Stopped with a fetch under way: what it took goes back.
    if (ahead) for (const d of await ahead.fetching.catch(() => [])) await d.restore().catch(() => undefined);
  }

  /** Resolves once a held message left the window (or on abort); a burst of releases (a batch of tasks finishing) is looked at once, after it. */
  private released(signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        signal.removeEventListener('abort', done);
        this.wake = undefined;
        resolve();
      };
      this.wake = () => {
        this.wake = undefined;
        setImmediate(done);
      };
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /**
   * How many messages to fetch now, given the prefetch window and those fetched but not handed out
   * yet (`pending`); 0 means wait for tasks to finish. A quarter of the window at a time, not one
   * message per finished task (one broker round trip per task), unless the pool has a free slot
   * and nothing reserved to put in it; half of it at most. About FETCH_BYTES of bodies per fetch,
   * and at most WINDOW_BYTES held (large messages only: a worker holding hundreds of them runs no
   * faster, and collects garbage over all of them): `bytes` for transports that stop at a byte
   * count, and a count judged by the largest body of the last fetch for the others (a first fetch,
   * sizes unknown, takes a few).
   */
  private room(pending: readonly Delivery[]): { count: number; bytes: number } {
    const counts = this.windowCounts();
    const window = counts.window + pending.length;
    const bytes = pending.reduce((n, d) => n + d.message.body.length, counts.bytes);
    const starving = pending.length === 0 && counts.reserved === 0 && this.slots.active < this.slots.size;
    const byBytes = this.byteRoom(bytes);
    let room = Math.min(this.prefetchLimit - window, byBytes.room);
    const size = this.lastLargest;
    if (size > 0) room = Math.min(room, Math.floor((WINDOW_BYTES - bytes) / size));
    // A worker that holds nothing takes one message, however large: progress first.
    if (room <= 0 && this.held.size === 0 && pending.length === 0) room = 1;
    // Half the window at most: the next fetch then fits in the window, and goes out while this one's
    // batch runs. A broker that pushes (AMQP) is given the whole room: it is its prefetch count.
    const capabilities = this.transport?.capabilities;
    const perFetch = Math.min(size > 0 ? Math.max(1, Math.floor(FETCH_BYTES / size)) : FIRST_FETCH,
      capabilities?.pushes ? Infinity : Math.ceil(this.prefetchLimit / 2), capabilities?.maxFetch ?? Infinity);
    const fetchBytes = Math.max(1, Math.min(FETCH_BYTES, WINDOW_BYTES - bytes));
    if (room <= 0 || (room < Math.min(this.refillBatch, byBytes.batch, perFetch) && !starving)) return { count: 0, bytes: fetchBytes };
    return { count: Math.min(room, perFetch), bytes: fetchBytes };
  }

  /**
   * Warm shutdown: stop fetching, give back messages not yet started (they are the next ones
   * delivered), let running tasks finish, close. With `cold`, running tasks are aborted too and
   * their unacknowledged messages given back.
   */
  shutdown({ cold = false, sig = null }: { cold?: boolean; sig?: string | null } = {}): Promise<void> {
    if (cold) return this.coldShutdown(sig);
    this.stopping ??= this.warmShutdown(sig);
    return this.stopping;
  }

  private async warmShutdown(sig: string | null): Promise<void> {
    this.log.warning('worker: Warm shutdown (MainProcess)');
    await signals.workerShuttingDown.send({ sender: this.hostname, sig, how: 'Warm', exitcode: this.exitCode });
    this.stopFetching.abort();
    await this.loop;
    await this.giveBack((h) => h.state !== 'active');
    await this.slots.drained();
    this.autoscaler?.stop();
    this.revokes?.stop();
    await this.pool.close();
    await this.cluster?.stop();
    this.persist();
    await signals.workerShutdown.send({ sender: this });
    await this.app.close();
  }

  private persist(): void {
    if (this.options.statedb) saveState(this.options.statedb, this.revoked, this.clock);
  }

  private async coldShutdown(sig: string | null): Promise<void> {
    this.log.warning('worker: Cold shutdown (MainProcess)');
    // A warm shutdown under way may finish first (its tasks are aborted): it must not exit 0.
    this.exitCode = 1;
    await signals.workerShuttingDown.send({ sender: this.hostname, sig, how: 'Cold', exitcode: this.exitCode });
    this.stopFetching.abort();
    const running = [...this.held].filter((h) => h.state === 'active');
    // Give back first: an aborted task must not settle its message before it is restored.
    await this.giveBack(() => true);
    for (const h of running) h.abort.abort(new Error('worker cold shutdown'));
    this.autoscaler?.stop();
    this.revokes?.stop();
    await this.pool.close({ force: true });
    // Early-acked tasks that were running cannot come back; Celery 5.2 stores nothing for them
    // either, so their state stays as last stored (PENDING, or STARTED with trackStarted). Say so.
    for (const h of running.filter((r) => r.acked && !r.restored)) {
      this.log.error(
        `Task ${h.request.name}[${h.request.id}] was running and is lost: its message was acknowledged before it ran ` +
        '(acksLate is off), so it will not run again; its state stays as last stored',
        { taskId: h.request.id, task: h.request.name },
      );
    }
    await this.cluster?.stop();
    this.persist();
    await signals.workerShutdown.send({ sender: this });
    await this.app.close();
  }

  private async giveBack(which: (h: Held) => boolean): Promise<void> {
    const back = [...this.held].filter((h) => !h.acked && which(h));
    for (const h of back) {
      this.held.delete(h);
      h.timer?.clear();
      h.acked = true;
      h.restored = true;
      try {
        await h.delivery.restore();
      } catch (err) {
        this.log.error(`Could not give back message ${h.delivery.deliveryTag}: ${(err as Error).message}; the broker will redeliver it`);
      }
    }
    if (back.length > 0) this.log.info(`Restoring ${back.length} unacknowledged message(s)`);
  }

  heldRequests(): HeldRequest[] {
    return [...this.held].map((h) => {
      const waiting = h.state === 'active' && this.pool.isWaiting(h.request.id);
      return { request: h.request, info: h.delivery.info, state: waiting ? 'reserved' : h.state, acked: h.acked, timeStart: waiting ? null : h.timeStart, workerPid: this.pool.pidOf(h.request.id) };
    });
  }

  processedTotals(): Record<string, number> {
    return Object.fromEntries(this.processed);
  }

  terminate(ids: readonly string[]): string[] {
    const wanted = new Set(ids);
    const hit: string[] = [];
    for (const h of this.held) {
      if (h.state !== 'active' || !wanted.has(h.request.id)) continue;
      h.abort.abort(new TaskRevokedError('terminated'));
      hit.push(h.request.id);
    }
    return hit;
  }

  async addQueue(queue: string): Promise<void> {
    await this.transport?.declareQueue(queue);
    if (!this.queues.includes(queue)) this.queues.push(queue);
  }

  cancelQueue(queue: string): boolean {
    const i = this.queues.indexOf(queue);
    if (i < 0 || this.queues.length === 1) return false;
    this.queues.splice(i, 1);
    return true;
  }

  resizePool(delta: number): number {
    const before = this.concurrency;
    this.setPoolSize(this.concurrency + delta);
    // As Celery's _update_prefetch_count: the window follows the pool.
    if (this.multiplier !== 0) this.prefetchLimit = Math.max(1, this.prefetchLimit + (this.concurrency - before) * this.multiplier);
    return this.concurrency;
  }

  get poolSize(): number {
    return this.concurrency;
  }

  setPoolSize(n: number): void {
    this.concurrency = this.poolName === 'solo' ? 1 : Math.max(1, n);
    this.slots.resize(this.pool.slots(this.concurrency));
    this.pool.resize(this.concurrency);
  }

  /** Requests accepted and not finished, as Celery's reserved_requests (the autoscaler's demand). */
  demand(): number {
    let n = 0;
    for (const h of this.held) if (h.state !== 'scheduled') n++;
    return n;
  }

  poolInfo(): Record<string, unknown> {
    return this.pool.info();
  }

  async restartPool(): Promise<void> {
    await this.pool.restart();
  }

  async sendHeartbeat(freq?: number): Promise<void> {
    await this.cluster?.heartbeat(freq);
  }

  async election(id: string, topic: string, action: unknown): Promise<void> {
    await this.cluster?.gossip?.election(id, topic, action);
  }

  requestShutdown(): void {
    this.log.warning('worker: shutdown requested by remote control');
    void this.shutdown();
  }

  /** Counters for `stats`-like reporting. */
  stats(): { active: number; reserved: number; scheduled: number; processed: Record<string, number> } {
    const count = (s: Held['state']) => [...this.held].filter((h) => h.state === s).length;
    return { active: count('active'), reserved: count('reserved'), scheduled: count('scheduled'), processed: Object.fromEntries(this.processed) };
  }
}
