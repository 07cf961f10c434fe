import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigurationError } from '../src/errors.ts';
import type { Message } from '../src/protocol/message.ts';
import { buildTaskMessage } from '../src/protocol/task-message.ts';
import { MemoryTransport } from '../src/transport/memory/index.ts';
import { createTransport } from '../src/transport/registry.ts';
import { maskUrl } from '../src/transport/sqlite/db.ts';
import type { Delivery, ExchangeSpec, Subscription, Transport } from '../src/transport/types.ts';
import { amqpConformanceKind } from './amqp/helpers.ts';
import { redisConformanceKind } from './redis/helpers.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'celeriac-conformance-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
let seq = 0;

interface Kind {
  name: string;
  /** A fresh, isolated broker URL. */
  newUrl(): string;
  deadLetters(t: Transport): { reason: string | null }[] | Promise<{ reason: string | null }[]>;
  /** Test name → why this broker deliberately behaves differently. */
  skip?: Record<string, string>;
  cleanup?: () => Promise<void>;
}

const kinds: Kind[] = [
  {
    name: 'memory',
    newUrl: () => `memory://conformance-${seq++}`,
    deadLetters: (t) => [...(t as MemoryTransport).deadLetters],
  },
  {
    name: 'sqlite',
    newUrl: () => `sqlite:///${path.join(dir, `broker-${seq++}.db`)}`,
    deadLetters: (t) => {
      const db = new Database((t as unknown as { file: string }).file, { readonly: true });
      try {
        return db.prepare('SELECT reason FROM celeriac_dead_letters ORDER BY id').all() as { reason: string | null }[];
      } finally {
        db.close();
      }
    },
  },
  redisConformanceKind(),
  amqpConformanceKind(),
];

function task(id: string, priority?: number): Message {
  return buildTaskMessage({ id, name: 'tasks.add', args: [1, 2], origin: 'test@host', replyTo: 'reply', priority });
}

const ids = (ds: Delivery[]): string[] => ds.map((d) => String(d.message.headers.id));

describe.each(kinds)('$name transport conformance', (kind) => {
  const open: Transport[] = [];
  const make = (url = kind.newUrl()): Transport => {
    const t = createTransport(url);
    open.push(t);
    return t;
  };
  afterEach(async () => {
    await Promise.all(open.splice(0).map((t) => t.close()));
  });
  beforeEach((ctx) => {
    const reason = kind.skip?.[ctx.task.name];
    if (reason) ctx.skip(reason);
  });
  afterAll(() => kind.cleanup?.());

  it('publishes, fetches and acks', async () => {
    const t = make();
    await t.declareQueue('q');
    await t.publish('q', task('a'), { exchange: 'ex', routingKey: 'rk' });
    expect(await t.size('q')).toBe(1);
    const [d, ...rest] = await t.fetch(['q'], 10, 1000);
    expect(rest).toEqual([]);
    expect(d!.message.headers.id).toBe('a');
    expect(d!.message.body.toString()).toBe(task('a').body.toString());
    expect(d!.info).toMatchObject({ exchange: 'ex', routingKey: 'rk', redelivered: false });
    expect(d!.queue).toBe('q');
    expect(typeof d!.deliveryTag).toBe('string');
    expect(await t.size('q')).toBe(0);
    await d!.ack();
    await d!.ack(); // settling twice is a no-op
    expect(await t.fetch(['q'], 10, 0)).toEqual([]);
  });

  it('delivers higher priorities first', async () => {
    const t = make();
    for (const [id, p] of [['p0', 0], ['p9', 9], ['p5', 5], ['p9b', 9], ['none', undefined], ['p20', 20]] as const) {
      await t.publish('q', task(id, p));
    }
    expect(ids(await t.fetch(['q'], 10, 0))).toEqual(['p20', 'p9', 'p9b', 'p5', 'p0', 'none']);
  });

  it('is FIFO within a priority, across fetches', async () => {
    const t = make();
    const sent = Array.from({ length: 25 }, (_, i) => `m${i}`);
    await Promise.all(sent.map((id) => t.publish('q', task(id))));
    const got: string[] = [];
    for (let batch; (batch = await t.fetch(['q'], 7, 0)).length > 0;) {
      got.push(...ids(batch));
      await Promise.all(batch.map((d) => d.ack()));
    }
    expect(got).toEqual(sent);
  });

  it('reject with requeue puts the message at the back, marked redelivered', async () => {
    const t = make();
    for (const id of ['a', 'b', 'c']) await t.publish('q', task(id));
    const [a] = await t.fetch(['q'], 1, 0);
    await a!.reject(true);
    const again = await t.fetch(['q'], 10, 0);
    expect(ids(again)).toEqual(['b', 'c', 'a']);
    expect(again.map((d) => d.info.redelivered)).toEqual([false, false, true]);
  });

  it('reject without requeue keeps a dead letter', async () => {
    const t = make();
    await t.publish('q', task('a'));
    const [a] = await t.fetch(['q'], 1, 0);
    await a!.reject(false, 'bad input');
    expect(await t.size('q')).toBe(0);
    expect(await t.fetch(['q'], 1, 0)).toEqual([]);
    expect(t.capabilities.deadLetters).toBe(true);
    expect(await kind.deadLetters(t)).toEqual([expect.objectContaining({ reason: 'bad input' })]);
  });

  it('restore puts the message back at the front', async () => {
    const t = make();
    for (const id of ['a', 'b']) await t.publish('q', task(id));
    const [a] = await t.fetch(['q'], 1, 0);
    await a!.restore();
    expect(ids(await t.fetch(['q'], 10, 0))).toEqual(['a', 'b']);
  });

  it('fetch resolves [] after its timeout', async () => {
    const t = make();
    const start = Date.now();
    expect(await t.fetch(['q'], 5, 150)).toEqual([]);
    expect(Date.now() - start).toBeGreaterThanOrEqual(140);
  });

  it('fetch resolves [] when its signal aborts', async () => {
    const t = make();
    const ac = new AbortController();
    const start = Date.now();
    setTimeout(() => ac.abort(), 50);
    expect(await t.fetch(['q'], 5, 10_000, ac.signal)).toEqual([]);
    expect(Date.now() - start).toBeLessThan(2000);
    expect(await t.fetch(['q'], 5, 10_000, ac.signal)).toEqual([]); // already aborted
  });

  it('a waiting fetch wakes up for a message published by another instance', async () => {
    const url = kind.newUrl();
    const consumer = make(url);
    const producer = make(url);
    await consumer.declareQueue('q');
    const start = Date.now();
    const pending = consumer.fetch(['q'], 5, 10_000);
    setTimeout(() => void producer.publish('q', task('late')), 100);
    expect(ids(await pending)).toEqual(['late']);
    expect(Date.now() - start).toBeLessThan(2000);
  });

  it('purges and sizes ready messages only', async () => {
    const t = make();
    for (const id of ['a', 'b', 'c', 'd']) await t.publish('q', task(id));
    await t.publish('other', task('x'));
    const [held] = await t.fetch(['q'], 1, 0);
    expect(await t.size('q')).toBe(3);
    expect(await t.purge('q')).toBe(3);
    expect(await t.size('q')).toBe(0);
    expect(await t.size('other')).toBe(1);
    expect(await t.size('never-declared')).toBe(0);
    await held!.reject(true);
    expect(await t.size('q')).toBe(1);
  });

  it('fetches from several queues, best priority first, and only from those queues', async () => {
    const t = make();
    await t.publish('a', task('a1'));
    await t.publish('b', task('b1', 5));
    await t.publish('a', task('a2'));
    await t.publish('c', task('c1', 9));
    expect(ids(await t.fetch(['a', 'b', 'a'], 10, 0))).toEqual(['b1', 'a1', 'a2']);
    expect(ids(await t.fetch(['c'], 10, 0))).toEqual(['c1']);
  });

  it('gives unsettled deliveries back when closed', async () => {
    const url = kind.newUrl();
    const first = createTransport(url);
    await first.publish('q', task('a'));
    const [d] = await first.fetch(['q'], 1, 0);
    await first.close();
    const second = make(url);
    const [again] = await second.fetch(['q'], 1, 1000);
    expect(again!.message.headers.id).toBe('a');
    expect(again!.info.redelivered).toBe(true);
    expect(d).toBeDefined();
  });

  describe('exchanges (fanout, topic, direct)', () => {
    const fanout: ExchangeSpec = { name: 'conf.fanout', type: 'fanout', durable: false };
    const topic: ExchangeSpec = { name: 'conf.topic', type: 'topic', durable: false };
    const direct: ExchangeSpec = { name: 'conf.direct', type: 'direct', durable: false };
    const note = (text: string): Message => ({ headers: { text }, properties: { delivery_mode: 1 }, contentType: 'application/json', contentEncoding: 'utf-8', body: Buffer.from(JSON.stringify(text)) });
    const subs: Subscription[] = [];
    afterEach(async () => {
      await Promise.all(subs.splice(0).map((s) => s.close()));
    });
    async function listen(t: Transport, exchange: ExchangeSpec, bindingKey = '', queue = `conf.${randomUUID()}`): Promise<string[]> {
      const got: string[] = [];
      subs.push(await t.broadcast!.subscribe({ exchange, bindingKey, queue, messageTtlMs: 60_000, expiresMs: 60_000 }, (m, rk) => void got.push(`${String(m.headers.text)}@${rk}`)));
      return got;
    }
    async function until(check: () => boolean): Promise<void> {
      const deadline = Date.now() + 5000;
      while (!check()) {
        if (Date.now() > deadline) throw new Error('condition not met in time');
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    /** A last message through the same binding: what had to arrive before it has. */
    async function settle(t: Transport, got: string[], exchange = fanout, key = ''): Promise<void> {
      await t.broadcast!.publishExchange(exchange, key, note('end'));
      await until(() => got.some((g) => g.startsWith('end@')));
    }
    const before = (got: string[]) => got.filter((g) => !g.startsWith('end@'));

    it('fanout: every subscriber gets each message once, in order, and only what was published after it subscribed', async () => {
      const t = make();
      const first = await listen(t, fanout);
      await t.broadcast!.publishExchange(fanout, '', note('m1'));
      await until(() => first.length === 1);
      const second = await listen(t, fanout);
      await t.broadcast!.publishExchange(fanout, '', note('m2'));
      await t.broadcast!.publishExchange(fanout, '', note('m3'));
      await until(() => first.length === 3 && second.length === 2);
      await settle(t, second);
      expect(before(first).map((g) => g.split('@')[0])).toEqual(['m1', 'm2', 'm3']);
      expect(before(second).map((g) => g.split('@')[0])).toEqual(['m2', 'm3']);
    });

    it('fanout reaches subscribers of another connection (another process on the same broker)', async () => {
      const url = kind.newUrl();
      const publisher = make(url);
      const subscriber = make(url);
      const got = await listen(subscriber, fanout);
      const start = Date.now();
      await publisher.broadcast!.publishExchange(fanout, '', note('far'));
      await until(() => got.length === 1);
      expect(got[0]!.split('@')[0]).toBe('far');
      expect(Date.now() - start).toBeLessThan(2000);
    });

    it('topic: a subscriber gets what its pattern matches, with the routing key', async () => {
      const t = make();
      const workers = await listen(t, topic, 'worker.#');
      const all = await listen(t, topic, '#');
      for (const rk of ['worker.heartbeat', 'task.succeeded', 'worker.online']) await t.broadcast!.publishExchange(topic, rk, note(rk));
      await until(() => all.length === 3);
      await settle(t, workers, topic, 'worker.end');
      expect(before(workers)).toEqual(['worker.heartbeat@worker.heartbeat', 'worker.online@worker.online']);
      expect(before(all)).toEqual(['worker.heartbeat@worker.heartbeat', 'task.succeeded@task.succeeded', 'worker.online@worker.online']);
    });

    it('direct: a reply queue gets only its routing key; a closed one gets nothing more', async () => {
      const t = make();
      const mine = await listen(t, direct, 'client-a', 'client-a.reply');
      const other = await listen(t, direct, 'client-b', 'client-b.reply');
      await t.broadcast!.publishExchange(direct, 'client-a', note('for-a'));
      await t.broadcast!.publishExchange(direct, 'nobody', note('lost'));
      await t.broadcast!.publishExchange(direct, 'client-b', note('for-b'));
      await until(() => mine.length === 1 && other.length === 1);
      expect(mine).toEqual(['for-a@client-a']);
      expect(other).toEqual(['for-b@client-b']);
      await subs.shift()!.close();
      await t.broadcast!.publishExchange(direct, 'client-a', note('late'));
      await settle(t, other, direct, 'client-b');
      expect(before(other)).toEqual(['for-b@client-b']);
      expect(mine).toEqual(['for-a@client-a']);
    });
  });
});

describe('transport registry', () => {
  it('rejects unknown schemes, naming the supported ones', () => {
    const err = (() => {
      try {
        createTransport('kafka://localhost:9092');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ConfigurationError);
    expect(String((err as Error).message)).toMatch(/"kafka".*memory:\/\/.*sqlite:\/\/.*redis:\/\//);
    expect(() => createTransport('not a url')).toThrow(ConfigurationError);
  });

  it('masks passwords in url', async () => {
    expect(maskUrl(new URL('sqlite://user:secret@host/x.db'))).toBe('sqlite://user:**@host/x.db');
    expect(maskUrl(new URL('sqlite:///x.db?visibility_timeout=5'))).toBe('sqlite:///x.db?visibility_timeout=5');
    const m = createTransport('memory://user:secret@box');
    expect(m.url).toBe('memory://box');
    await m.close();
    expect(() => createTransport('redis://user:secret@')).toThrow(/^(?!.*secret)/);
  });
});
