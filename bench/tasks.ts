/**
 * The celeriac app the benchmark runs (bundled by lib/build.ts; worker: `-A ./bench/.build/tasks.mjs:app`), configured from the
 * environment by bench/systems/celeriac.ts:
 *   BENCH_BROKER       broker URL (sqlite:////tmp/…/bench.db or redis://127.0.0.1:6379/14)
 *   BENCH_BACKEND      result backend URL (unset: the broker's own store for sqlite)
 *   BENCH_COUNTER_URL  Redis URL of the execution counter (key COUNTER_KEY)
 *   BENCH_COUNTER_KEY  another key for it (bench/pools.ts)
 *
 * Two no-op tasks and an echo (the large-message drain), as in bench/py/benchtasks.py and the BullMQ worker: each adds 1 to an
 * in-process counter, flushed to Redis with one INCRBY at most every 5 ms while tasks run and
 * never while idle, so the task itself does no I/O.
 */
import { Redis } from 'ioredis';
import { Celery } from 'celeriac';
import { COUNTER_KEY, QUEUE, TASK_ECHO, TASK_IGNORED, TASK_STORED } from './lib/config.ts';
import { Counter } from './lib/counter.ts';

const env = process.env;

export const app = new Celery('bench', {
  broker: env.BENCH_BROKER ?? 'sqlite://celeriac-bench.db',
  ...(env.BENCH_BACKEND ? { backend: env.BENCH_BACKEND } : {}),
  taskDefaultQueue: QUEUE,
});

const counter = new Counter(() => new Redis(env.BENCH_COUNTER_URL ?? 'redis://127.0.0.1:6379/14'), env.BENCH_COUNTER_KEY ?? COUNTER_KEY);

export const noop = app.task({ name: TASK_IGNORED, ignoreResult: true }, () => {
  counter.incr();
});

export const noopStored = app.task(TASK_STORED, () => {
  counter.incr();
  return 'ok';
});

export const echo = app.task(TASK_ECHO, (value: string) => {
  counter.incr();
  return value;
});

/** CPU-bound: holds its thread for `ms` milliseconds (bench/pools.ts). */
export const cpu = app.task({ name: 'bench.cpu', ignoreResult: true }, (ms: number) => {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* busy */ }
  counter.incr();
});
