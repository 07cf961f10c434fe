/**
 * `self.addToChord(sig)` (Celery's `Task.add_to_chord`) with an in-process worker on the memory
 * broker (the generic chord join over the key-value store): the added task joins the chord, the
 * body waits for it and gets its result. On Redis, and between Python and celeriac, see
 * interop.test.ts; between worker processes on SQLite, workflows-processes.test.ts.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KeyValueBackend } from '../../src/backend/key-value-backend.ts';
import { type AnySignature, chord, group, GroupResult, TaskError, type Worker } from '../../src/index.ts';
import { createTestApp, startTestWorker } from '../../src/testing.ts';

const app = createTestApp('add-to-chord');
const add = app.task('atc.add', (x: number, y: number) => x + y);
const collect = app.task('atc.collect', (values: unknown[]) => values);
let bodyRuns = 0;
const countedCollect = app.task('atc.counted_collect', (values: unknown[]) => {
  bodyRuns++;
  return values;
});
const slow = app.task('atc.slow', async (x: number, ms: number) => {
  await sleep(ms);
  return x;
});
/** Adds `slow(v, ms)` to its chord for each v; returns its own value and the added task ids. */
const extend = app.task({ name: 'atc.extend', bind: true }, async (self, own: number, values: number[], ms: number) => {
  const ids: string[] = [];
  for (const v of values) ids.push((await self.addToChord(slow.s(v, ms))).id);
  return { own, ids, group: self.request.group, index: self.request.groupIndex, root: self.request.rootId };
});
// The added task shares the adding task's group_index and the first of the two to finish keeps
// it: the added one is slow, so the adding task's value comes first.
const lazyExtend = app.task({ name: 'atc.lazy_extend', bind: true }, async (self, v: number) => {
  const sig: AnySignature = await self.addToChord(slow.s(v, 200), true);
  await sleep(100);
  await sig.delay();
  return 'lazy';
});
const notInChord = app.task({ name: 'atc.not_in_chord', bind: true }, async (self) => {
  await self.addToChord(add.s(1, 1));
  return 'unreachable';
});

let worker: Worker;
const TIMEOUT = { timeout: 15 };

beforeAll(async () => {
  worker = await startTestWorker(app, { concurrency: 20 });
});

afterAll(() => worker.shutdown());

type Extended = { own: number; ids: string[]; group: string; index: number; root: string };

describe('addToChord', () => {
  it('the body waits for the added task and gets its result after the header parts', async () => {
    const before = bodyRuns;
    const r = await chord([add.s(1, 1), extend.s(5, [100], 300), add.s(2, 2)], countedCollect.s()).applyAsync();
    const values = (await r.get(TIMEOUT)) as unknown[];
    expect(values).toHaveLength(4);
    const ext = values[1] as Extended;
    expect(ext.own).toBe(5);
    expect([values[0], values[2], values[3]]).toEqual([2, 4, 100]);
    await sleep(200);
    expect(bodyRuns - before).toBe(1);
    // The added task is a part of the chord: same group, root, and the adding task as parent.
    const gid = (r.parent as GroupResult).id;
    expect(ext.group).toBe(gid);
    const meta = await (await app.backend()).getTaskMeta(ext.ids[0]!);
    expect(meta).toMatchObject({ status: 'SUCCESS', result: 100, group_id: gid, parent_id: (r.parent as GroupResult).results[1]!.id });
    // The chord's bookkeeping is gone, the added counter included.
    const store = ((await app.backend()) as KeyValueBackend).store;
    for (const suffix of ['.s', '.t', '.c', '.n', '.x.1', '.j.0', '.j.1', '.j.2', '.j.1000000000']) expect(await store.get(`celery-taskset-meta-${gid}${suffix}`)).toBeNull();
  });

  it('several added tasks, from several parts, all finishing before or after the adding ones', async () => {
    const r = await chord([extend.s(1, [10, 11], 0), add.s(2, 2), extend.s(3, [30, 31, 32], 200)], collect.s()).applyAsync();
    const values = (await r.get(TIMEOUT)) as unknown[];
    expect(values).toHaveLength(8);
    const nums = values.map((v) => (typeof v === 'number' ? v : (v as Extended).own)).sort((a, b) => a - b);
    expect(nums).toEqual([1, 3, 4, 10, 11, 30, 31, 32]);
    // Header parts keep their places; what was added comes after them.
    expect(values[1]).toBe(4);
  });

  it('lazy: the signature is prepared and counted, the task sends it itself', async () => {
    const r = await chord([add.s(1, 1), lazyExtend.s(7)], collect.s()).applyAsync();
    expect(await r.get(TIMEOUT)).toEqual([2, 'lazy', 7]);
  });

  it('a task that is not a chord part cannot add to a chord (a plain group member neither)', async () => {
    const err = await (await notInChord.delay()).get(TIMEOUT).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskError);
    expect((err as TaskError).message).toBe('Current task is not member of any chord');
    const g = await group(notInChord.s(), add.s(1, 1)).applyAsync();
    expect(await g.get({ ...TIMEOUT, propagate: false })).toMatchObject([{ exc_message: ['Current task is not member of any chord'] }, 2]);
  });
});
