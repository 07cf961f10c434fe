/**
 * Calling options and argument types across Python Celery 5.2 and celeriac on one Redis, both
 * directions: countdown/ETA, expires, priority (kombu's order: lower numbers first), retries of a
 * bound task, custom queues / exchanges / routing keys, kwargs (a celeriac task gets them as a
 * trailing object argument), unicode, nested JSON and dates (ISO strings on the wire, kombu 5.2).
 *
 * Broker in TEST_DB under a key prefix unique to the run (both sides), results in RESULTS_DB.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Celery } from '../../src/app/celery.ts';
import { TaskRevokedError } from '../../src/errors.ts';
import { createLogger } from '../../src/common/log.ts';
import { Worker } from '../../src/worker/worker.ts';
import { celeryPython, deleteByPrefix, PY_DIR, type Proc, REDIS_HOST, RESULTS_DB, redisClient, runPrefix, startPythonWorker, TEST_DB, trackResults } from './helpers.ts';
import { makeApp } from './ixapp.ts';

const DB = TEST_DB;
const prefix = runPrefix('options');
const broker = `redis://${REDIS_HOST}/${DB}`;
const backend = `redis://${REDIS_HOST}/${RESULTS_DB}`;
const env = { CELERIAC_TEST_BROKER: broker, CELERIAC_TEST_BACKEND: backend, CELERIAC_TEST_PREFIX: prefix };
const raw = redisClient(DB);
const taskIds: string[] = [];
const quiet = createLogger({ level: 'CRITICAL' });

const UNICODE = 'Grüße, 日本語, עברית, emoji 🎉👍🏽, combining é, nul-free \u2028 line sep, "quotes" \\ back';
const NESTED = { a: [1, 2.5, -3, { b: null, c: [true, false, { d: 'ü' }] }], e: { f: { g: { h: [[], {}, [[1]]] } } }, big: 9007199254740991, small: 1e-7 };

/** JSON a Python client can send: `$datetime`/`$date` become Python datetime/date, `$in` now+seconds. */
type PyCall = { task: string; args?: unknown[]; kwargs?: Record<string, unknown>; options?: Record<string, unknown>; wait?: boolean };
type PyOutcome = { id: string; sent_at: number; result?: any; exc_type?: string; exc_args?: unknown[] };

function pythonClient(calls: PyCall[]): Promise<PyOutcome[]> {
  return new Promise((resolve, reject) => {
    execFile(celeryPython(), [path.join(PY_DIR, 'ixclient.py'), JSON.stringify(calls)], { cwd: PY_DIR, env: { ...process.env, ...env, PYTHONPATH: PY_DIR }, timeout: 40_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`ixclient.py failed: ${err.message}\n${stderr}`));
      const out = JSON.parse(stdout) as PyOutcome[];
      taskIds.push(...out.map((o) => o.id));
      resolve(out);
    });
  });
}

let app: Celery;
let jsWorker: Worker;
let python: Proc;
/** Published before any worker consumes their queues, so priority decides the order. */
let prioritySent: Promise<PyOutcome[]>;

beforeAll(async () => {
  app = makeApp({ broker, prefix, backend });
  // celeriac → Python: ix.order on "ix.py.prio" before the Python worker starts.
  for (const [tag, priority] of [['py-a9', 9], ['py-b0', 0], ['py-c4', 4], ['py-d6', 6]] as const) {
    taskIds.push((await app.sendTask('ix.order', [tag], {}, { queue: 'ix.py.prio', priority })).id);
  }
  // Python → celeriac: the same on "ix.js.prio", before a celeriac worker consumes it.
  prioritySent = pythonClient(([['js-a9', 9], ['js-b0', 0], ['js-c4', 4], ['js-d6', 6]] as const).map(([tag, priority]) => ({ task: 'ix.order', args: [tag], options: { queue: 'ix.js.prio', priority }, wait: false })));
  jsWorker = new Worker(app, { queues: ['js', 'ix.js.routed'], concurrency: 4, hostname: `ixjs${process.pid}@test`, logger: quiet, withoutMingle: true, withoutGossip: true, withoutHeartbeat: true });
  [python] = await Promise.all([
    startPythonWorker('ixtasks', ['-P', 'solo', '-l', 'INFO', '-Q', 'py,ix.routed,ix.py.prio', '-n', `ixpy${process.pid}@test`, '--without-mingle', '--without-gossip', '--without-heartbeat'], env),
    jsWorker.start(),
  ]);
}, 40_000);

afterAll(async () => {
  await python?.stop();
  await jsWorker?.shutdown();
  raw.disconnect();
  await deleteByPrefix(DB, prefix);
  const results = trackResults();
  results.add(taskIds);
  await results.cleanup();
});

describe('Python client → celeriac worker', () => {
  let out: PyOutcome[];
  beforeAll(async () => {
    out = await pythonClient([
      {
        task: 'ix.echo',
        args: [UNICODE, NESTED, { $datetime: '2024-05-06T07:08:09.123456+00:00' }, { $datetime: '2024-05-06T07:08:09' }, { $date: '2024-05-06' }],
        kwargs: { naïve: 'ü', nested: NESTED, when: { $datetime: '2024-05-06T07:08:09+02:00' } },
        options: { queue: 'js' },
      },
      { task: 'ix.echo', args: ['countdown'], options: { queue: 'js', countdown: 1 } },
      { task: 'ix.echo', args: ['eta'], options: { queue: 'js', eta: { $in: 1 } } },
      { task: 'ix.echo', args: ['expired'], options: { queue: 'js', expires: { $in: -5 } } },
      { task: 'ix.echo', args: ['expires later'], options: { queue: 'js', expires: 60 } },
      { task: 'ix.retry', args: [2], options: { queue: 'js' } },
      { task: 'ix.echo', args: ['routed'], options: { queue: 'ix.js.routed', exchange: 'ix.exchange', routing_key: 'ix.js.key' } },
      // No queue: kombu routes through the binding the call above declared.
      { task: 'ix.echo', args: ['by exchange'], options: { exchange: 'ix.exchange', routing_key: 'ix.js.key' } },
      { task: 'ix.echo', args: ['priority'], options: { queue: 'js', priority: 7 } },
    ]);
  }, 40_000);

  it('kwargs arrive as a trailing object argument; unicode, nested JSON and dates come through', () => {
    const r = out[0]!.result;
    expect(r.by).toBe('js');
    const dates = ['2024-05-06T07:08:09.123456Z', '2024-05-06T07:08:09', '2024-05-06T00:00:00'];
    expect(r.args).toEqual([UNICODE, NESTED, ...dates]);
    const kwargs = { naïve: 'ü', nested: NESTED, when: '2024-05-06T07:08:09+02:00' };
    expect(r.kwargs).toEqual(kwargs);
    expect(r.received).toEqual([UNICODE, NESTED, ...dates, kwargs]);
  });

  it('countdown and eta: run no earlier than asked, with the eta in the request', () => {
    for (const o of [out[1]!, out[2]!]) {
      expect(o.result.ran_at - o.sent_at).toBeGreaterThanOrEqual(0.95);
      expect(o.result.request.eta).toMatch(/^\d{4}-\d\d-\d\dT/);
    }
  });

  it('expires: an expired task is revoked, a later expiry runs', () => {
    expect(out[3]).toMatchObject({ exc_type: 'TaskRevokedError' });
    expect(out[4]!.result.request.expires).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it('a bound celeriac task retries itself', () => {
    expect(out[5]!.result).toEqual({ retries: 2, by: 'js' });
  });

  it('custom exchange and routing key reach the bound queue, with the delivery info', () => {
    for (const o of [out[6]!, out[7]!]) expect(o.result.request).toMatchObject({ exchange: 'ix.exchange', routing_key: 'ix.js.key' });
    expect(out[8]!.result.request.priority).toBe(7);
  });

  it('priority: lower numbers first, as kombu', async () => {
    await prioritySent;
    const w = new Worker(app, { queues: ['ix.js.prio'], concurrency: 1, prefetchMultiplier: 1, logger: quiet, withoutMingle: true, withoutGossip: true, withoutHeartbeat: true, hostname: `ixprio${process.pid}@test` });
    await w.start();
    try {
      const deadline = Date.now() + 10_000;
      while ((await raw.lrange(prefix + 'order', 0, -1)).filter((t) => t.startsWith('js-')).length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    } finally {
      await w.shutdown();
    }
    expect((await raw.lrange(prefix + 'order', 0, -1)).filter((t) => t.startsWith('js-'))).toEqual(['js-b0', 'js-c4', 'js-d6', 'js-a9']);
  });
});

describe('celeriac client → Python worker', () => {
  it('kwargs, unicode, nested JSON and dates', async () => {
    const when = new Date(Date.UTC(2024, 4, 6, 7, 8, 9, 123));
    const r = await app.sendTask<any>('ix.echo', [UNICODE, NESTED, when], { naïve: 'ü', nested: NESTED, when }, { queue: 'py' });
    taskIds.push(r.id);
    const got = await r.get({ timeout: 15 });
    expect(got.by).toBe('py');
    expect(got.args).toEqual([UNICODE, NESTED, '2024-05-06T07:08:09.123000Z']);
    expect(got.kwargs).toEqual({ naïve: 'ü', nested: NESTED, when: '2024-05-06T07:08:09.123000Z' });
  });

  it('countdown and eta', async () => {
    const sentAt = Date.now() / 1000;
    const [a, b] = await Promise.all([
      app.sendTask<any>('ix.echo', ['countdown'], {}, { queue: 'py', countdown: 1 }),
      app.sendTask<any>('ix.echo', ['eta'], {}, { queue: 'py', eta: new Date(Date.now() + 1000) }),
    ]);
    taskIds.push(a.id, b.id);
    for (const r of [await a.get({ timeout: 15 }), await b.get({ timeout: 15 })]) {
      expect(r.ran_at - sentAt).toBeGreaterThanOrEqual(0.95);
      expect(r.request.eta).toMatch(/^\d{4}-\d\d-\d\dT/);
    }
  });

  it('expires', async () => {
    const expired = await app.sendTask('ix.echo', ['expired'], {}, { queue: 'py', expires: new Date(Date.now() - 5000) });
    const later = await app.sendTask<any>('ix.echo', ['later'], {}, { queue: 'py', expires: 60 });
    taskIds.push(expired.id, later.id);
    const err = await expired.get({ timeout: 15 }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(TaskRevokedError);
    expect((err as Error).message).toMatch(/expired/);
    expect((await later.get({ timeout: 15 })).request.expires).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it('a bound Python task retries itself', async () => {
    const r = await app.sendTask('ix.retry', [2], {}, { queue: 'py' });
    taskIds.push(r.id);
    expect(await r.get({ timeout: 15 })).toEqual({ retries: 2, by: 'py' });
  });

  it('custom queue, exchange and routing key; priority in the delivery info', async () => {
    const routed = await app.sendTask<any>('ix.echo', ['routed'], {}, { queue: 'ix.routed', exchange: 'ix.exchange', routingKey: 'ix.key' });
    const prio = await app.sendTask<any>('ix.echo', ['priority'], {}, { queue: 'py', priority: 7 });
    taskIds.push(routed.id, prio.id);
    expect((await routed.get({ timeout: 15 })).request).toMatchObject({ exchange: 'ix.exchange', routing_key: 'ix.key' });
    expect((await prio.get({ timeout: 15 })).request.priority).toBe(7);
  });

  it('priority: the Python worker takes lower numbers first', async () => {
    const deadline = Date.now() + 10_000;
    while ((await raw.lrange(prefix + 'order', 0, -1)).filter((t) => t.startsWith('py-')).length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect((await raw.lrange(prefix + 'order', 0, -1)).filter((t) => t.startsWith('py-'))).toEqual(['py-b0', 'py-c4', 'py-d6', 'py-a9']);
  });
});
