/**
 * `inspect active/reserved/scheduled/revoked/query_task/active_queues/stats/conf` replies in
 * Celery's exact shape: a Python worker and a celeriac worker in the same state (a task running,
 * one reserved, one waiting for its ETA, one id revoked), asked by Python's `celery inspect`,
 * their replies compared field by field (key sets and value types; values where they must agree).
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/app/config.ts';
import { brokerInfo } from '../../src/control/info.ts';
import type { ControlTarget } from '../../src/control/target.ts';
import { PYTHON } from '../helpers/python-worker.ts';
import { celeryCli, type Parity, pyClient, pyInspect, startBroker, startCeleriac, startPython, type Worker } from './helpers.ts';

const TS = 'ts@inspect';
const PY = 'py@inspect';
const PY_ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00$/;

/** The keys and value types of a reply, recursively (a list by its first item). */
function shape(v: unknown): unknown {
  if (v === null) return 'null';
  if (Array.isArray(v)) return v.length ? [shape(v[0])] : [];
  if (typeof v === 'object') return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, shape(x)]));
  return typeof v;
}

type Info = Record<string, unknown> & { delivery_info: Record<string, unknown> };

describe('inspect replies of a Python and a celeriac worker in the same state', () => {
  let p: Parity;
  let ts: Worker;
  let py: Worker;
  let ask: (cmd: string, extra?: string[]) => Promise<{ mine: unknown; theirs: unknown }>;
  const ids: Record<string, Record<string, string>> = { tsq: {}, pyq: {} };

  beforeAll(async () => {
    p = await startBroker();
    [ts, py] = await Promise.all([startCeleriac(p, TS, 'tsq', ['-c', '1']), startPython(p, PY, 'pyq', ['-P', 'prefork', '-c', '1'])]);
    ask = async (cmd, extra = []) => {
      const r = await pyInspect(p, cmd, [TS, PY], extra);
      return { mine: r[TS], theirs: r[PY] };
    };
    for (const q of ['tsq', 'pyq']) {
      ids[q]!.active = (await pyClient(p, 'send', 'parity.sleep', q, { args: [60], priority: 3 })) as string;
      ids[q]!.reserved = (await pyClient(p, 'send', 'parity.sleep', q, { args: [1] })) as string;
      ids[q]!.scheduled = (await pyClient(p, 'send', 'parity.sleep', q, { args: [1], countdown: 600 })) as string;
    }
    await celeryCli(p, ['control', 'revoke', 'dead-beef-1', '-t', '3', '-d', `${TS},${PY}`]);
    const deadline = Date.now() + 30_000;
    for (;;) {
      const { mine, theirs } = await ask('active');
      if ((mine as unknown[])?.length === 1 && (theirs as unknown[])?.length === 1) break;
      if (Date.now() > deadline) throw new Error(`the tasks did not start: ${JSON.stringify({ mine, theirs })}`);
      await new Promise((r) => setTimeout(r, 300));
    }
  }, 120_000);
  afterAll(async () => {
    await Promise.all([ts?.child.kill('SIGKILL'), py?.child.kill('SIGKILL')]);
    await Promise.all([ts?.stop(), py?.stop()]);
    await p?.stop();
  });

  it('active and reserved: Request.info() with the priority in delivery_info', async () => {
    for (const cmd of ['active', 'reserved']) {
      const { mine, theirs } = await ask(cmd);
      const [m, t] = [(mine as Info[])[0]!, (theirs as Info[])[0]!];
      expect(shape(m), cmd).toEqual(shape(t));
      expect(m.id).toBe(ids.tsq![cmd]);
      expect({ ...m, id: 0, hostname: 0, time_start: 0, worker_pid: 0, delivery_info: { ...m.delivery_info, routing_key: 0 } })
        .toEqual({ ...t, id: 0, hostname: 0, time_start: 0, worker_pid: 0, delivery_info: { ...t.delivery_info, routing_key: 0 } });
      expect(m.delivery_info.priority).toBe(cmd === 'active' ? 3 : 0);
    }
  });

  it('scheduled: eta in isoformat, the request with its delivery_info', async () => {
    const { mine, theirs } = await ask('scheduled');
    const [m, t] = [(mine as Info[])[0]!, (theirs as Info[])[0]!];
    expect(shape(m)).toEqual(shape(t));
    expect(m.eta).toMatch(PY_ISO);
    expect(t.eta).toMatch(PY_ISO);
    expect(m.priority).toBe(t.priority);
    expect((m.request as Info).id).toBe(ids.tsq!.scheduled);
  });

  it('revoked and query_task', async () => {
    const revoked = await ask('revoked');
    expect(revoked.mine).toEqual(revoked.theirs);
    const q = await ask('query_task', [...Object.values(ids.tsq!), ...Object.values(ids.pyq!)]);
    const states = (r: unknown) => Object.values(r as Record<string, [string, Info]>).map(([s]) => s).sort();
    expect(states(q.mine)).toEqual(states(q.theirs));
    expect(shape(Object.values(q.mine as object)[0])).toEqual(shape(Object.values(q.theirs as object)[0]));
  });

  it("active_queues: kombu's queue description", async () => {
    const { mine, theirs } = await ask('active_queues');
    const rename = (x: unknown, from: string) => JSON.parse(JSON.stringify(x).replaceAll(`"${from}"`, '"Q"'));
    expect(rename(mine, 'tsq')).toEqual(rename(theirs, 'pyq'));
  });

  it('stats: every field of Celery\'s, with real values', async () => {
    const { mine, theirs } = (await ask('stats')) as { mine: Record<string, Record<string, unknown>>; theirs: Record<string, Record<string, unknown>> };
    expect(shape({ ...mine, total: {} })).toEqual(shape({ ...theirs, total: {} }));
    expect(mine.total).toEqual({ 'parity.sleep': 1 });
    expect(theirs.total).toEqual({ 'parity.sleep': 1 });
    expect(mine.broker).toEqual(theirs.broker);
    expect(mine.pool!['max-concurrency']).toBe(1);
    expect(mine.pid).toBe(ts.child.pid);
  });

  it('conf: the same keys as a Python worker for the same settings, censored', async () => {
    const { mine, theirs } = (await ask('conf')) as { mine: Record<string, unknown>; theirs: Record<string, unknown> };
    expect(mine.broker_url).toBe(theirs.broker_url);
    expect(mine.result_backend).toBe(theirs.result_backend);
  });
});

describe("stats' broker: kombu's Connection.info() as the worker's connection has it", () => {
  it('matches Python for AMQP and Redis URLs (connect_timeout 4 and heartbeat 120, as a worker sets them)', () => {
    const urls = ['amqp://guest:guest@127.0.0.1:5672//', 'amqp://u:p@h/vh', 'redis://127.0.0.1:6379', 'redis://:p@h:6380/2', 'sqlite://x.db'];
    const py = JSON.parse(execFileSync(PYTHON, ['-c', `
import json, sys
from kombu import Connection
out = []
for u in json.loads(sys.argv[1])[:-1]:
    i = Connection(u, connect_timeout=4, heartbeat=120.0).info(); i.pop('password', None); out.append(i)
print(json.dumps(out))`, JSON.stringify(urls)]).toString()) as unknown[];
    const mine = urls.map((broker) => brokerInfo({ app: { conf: { ...DEFAULTS, broker } } } as unknown as ControlTarget));
    expect(mine.slice(0, -1)).toEqual(py);
    expect(mine.at(-1)).toMatchObject({ transport: 'sqlite', userid: null });
  });
});
