/**
 * Every delivery ends in exactly one ack or reject, whatever throws while its outcome is handled
 * (acksLate, Redis broker under a run-unique prefix): a message whose failure path throws is stored
 * FAILURE and dead-lettered instead of staying in `unacked`, and a result backend that is down past
 * its store retries gets the message given back, so that it runs once the backend is back.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Celery } from '../../src/index.ts';
import { buildTaskMessage } from '../../src/protocol/task-message.ts';
import { createLogger } from '../../src/common/log.ts';
import { Worker } from '../../src/worker/worker.ts';
import { deleteByPrefix, type PrivateRedis, privateRedis, redisClient, RESULTS_DB, runPrefix, trackResults, TRANSPORT_DB } from './helpers.ts';

const prefix = runPrefix('unsettled');
const brokerUrl = `redis://127.0.0.1:6379/${TRANSPORT_DB}?global_keyprefix=${encodeURIComponent(prefix)}`;
const raw = redisClient(TRANSPORT_DB);
const lines: string[] = [];
const logger = createLogger({ level: 'WARNING', write: (l) => void lines.push(l) });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let backendServer: PrivateRedis;
const workers: Worker[] = [];
const results = trackResults();

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${lines.join('\n')}`);
    await sleep(50);
  }
}

beforeAll(async () => {
  backendServer = await privateRedis();
});

afterAll(async () => {
  for (const w of workers) await w.shutdown();
  await backendServer?.stop();
  await deleteByPrefix(TRANSPORT_DB, prefix);
  await results.cleanup();
  raw.disconnect();
});

describe('a delivery whose outcome cannot be handled', () => {
  it('a failure path that throws (embed.chain = [null]) is stored FAILURE and dead-lettered, not left unacknowledged', async () => {
    const app = new Celery('unsettled', { broker: brokerUrl, backend: `redis://127.0.0.1:6379/${RESULTS_DB}`, taskAcksLate: true });
    app.task('t.echo', (x: unknown) => x);
    const worker = new Worker(app, { queues: ['broken'], logger });
    workers.push(worker);
    await worker.start();
    const id = randomUUID();
    results.add(id);
    const message = buildTaskMessage({ id, name: 't.echo', args: [1], origin: 'test', replyTo: app.oid, embed: { chain: [null as never] } });
    await (await app.transport()).publish('broken', message);

    const dead = await until('the dead letter', async () => (await raw.lrange(`${prefix}broken.celeriac.dead`, 0, -1)).find((d) => d.includes(id)));
    expect(dead).toContain('outcome could not be handled');
    expect(await raw.hlen(`${prefix}unacked`)).toBe(0);
    expect(await app.AsyncResult(id).state).toBe('FAILURE');
    expect(lines.join('\n')).toContain(`Task t.echo[${id}] failed while its outcome was handled`);
    expect(lines.join('\n')).not.toContain('Unexpected error');
  });

  it('a result backend down past its retries: the acksLate message is given back and runs once the backend is back', async () => {
    const app = new Celery('outage', {
      broker: brokerUrl, backend: `redis://127.0.0.1:${backendServer.port}/0`, taskAcksLate: true,
      resultBackendTransportOptions: { retry_policy: { max_retries: 1, interval_start: 0, interval_step: 0.1, interval_max: 0.1 } },
    });
    app.task('t.double', (x: number) => x * 2);
    const worker = new Worker(app, { queues: ['outage'], logger });
    workers.push(worker);
    await worker.start();
    await backendServer.stop();
    const r = await app.sendTask('t.double', [21], {}, { queue: 'outage' });
    await until('the give-back line', async () => lines.some((l) => l.includes(`t.double[${r.id}]: could not record its outcome`) && l.includes('given back to outage')));
    await backendServer.start();
    expect(await r.get({ timeout: 20 })).toBe(42);
    expect(await until('an empty unacked', async () => (await raw.hlen(`${prefix}unacked`)) === 0 || undefined)).toBe(true);
    expect(await raw.llen(`${prefix}outage.celeriac.dead`)).toBe(0);
  });
});
