import type { Celery } from '../app/celery.ts';

/** What Flower asks each worker (flower/inspector.py), in its order. */
export const INSPECT_METHODS = ['stats', 'active_queues', 'registered', 'scheduled', 'active', 'reserved', 'revoked', 'conf'] as const;

/**
 * Workers' answers to inspect commands, as Flower keeps them (`/api/workers`): per worker, one
 * key per method plus `timestamp`. Refreshed on demand; one refresh at a time.
 */
export class Inspector {
  readonly workers = new Map<string, Record<string, unknown>>();
  private running: Promise<void> | undefined;

  constructor(
    private readonly app: Celery,
    private readonly timeout = 1,
  ) {}

  refresh(workername?: string): Promise<void> {
    this.running ??= this.inspectAll(workername).finally(() => (this.running = undefined));
    return this.running;
  }

  private async inspectAll(workername?: string): Promise<void> {
    const destination = workername ? [workername] : undefined;
    await Promise.all(INSPECT_METHODS.map(async (method) => {
      const replies = await this.app.control.broadcast(method, method === 'active' ? { safe: true } : {}, { destination, timeout: this.timeout });
      for (const reply of replies) {
        for (const [worker, response] of Object.entries(reply)) {
          if (response === null || response === undefined) continue;
          const info = this.workers.get(worker) ?? {};
          info[method] = response;
          info.timestamp = Date.now() / 1000;
          this.workers.set(worker, info);
        }
      }
    }));
  }
}
