import { pyRepr } from '../protocol/repr.ts';
import { parseRate } from '../common/rate.ts';
import { filterHiddenSettings } from '../common/censor.ts';
import { bugreport } from '../app/bugreport.ts';
import { celeryTable } from '../app/config.ts';
import { maxPriorityOf, queueInfo, requestInfo, scheduledInfo, stats } from './info.ts';
import type { ControlTarget } from './target.ts';

type Args = Record<string, unknown>;
export type Handler = (w: ControlTarget, args: Args) => unknown | Promise<unknown>;

/** Shutdown's handler returns this: the server must not reply (a Python worker cannot either). */
export const NO_REPLY = Symbol('no reply');

const ok = (text: string) => ({ ok: text });
const list = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : typeof v === 'string' ? [v] : []);

/** Remote-control commands, with Celery's names, arguments and reply shapes (`celery/worker/control.py`). */
export const PANEL: Record<string, Handler> = {
  ping: () => ok('pong'),
  clock: (w) => ({ clock: w.clock.value }),
  hello: (w, a) => {
    if (a.from_node === w.hostname) return null;
    w.revoked.update(a.revoked);
    return { revoked: w.revoked.toMingle(), clock: w.clock.forward() };
  },
  stats: (w) => stats(w),
  active: (w, a) => w.heldRequests().filter((h) => h.state === 'active').map((h) => requestInfo(w, h, a.safe === true)),
  reserved: (w) => w.heldRequests().filter((h) => h.state === 'reserved').map((h) => requestInfo(w, h, false)),
  scheduled: (w) => w.heldRequests().filter((h) => h.state === 'scheduled').map((h) => scheduledInfo(w, h)),
  registered: (w, a) => registered(w, a),
  dump_tasks: (w, a) => registered(w, a),
  query_task: (w, a) => {
    const ids = new Set(list(a.ids ?? a.id));
    const out: Record<string, [string, unknown]> = {};
    for (const h of w.heldRequests()) {
      // As Celery: a request waiting for its ETA is not among the worker's requests yet.
      if (ids.has(h.request.id) && h.state !== 'scheduled') out[h.request.id] = [h.state, requestInfo(w, h, false)];
    }
    return out;
  },
  revoked: (w) => w.revoked.ids(),
  conf: (w, a) => conf(w, a.with_defaults === true),
  dump_conf: (w, a) => conf(w, a.with_defaults === true),
  report: (w) => ok(bugreport(w.app.conf)),
  active_queues: (w) => w.queues.map((q) => queueInfo(q, maxPriorityOf(w))),
  revoke: (w, a) => revoke(w, list(a.task_id), a.terminate === true),
  terminate: (w, a) => revoke(w, list(a.task_id), true),
  time_limit: (w, a) => {
    const task = w.app.tasks.get(String(a.task_name));
    if (!task) return { error: 'unknown task' };
    Object.assign(task.options as object, { softTimeLimit: a.soft ?? null, timeLimit: a.hard ?? null });
    return ok('time limits set successfully');
  },
  rate_limit: (w, a) => {
    // As Celery: the rate is checked first (bounded, linear), then the task.
    let perSecond: number;
    try {
      perSecond = parseRate(a.rate_limit as string | number | null);
    } catch (err) {
      return { error: (err as Error).message };
    }
    const task = w.app.tasks.get(String(a.task_name));
    if (!task) return { error: 'unknown task' };
    w.rateLimits.set(task.name, a.rate_limit as string | number | null);
    Object.assign(task.options as object, { rateLimit: a.rate_limit ?? null });
    return ok(perSecond > 0 ? 'new rate limit set successfully' : 'rate limit disabled successfully');
  },
  enable_events: (w) => setEvents(w, true),
  disable_events: (w) => setEvents(w, false),
  heartbeat: async (w) => {
    await w.sendHeartbeat(5);
    return null;
  },
  add_consumer: async (w, a) => {
    const queue = String(a.queue);
    if (w.queues.includes(queue)) return ok(`already consuming from ${pyRepr(queue)}`);
    await w.addQueue(queue);
    return ok(`add consumer ${queue}`);
  },
  cancel_consumer: (w, a) => {
    const queue = String(a.queue);
    return w.cancelQueue(queue) ? ok(`no longer consuming from ${queue}`) : { error: `not consuming from ${queue}` };
  },
  pool_grow: (w, a) => {
    if (w.autoscaler) return { error: 'pool_grow is not supported with autoscale. Adjust autoscale range instead.' };
    w.resizePool(Number(a.n ?? 1));
    return ok('pool will grow');
  },
  pool_shrink: (w, a) => {
    if (w.autoscaler) return { error: 'pool_shrink is not supported with autoscale. Adjust autoscale range instead.' };
    w.resizePool(-Number(a.n ?? 1));
    return ok('pool will shrink');
  },
  autoscale: (w, a) => {
    if (!w.autoscaler) return { error: "ValueError('Autoscale not enabled')" };
    const int = (v: unknown) => (v === undefined || v === null ? undefined : Number(v));
    const [max, min] = w.autoscaler.update(int(a.max), int(a.min));
    return ok(`autoscale now max=${max} min=${min}`);
  },
  pool_restart: async (w) => {
    if (!w.app.conf.workerPoolRestarts) return { error: "ValueError('Pool restarts not enabled')" };
    try {
      await w.restartPool();
    } catch (err) {
      return { error: `ValueError(${pyRepr((err as Error).message)})` };
    }
    return ok('reload started');
  },
  memsample: () => null,
  memdump: () => `RSS: ${Math.round(process.memoryUsage().rss / 1024)}kB`,
  election: async (w, a) => {
    await w.election(String(a.id), String(a.topic), a.action ?? null);
    return null;
  },
  shutdown: (w) => {
    w.requestShutdown();
    return NO_REPLY;
  },
};

function conf(w: ControlTarget, withDefaults: boolean): Record<string, unknown> {
  return filterHiddenSettings(celeryTable(w.app.conf, withDefaults));
}

function revoke(w: ControlTarget, ids: string[], terminate: boolean): unknown {
  for (const id of ids) w.revoked.add(id);
  if (terminate) {
    const running = w.terminate(ids);
    return ok(running.length ? `terminate: tasks ${running.join(', ')} flagged as revoked` : 'terminate: tasks unknown');
  }
  return ok(`tasks ${ids.join(', ')} flagged as revoked`);
}

function setEvents(w: ControlTarget, on: boolean): unknown {
  if (!w.events) return { error: 'events are not supported by this broker' };
  const was = w.events.taskEvents;
  w.events.taskEvents = on;
  return ok(on ? (was ? 'task events already enabled' : 'task events enabled') : was ? 'task events disabled' : 'task events already disabled');
}

function registered(w: ControlTarget, a: Args): string[] {
  const items = list(a.taskinfoitems);
  return [...w.app.tasks.values()].map((t) => {
    if (items.length === 0) return t.name;
    const fields = items.map((k) => `${k}=${(t.options as unknown as Record<string, unknown>)[k] ?? 'None'}`);
    return `${t.name} [${fields.join(' ')}]`;
  });
}
