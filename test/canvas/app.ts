/**
 * Task module for test/canvas/workflows-processes.test.ts, loaded by worker child processes
 * (`celeriac -A ./test/canvas/app.ts:app worker`) and by the test process, which sends.
 * CANVAS_TEST_BROKER: the SQLite broker URL (results in the same file); CANVAS_TEST_DIR: a folder
 * where chord bodies append one line per run (to count runs across processes).
 */
import { appendFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Celery, chain } from '../../src/index.ts';

const broker = process.env.CANVAS_TEST_BROKER;
if (!broker) throw new Error('test/canvas/app.ts: set CANVAS_TEST_BROKER to a SQLite broker URL');

export const app = new Celery('canvas-it', { broker });

export const add = app.task('c.add', (x: number, y: number) => x + y);
export const mul = app.task('c.mul', (x: number, y: number) => x * y);
export const xsum = app.task('c.xsum', (values: number[]) => values.reduce((s, v) => s + v, 0));
export const fail = app.task('c.fail', (what: unknown) => {
  throw new RangeError(`bad ${String(what)}`);
});

/** Which worker process ran it (after a short pause, so that every worker gets some). */
export const where = app.task('c.where', async (i: number) => {
  await sleep(2);
  return { i, pid: process.pid };
});

/** A chord body that records each run in <CANVAS_TEST_DIR>/body.log. */
export const countedSum = app.task('c.counted_sum', (values: number[]) => {
  appendFileSync(path.join(process.env.CANVAS_TEST_DIR ?? '.', 'body.log'), `${process.pid}\n`);
  return values.reduce((s, v) => s + v, 0);
});

export const collect = app.task('c.collect', (values: unknown[]) => values);

export const replaceWithChain = app.task({ name: 'c.replace_chain', bind: true }, (self, x: number) => self.replace(chain(add.s(x, 1), mul.s(10))));

/** A chord part that adds `add(v, 0)` to its chord for each v (Celery's `self.add_to_chord`). */
export const extend = app.task({ name: 'c.extend', bind: true }, async (self, own: number, values: number[]) => {
  for (const v of values) await self.addToChord(add.s(v, 0));
  return own;
});
