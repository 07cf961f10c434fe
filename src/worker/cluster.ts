import { randomUUID } from 'node:crypto';
import { serveControl } from '../control/server.ts';
import { EventDispatcher } from '../events/dispatcher.ts';
import type { Broadcasting, Subscription } from '../transport/types.ts';
import { Signature } from '../canvas/index.ts';
import type { SignatureDict } from '../protocol/task-message.ts';
import { Gossip } from './gossip.ts';
import { Heart } from './heart.ts';
import { mingle } from './mingle.ts';
import type { Worker, WorkerOptions } from './worker.ts';

/**
 * The worker's membership in a Celery cluster, in Celery's start order: events, mingle (before
 * the control queue exists), remote control, gossip, heart.
 */
export class Cluster {
  readonly events: EventDispatcher;
  gossip: Gossip | undefined;
  private heart: Heart | undefined;
  private control: Subscription | undefined;

  constructor(
    private readonly worker: Worker,
    private readonly broadcast: Broadcasting,
    private readonly options: WorkerOptions,
  ) {
    this.events = new EventDispatcher(broadcast, worker.hostname, worker.clock, {
      taskEvents: options.taskEvents ?? worker.app.conf.workerSendTaskEvents,
      onError: (err) => worker.log.warning(`events: could not send an event: ${(err as Error).message}`),
    });
    worker.events = this.events;
  }

  async start(): Promise<void> {
    const { worker, options } = this;
    if (!options.withoutMingle) {
      const synced = await mingle(this.broadcast, { hostname: worker.hostname, oid: randomUUID(), clock: worker.clock, revoked: worker.revoked });
      worker.log.info(synced.length ? `mingle: sync with ${synced.length} nodes` : 'mingle: all alone');
    }
    if (options.control !== false) this.control = await serveControl(this.broadcast, worker, worker.log);
    const interval = options.heartbeatInterval ?? 2;
    if (!options.withoutGossip) {
      this.gossip = new Gossip(this.broadcast, worker.hostname, worker.clock, interval, this.events, worker.log);
      this.gossip.electionHandlers.set('task', async (action) => {
        if (action && typeof action === 'object') await Signature.fromDict(action as SignatureDict, worker.app).applyAsync();
      });
      this.gossip.on('worker-offline', (w) => {
        const { hostname, lastHeartbeat } = w as { hostname: string; lastHeartbeat: number | null };
        worker.log.info(lastHeartbeat === null ? `gossip: ${hostname} left` : `missed heartbeat from ${hostname}`);
        if (lastHeartbeat !== null) void this.restoreLost(hostname);
      });
      this.gossip.on('worker-online', (w) => worker.log.info(`gossip: ${(w as { hostname: string }).hostname} joined`));
      await this.gossip.start();
    }
    if (!options.withoutHeartbeat) {
      this.heart = new Heart(this.events, interval, () => ({ active: worker.stats().active, processed: Object.values(worker.processedTotals()).reduce((a, b) => a + b, 0) }), worker);
      await this.heart.start();
    }
  }

  /** workerRestoreLost: give back what a worker whose heartbeats stopped still held, now rather than after the visibility timeout. */
  private async restoreLost(hostname: string): Promise<void> {
    const { worker } = this;
    if (!worker.app.conf.workerRestoreLost) return;
    try {
      const transport = await worker.app.transport();
      if (!transport.restoreLost) return;
      const n = await transport.restoreLost(hostname);
      if (n > 0) worker.log.warning(`gossip: restored ${n} message${n === 1 ? '' : 's'} held by lost worker ${hostname}`);
    } catch (err) {
      worker.log.error(`gossip: could not restore the messages of lost worker ${hostname}: ${(err as Error).message}`);
    }
  }

  async heartbeat(freq?: number): Promise<void> {
    const fields = this.heart?.fields(freq) ?? { freq: freq ?? 2 };
    await this.events.send('worker-heartbeat', fields);
  }

  async stop(): Promise<void> {
    await this.events.flush();
    await this.heart?.stop();
    await this.gossip?.stop();
    await this.control?.close();
  }
}
