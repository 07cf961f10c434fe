/**
 * Workflows run by pool children (the canvas part of the pool conformance suite): one worker
 * with `-P processes -c 2`, then one with `-P threads -c 2`, on a SQLite broker; children send the
 * callbacks, chord bodies and replacements themselves, with their own connections.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chord } from '../../src/index.ts';
import { type ChildWorker, startWorkerProcess } from './helpers.ts';
import { sharedWorkflowCases } from './workflow-cases.ts';

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

    sharedWorkflowCases(t);

    it('addToChord from a child', async () => {
      const header = Array.from({ length: 8 }, (_, i) => (i % 4 === 0 ? t.extend.s(1000 + i, [i, 100 + i]) : t.add.s(i, 0)));
      const values = (await (await chord(header, t.collect.s()).applyAsync()).get({ timeout: 60 })) as number[];
      const expected = [1000, 1, 2, 3, 1004, 5, 6, 7, 0, 100, 4, 104];
      expect([...values].sort((a, b) => a - b)).toEqual(expected.sort((a, b) => a - b));
    }, 60_000);
  });
}
