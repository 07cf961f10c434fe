/**
 * Workflows run by pool children (the canvas part of the pool conformance suite): one worker
 * with `-P processes -c 2`, then one with `-P threads -c 2`, on a SQLite broker; children send the
 * callbacks, chord bodies and replacements themselves, with their own connections.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chain, chord, GroupResult, group, TaskError } from '../../src/index.ts';
import { type ChildWorker, startWorkerProcess } from './helpers.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'celeriac-canvas-pools-'));
const broker = `sqlite:///${path.join(dir, 'broker.db')}`;
process.env.CANVAS_TEST_BROKER = broker;
process.env.CANVAS_TEST_DIR = dir;
const t = await import('./app.ts');
const env = { ...process.env, CANVAS_TEST_BROKER: broker, CANVAS_TEST_DIR: dir };
const bodyRuns = () => {
  try {
    return readFileSync(path.join(dir, 'body.log'), 'utf8').split('\n').filter(Boolean).length;
  } catch {
    return 0;
  }
};

afterAll(async () => {
  await t.app.close();
  rmSync(dir, { recursive: true, force: true });
});

for (const pool of ['processes', 'threads']) {
  describe(`workflows on -P ${pool}`, () => {
    let worker: ChildWorker;
    beforeAll(async () => {
      worker = await startWorkerProcess('./test/canvas/app.ts:app', env, ['-P', pool, '-c', '2', '--without-heartbeat', '--without-mingle', '--without-gossip']);
    }, 60_000);
    afterAll(async () => {
      await worker?.stop();
    });

    it('a chord of 200 header tasks run by the children completes once, results in header order', async () => {
      const before = bodyRuns();
      const r = await chord(Array.from({ length: 200 }, (_, i) => t.where.s(i)), t.collect.s()).applyAsync();
      const values = (await r.get({ timeout: 90 })) as { i: number; pid: number }[];
      expect(values.map((v) => v.i)).toEqual(Array.from({ length: 200 }, (_, i) => i));
      if (pool === 'processes') expect(values.map((v) => v.pid)).not.toContain(worker.pid);
      const counted = await chord(Array.from({ length: 50 }, (_, i) => t.add.s(i, 1)), t.countedSum.s()).applyAsync();
      expect(await counted.get({ timeout: 60 })).toBe((49 * 50) / 2 + 50);
      await new Promise((res) => setTimeout(res, 300));
      expect(bodyRuns() - before).toBe(1);
    }, 120_000);

    it('chain, group, and nesting three levels deep', async () => {
      const r1 = await chain(t.add.s(1, 2), t.add.s(3), t.mul.s(4)).applyAsync();
      const r2 = await group(chain(t.add.s(1, 1), t.mul.s(2)), chain(t.add.s(2, 2), t.mul.s(3))).applyAsync();
      const inner = chord([group(chain(t.add.s(1, 1), t.mul.s(2)), chain(t.add.s(2, 2), t.mul.s(3))), t.add.s(5, 5)], t.xsum.s());
      const r3 = await chain(inner, t.mul.s(2)).applyAsync();
      expect(await r1.get({ timeout: 30 })).toBe(24);
      expect(await r2.get({ timeout: 30 })).toEqual([4, 12]);
      expect(r2).toBeInstanceOf(GroupResult);
      expect(await r3.get({ timeout: 30 })).toBe((4 + 12 + 10) * 2);
    }, 60_000);

    it('a failed header task fails the chord with a ChordError', async () => {
      const r = await chord([t.add.s(1, 1), t.fail.s('part')], t.xsum.s()).applyAsync();
      const err = await r.get({ timeout: 30 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TaskError);
      expect((err as TaskError).excType).toBe('ChordError');
    }, 60_000);

    it('addToChord and replace from a child', async () => {
      const header = Array.from({ length: 8 }, (_, i) => (i % 4 === 0 ? t.extend.s(1000 + i, [i, 100 + i]) : t.add.s(i, 0)));
      const values = (await (await chord(header, t.collect.s()).applyAsync()).get({ timeout: 60 })) as number[];
      const expected = [1000, 1, 2, 3, 1004, 5, 6, 7, 0, 100, 4, 104];
      expect([...values].sort((a, b) => a - b)).toEqual(expected.sort((a, b) => a - b));
      expect(await (await t.replaceWithChain.delay(4)).get({ timeout: 30 })).toBe(50);
    }, 60_000);
  });
}
