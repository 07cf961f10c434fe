/**
 * A mixed fleet on one Redis queue: a Python Celery 5.2 worker and a celeriac worker consume
 * 10,000 trivial tasks sent by a Python and a celeriac client (1,000 and 9,000). Every task records
 * its id (HINCRBY <prefix>ran <id> 1) and who ran it: each must run exactly once, none lost.
 *
 * Broker in TEST_DB under a key prefix unique to the run; no result backend.
 */
import { afterAll, expect, it } from 'vitest';
import { createLogger } from '../../src/common/log.ts';
import { Worker } from '../../src/worker/worker.ts';
import { sendFromPython } from '../helpers/python-worker.ts';
import { deleteByPrefix, PY_DIR, type Proc, REDIS_HOST, redisClient, runPrefix, startPythonWorker, TEST_DB } from './helpers.ts';
import { makeApp } from './ixapp.ts';

const DB = TEST_DB;
const N = 10_000;
/** Sent by the Python client (kombu publishes slower than celeriac: the rest comes from celeriac). */
const PY_SENT = 1000;
const prefix = runPrefix('fleet');
const broker = `redis://${REDIS_HOST}/${DB}`;
const env = { CELERIAC_TEST_BROKER: broker, CELERIAC_TEST_PREFIX: prefix };
const raw = redisClient(DB);
const app = makeApp({ broker, prefix });
let python: Proc | undefined;
let worker: Worker | undefined;

afterAll(async () => {
  await python?.stop();
  if (worker) await worker.shutdown();
  else await app.close();
  raw.disconnect();
  await deleteByPrefix(DB, prefix);
});

function pythonBulk(count: number): Promise<string[]> {
  return sendFromPython(PY_DIR, 'ixtasks', 'ix.record', count, 'fleet', env);
}

it('a Python and a celeriac worker run 10,000 tasks from both clients, each exactly once', async () => {
  const t0 = Date.now();
  worker = new Worker(app, { queues: ['fleet'], concurrency: 200, hostname: `fleetjs${process.pid}@test`, logger: createLogger({ level: 'ERROR' }) });
  const [py] = await Promise.all([
    startPythonWorker('ixtasks', ['-P', 'solo', '-l', 'INFO', '-Q', 'fleet', '-n', `fleetpy${process.pid}@%h`, '--without-mingle', '--without-gossip', '--without-heartbeat'], { ...env, CELERIAC_TEST_QUIET_TASKS: '1' }),
    worker.start(),
  ]);
  python = py;
  const started = Date.now();
  const jsIds: string[] = [];
  const publishJs = (async () => {
    for (let i = 0; i < N - PY_SENT; i += 500) {
      const batch = await Promise.all(Array.from({ length: Math.min(500, N - PY_SENT - i) }, () => app.sendTask('ix.record', [], {}, { queue: 'fleet' })));
      jsIds.push(...batch.map((r) => r.id));
    }
  })();
  const [pyIds] = await Promise.all([pythonBulk(PY_SENT), publishJs]);
  const published = Date.now();
  const ids = [...pyIds, ...jsIds];
  expect(new Set(ids).size).toBe(N);

  const deadline = Date.now() + 60_000;
  while ((await raw.hlen(prefix + 'ran')) < N && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  const done = Date.now();
  await new Promise((r) => setTimeout(r, 300)); // late duplicates would show up now
  const ran = await raw.hgetall(prefix + 'ran');
  const [byPy, byJs] = (await raw.mget(prefix + 'by:py', prefix + 'by:js')).map(Number);
  console.log(`fleet: start ${started - t0} ms, publish ${published - started} ms, all run ${done - started} ms; python ran ${byPy}, celeriac ${byJs}`);

  expect(Object.keys(ran).length).toBe(N);
  expect(ids.filter((id) => ran[id] !== '1')).toEqual([]);
  expect(byPy! + byJs!).toBe(N);
  expect(byPy).toBeGreaterThan(0);
  expect(byJs).toBeGreaterThan(0);
  expect(await raw.llen(prefix + 'fleet')).toBe(0);
  expect(await raw.hlen(prefix + 'unacked')).toBe(0);
}, 90_000);
