/**
 * Workflows run by an in-process worker on the memory broker: chain, group, chord, map, starmap,
 * chunks, nesting, errors (chord failure, errbacks, chain failure), replace, parent/children.
 * Chords between worker processes on the SQLite default are in workflows-sqlite.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KeyValueBackend } from '../../src/backend/key-value-backend.ts';
import {
  AsyncResult, chain, chord, type Celery, group, GroupResult, TaskError, type Worker,
} from '../../src/index.ts';
import { dumps } from '../../src/protocol/json.ts';
import { createTestApp, startTestWorker } from '../../src/testing.ts';

let app: Celery;
let worker: Worker;
const errbackCalls: string[] = [];
let bodyRuns = 0;

function tasks(a: Celery) {
  const add = a.task('t.add', (x: number, y: number) => x + y);
  const mul = a.task('t.mul', (x: number, y: number) => x * y);
  const xsum = a.task('t.xsum', (values: number[]) => values.reduce((s, v) => s + v, 0));
  const double = a.task('t.double', (x: number) => 2 * x);
  const fail = a.task('t.fail', (what: unknown) => {
    throw new RangeError(`bad ${String(what)}`);
  });
  const record = a.task('t.record', (failedId: string) => {
    errbackCalls.push(failedId);
    return failedId;
  });
  const countedSum = a.task('t.counted_sum', (values: number[]) => {
    bodyRuns++;
    return values.reduce((s, v) => s + v, 0);
  });
  const spawn = a.task({ name: 't.spawn', bind: true }, async (self, x: number) => {
    const child = await add.delay(x, 1);
    return { child: child.id, parent: self.request.id };
  });
  const replaceWithChain = a.task({ name: 't.replace_chain', bind: true }, (self, x: number) => self.replace(chain(add.s(x, 1), mul.s(10))));
  const replaceWithGroup = a.task({ name: 't.replace_group', bind: true }, (self, x: number) => self.replace(group(add.s(x, 1), add.s(x, 2))));
  return { add, mul, xsum, double, fail, record, countedSum, spawn, replaceWithChain, replaceWithGroup };
}

let t: ReturnType<typeof tasks>;
const TIMEOUT = { timeout: 15 };

beforeAll(async () => {
  app = createTestApp('canvas');
  t = tasks(app);
  worker = await startTestWorker(app, { concurrency: 50 });
});

afterAll(() => worker.shutdown());

describe('chain', () => {
  it('passes each result as the first argument of the next step; the result walks back through parent', async () => {
    const r = await chain(t.add.s(1, 2), t.add.s(3), t.mul.s(4)).applyAsync();
    expect(await r.get(TIMEOUT)).toBe(24);
    expect(await (r.parent as AsyncResult).get(TIMEOUT)).toBe(6);
    expect(await (r.parent!.parent as AsyncResult).get(TIMEOUT)).toBe(3);
    expect(r.parent!.parent!.parent).toBeUndefined();
  });

  it('a.pipe(b).pipe(c) is the same chain; partial args go in front', async () => {
    const r = await t.add.s(1).pipe(t.mul.s(3)).pipe(t.double.s()).applyAsync([2]);
    expect(await r.get(TIMEOUT)).toBe(18);
  });

  it('stores children as Celery does: each step lists the next as [[id, null], null]; parent_id set', async () => {
    const r = await chain(t.add.s(1, 1), t.add.s(1), t.add.s(1)).applyAsync();
    await r.get(TIMEOUT);
    const first = r.parent!.parent as AsyncResult;
    const backend = await app.backend();
    const meta = await backend.getTaskMeta(first.id);
    expect(meta.children).toEqual([[[r.parent!.id, null], null]]);
    const children = await first.children;
    expect(children.map((c) => c.id)).toEqual([r.parent!.id]);
    expect((await backend.getTaskMeta(r.id)).parent_id).toBe(r.parent!.id);
    expect((await backend.getTaskMeta(r.parent!.id)).parent_id).toBe(first.id);
  });

  it('an immutable step ignores the previous result', async () => {
    const r = await chain(t.add.s(1, 1), t.add.si(10, 10)).applyAsync();
    expect(await r.get(TIMEOUT)).toBe(20);
  });

  it('a failing step fails the rest of the chain at once, with its error', async () => {
    const r = await chain(t.add.s(1, 1), t.fail.s(), t.mul.s(2), t.mul.s(3)).applyAsync();
    const err = await r.get(TIMEOUT).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskError);
    expect((err as TaskError).excType).toBe('ValueError');
    expect((err as TaskError).message).toBe('bad 2');
    expect(await (r.parent as AsyncResult).state).toBe('FAILURE');
  });
});

describe('group', () => {
  it('runs the members in parallel; get() gives the results in order', async () => {
    const r = await group([1, 2, 3, 4].map((i) => t.mul.s(i, i))).applyAsync();
    expect(r).toBeInstanceOf(GroupResult);
    expect(await r.get(TIMEOUT)).toEqual([1, 4, 9, 16]);
    expect(await r.completedCount()).toBe(4);
    expect(await r.ready()).toBe(true);
    expect(await r.successful()).toBe(true);
    expect(await r.failed()).toBe(false);
  });

  it('partial args are given to every member', async () => {
    const r = await group(t.add.s(1), t.mul.s(3)).applyAsync([10]);
    expect(await r.join(TIMEOUT)).toEqual([11, 30]);
  });

  it('save() stores Celery’s taskset format; restore() rebuilds it', async () => {
    const r = await group(t.add.s(1, 1), t.add.s(2, 2)).applyAsync();
    await r.get(TIMEOUT);
    await r.save();
    const raw = await ((await app.backend()) as KeyValueBackend).store.get(`celery-taskset-meta-${r.id}`);
    expect(raw).toBe(dumps({ result: [[r.id, null], r.results.map((x) => [[x.id, null], null])] }));
    const back = await GroupResult.restore(app, r.id);
    expect(back?.results.map((x) => x.id)).toEqual(r.results.map((x) => x.id));
    expect(await back!.get(TIMEOUT)).toEqual([2, 4]);
    await r.delete();
    expect(await GroupResult.restore(app, r.id)).toBeNull();
  });

  it('a failed member: failed() and get() throws; get({ propagate: false }) gives the error', async () => {
    const r = await group(t.add.s(1, 1), t.fail.s('x')).applyAsync();
    await expect(r.get(TIMEOUT)).rejects.toThrow('bad x');
    expect(await r.failed()).toBe(true);
    expect(await r.successful()).toBe(false);
    const values = await r.get({ ...TIMEOUT, propagate: false });
    expect(values[0]).toBe(2);
    expect(values[1]).toMatchObject({ exc_type: 'ValueError', exc_message: ['bad x'] });
  });

  it('a task sending a group lists it in its children ([[gid, null], [members]])', async () => {
    const fanout = app.task({ name: 't.fanout', bind: true }, async (_self, n: number) => {
      const g = await group(Array.from({ length: n }, (_, i) => t.add.s(i, i))).applyAsync();
      return g.id;
    });
    const r = await fanout.delay(3);
    const gid = await r.get(TIMEOUT);
    const [child] = await r.children;
    expect(child).toBeInstanceOf(GroupResult);
    expect(child!.id).toBe(gid);
    expect(await (child as GroupResult).get(TIMEOUT)).toEqual([0, 2, 4]);
  });
});

describe('chord', () => {
  it('calls the body with the header results in header order', async () => {
    const r = await chord([5, 1, 3].map((i) => t.mul.s(i, 10)), t.xsum.s()).applyAsync();
    expect(await r.get(TIMEOUT)).toBe(90);
    const header = r.parent as GroupResult;
    expect(await header.get(TIMEOUT)).toEqual([50, 10, 30]);
    const echo = app.task('t.list', (values: number[]) => values);
    const r2 = await chord([5, 1, 3].map((i) => t.mul.s(i, 10)), echo.s()).applyAsync();
    expect(await r2.get(TIMEOUT)).toEqual([50, 10, 30]);
  });

  it('deletes the bookkeeping keys once the body is sent', async () => {
    const r = await chord([t.add.s(1, 1), t.add.s(2, 2)], t.xsum.s()).applyAsync();
    await r.get(TIMEOUT);
    const gid = (r.parent as GroupResult).id;
    const store = ((await app.backend()) as KeyValueBackend).store;
    const keys = ['.s', '.c', '.j.0', '.j.1'].map((suffix) => `celery-taskset-meta-${gid}${suffix}`);
    // The body is sent first and the keys deleted after it: its result may be visible a moment before.
    const left = async () => (await store.mget(keys)).filter((v) => v !== null);
    for (let i = 0; i < 100 && (await left()).length > 0; i++) await new Promise((res) => setTimeout(res, 20));
    expect(await left()).toEqual([]);
  });

  it('an empty header runs the body with []', async () => {
    const r = await chord([], t.xsum.s()).applyAsync();
    expect(await r.get(TIMEOUT)).toBe(0);
  });

  it('a chord of 1,000 header tasks completes once and only once', async () => {
    bodyRuns = 0;
    const r = await chord(Array.from({ length: 1000 }, (_, i) => t.add.s(i, 1)), t.countedSum.s()).applyAsync();
    expect(await r.get({ timeout: 60 })).toBe((999 * 1000) / 2 + 1000);
    await new Promise((res) => setTimeout(res, 200));
    expect(bodyRuns).toBe(1);
  });

  it('a failed header task fails the chord: body FAILURE with ChordError, its errbacks get the body id', async () => {
    errbackCalls.length = 0;
    const body = t.xsum.s().onError(t.record.s());
    const r = await chord([t.add.s(1, 1), t.fail.s('header')], body).applyAsync();
    const err = await r.get(TIMEOUT).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskError);
    expect((err as TaskError).excType).toBe('ChordError');
    expect((err as TaskError).excModule).toBe('celery.exceptions');
    const failed = (r.parent as GroupResult).results[1]!.id;
    expect((err as TaskError).message).toBe(`Dependency ${failed} raised ValueError('bad header')`);
    await waitFor(() => errbackCalls.includes(r.id));
  });
});

describe('map, starmap, chunks', () => {
  it('map calls the task on each item in one message', async () => {
    expect(await (await t.double.map([1, 2, 3]).applyAsync()).get(TIMEOUT)).toEqual([2, 4, 6]);
  });

  it('starmap spreads each item as the arguments', async () => {
    expect(await (await t.add.starmap([[1, 2], [3, 4]]).delay()).get(TIMEOUT)).toEqual([3, 7]);
  });

  it('chunks is a group of starmaps over n items each', async () => {
    const r = await t.add.chunks([[1, 1], [2, 2], [3, 3]], 2).applyAsync();
    expect(r).toBeInstanceOf(GroupResult);
    expect(await r.get(TIMEOUT)).toEqual([[2, 4], [6]]);
  });

  it('a map can be a chain step and a chord header member', async () => {
    expect(await (await chain(t.double.map([1, 2]), t.xsum.s()).applyAsync()).get(TIMEOUT)).toBe(6);
    const list = app.task('t.list2', (values: unknown[]) => values);
    expect(await (await chord([t.double.map([1, 2]), t.add.s(1, 1)], list.s()).applyAsync()).get(TIMEOUT)).toEqual([[2, 4], 2]);
  });
});

describe('nesting', () => {
  it('a group followed by a task in a chain becomes a chord', async () => {
    const r = await chain(t.add.s(1, 1), group(t.add.s(1), t.add.s(2)), t.xsum.s()).applyAsync();
    expect(await r.get(TIMEOUT)).toBe(7);
  });

  it('a chord in a chain, with a step after it', async () => {
    const r = await chain(t.add.s(1, 1), chord([t.add.s(1), t.add.s(2)], t.xsum.s()), t.mul.s(10)).applyAsync();
    expect(await r.get(TIMEOUT)).toBe(70);
  });

  it('a group of chains', async () => {
    const r = await group(chain(t.add.s(1, 1), t.mul.s(2)), chain(t.add.s(2, 2), t.mul.s(3))).applyAsync();
    expect(await r.get(TIMEOUT)).toEqual([4, 12]);
  });

  it('a chain ending with a group gives the group’s results', async () => {
    const r = await chain(t.add.s(1, 1), group(t.add.s(1), t.mul.s(3))).applyAsync();
    expect(await (r as unknown as GroupResult).get(TIMEOUT)).toEqual([3, 6]);
  });

  it('a chord whose body is a chain', async () => {
    const r = await chord([t.add.s(1, 1), t.add.s(2, 2)], chain(t.xsum.s(), t.mul.s(2))).applyAsync();
    expect(await r.get(TIMEOUT)).toBe(12);
  });

  it('three levels: a chain in a group in a chord header, the chord in a chain', async () => {
    const inner = chord([group(chain(t.add.s(1, 1), t.mul.s(2)), chain(t.add.s(2, 2), t.mul.s(3))), t.add.s(5, 5)], t.xsum.s());
    const r = await chain(inner, t.double.s(), t.add.s(1)).applyAsync();
    expect(await r.get(TIMEOUT)).toBe((4 + 12 + 10) * 2 + 1);
  });

  it('three levels: a chord in a chord header', async () => {
    const r = await chord([chord([t.add.s(1, 1), t.add.s(2, 2)], t.xsum.s()), t.add.s(10, 10)], t.xsum.s()).applyAsync();
    expect(await r.get(TIMEOUT)).toBe(26);
  });

  it('a failing chain in a chord header still completes the chord (with a ChordError)', async () => {
    const r = await chord([chain(t.add.s(1, 1), t.fail.s(), t.mul.s(2)), t.add.s(1, 1)], t.xsum.s()).applyAsync();
    const err = await r.get(TIMEOUT).catch((e: unknown) => e);
    expect((err as TaskError).excType).toBe('ChordError');
  });
});

describe('callbacks and errbacks', () => {
  it('several link callbacks all get the result', async () => {
    const s = t.add.s(2, 3);
    const a = s.link(t.mul.s(10).set({ taskId: `cb-a-${Date.now()}` }));
    const b = s.link(t.double.s().set({ taskId: `cb-b-${Date.now()}` }));
    await s.delay();
    expect(await app.AsyncResult(a.id!).get(TIMEOUT)).toBe(50);
    expect(await app.AsyncResult(b.id!).get(TIMEOUT)).toBe(10);
  });

  it('link_error errbacks get the failed task id', async () => {
    errbackCalls.length = 0;
    const r = await t.fail.s('e').onError(t.record.s()).delay();
    await expect(r.get(TIMEOUT)).rejects.toThrow('bad e');
    await waitFor(() => errbackCalls.includes(r.id));
  });

  it('an errback task taking (request, error, traceback) is called in the worker', async () => {
    const seen: unknown[] = [];
    app.task('t.inline_errback', (request: { id: string }, error: Error, traceback: string) => {
      seen.push([request.id, error.message, typeof traceback]);
    });
    const r = await t.fail.s('inline').onError(app.getTask('t.inline_errback').s()).delay();
    await r.get(TIMEOUT).catch(() => undefined);
    await waitFor(() => seen.length > 0);
    expect(seen[0]).toEqual([r.id, 'bad inline', 'string']);
  });
});

describe('replace', () => {
  it('the replacement’s result is the original task’s', async () => {
    const r = await t.replaceWithChain.delay(5);
    expect(await r.get(TIMEOUT)).toBe(60);
  });

  it('inherits the rest of the chain', async () => {
    const r = await chain(t.replaceWithChain.s(5), t.add.s(1)).applyAsync();
    expect(await r.get(TIMEOUT)).toBe(61);
  });

  it('with a group: the original result is the list of results', async () => {
    expect(await (await t.replaceWithGroup.delay(1)).get(TIMEOUT)).toEqual([2, 3]);
  });

  it('inside a chord header, the chord still completes with the replacement’s result', async () => {
    const r = await chord([t.replaceWithChain.s(1), t.add.s(1, 1)], t.xsum.s()).applyAsync();
    expect(await r.get(TIMEOUT)).toBe(22);
  });

  it('inherits link callbacks', async () => {
    const s = t.replaceWithChain.s(2);
    const cb = s.link(t.add.s(1).set({ taskId: `cb-r-${Date.now()}` }));
    await s.delay();
    expect(await app.AsyncResult(cb.id!).get(TIMEOUT)).toBe(31);
  });
});

describe('task_always_eager', () => {
  it('runs chains, groups and chords in this process', async () => {
    const eager = createTestApp('eager', { taskAlwaysEager: true });
    const e = tasks(eager);
    expect(await (await chain(e.add.s(1, 2), e.mul.s(10)).applyAsync()).get()).toBe(30);
    expect(await (await group(e.add.s(1, 1), e.add.s(2, 2)).applyAsync()).get()).toEqual([2, 4]);
    expect(await (await chord([e.add.s(1, 1), e.add.s(2, 2)], e.xsum.s()).applyAsync()).get()).toBe(6);
    await eager.close();
  });
});

describe('lineage', () => {
  it('a task sent from a task has it as parent and the caller’s root; the caller lists it as a child', async () => {
    const r = await t.spawn.delay(1);
    const { child, parent } = await r.get(TIMEOUT);
    expect(parent).toBe(r.id);
    const meta = await (await app.backend()).getTaskMeta(r.id);
    expect(meta.children).toEqual([[[child, null], null]]);
    expect(await app.AsyncResult(child).get(TIMEOUT)).toBe(2);
    expect((await (await app.backend()).getTaskMeta(child)).parent_id).toBe(r.id);
  });
});

async function waitFor(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
