/**
 * The revoke marks `revoke()` leaves in a Redis result backend, with a Redis broker: revokes are
 * broadcast, and a worker reads the marks before it consumes and then follows the new ones, so
 * a worker that was not listening skips a revoked task without a read per batch of tasks.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Celery } from '../../src/index.ts';
import { createLogger } from '../../src/common/log.ts';
import { Worker } from '../../src/worker/worker.ts';
import { deleteByPrefix, redisClient, RESULTS_DB, runPrefix, trackResults, TRANSPORT_DB } from './helpers.ts';

const prefix = runPrefix('revoke-marks');
const broker = `redis://127.0.0.1:6379/${TRANSPORT_DB}`;
const backend = `redis://127.0.0.1:6379/${RESULTS_DB}`;
const results = trackResults();
const marked: string[] = [];
const INDEX = 'celeriac-revokes';
let app: Celery | undefined;
let worker: Worker | undefined;
const ran: string[] = [];

afterEach(async () => {
  await worker?.shutdown();
  worker = undefined;
  await app?.close();
  app = undefined;
  ran.length = 0;
});

afterAll(async () => {
  await results.cleanup();
  const r = redisClient(RESULTS_DB);
  try {
    for (const id of marked) await r.multi().del(`celeriac-revoked-${id}`).zrem(INDEX, id).exec();
    if ((await r.zcard(INDEX)) === 0) await r.del(INDEX);
  } finally {
    r.disconnect();
  }
  await deleteByPrefix(TRANSPORT_DB, prefix);
});

function makeApp(): Celery {
  app = new Celery('marks', { broker, backend, brokerTransportOptions: { global_keyprefix: prefix }, taskDefaultQueue: 'marks' });
  app.task('marks.run', (tag: string) => {
    ran.push(tag);
    return tag;
  });
  return app;
}

async function startWorker(a: Celery): Promise<Worker> {
  worker = new Worker(a, { queues: ['marks'], hostname: `marks${process.pid}@test`, withoutMingle: true, withoutGossip: true, logger: createLogger({ level: 'ERROR' }) });
  await worker.start();
  return worker;
}

async function until(what: string, check: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('revoke marks on a Redis backend', () => {
  it('lists the marks made since a point, with the point of the next read', async () => {
    const a = makeApp();
    const kv = await a.backend();
    const first = randomUUID();
    marked.push(first);
    await kv.markRevoked(first);
    const all = await kv.revokedSince!(null);
    expect(all.ids).toContain(first);

    const second = randomUUID();
    marked.push(second);
    await kv.markRevoked(second);
    const since = await kv.revokedSince!(all.next);
    expect(since.ids).toContain(second);
    expect(since.next).toBeGreaterThanOrEqual(all.next);
    expect(await kv.revokedAmong([first, second, randomUUID()])).toEqual(new Set([first, second]));
  });

  it('a worker started after revoke() skips the task: the broadcast reached nobody, the mark is read at start', async () => {
    const a = makeApp();
    const r = await a.sendTask('marks.run', ['late'], {}, { queue: 'marks' });
    results.add(r);
    marked.push(r.id);
    await r.revoke();
    const w = await startWorker(a);
    expect(w.revoked.has(r.id)).toBe(true);
    await expect(r.get({ timeout: 10 })).rejects.toThrow(/revoked/i);
    expect(await r.state).toBe('REVOKED');
    expect(ran).toEqual([]);
  });

  it('a running worker that missed the broadcast learns of a new mark and skips the task sent after it', async () => {
    const a = makeApp();
    const w = await startWorker(a);
    const id = randomUUID();
    marked.push(id);
    results.add(id);
    await (await a.backend()).markRevoked(id); // a mark alone, as if the broadcast had been missed
    await until('the worker to read the new mark', () => w.revoked.has(id), 5_000);
    const r = await a.sendTask('marks.run', ['missed'], {}, { queue: 'marks', taskId: id });
    await expect(r.get({ timeout: 10 })).rejects.toThrow(/revoked/i);
    expect(ran).toEqual([]);
    // Tasks not marked still run.
    const ok = await a.sendTask('marks.run', ['fine'], {}, { queue: 'marks' });
    results.add(ok);
    expect(await ok.get({ timeout: 10 })).toBe('fine');
  });
});
