/**
 * The Redis result store (TEST_DB, keys under a prefix unique to the run): Celery's writes
 * (SETEX + PUBLISH on the key's channel), and waiting on one shared subscriber connection.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { KeyValueBackend } from '../../src/backend/key-value-backend.ts';
import { RedisStore } from '../../src/backend/redis/index.ts';
import { createKeyValueStore } from '../../src/backend/registry.ts';
import { monitorRedis } from '../helpers/redis-monitor.ts';
import { deleteByPrefix, REDIS_HOST, redisClient, runPrefix, TEST_DB } from './helpers.ts';

const DB = TEST_DB;
const url = `redis://${REDIS_HOST}/${DB}`;
const k = runPrefix('store');
const raw = redisClient(DB);
const open: RedisStore[] = [];
const make = () => {
  const s = createKeyValueStore(url) as RedisStore;
  open.push(s);
  return s;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});
afterAll(async () => {
  raw.disconnect();
  await deleteByPrefix(DB, k);
});

describe('redis key-value store', () => {
  it('gets, sets with SETEX, overwrites, deletes, mgets', async () => {
    const s = make();
    expect(await s.get(`${k}a`)).toBeNull();
    await s.set(`${k}a`, 'v1', 86_400);
    expect(await raw.ttl(`${k}a`)).toBe(86_400);
    await s.set(`${k}a`, 'v2', null);
    expect(await raw.ttl(`${k}a`)).toBe(-1);
    await s.set(`${k}c`, '3', 0.15);
    expect(await s.mget([`${k}c`, `${k}b`, `${k}a`])).toEqual(['3', null, 'v2']);
    await sleep(250);
    expect(await s.get(`${k}c`)).toBeNull();
    await s.delete(`${k}a`);
    expect(await s.get(`${k}a`)).toBeNull();
    expect(await s.mget([])).toEqual([]);
  });

  it('publishes every set on a channel named like the key, as Celery', async () => {
    const s = make();
    const sub = redisClient(DB);
    const heard: [string, string][] = [];
    sub.on('message', (channel: string, message: string) => heard.push([channel, message]));
    await sub.subscribe(`${k}meta`);
    await s.set(`${k}meta`, '{"status": "SUCCESS"}', 60);
    await sleep(50);
    expect(heard).toEqual([[`${k}meta`, '{"status": "SUCCESS"}']]);
    sub.disconnect();
  });

  it('a long string result is stored and published as the text Celery writes', async () => {
    const backend = new KeyValueBackend(make());
    const id = `${k}long`;
    const key = `celery-task-meta-${id}`;
    const value = 'abc '.repeat(8192);
    const sub = redisClient(DB);
    const heard: string[] = [];
    sub.on('message', (_channel: string, message: string) => heard.push(message));
    await sub.subscribe(key);
    try {
      await backend.storeResult(id, value, 'SUCCESS', { parentId: 'p-1' });
      const text = (await raw.get(key))!;
      const dateDone = /"date_done": "([^"]+)"/.exec(text)?.[1];
      expect(text).toBe(`{"status": "SUCCESS", "result": "${value}", "traceback": null, "children": [], "date_done": "${dateDone}", "parent_id": "p-1", "task_id": "${id}"}`);
      await sleep(50);
      expect(heard).toEqual([text]);
    } finally {
      sub.disconnect();
      await raw.del(key);
    }
  });

  it('incr counts atomically and sets the expiry', async () => {
    const s = make();
    const results = await Promise.all(Array.from({ length: 100 }, () => s.incr(`${k}n`, 2, 60)));
    expect(new Set(results).size).toBe(100);
    expect(await s.get(`${k}n`)).toBe('200');
    expect(await raw.ttl(`${k}n`)).toBe(60);
    expect(await s.incr(`${k}t`, 1, 0.1)).toBe(1);
    await sleep(200);
    expect(await s.incr(`${k}t`, 1, null)).toBe(1);
  });

  it('waitForChange wakes at once on another store\'s write, and resolves on timeout and abort', async () => {
    const [a, b] = [make(), make()];
    await a.set(`${k}state`, 'PENDING', null);
    let start = Date.now();
    setTimeout(() => void b.set(`${k}state`, 'SUCCESS', null), 100);
    await a.waitForChange(`${k}state`, 10_000);
    expect(Date.now() - start).toBeLessThan(400);
    start = Date.now();
    await a.waitForChange(`${k}quiet`, 150);
    expect(Date.now() - start).toBeGreaterThanOrEqual(140);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    start = Date.now();
    await a.waitForChange(`${k}quiet`, 10_000, ac.signal);
    expect(Date.now() - start).toBeLessThan(1000);
  });

  it('does not sleep through a change made between the caller\'s read and its wait (lastSeen)', async () => {
    const s = make();
    await s.set(`${k}gap`, 'PENDING', null);
    const seen = await s.get(`${k}gap`);
    await raw.set(`${k}gap`, 'SUCCESS'); // changed with no PUBLISH at all
    const start = Date.now();
    await s.waitForChange(`${k}gap`, 5000, undefined, seen);
    expect(Date.now() - start).toBeLessThan(500);
  });

  it('shares one subscriber connection and unsubscribes shortly after the last waiter', async () => {
    const s = make();
    const keys = [0, 1, 2].map((i) => `${k}shared${i}`);
    const waits = keys.flatMap((key) => [1, 2, 3].map(() => s.waitForChange(key, 5000)));
    await sleep(100);
    expect(await raw.pubsub('NUMSUB', ...keys)).toEqual(keys.flatMap((key) => [key, 1]));
    await Promise.all(keys.map((key, i) => s.set(key, `v${i}`, 60)));
    await Promise.all(waits);
    await sleep(200);
    expect(await raw.pubsub('NUMSUB', ...keys)).toEqual(keys.flatMap((key) => [key, 0]));
  });

  it('a channel waited on again while it is leaving stays subscribed and wakes its new waiter', async () => {
    const s = make();
    const key = `${k}again`;
    const first = s.waitForChange(key, 5000);
    await sleep(50);
    await s.set(key, 'one', 60);
    expect(await first).toBe('one');
    const second = s.waitForChange(key, 5000, undefined, 'one'); // before the channel is left
    await sleep(150);
    expect(await raw.pubsub('NUMSUB', key)).toEqual([key, 1]);
    await s.set(key, 'two', 60);
    expect(await second).toBe('two');
  });

  it('waitForReady of a task just sent reads its key once, after the subscription, and wakes on the publish', async () => {
    const backend = new KeyValueBackend(make());
    const writer = new KeyValueBackend(make());
    const reads: string[] = [];
    const [host, port] = REDIS_HOST.split(':');
    for (const justSent of [true, false]) {
      const id = `${k}just-sent-${justSent}`;
      const monitor = await monitorRedis(host!, Number(port), (args) => {
        if (args[0]?.toLowerCase() === 'get' && args[1] === `celery-task-meta-${id}`) reads.push(`${justSent}`);
      });
      try {
        const waited = backend.waitForReady(id, 5000, undefined, justSent);
        await sleep(100);
        await writer.storeResult(id, 7, 'SUCCESS');
        expect(await waited).toMatchObject({ status: 'SUCCESS', result: 7 });
        await sleep(100); // the monitor's last lines
      } finally {
        monitor.close();
        await raw.del(`celery-task-meta-${id}`);
      }
    }
    // One read for a task just sent; a result handle of unknown age reads at once and again once subscribed.
    expect(reads).toEqual(['true', 'false', 'false']);
  });

  it('a just-sent waiter woken by STARTED sees the SUCCESS that came in the same read at once, not at the fallback read', async () => {
    const backend = new KeyValueBackend(make());
    const id = `${k}two-in-one`;
    const key = `celery-task-meta-${id}`;
    const state = (status: string) => JSON.stringify({ status, result: status === 'SUCCESS' ? 3 : null, traceback: null, children: [], date_done: null, task_id: id });
    const waited = backend.waitForReady(id, 5000, undefined, true);
    await sleep(100);
    const start = Date.now();
    // One transaction: both messages reach the subscriber in one read.
    await raw.multi().set(key, state('STARTED')).publish(key, state('STARTED')).set(key, state('SUCCESS')).publish(key, state('SUCCESS')).exec();
    expect(await waited).toMatchObject({ status: 'SUCCESS', result: 3 });
    expect(Date.now() - start).toBeLessThan(700); // the fallback read of every waited-on key runs each second
    await raw.del(key);
  });

  it('carries Celery results: KeyValueBackend.waitForReady wakes on the worker\'s publish', async () => {
    const backend = new KeyValueBackend(make());
    const id = `${k}task-1`;
    setTimeout(() => void new KeyValueBackend(make()).storeResult(id, 5, 'SUCCESS'), 100);
    const start = Date.now();
    const meta = await backend.waitForReady(id, 5000);
    expect(meta).toMatchObject({ status: 'SUCCESS', result: 5, task_id: id });
    expect(Date.now() - start).toBeLessThan(500);
    expect(await raw.get(`celery-task-meta-${id}`)).toMatch(/^\{"status": "SUCCESS", "result": 5, "traceback": null, "children": \[\], "date_done": "[^"]+", "task_id": "/);
    await raw.del(`celery-task-meta-${id}`);
  });
});
