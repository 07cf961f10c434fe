import { VERSION } from '../version.ts';
import type { DashboardContext } from './context.ts';
import { HttpError, numArg, type Route } from './http.ts';
import { deadLetters, queueLengths, queueNames } from './queues.ts';
import { flowerTask, taskFromMeta, withChildren } from './tasks-view.ts';

/** JSON for the page itself (`/api/dashboard/...`): the views Flower renders server-side. */
export function pageRoutes(d: DashboardContext): Route[] {
  const get = (pattern: RegExp, handler: Route['handler']): Route => ({ method: 'GET', pattern, handler });
  return [
    get(/^\/api\/dashboard\/overview$/, () => ({ version: VERSION, broker: d.app.conf.broker, tasks: d.store.count(), ingested: d.ingest.ingested })),

    get(/^\/api\/dashboard\/workers$/, () => {
      const names = new Set([...d.ingest.workers.keys(), ...d.inspector.workers.keys()]);
      if ([...d.ingest.workers.values()].some((w) => w.online && !d.inspector.workers.has(w.hostname))) void d.inspector.refresh().catch(() => undefined);
      return [...names].sort().map((hostname) => workerSummary(d, hostname));
    }),

    get(/^\/api\/dashboard\/worker\/([^/]+)$/, async (c) => {
      const name = c.params[0]!;
      if (!d.isWorker(name)) throw new HttpError(404, `Unknown worker '${name}'`);
      await d.inspector.refresh(name).catch(() => undefined);
      return { ...workerSummary(d, name), inspect: d.inspector.workers.get(name) ?? {} };
    }),

    get(/^\/api\/dashboard\/tasks$/, (c) => {
      const limit = Math.min(numArg('limit', c.arg('limit'), true) ?? 50, 1000);
      const { total, tasks } = d.store.query({
        limit, offset: numArg('offset', c.arg('offset'), true) ?? 0, sortBy: c.arg('sort_by') || '-seen',
        state: c.arg('state'), name: c.arg('taskname'), worker: c.arg('workername'), search: c.arg('search'),
        receivedStart: numArg('received_start', c.arg('received_start')), receivedEnd: numArg('received_end', c.arg('received_end')),
      });
      return { total, tasks: withChildren(d.store, tasks), names: d.store.taskNames(), workers: [...d.ingest.workers.keys()].sort() };
    }),

    get(/^\/api\/dashboard\/task\/([^/]+)$/, async (c) => {
      const id = c.params[0]!;
      const row = d.store.task(id);
      let task: Record<string, unknown> | null = row ? flowerTask(row, d.store.children(id)) : null;
      let source = 'events';
      if (!task && d.app.backendUrl()) {
        task = taskFromMeta(await (await d.app.backend()).getTaskMeta(id));
        source = 'result backend';
      }
      if (!task) throw new HttpError(404, `Unknown task '${id}': the dashboard has no event of it and the result backend has no result`);
      const root = (task.root_id as string | null) ?? id;
      const graph = d.store.workflow(root).map((t) => ({ uuid: t.uuid, name: t.name, state: t.state, parent_id: t.parent_id }));
      return { task, source, graph };
    }),

    get(/^\/api\/dashboard\/queues$/, async () => {
      const queues = await queueLengths(d.app, queueNames(d.app, d.inspector));
      const dead = await Promise.all(queues.filter((q) => q.dead).map((q) => deadLetters(d.app, q.name, 20)));
      return { queues, dead: dead.flatMap((x) => x?.items ?? []) };
    }),
  ];
}

function workerSummary(d: DashboardContext, hostname: string) {
  const w = d.ingest.workers.get(hostname);
  const info = d.inspector.workers.get(hostname) ?? {};
  const stats = (info.stats ?? {}) as Record<string, unknown>;
  const pool = (stats.pool ?? {}) as Record<string, unknown>;
  const queues = Array.isArray(info.active_queues) ? (info.active_queues as { name?: string }[]).map((q) => q.name) : [];
  const counts = w?.counts ?? {};
  return {
    hostname,
    online: w?.online ?? false,
    last_heartbeat: w?.last_heartbeat ?? null,
    software: w?.sw_ident ? `${w.sw_ident} ${w.sw_ver ?? ''}`.trim() : null,
    pid: w?.pid ?? stats.pid ?? null,
    pool: poolKind(pool, w?.sw_ident),
    concurrency: pool['max-concurrency'] ?? null,
    queues,
    active: w?.active ?? null,
    processed: w?.processed ?? counts['task-received'] ?? 0,
    failed: counts['task-failed'] ?? 0,
    succeeded: counts['task-succeeded'] ?? 0,
    retried: counts['task-retried'] ?? 0,
    loadavg: w?.loadavg ?? null,
  };
}

/** Celery's stats name the pool only by its shape (prefork lists processes, threads its threads). */
function poolKind(pool: Record<string, unknown>, swIdent: string | undefined): string | null {
  if (typeof pool.implementation === 'string') return pool.implementation.replace(/^celery\.concurrency\./, '');
  if (swIdent === 'celeriac') return 'event loop';
  if ('threads' in pool) return 'threads';
  if (Array.isArray(pool.processes)) return pool.processes.length === 1 && pool['max-concurrency'] === 1 ? 'solo/prefork' : 'prefork';
  return null;
}
