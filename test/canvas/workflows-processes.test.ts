/**
 * Workflows on the SQLite default between processes: two celeriac worker processes share one
 * broker/result file; this process only sends. Chord parts recorded by different processes must
 * complete each chord once and only once.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chord } from '../../src/index.ts';
import { type ChildWorker, startWorkerProcess } from './helpers.ts';
import { sharedWorkflowCases } from './workflow-cases.ts';

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

  it('addToChord between processes: every added task is counted once, the body gets all results', async () => {
    const header = Array.from({ length: 20 }, (_, i) => (i % 4 === 0 ? t.extend.s(1000 + i, [i, 100 + i]) : t.add.s(i, 0)));
    const r = await chord(header, t.collect.s()).applyAsync();
    const values = (await r.get({ timeout: 60 })) as number[];
    const added = [0, 4, 8, 12, 16].flatMap((i) => [i, 100 + i]);
    const own = Array.from({ length: 20 }, (_, i) => (i % 4 === 0 ? 1000 + i : i));
    expect([...values].sort((a, b) => a - b)).toEqual([...own, ...added].sort((a, b) => a - b));
  });

  sharedWorkflowCases(t);
});
