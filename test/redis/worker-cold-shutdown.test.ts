/**
 * A second Ctrl-C during a warm shutdown, on Redis, with a real worker process: the warm shutdown
 * gives back the reserved messages, the cold one the running acksLate ones; nothing stays in
 * kombu's `unacked` hash (where it would wait out the visibility timeout) and every message is
 * back in its queue.
 */
import { afterAll, expect, it } from 'vitest';
import { deleteByPrefix, type Proc, redisClient, runPrefix, startCeleriacWorker, TRANSPORT_DB } from './helpers.ts';
import { makeApp } from './ixapp.ts';

const broker = `redis://127.0.0.1:6379/${TRANSPORT_DB}`;
const prefix = runPrefix('cold');
const raw = redisClient(TRANSPORT_DB);
const procs: Proc[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill()));
  raw.disconnect();
  await deleteByPrefix(TRANSPORT_DB, prefix);
});

async function until(what: string, check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

it('SIGINT twice gives back every unacknowledged message, running acksLate ones included', async () => {
  const app = makeApp({ broker, prefix });
  try {
    for (const tag of ['t1', 't2', 't3', 't4']) await app.sendTask('ix.slow', [tag, 'js'], {}, { queue: 'slow' });
  } finally {
    await app.close();
  }
  const env = { CELERIAC_TEST_BROKER: broker, CELERIAC_TEST_PREFIX: prefix };
  const worker = await startCeleriacWorker('test/redis/ixapp.ts', ['-Q', 'slow', '-c', '2', '--prefetch-multiplier', '2', '-n', `cold${process.pid}@test`, '-l', 'INFO', '--without-mingle', '--without-gossip', '--without-heartbeat'], env);
  procs.push(worker);
  await until('two running tasks and four reserved', async () => (await raw.hlen(prefix + 'started:js')) === 2 && (await raw.hlen(prefix + 'unacked')) === 4);
  const exited = new Promise<number | null>((resolve) => worker.child.once('exit', (code) => resolve(code)));

  worker.child.kill('SIGINT');
  await worker.waitFor(/Restoring 2 unacknowledged message\(s\)/);
  expect(await raw.llen(prefix + 'slow')).toBe(2);
  worker.child.kill('SIGINT');
  expect(await exited).toBe(1);
  expect(worker.log()).toMatch(/Cold shutdown[\s\S]*Restoring 2 unacknowledged message\(s\)/);

  expect(await raw.hlen(prefix + 'unacked')).toBe(0);
  expect(await raw.llen(prefix + 'slow')).toBe(4);
  expect(await raw.hlen(prefix + 'done:js')).toBe(0);
}, 60_000);
