import type { LamportClock } from '../events/clock.ts';
import type { CeleryEvent } from '../events/event.ts';
import { receiveEvents } from '../events/receiver.ts';
import { ClusterState, type WorkerInfo } from '../events/state.ts';
import type { Broadcasting, Subscription } from '../transport/types.ts';

export type GossipEvent = 'worker-online' | 'worker-offline' | 'election';

/**
 * Gossip (Celery's consumer step): follow other workers' `worker-*` events, keep a live view of
 * the cluster, and report workers whose heartbeats stop (checked every 5 s, as Celery).
 */
export class Gossip {
  readonly state = new ClusterState();
  private subscription: Subscription | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners = new Map<GossipEvent, Set<(info: unknown) => void>>();

  constructor(
    private readonly broadcast: Broadcasting,
    private readonly hostname: string,
    private readonly clock: LamportClock,
    private readonly freq: number,
    private readonly checkEveryMs = 5000,
  ) {}

  on(event: GossipEvent, listener: (info: unknown) => void): void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener);
  }

  async start(): Promise<void> {
    this.subscription = await receiveEvents(this.broadcast, (e) => this.onEvent(e), { bindingKey: 'worker.#', messageTtlMs: this.freq * 1000, clock: this.clock });
    this.timer = setInterval(() => {
      for (const w of this.state.expired()) this.emit('worker-offline', w);
    }, this.checkEveryMs);
    this.timer.unref();
  }

  private onEvent(e: CeleryEvent): void {
    if (e.type === 'worker-elect' || e.type === 'worker-elect-ack') {
      this.emit('election', e);
      return;
    }
    if (e.hostname === this.hostname) return; // its own events: the receiver already advanced the clock
    const before: WorkerInfo | undefined = this.state.workers.get(String(e.hostname));
    const wasAlive = before?.alive ?? false;
    this.state.event(e);
    const after = this.state.workers.get(String(e.hostname));
    if (!after) return;
    if (!wasAlive && after.alive) this.emit('worker-online', after);
    if (wasAlive && !after.alive) this.emit('worker-offline', after);
  }

  private emit(event: GossipEvent, info: unknown): void {
    for (const l of this.listeners.get(event) ?? []) l(info);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.subscription?.close();
  }
}
