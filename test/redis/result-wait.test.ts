/**
 * Waiting for a result on the Redis backend (the results DB, task ids under a prefix unique to the run):
 * fresh clients never lose their subscription to a handshake race, and a waiter whose message
 * never comes still sees the stored result.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { AsyncResult, Celery } from '../../src/index.ts';
import { Redis } from 'ioredis';
import { monitorRedis } from '../helpers/redis-monitor.ts';
import { deleteByPrefix, privateRedis, REDIS_HOST, redisClient, RESULTS_DB, runPrefix, TEST_DB } from './helpers.ts';

const DB = RESULTS_DB;
const prefix = runPrefix('result-wait');
const raw = redisClient(DB);
const meta = (id: string, result: unknown) => JSON.stringify({ status: 'SUCCESS', result, traceback: null, children: [], date_done: '2026-01-01T00:00:00', task_id: id });

afterAll(async () => {
  raw.disconnect();
  await deleteByPrefix(DB, `celery-task-meta-${prefix}`);
});

/** Half the handles as `sendTask` returns them (just sent: one read, once subscribed), half as `app.AsyncResult` (read at once). */
const handle = (app: Celery, id: string, justSent: boolean) => (justSent ? new AsyncResult(id, app, true) : app.AsyncResult(id));

function freshApp(logged: string[]): Celery {
  const logger = { warning: (m: string) => logged.push(m), info: (m: string) => logged.push(m) };
  return new Celery('wait', { broker: `redis://${REDIS_HOST}/${TEST_DB}`, backend: `redis://${REDIS_HOST}/${DB}`, resultBackendTransportOptions: { logger } });
}

describe('AsyncResult.get on the Redis backend', () => {
  it('1,000 fresh clients each get the results stored for them, and no subscriber connection is lost', async () => {
    const logged: string[] = [];
    const failures: string[] = [];
    for (let i = 0; i < 1000; i++) {
      const app = freshApp(logged);
      const ids = [`${prefix}${randomUUID()}`, `${prefix}${randomUUID()}`];
      const backend = await app.backend();
      // The second get subscribes a moment later: sometimes while the subscriber connection is in its handshake.
      const gets = ids.map((id, j) =>
        new Promise((r) => setTimeout(r, j * Math.random() * 3))
          .then(() => handle(app, id, i % 2 === 1).get({ timeout: 10 }))
          .catch((err: Error) => failures.push(`${i}: ${err.message}`)),
      );
      setTimeout(() => void Promise.all(ids.map((id) => backend.storeResult(id, i, 'SUCCESS'))), Math.random() * 5);
      const values = await Promise.all(gets);
      await app.close();
      await raw.del(...ids.map((id) => `celery-task-meta-${id}`));
      if (values.some((v) => v !== i)) failures.push(`${i}: got ${JSON.stringify(values)}`);
    }
    expect(failures).toEqual([]);
    expect(logged).toEqual([]);
  }, 300_000);

  it('bursts: 20 fresh clients each start 200 get()s at random moments of their first connection; every one gets its result and no subscriber connection is lost', async () => {
    const logged: string[] = [];
    const late: string[] = [];
    const writer = freshApp(logged);
    const backend = await writer.backend();
    try {
      for (let round = 0; round < 20; round++) {
        const app = freshApp(logged);
        const ids = Array.from({ length: 200 }, () => `${prefix}${randomUUID()}`);
        const gets = ids.map((id, j) =>
          new Promise((r) => setTimeout(r, Math.random() * 20))
            .then(() => handle(app, id, j % 2 === 1).get({ timeout: 30, interval: 0.05 }))
            .then((v) => v === j || late.push(`${round}/${j}: ${JSON.stringify(v)}`), (err: Error) => late.push(`${round}/${j}: ${err.message}`)),
        );
        ids.forEach((id, j) => setTimeout(() => void backend.storeResult(id, j, 'SUCCESS'), Math.random() * 20));
        await Promise.all(gets);
        await app.close();
        await raw.del(...ids.map((id) => `celery-task-meta-${id}`));
      }
    } finally {
      await writer.close();
    }
    expect(late).toEqual([]);
    expect(logged).toEqual([]);
  }, 300_000);

  it('a result published while the get() of a task just sent subscribes comes from the message, with no read of the key', async () => {
    const app = freshApp([]);
    const id = `${prefix}${randomUUID()}`;
    const key = `celery-task-meta-${id}`;
    const reads: string[] = [];
    const [host, port] = REDIS_HOST.split(':');
    const monitor = await monitorRedis(host!, Number(port), (args) => {
      if (args.includes(key)) reads.push(args[0]!.toLowerCase());
    });
    try {
      await app.AsyncResult(`${prefix}${randomUUID()}`).get({ timeout: 0.05 }).catch(() => undefined); // the subscriber connection is up
      const got = handle(app, id, true).get({ timeout: 10 });
      for (let i = 0; i < 100; i++) await Promise.resolve(); // its SUBSCRIBE is written, its confirmation not yet read
      // Published (not stored) while this process reads nothing: the message lands right behind the confirmation.
      execFileSync('redis-cli', ['-h', host!, '-p', port!, '-n', String(DB), 'PUBLISH', key, meta(id, 'from the message')]);
      expect(await got).toBe('from the message');
      const waitFor = Date.now() + 2000;
      while (!reads.includes('publish') && Date.now() < waitFor) await new Promise((r) => setTimeout(r, 10));
    } finally {
      monitor.close();
      await app.close();
    }
    expect(reads).toEqual(['subscribe', 'publish']);
  });

  it('a waiting get() without a timeout sees a result stored without a message (plain SET, no PUBLISH)', async () => {
    const logged: string[] = [];
    const app = freshApp(logged);
    const ids = [`${prefix}${randomUUID()}`, `${prefix}${randomUUID()}`];
    const stop = new AbortController();
    try {
      const got = ids.map((id, i) => handle(app, id, i === 1).get({ signal: stop.signal }));
      await new Promise((r) => setTimeout(r, 300)); // subscribed and waiting
      for (const id of ids) await raw.set(`celery-task-meta-${id}`, meta(id, 42));
      const stillWaiting = new Promise((r) => setTimeout(() => r('still waiting 15 s after the result was stored'), 15_000).unref());
      expect(await Promise.race([Promise.all(got), stillWaiting])).toEqual([42, 42]);
    } finally {
      stop.abort();
      await app.close();
    }
  }, 30_000);

  it('get() with a timeout waits through a Redis restart, begun before or during the outage, and returns the result stored after it', async () => {
    const server = await privateRedis();
    const logged: string[] = [];
    const logger = { warning: (m: string) => logged.push(m), info: (m: string) => logged.push(m) };
    const app = new Celery('outage', { broker: `redis://127.0.0.1:${server.port}/0`, backend: `redis://127.0.0.1:${server.port}/0`, resultBackendTransportOptions: { logger } });
    const ids = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    const outcome = (id: string, justSent: boolean) => handle(app, id, justSent).get({ timeout: 30 }).then((v) => ({ v }), (err: Error) => ({ err: err.message }));
    try {
      const before = [outcome(ids[0]!, false), outcome(ids[1]!, true)];
      await new Promise((r) => setTimeout(r, 300));
      await server.stop();
      const during = [outcome(ids[2]!, false), outcome(ids[3]!, true)];
      await new Promise((r) => setTimeout(r, 1500)); // longer than ioredis takes to give up on a command
      await server.start();
      const direct = new Redis({ port: server.port, lazyConnect: true });
      for (const id of ids) await direct.set(`celery-task-meta-${id}`, meta(id, `${id} after the restart`));
      direct.disconnect();
      expect(await Promise.all([...before, ...during])).toEqual(ids.map((id) => ({ v: `${id} after the restart` })));
      expect(logged.some((l) => /connection lost/.test(l))).toBe(true);
    } finally {
      await app.close();
      await server.stop();
    }
  }, 60_000);
});
