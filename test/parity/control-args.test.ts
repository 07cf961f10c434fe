/**
 * Remote-control arguments are bounded and parsed in linear time: a 160 KB rate limit (which took
 * a quadratic regex 12 s) gets an error reply, as from a Python worker, and the worker answers
 * the next ping. Node patterns are matched as fnmatch does, without exponential backtracking.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Celery } from '../../src/index.ts';
import { parseRate } from '../../src/common/rate.ts';
import { addressedTo } from '../../src/control/pidbox.ts';
import { PYTHON } from '../helpers/python-worker.ts';
import { type Parity, startBroker, startCeleriac, startPython, type Worker } from './helpers.ts';

const NODES = ['ts@args', 'py@args'];

describe('control arguments, on a Python and on a celeriac worker', () => {
  let p: Parity;
  let ts: Worker;
  let py: Worker;
  let client: Celery;
  beforeAll(async () => {
    p = await startBroker();
    [ts, py] = await Promise.all([startCeleriac(p, NODES[0]!, 'tsq'), startPython(p, NODES[1]!, 'pyq')]);
    client = new Celery('args-client', { broker: p.broker });
  }, 60_000);
  afterAll(async () => {
    await client?.close();
    await Promise.all([ts?.stop(), py?.stop()]);
    await p?.stop();
  });

  const both = async (method: string, args: Record<string, unknown>) =>
    Object.assign({}, ...(await client.control.broadcast(method, args, { destination: NODES, timeout: 10 }))) as Record<string, Record<string, unknown>>;

  it('a 160 KB rate limit is answered with an error by both, and the next ping is answered', async () => {
    const huge = '1' + ' '.repeat(160 * 1024) + 'x';
    const replies = await both('rate_limit', { task_name: 'parity.sleep', rate_limit: huge });
    expect(Object.keys(replies).sort()).toEqual([...NODES].sort());
    for (const node of NODES) expect(replies[node]).toHaveProperty('error');
    expect(replies['ts@args']!.error).toMatch(/argument rate_limit has a string of \d+ characters/);
    expect(await both('ping', {})).toEqual({ 'ts@args': { ok: 'pong' }, 'py@args': { ok: 'pong' } });
  });

  it('a rate that is not one is refused as Celery refuses it, one over 64 characters too; a good one is set', async () => {
    for (const rate of ['5/fortnight', 'fast', '1 x']) {
      const replies = await both('rate_limit', { task_name: 'parity.sleep', rate_limit: rate });
      for (const node of NODES) expect(replies[node], `${node} ${rate}`).toHaveProperty('error');
    }
    // Python takes any float; celeriac bounds the string first.
    expect((await both('rate_limit', { task_name: 'parity.sleep', rate_limit: '1'.repeat(65) }))['ts@args']!.error).toMatch(/65 characters \(at most 64\)/);
    expect(await both('rate_limit', { task_name: 'parity.sleep', rate_limit: '10/m' })).toEqual({
      'ts@args': { ok: 'new rate limit set successfully' }, 'py@args': { ok: 'new rate limit set successfully' },
    });
  });

  it('a command body over 1 MiB gets an error reply, then pings are answered again', async () => {
    const ids = Array.from({ length: 30_000 }, (_, i) => `00000000-0000-0000-0000-${String(i).padStart(12, '0')}`);
    const replies = await both('query_task', { ids });
    expect(replies['ts@args']!.error).toMatch(/bytes refused: at most 1048576 bytes/);
    expect((await both('ping', {}))['ts@args']).toEqual({ ok: 'pong' });
  });
});

describe('bounded parsing', () => {
  it('parseRate: Celery values, length bounded', () => {
    expect([parseRate('10'), parseRate('10/s'), parseRate(' 120/m'), parseRate('3600/h'), parseRate('0.5/s'), parseRate(0)]).toEqual([10, 10, 2, 1, 0.5, 0]);
    expect(() => parseRate('1'.repeat(65))).toThrow(/65 characters \(at most 64\)/);
    expect(() => parseRate('1' + ' '.repeat(50) + 'x')).toThrow(/Invalid rate limit string/);
  });

  it("node patterns match as Python's fnmatch, and a pathological one ends", () => {
    const cases: [string, string][] = [
      ['celery@*', 'celery@host'], ['*@host', 'w1@host'], ['w?@h*', 'w1@host'], ['w[0-9]@*', 'w7@x'], ['w[!0-9]@*', 'w7@x'],
      ['w[!0-9]@*', 'wa@x'], ['*a*b', 'xaxb'], ['*a*b', 'xaxbc'], ['', 'x'], ['a.b', 'a.b'], ['a.b', 'axb'], ['***', ''],
      ['*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b', 'a'.repeat(200)],
    ];
    const py = JSON.parse(execFileSync(PYTHON, ['-c', 'import json,sys,fnmatch; print(json.dumps([fnmatch.fnmatchcase(h, p) for p, h in json.loads(sys.argv[1])]))', JSON.stringify(cases)]).toString()) as boolean[];
    const mine = cases.map(([pattern, host]) => (pattern === '' ? false : addressedTo({ method: 'ping', arguments: {}, destination: null, pattern, matcher: 'glob' }, host)));
    expect(mine).toEqual(py.map((v, i) => (cases[i]![0] === '' ? false : v)));
  });
});
