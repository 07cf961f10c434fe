import type { LamportClock } from '../events/clock.ts';
import type { CeleryEvent } from '../events/event.ts';
import { receiveEvents } from '../events/receiver.ts';
import { ClusterState, type WorkerInfo } from '../events/state.ts';
import type { Broadcasting, Subscription } from '../transport/types.ts';
import type { EventDispatcher } from '../events/dispatcher.ts';
import type { Logger } from '../common/log.ts';

export type GossipEvent = 'worker-online' | 'worker-offline' | 'election';

/** What an election decides: run `handler(action)` on exactly one worker of the cluster. */
export type ElectionHandler = (action: unknown) => void | Promise<void>;

/** How long an election that has Celery's count of acknowledgements waits for the other live workers'. */
const ELECTION_GRACE_MS = 1000;

type Candidate = [clock: number, node: string, topic: string, action: unknown, voter: string];

/**
 * Gossip (Celery's consumer step): follow other workers' `worker-*` events, keep a live view of
 * the cluster, and report workers whose heartbeats stop (checked every 5 s, as Celery).
 */
export class Gossip {
  readonly state = new ClusterState();
  private subscription: Subscription | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners = new Map<GossipEvent, Set<(info: unknown) => void>>();
  /** Election topics this worker can act on when it wins (Celery has `task`). */
  readonly electionHandlers = new Map<string, ElectionHandler>();
  private readonly candidates = new Map<string, Candidate[]>();
  private readonly acks = new Map<string, Set<string>>();
  /** Elections that have Celery's count of acknowledgements, waiting for the rest (decide). */
  private readonly graceTimers = new Map<string, NodeJS.Timeout>();
  private readonly graceOver = new Set<string>();
  /** `<hostname>.<pid>`, how elections name nodes. */
  private readonly fullHostname: string;

  constructor(
    private readonly broadcast: Broadcasting,
    private readonly hostname: string,
    private readonly clock: LamportClock,
    private readonly freq: number,
    private readonly events: EventDispatcher,
    private readonly log: Logger,
    private readonly checkEveryMs = 5000,
  ) {
    this.fullHostname = `${hostname}.${process.pid}`;
  }

  /** Start an election (Celery's `election` control command): every live worker votes, one wins. */
  async election(id: string, topic: string, action: unknown = null): Promise<void> {
    this.acks.set(id, new Set());
    await this.events.send('worker-elect', { id, topic, action, cver: 1 });
  }

  private async onElect(e: CeleryEvent): Promise<void> {
    const id = String(e.id);
    const list = this.candidates.get(id) ?? [];
    list.push([Number(e.clock), `${String(e.hostname)}.${String(e.pid)}`, String(e.topic), e.action ?? null, String(e.hostname)]);
    this.candidates.set(id, list);
    await this.events.send('worker-elect-ack', { id });
    await this.decide(id);
  }

  private async onElectAck(e: CeleryEvent): Promise<void> {
    const id = String(e.id);
    const replies = this.acks.get(id);
    if (!replies) return; // not our election
    replies.add(String(e.hostname));
    await this.decide(id);
  }

  /**
   * Celery decides once as many acknowledgements came as workers it believes alive, with whatever
   * candidacies it has by then; a worker may acknowledge others before it heard the election
   * command and stood itself (they come on different exchanges). Here the decision waits for the
   * candidacy and acknowledgement of every live worker, itself included, so that every celeriac
   * worker decides over the same candidates; after ELECTION_GRACE_MS, Celery's count suffices (a
   * worker without gossip never votes), still with the candidacy of every worker that acknowledged.
   */
  private async decide(id: string): Promise<void> {
    const replies = this.acks.get(id);
    if (!replies) return;
    const alive = this.state.aliveWorkers().map((w) => w.hostname);
    if (replies.size < alive.length) return;
    const list = this.candidates.get(id) ?? [];
    const standing = new Set(list.map((c) => c[4]));
    for (const voter of replies) if (!standing.has(voter)) return;
    const everyone = [this.hostname, ...alive].every((h) => replies.has(h));
    if (!everyone && !this.graceOver.has(id)) {
      if (!this.graceTimers.has(id)) {
        const timer = setTimeout(() => {
          this.graceOver.add(id);
          this.decide(id).catch((err: unknown) => this.log.error(`gossip: election ${id} failed: ${(err as Error).message}`));
        }, ELECTION_GRACE_MS);
        timer.unref();
        this.graceTimers.set(id, timer);
      }
      return;
    }
    clearTimeout(this.graceTimers.get(id));
    this.graceTimers.delete(id);
    this.graceOver.delete(id);
    // Lowest clock wins, ties broken by node name (kombu's LamportClock.sort_heap).
    const [leader] = [...list].sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
    this.acks.delete(id);
    this.candidates.delete(id);
    if (!leader) return;
    if (leader[1] !== this.fullHostname) {
      this.log.info(`node ${leader[1]} elected for ${JSON.stringify(id)}`);
      return;
    }
    this.log.info(`I won the election ${JSON.stringify(id)}`);
    const handler = this.electionHandlers.get(leader[2]);
    if (!handler) this.log.error(`Unknown election topic ${JSON.stringify(leader[2])}`);
    else await handler(leader[3]);
  }

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
      const step = e.type === 'worker-elect' ? this.onElect(e) : this.onElectAck(e);
      step.catch((err: unknown) => this.log.error(`gossip: election ${String(e.id)} failed: ${(err as Error).message}`));
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
    for (const t of this.graceTimers.values()) clearTimeout(t);
    await this.subscription?.close();
  }
}
