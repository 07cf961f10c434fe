/**
 * Workflows on the SQLite default between processes: two celeriac worker processes share one
 * broker/result file; this process only sends. Chord parts recorded by different processes must
 * complete each chord once and only once.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chain, chord, GroupResult, group, TaskError } from '../../src/index.ts';
import { type ChildWorker, startWorkerProcess } from './helpers.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'celeriac-canvas-'));
const broker = `sqlite:///${path.join(dir, 'broker.db')}`;
process.env.CANVAS_TEST_BROKER = broker;
process.env.CANVAS_TEST_DIR = dir;
const t = await import('./app.ts');
const env = { ...process.env, CANVAS_TEST_BROKER: broker, CANVAS_TEST_DIR: dir };
const workers: ChildWorker[] = [];
const bodyRuns = () => {
  try {
    return readFileSync(path.join(dir, 'body.log'), 'utf8').split('\n').filter(Boolean).length;
  } catch {
    return 0;
  }
};

beforeAll(async () => {
  const args = ['-c', '10', '--prefetch-multiplier', '1', '--without-heartbeat', '--without-mingle', '--without-gossip'];
  workers.push(...(await Promise.all([startWorkerProcess('./test/canvas/app.ts:app', env, args), startWorkerProcess('./test/canvas/app.ts:app', env, args)])));
}, 60_000);

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await t.app.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('chords between worker processes (SQLite)', () => {
  it('header tasks run in both processes; the body gets their results in header order', async () => {
    const r = await chord(Array.from({ length: 100 }, (_, i) => t.where.s(i)), t.collect.s()).applyAsync();
    const values = (await r.get({ timeout: 60 })) as { i: number; pid: number }[];
    expect(values.map((v) => v.i)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(new Set(values.map((v) => v.pid))).toEqual(new Set(workers.map((w) => w.pid)));
  });

  it('a chord of 1,000 header tasks completes once and only once', async () => {
    const before = bodyRuns();
    const r = await chord(Array.from({ length: 1000 }, (_, i) => t.add.s(i, 1)), t.countedSum.s()).applyAsync();
    expect(await r.get({ timeout: 120 })).toBe((999 * 1000) / 2 + 1000);
    await new Promise((res) => setTimeout(res, 500));
    expect(bodyRuns() - before).toBe(1);
  }, 180_000);

  it('chain, group, and nesting three levels deep', async () => {
    const r1 = await chain(t.add.s(1, 2), t.add.s(3), t.mul.s(4)).applyAsync();
    const r2 = await group(chain(t.add.s(1, 1), t.mul.s(2)), chain(t.add.s(2, 2), t.mul.s(3))).applyAsync();
    const inner = chord([group(chain(t.add.s(1, 1), t.mul.s(2)), chain(t.add.s(2, 2), t.mul.s(3))), t.add.s(5, 5)], t.xsum.s());
    const r3 = await chain(inner, t.mul.s(2)).applyAsync();
    expect(await r1.get({ timeout: 30 })).toBe(24);
    expect(await r2.get({ timeout: 30 })).toEqual([4, 12]);
    expect(r2).toBeInstanceOf(GroupResult);
    expect(await r3.get({ timeout: 30 })).toBe((4 + 12 + 10) * 2);
  });

  it('a failed header task fails the chord with a ChordError', async () => {
    const r = await chord([t.add.s(1, 1), t.fail.s('part')], t.xsum.s()).applyAsync();
    const err = await r.get({ timeout: 30 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskError);
    expect((err as TaskError).excType).toBe('ChordError');
  });

  it('addToChord between processes: every added task is counted once, the body gets all results', async () => {
    const header = Array.from({ length: 20 }, (_, i) => (i % 4 === 0 ? t.extend.s(1000 + i, [i, 100 + i]) : t.add.s(i, 0)));
    const r = await chord(header, t.collect.s()).applyAsync();
    const values = (await r.get({ timeout: 60 })) as number[];
    const added = [0, 4, 8, 12, 16].flatMap((i) => [i, 100 + i]);
    const own = Array.from({ length: 20 }, (_, i) => (i % 4 === 0 ? 1000 + i : i));
    expect([...values].sort((a, b) => a - b)).toEqual([...own, ...added].sort((a, b) => a - b));
  });

  it('replace in another process: the original id gets the replacement’s result', async () => {
    expect(await (await t.replaceWithChain.delay(4)).get({ timeout: 30 })).toBe(50);
  });
});
