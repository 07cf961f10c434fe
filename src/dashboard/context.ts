import type { Celery } from '../app/celery.ts';
import type { EventIngest } from './ingest.ts';
import type { Inspector } from './inspector.ts';
import type { DashboardMetrics } from './metrics.ts';
import type { DashboardStore } from './store.ts';

/** What the routes share. */
export class DashboardContext {
  constructor(
    readonly app: Celery,
    readonly store: DashboardStore,
    readonly ingest: EventIngest,
    readonly inspector: Inspector,
    readonly metrics: DashboardMetrics,
  ) {}

  isWorker(name: string): boolean {
    return this.ingest.workers.has(name) || this.inspector.workers.has(name);
  }

  /** A task the app registers, a worker reports (registered) or the events showed. */
  knownTask(name: string): boolean {
    if (this.app.tasks.has(name)) return true;
    for (const info of this.inspector.workers.values()) if (Array.isArray(info.registered) && info.registered.some((r) => String(r).split(' ')[0] === name)) return true;
    return this.store.db.prepare('SELECT 1 FROM tasks WHERE name = ? LIMIT 1').get(name) !== undefined;
  }

  /** One control command to one worker; its reply ({ok} or {error}), or an error when it did not answer. */
  async control(worker: string, command: string, args: Record<string, unknown>): Promise<Record<string, unknown>> {
    const replies = await this.app.control.broadcast(command, args, { destination: [worker], timeout: 2 });
    const reply = replies.map((r) => r[worker]).find((r) => r !== undefined);
    if (reply && typeof reply === 'object') return reply as Record<string, unknown>;
    return { error: reply === undefined ? 'no reply from the worker within 2 seconds' : String(reply) };
  }
}
