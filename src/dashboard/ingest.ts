import { EventEmitter } from 'node:events';
import type { CeleryEvent } from '../events/event.ts';
import type { DashboardMetrics } from './metrics.ts';
import { type DashboardStore, mergeState, type TaskRow } from './store.ts';

/** Celery's HEARTBEAT_EXPIRE_WINDOW: a worker is online while a heartbeat came within freq × 2. */
const EXPIRE_WINDOW = 2;
const FLUSH_MS = 100;
const FLUSH_AT = 5000;
/** Recent tasks kept in memory for the metrics' name, received and eta (an LRU by insertion). */
const RECENT = 20_000;

const STATE_OF: Record<string, [state: string, timeField: keyof TaskRow]> = {
  'task-sent': ['PENDING', 'sent'], 'task-received': ['RECEIVED', 'received'], 'task-started': ['STARTED', 'started'],
  'task-succeeded': ['SUCCESS', 'succeeded'], 'task-failed': ['FAILURE', 'failed'], 'task-retried': ['RETRY', 'retried'],
  'task-revoked': ['REVOKED', 'revoked'], 'task-rejected': ['REJECTED', 'rejected'],
};
const COPIED = ['name', 'args', 'kwargs', 'retries', 'eta', 'expires', 'result', 'exception', 'traceback', 'runtime', 'exchange', 'routing_key', 'root_id', 'parent_id', 'clock'] as const;

export interface WorkerRecord {
  hostname: string;
  pid?: number;
  freq: number;
  active?: number;
  processed?: number;
  loadavg?: number[];
  sw_ident?: string;
  sw_ver?: string;
  sw_sys?: string;
  clock?: number;
  /** Local time (s) of the last worker event, heartbeat or online. */
  last_heartbeat: number | null;
  online: boolean;
  /** Task events per type seen from this worker (Flower's counter). */
  counts: Record<string, number>;
}

export type Pending = Partial<TaskRow> & { uuid: string; seen: number };

/**
 * Turns the event stream into store rows, worker records and metrics. Task events are merged in
 * memory and written every FLUSH_MS in one transaction, so a burst of events costs one commit.
 * Emits `change` ({ tasks, workers }) after each write, for the live channel.
 */
export class EventIngest extends EventEmitter {
  readonly workers = new Map<string, WorkerRecord>();
  private pending = new Map<string, Pending>();
  private dirtyWorkers = new Set<string>();
  private readonly recent = new Map<string, { name?: string; received?: number; eta?: unknown }>();
  private timer: NodeJS.Timeout | undefined;
  private readonly expiry: NodeJS.Timeout;
  ingested = 0;

  constructor(
    private readonly store: DashboardStore,
    private readonly metrics: DashboardMetrics,
  ) {
    super();
    for (const { hostname, info } of store.workers()) this.workers.set(hostname, { ...(info as unknown as WorkerRecord), hostname });
    this.expiry = setInterval(() => this.expire(), 1000);
    this.expiry.unref();
    this.expire();
  }

  event(e: CeleryEvent): void {
    this.ingested++;
    if (e.type.startsWith('task-')) this.taskEvent(e);
    else if (e.type.startsWith('worker-')) this.workerEvent(e);
    if (this.pending.size >= FLUSH_AT) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), FLUSH_MS);
  }

  private taskEvent(e: CeleryEvent): void {
    const uuid = typeof e.uuid === 'string' ? e.uuid : null;
    if (!uuid) return;
    const hostname = String(e.hostname ?? '');
    const ts = typeof e.timestamp === 'number' ? e.timestamp : Date.now() / 1000;
    const p = this.pending.get(uuid) ?? { uuid, seen: typeof e.local_received === 'number' ? e.local_received : Date.now() / 1000 };
    for (const k of COPIED) if (e[k] !== undefined && e[k] !== null) (p as Record<string, unknown>)[k] = e[k];
    const mapped = STATE_OF[e.type];
    if (mapped) {
      p.state = mergeState(p.state, mapped[0]);
      (p as Record<string, unknown>)[mapped[1]] = ts;
    }
    p.timestamp = ts;
    if (e.type === 'task-sent') p.client = hostname;
    else if (hostname) p.worker = hostname;
    this.pending.set(uuid, p);

    const r = this.recent.get(uuid) ?? {};
    if (typeof e.name === 'string') r.name = e.name;
    if (e.eta !== undefined) r.eta = e.eta;
    this.recent.delete(uuid);
    this.recent.set(uuid, r);
    if (this.recent.size > RECENT) this.recent.delete(this.recent.keys().next().value!);
    this.taskMetrics(e, hostname, r);
    const w = this.workers.get(hostname);
    if (w && e.type !== 'task-sent') w.counts[e.type] = (w.counts[e.type] ?? 0) + 1;
  }

  private taskMetrics(e: CeleryEvent, worker: string, r: { name?: string; received?: number; eta?: unknown }): void {
    const m = this.metrics;
    const task = r.name ?? '';
    const labels = { worker, task };
    m.events.add({ worker, type: e.type, task }, 1);
    if (typeof e.runtime === 'number' && e.runtime > 0) m.runtime.observe(labels, e.runtime);
    const ts = typeof e.timestamp === 'number' ? e.timestamp : undefined;
    if (r.eta) return; // as Flower: an ETA task's wait is not prefetch time
    if (e.type === 'task-received' && ts !== undefined) {
      r.received = ts;
      m.prefetched.add(labels, 1);
    } else if (e.type === 'task-started' && ts !== undefined && r.received !== undefined) {
      m.prefetchTime.set(labels, ts - r.received);
      m.prefetched.add(labels, -1);
    } else if ((e.type === 'task-succeeded' || e.type === 'task-failed') && r.received !== undefined) {
      m.prefetchTime.set(labels, 0);
    }
  }

  private workerEvent(e: CeleryEvent): void {
    const hostname = String(e.hostname ?? '');
    if (!hostname) return;
    const w = this.workers.get(hostname) ?? { hostname, freq: 2, last_heartbeat: null, online: false, counts: {} };
    for (const k of ['pid', 'freq', 'active', 'processed', 'loadavg', 'sw_ident', 'sw_ver', 'sw_sys', 'clock'] as const) {
      if (e[k] !== undefined && e[k] !== null) (w as unknown as Record<string, unknown>)[k] = e[k];
    }
    const now = typeof e.local_received === 'number' ? e.local_received : Date.now() / 1000;
    const wasOnline = w.online;
    if (e.type === 'worker-offline') w.online = false;
    else {
      w.last_heartbeat = now;
      w.online = true;
    }
    this.workers.set(hostname, w);
    this.dirtyWorkers.add(hostname);
    this.metrics.online.set({ worker: hostname }, w.online ? 1 : 0);
    if (e.type === 'worker-heartbeat' && typeof e.active === 'number') this.metrics.executing.set({ worker: hostname }, e.active);
    if (!wasOnline && w.online) this.emit('worker-online', hostname);
  }

  /** Workers whose heartbeats stopped go offline. */
  private expire(now = Date.now() / 1000): void {
    for (const w of this.workers.values()) {
      const alive = w.last_heartbeat !== null && now < w.last_heartbeat + w.freq * EXPIRE_WINDOW && w.online;
      if (w.online !== alive) {
        w.online = alive;
        this.dirtyWorkers.add(w.hostname);
        this.metrics.online.set({ worker: w.hostname }, 0);
        this.timer ??= setTimeout(() => this.flush(), FLUSH_MS);
      }
    }
  }

  /** Write what is pending now. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.size === 0 && this.dirtyWorkers.size === 0) return;
    const tasks = this.pending;
    const workers = [...this.dirtyWorkers].map((h) => ({ hostname: h, info: this.workers.get(h)! }));
    this.pending = new Map();
    this.dirtyWorkers = new Set();
    this.store.write(tasks.values(), workers);
    this.emit('change', { tasks: [...tasks.keys()], workers: workers.map((w) => w.hostname) });
  }

  close(): void {
    clearInterval(this.expiry);
    this.flush();
  }
}
