import type { Celery } from '../app/celery.ts';
import type { CallOptions } from '../protocol/call-options.ts';
import { parsePythonDate } from '../protocol/json.ts';
import { boolArg, type Ctx, HttpError, numArg, requiredArg, type Route } from './http.ts';
import type { DashboardContext } from './context.ts';
import { queueLengths, queueNames } from './queues.ts';
import { retryTask } from './retry.ts';
import { exceptionText, flowerTask, taskFromMeta, withChildren } from './tasks-view.ts';

/**
 * Flower's HTTP API (flower/api/*.py): the same paths, arguments, JSON shapes and status codes,
 * so scripts written against Flower work. Errors are text bodies with the status, as Tornado's.
 */
export function flowerRoutes(d: DashboardContext): Route[] {
  const { app } = d;
  const get = (pattern: RegExp, handler: Route['handler']): Route => ({ method: 'GET', pattern, handler });
  const post = (pattern: RegExp, handler: Route['handler']): Route => ({ method: 'POST', pattern, handler });

  return [
    get(/^\/api\/workers$/, async (c) => {
      const workername = c.arg('workername');
      if (boolArg(c.arg('refresh'))) {
        await d.inspector.refresh(workername).catch((err: Error) => {
          throw new HttpError(503, `Failed to update workers: ${err.message}`);
        });
      }
      if (boolArg(c.arg('status'))) return Object.fromEntries([...d.ingest.workers.values()].map((w) => [w.hostname, w.online]));
      if (workername) {
        const info = d.inspector.workers.get(workername);
        if (!info) throw new HttpError(404, `Unknown worker '${workername}'`);
        return { [workername]: info };
      }
      return Object.fromEntries(d.inspector.workers);
    }),

    get(/^\/api\/tasks$/, (c) => {
      const { tasks } = d.store.query({
        limit: numArg('limit', c.arg('limit'), true), offset: numArg('offset', c.arg('offset'), true) ?? 0, sortBy: c.arg('sort_by') ?? '-seen',
        worker: c.arg('workername'), name: c.arg('taskname'), state: c.arg('state'),
        receivedStart: flowerDate('received_start', c.arg('received_start')), receivedEnd: flowerDate('received_end', c.arg('received_end')),
        search: c.arg('search'),
      });
      return Object.fromEntries(withChildren(d.store, tasks).map((t) => [t.uuid as string, t]));
    }),

    get(/^\/api\/task\/types$/, () => ({ 'task-types': d.store.taskNames() })),

    get(/^\/api\/task\/info\/([^/]+)$/, async (c) => {
      const id = c.params[0]!;
      const row = d.store.task(id);
      if (row) return { ...flowerTask(row, d.store.children(id)), 'task-id': id };
      const fromBackend = app.backendUrl() ? taskFromMeta(await (await app.backend()).getTaskMeta(id)) : null;
      if (!fromBackend) throw new HttpError(404, `Unknown task '${id}'`);
      return { ...fromBackend, 'task-id': id };
    }),

    get(/^\/api\/task\/result\/([^/]+)$/, async (c) => {
      if (!app.backendUrl()) throw new HttpError(503, 'result backend is not configured');
      const id = c.params[0]!;
      const timeout = numArg('timeout', c.arg('timeout'));
      const result = app.AsyncResult(id);
      if (timeout) await result.get({ timeout, propagate: false }).catch(() => undefined);
      const meta = await (await app.backend()).getTaskMeta(id);
      const response: Record<string, unknown> = { 'task-id': id, state: meta.status };
      if (['SUCCESS', 'FAILURE', 'REVOKED'].includes(meta.status) || timeout) {
        response.result = meta.status === 'FAILURE' || meta.status === 'REVOKED' ? exceptionText(meta.result) : meta.result;
        if (meta.status === 'FAILURE') response.traceback = meta.traceback;
      }
      return response;
    }),

    post(/^\/api\/task\/async-apply\/([^/]+)$/, async (c) => {
      const name = c.params[0]!;
      if (!d.knownTask(name)) throw new HttpError(404, `Unknown task '${name}'`);
      return sent(app, await send(app, name, c));
    }),
    post(/^\/api\/task\/send-task\/([^/]+)$/, async (c) => sent(app, await send(app, c.params[0]!, c))),

    post(/^\/api\/task\/revoke\/([^/]+)$/, async (c) => {
      const id = c.params[0]!;
      await app.control.revoke(id, { terminate: boolArg(c.arg('terminate')), signal: c.arg('signal') ?? 'SIGTERM' });
      return { message: `Revoked '${id}'` };
    }),

    post(/^\/api\/task\/retry\/([^/]+)$/, async (c) => {
      const r = await retryTask(d, c.params[0]!);
      return { message: `Sent '${r.name}' again as '${r.id}'`, 'task-id': r.id, 'retry-of': c.params[0] };
    }),

    post(/^\/api\/task\/rate-limit\/([^/]+)$/, async (c) => {
      const name = c.params[0]!;
      const worker = requiredArg(c, 'workername');
      const rate = requiredArg(c, 'ratelimit');
      taskAndWorker(d, name, worker);
      const reply = await d.control(worker, 'rate_limit', { task_name: name, rate_limit: rate });
      if ('ok' in reply) return { message: reply.ok };
      throw new HttpError(403, `Failed to set rate limit: '${reason(reply)}'`);
    }),

    post(/^\/api\/task\/timeout\/([^/]+)$/, async (c) => {
      const name = c.params[0]!;
      const worker = requiredArg(c, 'workername');
      taskAndWorker(d, name, worker);
      const reply = await d.control(worker, 'time_limit', { task_name: name, hard: numArg('hard', c.arg('hard')) ?? null, soft: numArg('soft', c.arg('soft')) ?? null });
      if ('ok' in reply) return { message: reply.ok };
      throw new HttpError(403, `Failed to set timeouts: '${reason(reply)}'`);
    }),

    post(/^\/api\/worker\/shutdown\/([^/]+)$/, async (c) => {
      const worker = knownWorker(d, c.params[0]!);
      await app.control.broadcast('shutdown', {}, { destination: [worker], reply: false });
      return { message: 'Shutting down!' };
    }),

    post(/^\/api\/worker\/pool\/(grow|shrink|autoscale|restart)\/([^/]+)$/, async (c) => {
      const [op, name] = c.params as [string, string];
      const worker = knownWorker(d, name);
      const n = numArg('n', c.arg('n'), true) ?? 1;
      const ops: Record<string, () => [string, Record<string, unknown>, string, string]> = {
        grow: () => ['pool_grow', { n }, `Growing '${worker}' worker's pool by ${n}`, `Failed to grow '${worker}' worker's pool`],
        shrink: () => ['pool_shrink', { n }, `Shrinking '${worker}' worker's pool by ${n}`, `Failed to shrink '${worker}' worker's pool`],
        autoscale: () => autoscaleArgs(c, worker),
        restart: () => ['pool_restart', { reload: false }, `Restarting '${worker}' worker's pool`, `Failed to restart the '${worker}' pool`],
      };
      const [command, args, done, failed] = ops[op]!();
      const reply = await d.control(worker, command, args);
      if ('ok' in reply) return { message: done };
      throw new HttpError(403, `${failed}: ${reason(reply)}`);
    }),

    post(/^\/api\/worker\/queue\/(add-consumer|cancel-consumer)\/([^/]+)$/, async (c) => {
      const [op, name] = c.params as [string, string];
      const worker = knownWorker(d, name);
      const queue = requiredArg(c, 'queue');
      const reply = await d.control(worker, op === 'add-consumer' ? 'add_consumer' : 'cancel_consumer', { queue });
      if ('ok' in reply) return { message: reply.ok };
      throw new HttpError(403, op === 'add-consumer'
        ? `Failed to add '${queue}' consumer to '${worker}' worker: ${reason(reply)}`
        : `Failed to cancel '${queue}' consumer from '${worker}' worker: ${reason(reply)}`);
    }),

    get(/^\/api\/queues\/length$/, async () => ({
      active_queues: (await queueLengths(app, queueNames(app, d.inspector))).map(({ name, messages }) => ({ name, messages })),
    })),
  ];
}

function autoscaleArgs(c: Ctx, worker: string): [string, Record<string, unknown>, string, string] {
  const min = numArg('min', requiredArg(c, 'min'), true);
  const max = numArg('max', requiredArg(c, 'max'), true);
  return ['autoscale', { min, max }, `Autoscaling '${worker}' worker (min=${min}, max=${max})`, `Failed to autoscale '${worker}' worker`];
}

function knownWorker(d: DashboardContext, name: string): string {
  if (!d.isWorker(name)) throw new HttpError(404, `Unknown worker '${name}'`);
  return name;
}

function taskAndWorker(d: DashboardContext, task: string, worker: string): void {
  if (!d.knownTask(task)) throw new HttpError(404, `Unknown task '${task}'`);
  knownWorker(d, worker);
}

const reason = (reply: Record<string, unknown>) => String(reply.error ?? 'Unknown reason');

/** Flower's received_start/received_end: `%Y-%m-%d %H:%M`, local time. */
function flowerDate(name: string, v: string | undefined): number | undefined {
  if (!v) return undefined;
  const m = /^(\d{4})-(\d\d)-(\d\d)[ T](\d\d):(\d\d)$/.exec(v);
  if (!m) throw new HttpError(400, `${name} must be a date as YYYY-MM-DD HH:MM, got ${JSON.stringify(v)}`);
  return new Date(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!).getTime() / 1000;
}

/** Flower's body: {args, kwargs, ...apply_async options}. */
async function send(app: Celery, name: string, c: Ctx) {
  const body = c.json();
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'invalid options');
  const { args = [], kwargs = {}, ...options } = body as Record<string, unknown>;
  if (!Array.isArray(args)) throw new HttpError(400, 'args must be an array');
  if (!kwargs || typeof kwargs !== 'object' || Array.isArray(kwargs)) throw new HttpError(400, 'kwargs must be an object');
  return app.sendTask(name, args, kwargs as Record<string, unknown>, callOptions(options));
}

async function sent(app: Celery, result: { id: string }) {
  const response: Record<string, unknown> = { 'task-id': result.id };
  if (app.backendUrl()) response.state = (await (await app.backend()).getTaskMeta(result.id)).status;
  return response;
}

/** Flower's normalize_options plus the apply_async options a script sends most. */
function callOptions(o: Record<string, unknown>): CallOptions {
  const out: CallOptions = {};
  const date = (v: unknown) => {
    const d = typeof v === 'string' ? parsePythonDate(v.replace(' ', 'T')) : null;
    if (!d) throw new HttpError(400, 'Invalid option');
    return d;
  };
  const num = (v: unknown) => {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new HttpError(400, 'Invalid option');
    return n;
  };
  if (o.countdown !== undefined) out.countdown = num(o.countdown);
  if (o.eta !== undefined) out.eta = date(o.eta);
  if (o.expires !== undefined) out.expires = Number.isFinite(Number(o.expires)) ? Number(o.expires) : date(o.expires);
  if (typeof o.queue === 'string') out.queue = o.queue;
  if (typeof o.routing_key === 'string') out.routingKey = o.routing_key;
  if (typeof o.exchange === 'string') out.exchange = o.exchange;
  if (o.priority !== undefined) out.priority = num(o.priority);
  if (typeof o.task_id === 'string') out.taskId = o.task_id;
  if (o.headers && typeof o.headers === 'object') out.headers = o.headers as Record<string, unknown>;
  if (o.time_limit !== undefined) out.timeLimit = num(o.time_limit);
  if (o.soft_time_limit !== undefined) out.softTimeLimit = num(o.soft_time_limit);
  return out;
}
