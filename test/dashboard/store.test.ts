/**
 * The dashboard's history and the pieces under the retry button, without a broker: events into
 * the SQLite store (merged whatever their order, kept across a reopen, pruned by retention),
 * pagination and filters over 100,000 tasks, and reprs read back as values.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EventIngest } from '../../src/dashboard/ingest.ts';
import { DashboardMetrics } from '../../src/dashboard/metrics.ts';
import { parsePyLiteral } from '../../src/dashboard/py-literal.ts';
import { DashboardStore } from '../../src/dashboard/store.ts';
import { pyRepr } from '../../src/protocol/repr.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'celeriac-dashboard-store-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const open = (file: string, maxTasks = 100_000, retentionHours = 0) => new DashboardStore(path.join(dir, file), { maxTasks, retentionHours });

describe('events into the store', () => {
  it('merges a task\'s events whatever their order, and keeps them across a reopen', () => {
    const store = open('merge.db');
    const ingest = new EventIngest(store, new DashboardMetrics());
    const t = 1_700_000_000;
    // the worker's events come before the client's task-sent, and a late task-started after the success
    ingest.event({ type: 'task-received', uuid: 'a', name: 'tasks.add', args: '(1, 2)', kwargs: '{}', hostname: 'w1', timestamp: t + 1 });
    ingest.event({ type: 'task-succeeded', uuid: 'a', result: '3', runtime: 0.5, hostname: 'w1', timestamp: t + 3 });
    ingest.flush();
    ingest.event({ type: 'task-sent', uuid: 'a', name: 'tasks.add', routing_key: 'math', hostname: 'client', timestamp: t });
    ingest.event({ type: 'task-started', uuid: 'a', hostname: 'w1', timestamp: t + 2 });
    ingest.close();
    store.close();

    const again = open('merge.db');
    expect(again.task('a')).toMatchObject({ state: 'SUCCESS', name: 'tasks.add', args: '(1, 2)', result: '3', worker: 'w1', client: 'client', routing_key: 'math', sent: t, received: t + 1, started: t + 2, succeeded: t + 3 });
    again.close();
  });

  it('workers: online from heartbeats, offline after worker-offline, kept across a reopen', () => {
    const store = open('workers.db');
    const metrics = new DashboardMetrics();
    const ingest = new EventIngest(store, metrics);
    ingest.event({ type: 'worker-online', hostname: 'w1', freq: 2, sw_ident: 'py-celery', sw_ver: '5.2.6' });
    ingest.event({ type: 'worker-heartbeat', hostname: 'w2', freq: 2, active: 3, processed: 10 });
    ingest.event({ type: 'worker-offline', hostname: 'w1' });
    ingest.close();
    expect(metrics.render()).toMatch(/^flower_worker_online\{worker="w1"\} 0$/m);
    expect(metrics.render()).toMatch(/^flower_worker_number_of_currently_executing_tasks\{worker="w2"\} 3$/m);
    store.close();
    const again = new EventIngest(open('workers.db'), new DashboardMetrics());
    expect(again.workers.get('w1')).toMatchObject({ online: false, sw_ident: 'py-celery' });
    expect(again.workers.get('w2')).toMatchObject({ active: 3, processed: 10 });
    again.close();
  });
});

describe('queries over 100,000 tasks', () => {
  const store = open('big.db', 100_000);
  const now = Date.now() / 1000;
  const states = ['SUCCESS', 'FAILURE', 'STARTED', 'RECEIVED'];
  store.write(Array.from({ length: 100_000 }, (_, i) => ({
    uuid: `task-${String(i).padStart(6, '0')}`, name: `tasks.t${i % 7}`, state: states[i % 4], worker: `w${i % 3}`,
    args: `(${i},)`, kwargs: i === 4242 ? "{'needle': 'haystack'}" : '{}', received: now - 100_000 + i, seen: now - 100_000 + i,
  })));
  afterAll(() => store.close());

  it('pages newest first, with the total', () => {
    const first = store.query({ limit: 25, offset: 0 });
    expect(first.total).toBe(100_000);
    expect(first.tasks.map((t) => t.uuid).slice(0, 2)).toEqual(['task-099999', 'task-099998']);
    const deep = store.query({ limit: 25, offset: 99_990 });
    expect(deep.tasks.map((t) => t.uuid)).toEqual(Array.from({ length: 10 }, (_, i) => `task-${String(9 - i).padStart(6, '0')}`));
  });

  it('filters by state, name, worker, received time, and searches ids and args', () => {
    const r = store.query({ state: 'FAILURE', name: 'tasks.t1', worker: 'w2', limit: 5 });
    expect(r.tasks.every((t) => t.state === 'FAILURE' && t.name === 'tasks.t1' && t.worker === 'w2')).toBe(true);
    expect(r.total).toBe(Array.from({ length: 100_000 }, (_, i) => i).filter((i) => i % 4 === 1 && i % 7 === 1 && i % 3 === 2).length);
    expect(store.query({ receivedStart: now - 10, limit: 100 }).total).toBe(10);
    expect(store.query({ search: 'task-04242' }).tasks.map((t) => t.uuid)).toEqual(['task-042420', 'task-042421', 'task-042422', 'task-042423', 'task-042424', 'task-042425', 'task-042426', 'task-042427', 'task-042428', 'task-042429'].reverse());
    expect(store.query({ search: 'needle' }).tasks.map((t) => t.uuid)).toEqual(['task-004242']);
    expect(store.query({ search: '100%' }).total).toBe(0); // LIKE wildcards are searched as text
    expect(() => store.query({ sortBy: 'args; DROP TABLE tasks' })).toThrow(/sort_by must be one of/);
  });

  it('retention: keeps at most maxTasks, dropping the oldest, and drops what is older than the retention hours', () => {
    const small = open('retention.db', 3, 1);
    const t = Date.now() / 1000;
    small.write([0, 1, 2, 3, 4].map((i) => ({ uuid: `r${i}`, seen: t - 10 + i })).concat([{ uuid: 'old', seen: t - 7200 }]));
    expect(small.prune(t)).toBe(3);
    expect(small.query({}).tasks.map((x) => x.uuid)).toEqual(['r4', 'r3', 'r2']);
    small.close();
  });
});

describe('reprs read back for the retry button', () => {
  it('reads what pyRepr writes for JSON-like values', () => {
    for (const v of [[1, 'two', [3.5, -4e-7]], { a: null, 'b\'c': [true, false], d: 'é\n"\\' }, [], {}, ['\u0001', '😀']]) {
      expect(parsePyLiteral(pyRepr(v))).toEqual(v);
    }
    expect(parsePyLiteral("(1, 'x')")).toEqual([1, 'x']);
  });

  it('refuses an object\'s repr and a repr cut short', () => {
    expect(() => parsePyLiteral('(<object at 0x7f>,)')).toThrow(/not a Python literal/);
    expect(() => parsePyLiteral("('aaaa...")).toThrow(/not a Python literal/);
  });
});
