import type { CeleryEvent } from './event.ts';

/** Celery's HEARTBEAT_EXPIRE_WINDOW: a worker is alive while a heartbeat came within freq × 2. */
const EXPIRE_WINDOW = 2;

export interface WorkerInfo {
  hostname: string;
  freq: number;
  active: number;
  processed: number;
  loadavg: number[];
  clock: number;
  swIdent?: string;
  /** Local receive time (seconds) of the last heartbeat, or null after worker-offline. */
  lastHeartbeat: number | null;
  alive: boolean;
}

export interface TaskInfo {
  uuid: string;
  name?: string;
  state: string;
  hostname?: string;
  args?: unknown;
  kwargs?: unknown;
  result?: unknown;
  exception?: unknown;
  runtime?: number;
  timestamp?: number;
}

const TASK_STATES: Record<string, string> = {
  'task-sent': 'PENDING', 'task-received': 'RECEIVED', 'task-started': 'STARTED', 'task-succeeded': 'SUCCESS',
  'task-failed': 'FAILURE', 'task-retried': 'RETRY', 'task-revoked': 'REVOKED', 'task-rejected': 'REJECTED',
};

/** An in-memory picture of the cluster built from events (Celery's `celery.events.State`). */
export class ClusterState {
  readonly workers = new Map<string, WorkerInfo>();
  readonly tasks = new Map<string, TaskInfo>();
  maxTasks = 10_000;

  event(e: CeleryEvent): void {
    if (e.type.startsWith('worker-')) this.workerEvent(e);
    else if (e.type.startsWith('task-')) this.taskEvent(e);
  }

  private workerEvent(e: CeleryEvent): void {
    const hostname = String(e.hostname ?? '');
    if (!hostname) return;
    const w = this.workers.get(hostname) ?? { hostname, freq: 2, active: 0, processed: 0, loadavg: [], clock: 0, lastHeartbeat: null, alive: false };
    if (typeof e.freq === 'number') w.freq = e.freq;
    if (typeof e.active === 'number') w.active = e.active;
    if (typeof e.processed === 'number') w.processed = e.processed;
    if (Array.isArray(e.loadavg)) w.loadavg = e.loadavg as number[];
    if (typeof e.clock === 'number') w.clock = e.clock;
    if (typeof e.sw_ident === 'string') w.swIdent = e.sw_ident;
    if (e.type === 'worker-offline') w.lastHeartbeat = null;
    else if (e.type === 'worker-online' || e.type === 'worker-heartbeat') w.lastHeartbeat = typeof e.local_received === 'number' ? e.local_received : Date.now() / 1000;
    w.alive = isAlive(w);
    this.workers.set(hostname, w);
  }

  private taskEvent(e: CeleryEvent): void {
    const uuid = typeof e.uuid === 'string' ? e.uuid : null;
    if (!uuid) return;
    const t = this.tasks.get(uuid) ?? { uuid, state: 'PENDING' };
    t.state = TASK_STATES[e.type] ?? t.state;
    for (const k of ['name', 'args', 'kwargs', 'result', 'exception', 'runtime', 'timestamp'] as const) if (e[k] !== undefined) (t as unknown as Record<string, unknown>)[k] = e[k];
    if (typeof e.hostname === 'string') t.hostname = e.hostname;
    this.tasks.set(uuid, t);
    if (this.tasks.size > this.maxTasks) this.tasks.delete(this.tasks.keys().next().value!);
  }

  /** Workers whose heartbeats stopped; refreshes every worker's `alive`. */
  expired(now = Date.now() / 1000): WorkerInfo[] {
    const gone: WorkerInfo[] = [];
    for (const w of this.workers.values()) {
      const was = w.alive;
      w.alive = isAlive(w, now);
      if (was && !w.alive) gone.push(w);
    }
    return gone;
  }

  aliveWorkers(): WorkerInfo[] {
    return [...this.workers.values()].filter((w) => isAlive(w));
  }
}

function isAlive(w: WorkerInfo, now = Date.now() / 1000): boolean {
  return w.lastHeartbeat !== null && now < w.lastHeartbeat + w.freq * EXPIRE_WINDOW;
}
