/**
 * A RabbitMQ restart under load, on a private broker started for this file: every publish that
 * resolved (confirmed) is consumed afterwards, publishes in flight wait for the broker and then
 * resolve, fetches fail with a clear error while it is down, consumers resume on their own, and
 * a delivery of the lost connection settles as a no-op and comes back.
 */
import { afterAll, beforeAll, expect, it, onTestFailed } from 'vitest';
import { buildTaskMessage } from '../../src/protocol/task-message.ts';
import { createTransport } from '../../src/transport/registry.ts';
import type { Transport } from '../../src/transport/types.ts';
import { cuttableProxy, type PrivateRabbit, privateRabbit } from './helpers.ts';

let rabbit: PrivateRabbit;
const open: Transport[] = [];
const logs: string[] = [];
const logger = { warning: (m: string) => void logs.push(m), info: (m: string) => void logs.push(m) };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const task = (id: string) => buildTaskMessage({ id, name: 'tasks.add', args: [1, 2], origin: 'test@host', replyTo: 'reply' });

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function make(query = ''): Transport {
  const t = createTransport(rabbit.url + query, { logger });
  open.push(t);
  return t;
}

beforeAll(async () => {
  rabbit = await privateRabbit();
}, 60_000);

afterAll(async () => {
  await Promise.all(open.map((t) => t.close()));
  await rabbit?.destroy();
}, 60_000);

it('loses no confirmed message across a broker restart, and consumers resume', async () => {
  const producer = make('?publish_timeout=60'); // the restart takes ~10 s on a busy machine
  const consumer = make();
  const holder = make();
  await consumer.declareQueue('load');
  await holder.publish('held', task('held-1'));
  const [held] = await holder.fetch(['held'], 1, 5000);
  expect(held!.deliveryTag).toMatch(/^1\.1$/);

  const confirmed = new Set<string>();
  const received = new Set<string>();
  const fetchErrors: string[] = [];
  const stop = new AbortController();
  const consuming = consumeLoop(consumer, 'load', stop.signal, received, fetchErrors);
  onTestFailed(() => console.log('broker restart test failed; transport log:', logs, 'first fetch errors:', fetchErrors.slice(0, 5), 'confirmed', confirmed.size, 'received', received.size));
  const producing = (async () => {
    for (let i = 0; i < 600 && !stop.signal.aborted; i++) {
      await producer.publish('load', task(`m${i}`)); // resolves once confirmed
      confirmed.add(`m${i}`);
    }
  })();
  try {
    await until(() => confirmed.size >= 150, 20_000, '150 confirmed publishes');
    await rabbit.stop();
    const confirmedBeforeStop = confirmed.size;
    await sleep(300);
    expect(confirmed.size - confirmedBeforeStop).toBeLessThanOrEqual(1); // nothing is confirmed while it is down
    await held!.ack(); // its connection is gone: a no-op, RabbitMQ keeps the message
    await rabbit.start();
    await producing;
    await until(() => received.size === 600, 30_000, 'every confirmed message to be consumed');
  } finally {
    stop.abort();
    await Promise.allSettled([consuming, producing]);
  }
  expect([...confirmed].filter((id) => !received.has(id))).toEqual([]);
  expect(fetchErrors.length).toBeGreaterThan(0);
  expect(fetchErrors.filter((m) => !/^AMQP broker amqp:\/\/guest:\*\*@127\.0\.0\.1:\d+\/\/(:| unreachable) .*reconnecting$/.test(m))).toEqual([]);

  const [again] = await holder.fetch(['held'], 1, 5000);
  expect(again!.message.headers.id).toBe('held-1');
  expect(again!.deliveryTag).toMatch(/^2\.\d+$/); // tags of the new connection cannot be confused with old ones
  await again!.ack();

  // One "lost" and one "reconnected" line per transport, not one per retry.
  expect(logs.filter((l) => /connection lost/.test(l))).toHaveLength(3);
  expect(logs.filter((l) => /reconnected/.test(l))).toHaveLength(3);
}, 90_000);

/** Fetch and ack until stopped, as a worker does; fetch errors are recorded and retried. */
async function consumeLoop(t: Transport, queue: string, stop: AbortSignal, received: Set<string>, errors: string[]): Promise<void> {
  while (!stop.aborted) {
    try {
      for (const d of await t.fetch([queue], 20, 200, stop)) {
        received.add(String(d.message.headers.id));
        await d.ack();
      }
    } catch (err) {
      errors.push((err as Error).message);
      await sleep(200); // the worker waits 1 s
    }
  }
}

it('recovers from a cut connection (no AMQP close, connection reset): consumers resume, nothing confirmed is lost', async () => {
  const proxy = await cuttableProxy(rabbit.port);
  const logsBefore = logs.length;
  const url = `amqp://guest:guest@127.0.0.1:${proxy.port}//`;
  const producer = createTransport(url, { logger });
  const consumer = createTransport(url, { logger });
  open.push(producer, consumer);
  await consumer.declareQueue('cut');
  const received = new Set<string>();
  const stop = new AbortController();
  const consuming = consumeLoop(consumer, 'cut', stop.signal, received, []);
  const confirmed: string[] = [];
  try {
    for (let i = 0; i < 200; i++) {
      if (i === 100) proxy.cut(500);
      await producer.publish('cut', task(`c${i}`));
      confirmed.push(`c${i}`);
    }
    await until(() => confirmed.every((id) => received.has(id)), 20_000, 'every confirmed message to be consumed');
  } finally {
    stop.abort();
    await consuming;
    await proxy.close();
  }
  const mine = logs.slice(logsBefore);
  expect(mine.filter((l) => /connection lost \(((read|write) ECONNRESET|Unexpected close)\); reconnecting$/.test(l))).toHaveLength(2);
  expect(mine.filter((l) => /reconnected$/.test(l))).toHaveLength(2);
}, 30_000);
