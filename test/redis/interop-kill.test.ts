/**
 * kill -9 during acks_late tasks, across implementations (visibility_timeout = 3 s on both sides):
 *  - a celeriac worker process (`node bin/celeriac.js -A test/redis/ixapp.ts worker`) running and
 *    holding `ix.slow` tasks is killed; once their visibility timeout is over, a Python Celery 5.2
 *    worker restores them (at its start, as kombu does) and runs every one;
 *  - a Python prefork worker (the whole process group) is killed the same way; a celeriac worker
 *    restores and runs them.
 * Nothing is lost and nothing runs twice to completion.
 *
 * Broker in TEST_DB, one key prefix per direction (unique to the run).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/common/log.ts';
import { Worker } from '../../src/worker/worker.ts';
import { deleteByPrefix, type Proc, REDIS_HOST, redisClient, runPrefix, startCeleriacWorker, startPythonWorker, TEST_DB } from './helpers.ts';
import { makeApp } from './ixapp.ts';

const DB = TEST_DB;
const VISIBILITY = 3;
const broker = `redis://${REDIS_HOST}/${DB}`;
const raw = redisClient(DB);
const prefixes: string[] = [];
const procs: Proc[] = [];
const TAGS = ['t1', 't2', 't3', 't4'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill()));
  raw.disconnect();
  for (const p of prefixes) await deleteByPrefix(DB, p);
});

async function until(what: string, check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Sleep until every delivery in `unacked` is older than the visibility timeout. */
async function pastVisibility(prefix: string): Promise<void> {
  const scores = await raw.zrange(prefix + 'unacked_index', 0, -1, 'WITHSCORES');
  const newest = Math.max(...scores.filter((_, i) => i % 2 === 1).map(Number));
  await sleep(Math.max(0, (newest + VISIBILITY) * 1000 - Date.now() + 300));
}

const counts = async (key: string) => Object.fromEntries(Object.entries(await raw.hgetall(key)).map(([k, v]) => [k, Number(v)]));

// The two directions run at once: separate key prefixes keep them apart.
describe.concurrent('kill -9 under acks_late', () => {
  it('a killed celeriac worker\'s tasks are restored and run by a Python worker', async () => {
    const prefix = runPrefix('kill-js');
    prefixes.push(prefix);
    const env = { CELERIAC_TEST_BROKER: broker, CELERIAC_TEST_PREFIX: prefix, CELERIAC_TEST_VISIBILITY: String(VISIBILITY) };
    const app = makeApp({ broker, prefix, visibility: VISIBILITY });
    try {
      for (const tag of TAGS) await app.sendTask('ix.slow', [tag, 'js'], {}, { queue: 'slow' });
    } finally {
      await app.close();
    }
    const js = await startCeleriacWorker('test/redis/ixapp.ts', ['-Q', 'slow', '-c', '2', '-n', `killjs${process.pid}@test`, '-l', 'INFO', '--without-mingle', '--without-gossip', '--without-heartbeat'], env);
    procs.push(js);
    await until('two running tasks', async () => (await raw.hlen(prefix + 'started:js')) === 2 && (await raw.hlen(prefix + 'unacked')) === 4);
    await js.kill();
    expect(await raw.hlen(prefix + 'unacked')).toBe(4); // 2 running + 2 reserved, all unacknowledged
    await pastVisibility(prefix);

    const py = await startPythonWorker('ixtasks', ['-P', 'solo', '-l', 'INFO', '-Q', 'slow', '-n', `killpy${process.pid}@test`, '--without-mingle', '--without-gossip', '--without-heartbeat'], env);
    procs.push(py);
    await until('the Python worker to run all four', async () => (await raw.hlen(prefix + 'done:py')) === 4);
    await py.stop();
    expect(await counts(prefix + 'done:py')).toEqual(Object.fromEntries(TAGS.map((t) => [t, 1])));
    expect(await raw.hlen(prefix + 'done:js')).toBe(0);
    expect(await raw.hlen(prefix + 'unacked')).toBe(0);
    expect(await raw.llen(prefix + 'slow')).toBe(0);
  }, 40_000);

  it('a killed Python worker\'s tasks are restored and run by a celeriac worker', async () => {
    const prefix = runPrefix('kill-py');
    prefixes.push(prefix);
    const env = { CELERIAC_TEST_BROKER: broker, CELERIAC_TEST_PREFIX: prefix, CELERIAC_TEST_VISIBILITY: String(VISIBILITY) };
    const app = makeApp({ broker, prefix, visibility: VISIBILITY });
    try {
      for (const tag of TAGS) await app.sendTask('ix.slow', [tag, 'py'], {}, { queue: 'slow' });
      // prefork -c 2: the parent keeps fetching (prefetch 8) while two children sleep in the task.
      const py = await startPythonWorker('ixtasks', ['-P', 'prefork', '-c', '2', '-l', 'INFO', '-Q', 'slow', '-n', `killpy${process.pid}@test`, '--without-mingle', '--without-gossip', '--without-heartbeat'], env);
      procs.push(py);
      await until('two running tasks', async () => (await raw.hlen(prefix + 'started:py')) === 2 && (await raw.hlen(prefix + 'unacked')) === 4);
      await py.kill(); // the parent and its pool children
      expect(await raw.hlen(prefix + 'unacked')).toBe(4);
      await pastVisibility(prefix);

      const worker = new Worker(app, { queues: ['slow'], concurrency: 4, hostname: `killjs${process.pid}@test`, logger: createLogger({ level: 'CRITICAL' }), withoutMingle: true, withoutGossip: true, withoutHeartbeat: true });
      await worker.start();
      try {
        await until('the celeriac worker to run all four', async () => (await raw.hlen(prefix + 'done:js')) === 4);
      } finally {
        await worker.shutdown();
      }
      expect(await counts(prefix + 'done:js')).toEqual(Object.fromEntries(TAGS.map((t) => [t, 1])));
      expect(await raw.hlen(prefix + 'done:py')).toBe(0);
      expect(await raw.hlen(prefix + 'unacked')).toBe(0);
      expect(await raw.llen(prefix + 'slow')).toBe(0);
    } finally {
      await app.close();
    }
  }, 40_000);
});
