/**
 * The dashboard against a Python-only cluster on Redis: Flower's HTTP API (paths, arguments,
 * JSON shapes of Flower's documented responses), /metrics read by a Prometheus text parser, and
 * the security rules (auth, CSRF defence on POSTs, refusing an open non-loopback bind).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
// @ts-expect-error: the parser ships no types
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Celery } from '../../src/index.ts';
import { type Dashboard, startDashboard } from '../../src/dashboard/index.ts';
import { BACKEND, BROKER, cleanup, PREFIX, type Proc, pythonWorker, results, spawnProc } from '../cluster/helpers.ts';
import { until } from './helpers.ts';

const WORKER = 'py@dashapi';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'celeriac-dashboard-api-'));
let app: Celery;
let py: Proc;
let dashboard: Dashboard;

/** The keys of a task in Flower's /api/tasks and /api/task/info (Celery's Task.as_dict()). */
const TASK_KEYS = ['args', 'children', 'client', 'clock', 'eta', 'exception', 'exchange', 'expires', 'failed', 'kwargs', 'name', 'parent', 'parent_id',
  'received', 'rejected', 'result', 'retried', 'retries', 'revoked', 'root', 'root_id', 'routing_key', 'runtime', 'sent', 'started', 'state',
  'succeeded', 'timestamp', 'traceback', 'uuid', 'worker'];

const url = (p: string) => `${dashboard.url}${p}`;
const getJson = async (p: string) => {
  const r = await fetch(url(p));
  expect(r.status, `${p}: ${r.status}`).toBe(200);
  expect(r.headers.get('content-type')).toMatch(/^application\/json/);
  return r.json() as Promise<Record<string, unknown>>;
};
const post = (p: string, body?: string, headers: Record<string, string> = {}) => fetch(url(p), { method: 'POST', body, headers });

beforeAll(async () => {
  app = new Celery('dashboard-api-test', { broker: BROKER, backend: BACKEND, brokerTransportOptions: { global_keyprefix: PREFIX } });
  // Solo: Celery 5.2's threads pool can lose the flush of buffered task events (a pool thread
  // schedules it on the event loop without a lock), and a task-succeeded then waits for the next
  // task's events. Solo sends them from the main thread, and has no pool to grow either.
  py = pythonWorker(WORKER, ['-Q', 'py', '-E', '--heartbeat-interval', '1', '-P', 'solo']);
  dashboard = await startDashboard(app, { port: 0, db: path.join(dir, 'history.db') });
  await py.waitFor(/ready\./, 60_000);
  await until('the worker', async () => ((await getJson('/api/workers?refresh=1')) as Record<string, unknown>)[WORKER]);
}, 90_000);

afterAll(async () => {
  await dashboard?.close();
  await py?.stop('SIGKILL');
  await app?.close();
  await cleanup();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("Flower's HTTP API, on a Python-only cluster", () => {
  let okId: string;
  let failedId: string;

  it('POST /api/task/send-task/<name> answers {task-id, state}; the task shows in /api/tasks and /api/task/info', async () => {
    const r = await post('/api/task/send-task/cluster.py_echo', JSON.stringify({ args: [{ a: 1 }], queue: 'py' }), { 'content-type': 'application/json' });
    expect(r.status).toBe(200);
    const body = (await r.json()) as Record<string, string>;
    expect(Object.keys(body).sort()).toEqual(['state', 'task-id']);
    okId = body['task-id']!;
    results.add(okId);
    const failing = (await (await post('/api/task/send-task/cluster.py_fail', JSON.stringify({ args: ['api boom'], queue: 'py' }))).json()) as Record<string, string>;
    failedId = failing['task-id']!;
    results.add(failedId);

    const info = await until<Record<string, unknown>>('the task to succeed', async () => {
      const r = await fetch(url(`/api/task/info/${okId}`)); // 404 until the first event is stored
      const i: Record<string, unknown> = r.ok ? ((await r.json()) as Record<string, unknown>) : {};
      return i.state === 'SUCCESS' && !!i.worker && i; // from the events (the result backend may answer first)
    });
    expect(Object.keys(info).sort()).toEqual([...TASK_KEYS, 'task-id'].sort());
    expect(info).toMatchObject({ uuid: okId, 'task-id': okId, name: 'cluster.py_echo', worker: WORKER, args: "({'a': 1},)", kwargs: '{}', result: "{'a': 1}" });
    expect(typeof info.runtime).toBe('number');

    const list = await getJson('/api/tasks?limit=10&taskname=cluster.py_echo');
    expect(Object.keys(list)).toContain(okId);
    expect(Object.keys(list[okId] as object).sort()).toEqual(TASK_KEYS.sort());
    expect(Object.keys(await getJson('/api/tasks?state=FAILURE&taskname=cluster.py_echo'))).not.toContain(okId);
    expect(Object.keys(await getJson(`/api/tasks?search=${okId.slice(0, 8)}`))).toEqual([okId]);
    expect((await getJson('/api/task/types'))['task-types']).toContain('cluster.py_echo');
  });

  it('GET /api/task/result/<id> answers {task-id, state, result}, with the traceback of a failure', async () => {
    expect(await getJson(`/api/task/result/${okId}`)).toEqual({ 'task-id': okId, state: 'SUCCESS', result: { a: 1 } });
    const failed = await until('the failure', async () => {
      const f = await getJson(`/api/task/result/${failedId}?timeout=5`);
      return f.state === 'FAILURE' && f;
    });
    expect(Object.keys(failed).sort()).toEqual(['result', 'state', 'task-id', 'traceback']);
    expect(failed.result).toBe("ValueError('api boom')");
    expect(failed.traceback).toMatch(/ValueError: api boom/);
  });

  it('a task the events never showed is looked up in the result backend', async () => {
    const r = await app.sendTask('cluster.py_echo', ['before'], {}, { queue: 'py' });
    results.add(r);
    await r.get({ timeout: 20 });
    dashboard.context.store.db.prepare('DELETE FROM tasks WHERE uuid = ?').run(r.id); // as if the dashboard had not been running
    const info = await getJson(`/api/task/info/${r.id}`);
    expect(info).toMatchObject({ uuid: r.id, state: 'SUCCESS', result: "'before'" });
    expect((await fetch(url('/api/task/info/00000000-0000-0000-0000-000000000000'))).status).toBe(404);
  });

  it('GET /api/workers answers per worker what inspect says; status=true answers online flags', async () => {
    const workers = await getJson('/api/workers');
    const w = workers[WORKER] as Record<string, unknown>;
    for (const k of ['active_queues', 'registered', 'stats', 'conf', 'active', 'reserved', 'scheduled', 'revoked', 'timestamp']) expect(w, k).toHaveProperty(k);
    expect((w.active_queues as { name: string }[]).map((q) => q.name)).toEqual(['py']);
    expect(await getJson('/api/workers?status=true')).toMatchObject({ [WORKER]: true });
    expect((await fetch(url('/api/workers?workername=nobody@nowhere'))).status).toBe(404);
  });

  it('GET /api/queues/length answers {active_queues: [{name, messages}]}', async () => {
    const q = await getJson('/api/queues/length');
    expect(q.active_queues).toEqual(expect.arrayContaining([{ name: 'py', messages: 0 }]));
  });

  it('control: rate limit and time limits answer the worker\'s message; an unknown worker is a 404', async () => {
    const rate = await post(`/api/task/rate-limit/cluster.py_echo?workername=${WORKER}&ratelimit=100/m`);
    expect(rate.status).toBe(200);
    expect(await rate.json()).toEqual({ message: 'new rate limit set successfully' });
    const form = await post('/api/task/timeout/cluster.py_echo', new URLSearchParams({ workername: WORKER, soft: '10', hard: '20' }).toString(), { 'content-type': 'application/x-www-form-urlencoded' });
    expect(await form.json()).toEqual({ message: 'time limits set successfully' });
    const gone = await post('/api/worker/pool/grow/nobody@nowhere?n=1');
    expect(gone.status).toBe(404);
    expect(await gone.text()).toBe("Unknown worker 'nobody@nowhere'");
    const consumer = await post(`/api/worker/queue/add-consumer/${WORKER}?queue=extra`);
    expect(await consumer.json()).toEqual({ message: "add consumer extra" });
    expect(await (await post(`/api/worker/queue/cancel-consumer/${WORKER}?queue=extra`)).json()).toEqual({ message: 'no longer consuming from extra' });
  });

  it('pool commands answer the worker\'s refusal as Flower does (403 and its reason)', async () => {
    for (const [path, message] of [
      [`/api/worker/pool/grow/${WORKER}?n=1`, `Failed to grow '${WORKER}' worker's pool: `],
      [`/api/worker/pool/autoscale/${WORKER}?min=1&max=2`, `Failed to autoscale '${WORKER}' worker: `],
      [`/api/worker/pool/restart/${WORKER}`, `Failed to restart the '${WORKER}' pool: `],
    ]) {
      const r = await post(path!);
      expect(r.status, path).toBe(403);
      expect(await r.text()).toMatch(new RegExp(`^${message!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\w+Error\\(`)); // the solo pool has neither
    }
  });

  it('POST /api/task/revoke/<id> answers {message}', async () => {
    const r = await post(`/api/task/revoke/${okId}`);
    expect(await r.json()).toEqual({ message: `Revoked '${okId}'` });
  });

  it('/metrics carries Flower\'s metric names and labels, and queue lengths', async () => {
    const text = await (await fetch(url('/metrics'))).text();
    const families = new Map((parsePrometheusTextFormat(text) as { name: string; type: string; metrics: { labels?: Record<string, string>; value?: string; buckets?: Record<string, string> }[] }[]).map((f) => [f.name, f]));
    const events = families.get('flower_events_total')!;
    expect(events.type).toBe('COUNTER');
    expect(events.metrics).toEqual(expect.arrayContaining([{ labels: { worker: WORKER, type: 'task-succeeded', task: 'cluster.py_echo' }, value: expect.any(String) }]));
    const runtime = families.get('flower_task_runtime_seconds')!;
    expect(runtime.type).toBe('HISTOGRAM');
    expect(Object.keys(runtime.metrics[0]!.buckets!)).toContain('+Inf');
    // the parser folds a labelled histogram's series together: its labels are read from the text
    expect(text).toMatch(new RegExp(`^flower_task_runtime_seconds_count\\{worker="${WORKER}",task="cluster.py_echo"\\} \\d+$`, 'm'));
    expect(families.get('flower_worker_online')!.metrics).toEqual(expect.arrayContaining([{ labels: { worker: WORKER }, value: '1' }]));
    for (const name of ['flower_task_prefetch_time_seconds', 'flower_worker_prefetched_tasks', 'flower_worker_number_of_currently_executing_tasks']) {
      expect(families.get(name)?.type, name).toBe('GAUGE');
    }
    expect(families.get('celeriac_queue_length')!.metrics).toEqual(expect.arrayContaining([{ labels: { queue: 'py' }, value: '0' }]));
  });

  it('/healthcheck answers OK', async () => {
    expect(await (await fetch(url('/healthcheck'))).text()).toBe('OK');
  });

  it('POST /api/worker/shutdown/<name> shuts the worker down', async () => {
    const r = await post(`/api/worker/shutdown/${WORKER}`);
    expect(await r.json()).toEqual({ message: 'Shutting down!' });
    await py.waitFor(/Got shutdown from remote/, 20_000);
    const code = py.child.exitCode ?? (await new Promise((resolve) => py.child.once('exit', resolve)));
    expect(code).toBe(0);
    await until('the worker offline', async () => (await getJson('/api/workers?status=true'))[WORKER] === false);
  });
});

describe('security', () => {
  it('a browser POST needs the page\'s CSRF token and the same origin; a script\'s POST does not', async () => {
    const id = '11111111-2222-3333-4444-555555555555';
    const cross = await post(`/api/task/revoke/${id}`, '', { origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' });
    expect(cross.status).toBe(403);
    const noToken = await post(`/api/task/revoke/${id}`, '', { origin: dashboard.url, 'sec-fetch-site': 'same-origin' });
    expect(noToken.status).toBe(403);
    expect(await noToken.text()).toMatch(/X-CSRF-Token/);
    const page = await (await fetch(url('/'))).text();
    const token = /name="csrf-token" content="([0-9a-f]+)"/.exec(page)![1]!;
    const withToken = await post(`/api/task/revoke/${id}`, '', { origin: dashboard.url, 'sec-fetch-site': 'same-origin', 'x-csrf-token': token });
    expect(withToken.status).toBe(200);
    expect((await post(`/api/task/revoke/${id}`)).status).toBe(200); // curl, a script
    expect((await fetch(url(`/api/task/revoke/${id}`))).status).toBe(405); // actions are POSTs
  });

  it('basic auth and the bearer token: without credentials 401, with either 200', async () => {
    const locked = await startDashboard(app, { port: 0, db: ':memory:', basicAuth: ['admin:s3cret'], authToken: 'tok3n' });
    try {
      const r = await fetch(`${locked.url}/api/workers`);
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toMatch(/^Basic/);
      expect((await fetch(`${locked.url}/api/workers`, { headers: { authorization: 'Basic ' + Buffer.from('admin:wrong').toString('base64') } })).status).toBe(401);
      expect((await fetch(`${locked.url}/api/workers`, { headers: { authorization: 'Basic ' + Buffer.from('admin:s3cret').toString('base64') } })).status).toBe(200);
      expect((await fetch(`${locked.url}/api/workers`, { headers: { authorization: 'Bearer tok3n' } })).status).toBe(200);
      expect((await fetch(`${locked.url}/metrics`)).status).toBe(401);
      expect((await fetch(`${locked.url}/healthcheck`)).status).toBe(200);
    } finally {
      await locked.close();
    }
  });

  it('a non-loopback address without auth is refused unless the unsafe flag is given', async () => {
    await expect(startDashboard(app, { port: 0, db: ':memory:', address: '0.0.0.0' })).rejects.toThrow(/without authentication.*--unsafe-no-auth/);
  });
});

describe('the command', () => {
  const cli = (...args: string[]) => spawnProc(process.execPath, ['bin/celeriac.js', '-A', './test/cluster/tasks.ts:app', ...args]);

  it('`celeriac flower --port 0` serves the dashboard and says where', async () => {
    const p = cli('flower', '--port', '0', '--db', ':memory:');
    try {
      const line = await p.waitFor(/celeriac dashboard v\S+: http:\/\/127\.0\.0\.1:\d+/, 30_000);
      const at = /(http:\/\/127\.0\.0\.1:\d+)/.exec(line)![1]!;
      expect(await (await fetch(`${at}/healthcheck`)).text()).toBe('OK');
      expect(await (await fetch(`${at}/`)).text()).toMatch(/<title>celeriac dashboard<\/title>/);
    } finally {
      await p.stop();
    }
  });

  it('`celeriac dashboard --address 0.0.0.0` without auth exits with the reason and the flags that fix it', async () => {
    const p = cli('dashboard', '--address', '0.0.0.0', '--port', '0', '--db', ':memory:');
    await p.waitFor(/refusing to serve 0\.0\.0\.0 without authentication.*--unsafe-no-auth/, 30_000);
    const code = p.child.exitCode ?? (await new Promise((resolve) => p.child.once('exit', resolve)));
    expect(code).toBe(2);
  });
});
