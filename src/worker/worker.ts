import type { Celery } from '../app/celery.ts';
import type { ResultBackend } from '../backend/result-backend.ts';
import type { Transport } from '../transport/types.ts';
import { banner } from './banner.ts';
import { connectBroker } from './connect.ts';
import { createLogger, type Logger } from './log.ts';
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
import { DatabaseFileGone, TaskRevokedError } from '../errors.ts';

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
}

/** Messages reserved at most when the prefetch multiplier is 0 ("no limit"). */
const UNLIMITED_PREFETCH = 10_000;

/**
 * The worker: fetches from its queues within the prefetch window, runs tasks on the event loop up
 * to `concurrency` at once, and shuts down warm (finish running tasks, give back the rest) or cold.
 */
export class Worker implements ControlTarget {
  readonly hostname: string;
  readonly queues: string[];
  readonly clock = new LamportClock();
  readonly revoked = new RevokedSet();
  readonly startedAt = Date.now() / 1000;
  readonly rateLimits = new RateLimits();
  events: EventDispatcher | undefined;
  cluster: Cluster | undefined;
  concurrency: number;
  prefetchLimit: number;
  /** 1 after a cold shutdown or an error the worker cannot recover from; the CLI exits with it. */
  exitCode = 0;
  readonly log: Logger;
  private readonly slots: Slots;
  private readonly held = new Set<Held>();
  private readonly processed = new Map<string, number>();
  private readonly stopFetching = new AbortController();
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private transport: Transport | undefined;
  private stopping: Promise<void> | undefined;
  /** The largest message body fetched so far: the size estimate for workerPrefetchBytes. */
  private largestBody = 0;

  constructor(
    readonly app: Celery,
    private readonly options: WorkerOptions = {},
  ) {
    this.hostname = expandHostname(options.hostname ?? 'celery@%h');
    this.queues = options.queues?.length ? options.queues : [app.conf.taskDefaultQueue];
    this.concurrency = options.concurrency ?? app.conf.workerConcurrency;
    const multiplier = options.prefetchMultiplier ?? app.conf.workerPrefetchMultiplier;
    this.prefetchLimit = multiplier === 0 ? UNLIMITED_PREFETCH : Math.max(1, this.concurrency * multiplier);
    this.log = options.logger ?? createLogger();
    this.slots = new Slots(this.concurrency);
    for (const task of app.tasks.values()) if (task.options.rateLimit) this.rateLimits.set(task.name, task.options.rateLimit);
  }

  /** Connect and start consuming; resolves once the worker is ready. */
  async start(): Promise<void> {
    await this.app.finalize();
    if (this.options.statedb) loadState(this.options.statedb, this.revoked, this.clock);
    this.transport = await this.app.transport();
    if (this.app.conf.workerRestoreLost) this.transport.recordHolder?.(this.hostname);
    await connectBroker(this.transport, this.app.conf, this.log, this.stopFetching.signal);
    for (const q of this.queues) await this.transport.declareQueue(q);
    const backend = this.app.backendUrl() ? await this.app.backend() : undefined;
    if (this.transport.broadcast) this.cluster = new Cluster(this, this.transport.broadcast, this.options);
    if (this.options.banner) process.stdout.write(banner(this, backend));
    await this.cluster?.start();
    this.loop = this.consume(this.transport, backend);
    this.log.info(`${this.hostname} ready.`);
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

  private async consume(transport: Transport, backend: ResultBackend | undefined): Promise<void> {
    const env: StrategyEnv = {
      app: this.app,
      hostname: this.hostname,
      log: this.log,
      slots: this.slots,
      backend,
      revokes: new RevokeChecker(backend, this.revoked),
      rateLimits: this.rateLimits,
      events: this.events,
      held: this.held,
      processed: this.processed,
      onRelease: () => this.wake?.(),
    };
    const signal = this.stopFetching.signal;
    while (!signal.aborted) {
      const { window, reserved, bytes } = this.windowCounts();
      // Refill a quarter of the window at a time, not one message per finished task (one broker
      // round trip per task), unless the pool has a free slot and nothing reserved to put in it.
      const starving = reserved === 0 && this.slots.active < this.slots.size;
      const byBytes = this.byteRoom(bytes);
      let room = Math.min(this.prefetchLimit - window, byBytes.room);
      // A worker that holds nothing takes one message, however large: progress first.
      if (room <= 0 && this.held.size === 0) room = 1;
      if (room <= 0 || (room < Math.min(this.refillBatch, byBytes.batch) && !starving)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            signal.removeEventListener('abort', done);
            resolve();
          };
          // A burst of releases (a batch of tasks finishing) is looked at once, after it.
          this.wake = () => {
            this.wake = undefined;
            setImmediate(done);
          };
          signal.addEventListener('abort', done, { once: true });
        });
        this.wake = undefined;
        continue;
      }
      let deliveries;
      try {
        deliveries = await transport.fetch(this.queues, room, 1000, signal);
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
      for (const d of deliveries) this.largestBody = Math.max(this.largestBody, d.message.body.length);
      // A broker that answers "nothing" at once (closed, or polling) must not starve the timers.
      if (deliveries.length === 0) await new Promise((resolve) => setImmediate(resolve));
      for (const delivery of deliveries) {
        if (signal.aborted) {
          await delivery.restore();
          continue;
        }
        handleDelivery(env, delivery).catch((err: unknown) => {
          this.log.critical(`Unexpected error while handling message ${delivery.deliveryTag}: ${(err as Error)?.stack ?? String(err)}`);
        });
      }
    }
  }

  /**
   * Warm shutdown: stop fetching, give back messages not yet started (they are the next ones
   * delivered), let running tasks finish, close. With `cold`, running tasks are aborted too and
   * their unacknowledged messages given back.
   */
  shutdown({ cold = false }: { cold?: boolean } = {}): Promise<void> {
    if (cold) return this.coldShutdown();
    this.stopping ??= this.warmShutdown();
    return this.stopping;
  }

  private async warmShutdown(): Promise<void> {
    this.log.warning('worker: Warm shutdown (MainProcess)');
    this.stopFetching.abort();
    await this.loop;
    await this.giveBack((h) => h.state !== 'active');
    await this.slots.drained();
    await this.cluster?.stop();
    this.persist();
    await this.app.close();
  }

  private persist(): void {
    if (this.options.statedb) saveState(this.options.statedb, this.revoked, this.clock);
  }

  private async coldShutdown(): Promise<void> {
    this.log.warning('worker: Cold shutdown (MainProcess)');
    // A warm shutdown under way may finish first (its tasks are aborted): it must not exit 0.
    this.exitCode = 1;
    this.stopFetching.abort();
    const running = [...this.held].filter((h) => h.state === 'active');
    // Give back first: an aborted task must not settle its message before it is restored.
    await this.giveBack(() => true);
    for (const h of running) h.abort.abort(new Error('worker cold shutdown'));
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
    return [...this.held].map((h) => ({ request: h.request, info: h.delivery.info, state: h.state, acked: h.acked, timeStart: h.timeStart }));
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
    this.concurrency = Math.max(1, this.concurrency + delta);
    this.slots.resize(this.concurrency);
    return this.concurrency;
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
