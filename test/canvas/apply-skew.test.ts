/**
 * `apply()` on signatures, chains, groups, chords and chunks (Celery's eager `apply`: run in this
 * process, no worker, nothing sent), and `group.skew()` (countdowns as Celery's, checked against
 * Python's own `group.skew`).
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  chain, chord, EagerResult, group, GroupResult, signature, TaskError,
} from '../../src/index.ts';
import { createTestApp } from '../../src/testing.ts';
import { drain, PYTHON } from './helpers.ts';

const app = createTestApp('apply-skew');
const add = app.task('a.add', (x: number, y: number) => x + y);
const mul = app.task('a.mul', (x: number, y: number) => x * y);
const xsum = app.task('a.xsum', (values: number[]) => values.reduce((s, v) => s + v, 0));
const collect = app.task('a.collect', (values: unknown[]) => values);
const fail = app.task('a.fail', (what: unknown) => {
  throw new RangeError(`bad ${String(what)}`);
});
const whoAmI = app.task({ name: 'a.who', bind: true }, (self) => ({ id: self.request.id, eager: self.request.isEager }));

describe('Signature.apply', () => {
  it('runs the task in this process and returns an EagerResult; nothing is sent', async () => {
    const r = await add.s(2, 3).apply();
    expect(r).toBeInstanceOf(EagerResult);
    expect(await r.get()).toBe(5);
    expect(await r.state).toBe('SUCCESS');
    expect(await drain(app)).toEqual([]);
  });

  it('prepends partial args, merges kwargs, and an immutable signature ignores them', async () => {
    expect(await (await add.s(3).apply([4])).get()).toBe(7);
    expect(await (await add.si(1, 1).apply([100])).get()).toBe(2);
    const kw = app.task('a.kw', (x: number, kwargs?: { y?: number }) => x + (kwargs?.y ?? 0));
    expect(await (await kw.signature([1], { y: 2 }).apply([], { y: 5 })).get()).toBe(6);
  });

  it('keeps a frozen id, or the taskId option; the task sees an eager request', async () => {
    const sig = whoAmI.s();
    const frozen = sig.freeze();
    const r = await sig.apply();
    expect(r.id).toBe(frozen.id);
    expect(await r.get()).toEqual({ id: frozen.id, eager: true });
    expect((await whoAmI.s().apply([], {}, { taskId: 'my-id' })).id).toBe('my-id');
  });

  it('stores a failure in the result, or throws it with throw: true', async () => {
    const r = await fail.s('x').apply();
    expect(await r.state).toBe('FAILURE');
    const err = await r.get().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskError);
    expect((err as TaskError).excType).toBe('ValueError');
    await expect(fail.s('y').apply([], {}, { throw: true })).rejects.toThrow(RangeError);
  });

  it('applies link callbacks as a worker does: sent with the result (the app is not eager)', async () => {
    const sig = add.s(1, 2);
    sig.link(mul.s(10));
    const r = await sig.apply();
    expect(await r.get()).toBe(3);
    const sent = await drain(app);
    expect(sent.map((m) => [m.request.name, m.request.args, m.request.parentId])).toEqual([['a.mul', [3, 10], r.id]]);
  });

  it('a task not registered in this app cannot be applied', async () => {
    await expect(signature('nowhere.task', [], {}, {}, app).apply()).rejects.toThrow(/nowhere\.task/);
  });
});

describe('chain.apply', () => {
  it('feeds each result to the next step; the result walks back through parent', async () => {
    const r = await chain(add.s(2, 2), mul.s(10), add.s(1)).apply();
    expect(r).toBeInstanceOf(EagerResult);
    expect(await r.get()).toBe(41);
    expect(await (r.parent as EagerResult).get()).toBe(40);
    expect(await (r.parent!.parent as EagerResult).get()).toBe(4);
    expect(await drain(app)).toEqual([]);
  });

  it('takes partial args for its first step; a group followed by a task runs as a chord', async () => {
    expect(await (await chain(add.s(1), mul.s(3)).apply([1])).get()).toBe(6);
    const r = await chain(add.s(1, 1), group(add.s(1), add.s(2)), xsum.s()).apply();
    expect(await r.get()).toBe(3 + 4);
    const r2 = await add.s(1, 1).pipe(group(mul.s(2), mul.s(3))).apply();
    expect(r2).toBeInstanceOf(GroupResult);
    expect(await r2.get()).toEqual([4, 6]);
  });

  it('a failed step stops the chain (its error is thrown, as Celery\'s last.get())', async () => {
    await expect(chain(add.s(1, 1), fail.s(), add.s(1)).apply()).rejects.toThrow(TaskError);
  });
});

describe('group.apply', () => {
  it('returns a GroupResult of EagerResults, in order, under the group id', async () => {
    const g = group(add.s(1, 1), add.s(2, 2), chain(add.s(1, 2), mul.s(2)));
    const r = await g.apply();
    expect(r).toBeInstanceOf(GroupResult);
    expect(r.results).toHaveLength(3);
    for (const x of r.results) expect(x).toBeInstanceOf(EagerResult);
    expect(await r.get()).toEqual([2, 4, 6]);
    expect(await r.successful()).toBe(true);
    expect(new Set(r.results.map((x) => x.id)).size).toBe(3);
    expect(await drain(app)).toEqual([]);
  });

  it('partial args go to every member; nested groups are flattened; frozen ids are kept', async () => {
    const g = group(add.s(1), group(add.s(2), mul.s(3)));
    const frozen = g.freeze();
    const r = await g.apply([10]);
    expect(await r.get()).toEqual([11, 12, 30]);
    expect(r.id).toBe(frozen.id);
    expect(r.results.map((x) => x.id)).toEqual(frozen.results.map((x) => x.id));
  });

  it('a failed member is a FAILURE result, the others still run', async () => {
    const r = await group(add.s(1, 1), fail.s('g'), add.s(2, 2)).apply();
    expect(await r.get({ propagate: false })).toMatchObject([2, { exc_type: 'ValueError' }, 4]);
    expect(await r.failed()).toBe(true);
  });
});

describe('chord.apply', () => {
  it('applies the header, then the body with the header results in order', async () => {
    const r = await chord([add.s(1, 1), add.s(2, 2), mul.s(3, 3)], collect.s()).apply();
    expect(await r.get()).toEqual([2, 4, 9]);
    expect(r.parent).toBeInstanceOf(GroupResult);
    expect(await (r.parent as GroupResult).get()).toEqual([2, 4, 9]);
    expect(await drain(app)).toEqual([]);
  });

  it('a chord with a chain body, and a group piped into a task', async () => {
    const r = await chord([add.s(1, 1), add.s(2, 2)], chain(xsum.s(), mul.s(10))).apply();
    expect(await r.get()).toBe(60);
    expect(await (await group(add.s(5, 5), add.s(1, 1)).pipe(xsum.s()).apply()).get()).toBe(12);
  });

  it('a failed header part throws, or with propagate: false reaches the body', async () => {
    await expect(chord([add.s(1, 1), fail.s('c')], collect.s()).apply()).rejects.toThrow(TaskError);
    const r = await chord([add.s(1, 1), fail.s('c')], collect.s()).apply([], {}, { propagate: false });
    expect(await r.get()).toMatchObject([2, { exc_type: 'ValueError' }]);
  });
});

describe('map, starmap and chunks apply', () => {
  it('run in this process', async () => {
    expect(await (await add.starmap([[1, 2], [3, 4]]).apply()).get()).toEqual([3, 7]);
    const double = app.task('a.double', (x: number) => 2 * x);
    expect(await (await double.map([1, 2, 3]).apply()).get()).toEqual([2, 4, 6]);
    const r = await add.chunks([[1, 1], [2, 2], [3, 3]], 2).apply();
    expect(r).toBeInstanceOf(GroupResult);
    expect(await r.get()).toEqual([[2, 4], [6]]);
    expect(await drain(app)).toEqual([]);
  });
});

describe('group.skew', () => {
  const countdowns = (g: { tasks: { options: Record<string, unknown> }[] }) => g.tasks.map((t) => t.options.countdown);

  it('sets increasing countdowns and returns the group', () => {
    const g = group(Array.from({ length: 4 }, (_, i) => add.s(i, i)));
    expect(g.skew()).toBe(g);
    expect(countdowns(g)).toEqual([1, 2, 3, 4]);
    expect(countdowns(group(Array.from({ length: 5 }, () => add.s(1, 1))).skew(1, 3))).toEqual([1, 2, 3, 3, 3]);
    expect(countdowns(group(Array.from({ length: 4 }, () => add.s(1, 1))).skew(0, null, 0.5))).toEqual([0, 0.5, 1, 1.5]);
  });

  it('gives the same countdowns as Python Celery\'s group.skew', () => {
    const cases: [number, number | null, number, number][] = [[1, null, 1, 4], [1, 3, 1, 5], [0, null, 0.5, 4], [2, 5, 1.5, 6], [1, 0, 2, 3], [10, 4, 1, 3]];
    const code = 'import json, sys\nfrom celery import group, signature\nout = []\n' +
      'for start, stop, step, n in json.loads(sys.argv[1]):\n' +
      '    g = group([signature("a.add", (i, i)) for i in range(n)]).skew(start=start, stop=stop, step=step)\n' +
      '    out.append([t.options["countdown"] for t in g.tasks])\n' +
      'print(json.dumps(out))';
    const py = JSON.parse(execFileSync(PYTHON, ['-c', code, JSON.stringify(cases)], { encoding: 'utf8', timeout: 60_000 })) as number[][];
    const ours = cases.map(([start, stop, step, n]) => countdowns(group(Array.from({ length: n }, (_, i) => add.s(i, i))).skew(start, stop, step)));
    expect(ours).toEqual(py);
  });

  it('the members are sent with the countdowns as their ETAs', async () => {
    const before = Date.now();
    await group(add.s(1, 1), add.s(2, 2), add.s(3, 3)).skew(10, null, 5).applyAsync();
    const sent = await drain(app);
    expect(sent).toHaveLength(3);
    const delays = sent.map((m) => (m.request.eta!.getTime() - before) / 1000);
    expect(delays.map((d) => Math.round(d))).toEqual([10, 15, 20]);
  });
});
