/**
 * Redis crashes and restarts while a celeriac worker is busy. The broker is a private redis-server
 * that keeps its data (AOF, fsync always) so the queue and `unacked` survive; tasks record their
 * runs on the shared server (TEST_DB), which stays up. Both use a key prefix unique to the run.
 *
 * Before the crash the worker holds a full prefetch window (2 running, 6 reserved, queue empty).
 * During the outage the running tasks finish, reserved ones start and acknowledge; after the
 * restart the worker carries on, tasks published then run, results written during the outage are
 * stored once Redis is back, and nothing runs twice: every acknowledgement reached Redis (`unacked`
 * ends empty, so no visibility-timeout redelivery is pending either). A second test checks the
 * same at the transport level: acks, rejects and restores issued while Redis is down.
 */
import { Redis } from 'ioredis';
import { afterAll, expect, it } from 'vitest';
import { buildTaskMessage } from '../../src/protocol/task-message.ts';
import { RedisTransport } from '../../src/transport/redis/index.ts';
import { createLogger } from '../../src/common/log.ts';
import { Worker } from '../../src/worker/worker.ts';
import { deleteByPrefix, type DurableRedis, durableRedis, REDIS_HOST, redisClient, runPrefix, TEST_DB } from './helpers.ts';
import { makeApp } from './ixapp.ts';

const RECORD_DB = TEST_DB;
const prefix = runPrefix('restart');
const record = redisClient(RECORD_DB);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let server: DurableRedis | undefined;

afterAll(async () => {
  await server?.destroy();
  record.disconnect();
  await deleteByPrefix(RECORD_DB, prefix);
});

async function until(what: string, check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

it('a busy celeriac worker rides out a Redis crash and restart: nothing lost, nothing run twice', async () => {
  server = await durableRedis();
  const broker = `redis://127.0.0.1:${server.port}/0`;
  const lines: string[] = [];
  const logger = createLogger({ level: 'WARNING', write: (line) => void lines.push(line) });
  const app = makeApp({ broker, prefix, backend: `redis://127.0.0.1:${server.port}/1`, record: `redis://${REDIS_HOST}/${RECORD_DB}` });
  app.conf.brokerTransportOptions = { ...app.conf.brokerTransportOptions, logger };
  const worker = new Worker(app, { queues: ['busy'], concurrency: 2, prefetchMultiplier: 4, logger, withoutMingle: true, withoutGossip: true, withoutHeartbeat: true, hostname: `restart${process.pid}@test` });
  const direct = new Redis({ port: server.port, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => 100 });
  direct.on('error', () => undefined);
  try {
    await worker.start();
    const before = Array.from({ length: 8 }, (_, i) => `before-${i}`);
    const beforeResults = [];
    for (const tag of before) beforeResults.push(await app.sendTask('ix.busy', [tag, 400], {}, { queue: 'busy' }));
    // A full window: two running, six reserved, the queue empty.
    await until('a full prefetch window', async () => (await direct.llen(prefix + 'busy')) === 0 && (await direct.hlen(prefix + 'unacked')) === 6 && (await record.hlen(prefix + 'ran')) === 2);

    // The next pairs start, and acknowledge, while Redis is down.
    await server.crash();
    await sleep(1500);
    await server.start();

    const after = Array.from({ length: 20 }, (_, i) => `after-${i}`);
    const results = [];
    for (const tag of after) results.push(await app.sendTask('ix.busy', [tag, 10], {}, { queue: 'busy', retry: true }));
    for (const r of results) expect(await r.get({ timeout: 15 })).toMatch(/after-/);
    // Results written while Redis was down were retried (as Celery's RedisBackend.set) and are there.
    expect(await Promise.all(beforeResults.map((r) => r.get({ timeout: 15 })))).toEqual(before);
    await until('every task', async () => (await record.hlen(prefix + 'ran')) === before.length + after.length);
    await sleep(300);

    const ran = await record.hgetall(prefix + 'ran');
    expect(Object.entries(ran).filter(([, n]) => n !== '1')).toEqual([]);
    expect(Object.keys(ran).sort()).toEqual([...before, ...after].sort());
    expect(await direct.llen(prefix + 'busy')).toBe(0);
    expect(await direct.hlen(prefix + 'unacked')).toBe(0);
    expect(await direct.zcard(prefix + 'unacked_index')).toBe(0);
    expect(lines.join('\n')).toMatch(/connection lost/);
  } finally {
    direct.disconnect();
    await worker.shutdown();
  }
}, 60_000);

it('acks, rejects and restores made while Redis is down reach it after the restart', async () => {
  server ??= await durableRedis();
  const p = `${prefix}settle:`;
  const quiet = { warning: () => undefined, info: () => undefined };
  const t = new RedisTransport(new URL(`redis://127.0.0.1:${server.port}/0?global_keyprefix=${encodeURIComponent(p)}`), { logger: quiet });
  const direct = new Redis({ port: server.port, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => 100 });
  direct.on('error', () => undefined);
  try {
    for (const id of ['a', 'b', 'c']) await t.publish('q', buildTaskMessage({ id, name: 'ix.busy', args: [], origin: 'test', replyTo: 'r' }));
    const [a, b, c] = await t.fetch(['q'], 3, 1000);
    await server.crash();
    const settled = Promise.all([a!.ack(), b!.reject(true), c!.restore()]);
    await sleep(1500); // well past the point where the client gives up on a queued command
    await server.start();
    await settled;
    expect(await direct.hlen(p + 'unacked')).toBe(0);
    expect(await direct.zcard(p + 'unacked_index')).toBe(0);
    // b went to the back, c to the front: both are there once, a is gone.
    const left = (await direct.lrange(p + 'q', 0, -1)).map((e) => JSON.parse(e).headers.id);
    expect(left).toEqual(['b', 'c']);
  } finally {
    direct.disconnect();
    await t.close();
  }
}, 30_000);
