/**
 * The CLI against Redis: `migrate` to a SQLite broker with the messages as they were, `list
 * bindings`, and a worker configured only by CELERY_* variables, shared with a Python client.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Celery } from '../../src/app/celery.ts';
import { createTransport } from '../../src/transport/registry.ts';
import type { Delivery, Transport } from '../../src/transport/types.ts';
import { createVhosts, deleteVhosts, runId, vhostUrl } from '../amqp/helpers.ts';
import { PYTHON } from '../helpers/python-worker.ts';
import { createSandbox, projectRoot, queueSize, runCli, type Sandbox, startProcess, startWorker, stopAllWorkers } from '../integration/helpers.ts';
import { deleteByPrefix, REDIS_HOST, RESULTS_DB, runPrefix, TRANSPORT_DB, trackResults } from './helpers.ts';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 40_000 });

const prefix = runPrefix('cli-redis');
const results = trackResults();
let sb: Sandbox;
const redisUrl = (name: string) => `redis://${REDIS_HOST}/${TRANSPORT_DB}?global_keyprefix=${encodeURIComponent(`${prefix}${name}:`)}`;

beforeAll(async () => {
  sb = await createSandbox('cli-redis');
});

afterAll(async () => {
  await stopAllWorkers();
  await sb?.cleanup();
  await results.cleanup();
  await deleteByPrefix(TRANSPORT_DB, prefix);
});

/**
 * What must survive a move between brokers: everything but where and how it was delivered
 * (`redelivered` is the header kombu's Redis transport adds to a message it gives back, as this
 * test does after reading the source).
 */
function kept(d: Delivery) {
  const { headers: { redelivered: _, ...headers }, contentType, contentEncoding, body, properties } = d.message;
  return { headers, contentType, contentEncoding, body: body.toString('base64'), correlationId: properties.correlation_id, replyTo: properties.reply_to, priority: properties.priority };
}

async function takeAll(t: Transport, queue: string): Promise<Delivery[]> {
  const out: Delivery[] = [];
  for (let batch = await t.fetch([queue], 100, 500); batch.length; batch = await t.fetch([queue], 100, 200)) out.push(...batch);
  return out;
}

describe('migrate', () => {
  it('copies messages from Redis to SQLite as they are (and leaves them), then moves them with -a; a worker runs them there', async () => {
    const source = redisUrl('migrate');
    const client = new Celery('client', { broker: source });
    const sent = [
      await client.sendTask('tasks.add', [1, 2]),
      await client.sendTask('tasks.echo', ['ü', { deep: [1, null] }], { big: 2n ** 70n }, { priority: 3 }),
      await client.sendTask('tasks.add', [40, 2], {}, { countdown: 1 }),
    ];
    const redis = await client.transport();
    const before = (await takeAll(redis, 'celery')).sort((a, b) => String(a.message.headers.id).localeCompare(String(b.message.headers.id)));
    for (const d of before) await d.restore();
    expect(before).toHaveLength(3);

    const copy = await runCli(sb, ['migrate', source, sb.brokerUrl], { appSpec: null });
    expect(copy.stderr).toBe('');
    expect(copy.code).toBe(0);
    expect(copy.stdout).toContain('Migrating task 1/?: tasks.');
    expect(copy.stdout).toContain('Migrated 3 messages.');
    expect(await redis.size('celery')).toBe(3);

    const sqlite = createTransport(sb.brokerUrl);
    const after = (await takeAll(sqlite, 'celery')).sort((a, b) => String(a.message.headers.id).localeCompare(String(b.message.headers.id)));
    expect(after.map(kept)).toEqual(before.map(kept));
    for (const d of after) await d.ack();
    await sqlite.close();

    const move = await runCli(sb, ['migrate', source, sb.brokerUrl, '-a', '-T', 'tasks.add'], { appSpec: null });
    expect(move.stdout).toContain('Migrated 2 messages.');
    expect(await redis.size('celery')).toBe(1); // tasks.echo, not asked for, stays
    expect(queueSize(sb)).toBe(2);
    const worker = await startWorker(sb);
    expect(await sb.tasks.app.AsyncResult(sent[0]!.id).get({ timeout: 20 })).toBe(3);
    expect(await sb.tasks.app.AsyncResult(sent[2]!.id).get({ timeout: 20 })).toBe(42);
    await worker.stop();
    await client.close();
  });
});

describe('migrate to RabbitMQ', () => {
  it('moves Redis messages to a RabbitMQ vhost with -a: the source is empty, the messages as they were', async () => {
    const vhost = runId('cli-migrate');
    await createVhosts([vhost]);
    const source = redisUrl('to-amqp');
    const client = new Celery('client', { broker: source });
    const amqp = createTransport(vhostUrl(vhost));
    try {
      await client.sendTask('tasks.add', [1, 2], {}, { priority: 5 });
      await client.sendTask('tasks.echo', [], { when: 'now' }, { expires: 600 });
      const redis = await client.transport();
      const byId = (a: Delivery, b: Delivery) => String(a.message.headers.id).localeCompare(String(b.message.headers.id));
      const before = (await takeAll(redis, 'celery')).sort(byId);
      expect(before.map((d) => d.message.headers.task)).toEqual(expect.arrayContaining(['tasks.add', 'tasks.echo']));
      for (const d of before) await d.restore();
      const move = await runCli(sb, ['migrate', source, vhostUrl(vhost), '--ack-messages'], { appSpec: null });
      expect(move.stderr).toBe('');
      expect(move.stdout).toContain('Migrated 2 messages.');
      expect(await redis.size('celery')).toBe(0);
      const after = (await takeAll(amqp, 'celery')).sort(byId);
      expect(after.map(kept)).toEqual(before.map(kept));
      for (const d of after) await d.ack();
    } finally {
      await Promise.allSettled([client.close(), amqp.close()]);
      await deleteVhosts([vhost]);
    }
  });
});

describe('list bindings', () => {
  it("lists kombu's bindings on Redis, the default queue's included", async () => {
    const url = redisUrl('bindings');
    const app = new Celery('b', { broker: url });
    await (await app.transport()).declareQueue('images');
    const { stdout, code } = await runCli(sb, ['list', 'bindings', '-b', url], { appSpec: null });
    expect(code).toBe(0);
    const rows = stdout.trim().split('\n').map((l) => l.trim().split(/\s+/));
    expect(rows.slice(0, 2)).toEqual([['Queue', 'Exchange', 'Routing', 'Key'], ['-'.repeat(16), '-'.repeat(16), '-'.repeat(16)]]);
    expect(rows.slice(2)).toEqual([['celery', 'celery', 'celery'], ['images', 'images', 'images']]);
    await app.close();
    // RabbitMQ shows its bindings only to rabbitmqctl and its management plugin.
    const amqp = await runCli(sb, ['list', 'bindings', '-b', 'amqp://guest:guest@127.0.0.1:5672//'], { appSpec: null });
    expect(amqp.code).toBe(2);
    expect(amqp.stderr).toContain('cannot list bindings: RabbitMQ lists them with `rabbitmqctl list_bindings`');
  });
});

describe('configuration from CELERY_* variables', () => {
  const APP = './test/fixtures/env-app/app.ts';
  const envFor = (name: string) => ({
    ...process.env,
    CELERY_BROKER_URL: `redis://${REDIS_HOST}/${TRANSPORT_DB}`,
    CELERY_RESULT_BACKEND: `redis://${REDIS_HOST}/${RESULTS_DB}`,
    CELERY_BROKER_TRANSPORT_OPTIONS: JSON.stringify({ global_keyprefix: `${prefix}${name}:` }),
    CELERY_TASK_DEFAULT_QUEUE: 'envq',
    CELERY_RESULT_EXPIRES: '600',
  });

  it('a worker takes its broker, backend, transport options and queue from them, and runs what a Python client sends with the same variables', async () => {
    const env = envFor('env');
    const worker = startProcess({ ...sb, env }, ['worker', '-A', APP, '-l', 'INFO']);
    await worker.waitForLine(/ready\.$/, 30_000);
    expect(worker.output()).toContain(`.> transport:   redis://${REDIS_HOST}/${TRANSPORT_DB}`);
    expect(worker.output()).toMatch(/\.> envq +exchange=envq/);
    const py = await promisify(execFile)(PYTHON, [path.join(projectRoot, 'test/fixtures/env-app/send.py'), '20', '22'], { env, timeout: 40_000 });
    const [id, value] = py.stdout.trim().split('\n');
    results.add(id);
    expect(value).toBe('42');
    await worker.stop();
  }, 90_000);

  it('a bad value stops the worker at start with the variable named', async () => {
    const env = { ...envFor('bad'), CELERY_WORKER_CONCURRENCY: 'four' };
    const worker = startProcess({ ...sb, env }, ['worker', '-A', APP]);
    expect(await worker.exited).toEqual({ code: 2, signal: null });
    expect(worker.output()).toContain('environment variable CELERY_WORKER_CONCURRENCY="four": must be a number (at test/fixtures/env-app/app.ts:4:');
  });
});
