/**
 * RabbitMQ broker behaviour beyond the shared conformance suite, on the shared broker in a vhost
 * of its own: Celery's declarations, mismatching queues, priorities with queue_max_priority,
 * requeue position, dead letters, confirms, prefetch, routing, and the header-frame patch.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../src/errors.ts';
import type { Message } from '../../src/protocol/message.ts';
import { buildTaskMessage } from '../../src/protocol/task-message.ts';
import { AmqpTransport } from '../../src/transport/amqp/index.ts';
import { patchHeaderDecoding } from '../../src/transport/amqp/wire.ts';
import { createTransport } from '../../src/transport/registry.ts';
import type { Delivery, Transport } from '../../src/transport/types.ts';
import { closedPort } from '../helpers/connect-attempt.ts';
import { createVhosts, deleteVhosts, drain, rawChannel, runId, vhostUrl } from './helpers.ts';

const vhost = runId('transport');
const url = vhostUrl(vhost);
const open: Transport[] = [];
const warnings: string[] = [];
const logger = { warning: (m: string) => void warnings.push(m), info: (m: string) => void warnings.push(m) };

function make(query = ''): AmqpTransport {
  const t = createTransport(url + query, { logger }) as AmqpTransport;
  open.push(t);
  return t;
}
const task = (id: string, priority?: number, headers?: Record<string, unknown>): Message =>
  buildTaskMessage({ id, name: 'tasks.add', args: [1, 2], origin: 'test@host', replyTo: 'reply', priority, headers });
const ids = (ds: Delivery[]) => ds.map((d) => String(d.message.headers.id));

beforeAll(() => createVhosts([vhost]));
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
});
afterAll(() => deleteVhosts([vhost]));

describe('AMQP URLs', () => {
  it('reads host, port, vhost and credentials, and masks the password', () => {
    const t = new AmqpTransport(new URL('amqp://user:s%40cret@rabbit:5673/%2Fprod?heartbeat=10&queue_max_priority=10'));
    expect(t.url).toBe('amqp://user:**@rabbit:5673/%2Fprod?heartbeat=10&queue_max_priority=10');
    expect(t.settings.connect).toMatchObject({ protocol: 'amqp', hostname: 'rabbit', port: 5673, username: 'user', password: 's@cret', vhost: '/prod', heartbeat: 10 });
    expect(t.settings.maxPriority).toBe(10);
    expect(new AmqpTransport(new URL('amqp://h//')).settings.connect).toMatchObject({ vhost: '/', port: 5672, username: 'guest', password: 'guest' });
    expect(new AmqpTransport(new URL('amqp://h')).settings.connect.vhost).toBe('/');
    expect(new AmqpTransport(new URL('amqps://h/v')).settings).toMatchObject({ connect: { protocol: 'amqps', port: 5671, vhost: 'v' }, socket: { rejectUnauthorized: true, servername: 'h' } });
    expect(new AmqpTransport(new URL('amqp://h//?ssl=true')).settings).toMatchObject({ connect: { protocol: 'amqps', port: 5671 }, socket: { rejectUnauthorized: true } });
    expect(new AmqpTransport(new URL('amqp://h:5672//'), { ssl: false }).settings.connect.protocol).toBe('amqp');
    expect(new AmqpTransport(new URL('amqps://h//'), { ssl_cert_reqs: 0 }).settings.socket.rejectUnauthorized).toBe(false); // ssl.CERT_NONE
    expect(() => new AmqpTransport(new URL('amqps://h//'), { ssl_cert_reqs: 7 })).toThrow(ConfigurationError);
    expect(() => new AmqpTransport(new URL('amqp://h//?ssl=maybe'))).toThrow(new ConfigurationError('transport option ssl must be true or false, not "maybe"'));
    expect(() => new AmqpTransport(new URL('amqp://h/?queue_max_priority=x'))).toThrow(ConfigurationError);
    expect(() => createTransport('amqp://user:secret@')).toThrow(/^(?!.*secret)/);
  });
});

describe('AMQP broker unreachable', () => {
  it('fetch rejects at once with a clear error; a publish before any connection fails with the reason of the attempt', async () => {
    const port = await closedPort();
    const t = createTransport(`amqp://guest:secret@127.0.0.1:${port}//?publish_timeout=0.5`, { logger: { warning: () => undefined, info: () => undefined } });
    open.push(t);
    await expect(t.fetch(['q'], 1, 1000)).rejects.toThrow(new RegExp(`^AMQP broker amqp://guest:\\*\\*@127\\.0\\.0\\.1:${port}//\\?publish_timeout=0\\.5 unreachable \\(connect ECONNREFUSED .*\\); reconnecting$`));
    await expect(t.publish('q', task('a'))).rejects.toThrow(new RegExp(`^Cannot connect to amqp://guest:\\*\\*@127\\.0\\.0\\.1:${port}//\\?publish_timeout=0\\.5: connect ECONNREFUSED 127\\.0\\.0\\.1:${port}$`));
  });
});

describe('AMQP transport', () => {
  it("declares Celery's entities: durable direct exchange named like the queue, durable queue, binding", async () => {
    const t = make();
    await t.declareQueue('tasks');
    const { ch, close } = await rawChannel(url);
    try {
      // Re-declaring what Celery declares succeeds only if every setting is equivalent.
      await ch.assertExchange('tasks', 'direct', { durable: true, autoDelete: false });
      expect(await ch.assertQueue('tasks', { durable: true, autoDelete: false, exclusive: false })).toMatchObject({ messageCount: 0 });
      ch.publish('tasks', 'tasks', Buffer.from('[]'), { contentType: 'application/json' });
      await ch.checkQueue('tasks');
      expect(await t.size('tasks')).toBe(1);
      expect(await t.purge('tasks')).toBe(1);
    } finally {
      await close();
    }
    expect(warnings).toEqual([]);
  });

  it('uses a queue that exists with other arguments as it is, with a warning naming the mismatch', async () => {
    const { ch, close } = await rawChannel(url);
    await ch.assertQueue('prio', { durable: true, arguments: { 'x-max-priority': 10 } });
    await close();
    const t = make();
    await t.declareQueue('prio');
    expect(warnings.splice(0)).toEqual([expect.stringMatching(/queue "prio" \(durable, no arguments\) exists with other settings \(inequivalent arg 'x-max-priority'.*\); using the existing one/)]);
    await t.publish('prio', task('a', 1));
    await t.publish('prio', task('b', 9));
    expect(ids(await t.fetch(['prio'], 10, 0))).toEqual(['b', 'a']); // the queue's own priorities apply
  });

  it('consumes a quorum queue declared by someone else (no global QoS there), after one reconnection', async () => {
    const { ch, close } = await rawChannel(url);
    await ch.assertQueue('quorum', { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    await close();
    const t = make();
    await t.publish('quorum', task('a'));
    await expect(t.fetch(['quorum'], 1, 1000)).rejects.toThrow(/connection lost while fetching/); // RabbitMQ closes the connection (540)
    let got: Delivery[] = [];
    for (let i = 0; i < 50 && got.length === 0; i++) {
      got = await t.fetch(['quorum'], 1, 200).catch(() => []); // rejects while reconnecting
      if (got.length === 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(ids(got)).toEqual(['a']);
    await got[0]!.ack();
    const logged = warnings.splice(0);
    expect(logged).toHaveLength(4);
    expect(logged).toEqual(expect.arrayContaining([
      expect.stringMatching(/queue "quorum" \(durable, no arguments\) exists with other settings \(inequivalent arg 'x-queue-type'/),
      expect.stringMatching(/connection lost \(.*does not support global qos/),
      expect.stringMatching(/queue "quorum" does not support global QoS .* prefetch is set per consumer from now on/),
      expect.stringMatching(/reconnected/),
    ]));
  });

  it('declares x-max-priority with queue_max_priority, and RabbitMQ then delivers higher priorities first', async () => {
    const t = make('?queue_max_priority=10');
    await t.declareQueue('pq');
    for (const [id, p] of [['p0', 0], ['p9', 9], ['p5', 5], ['none', undefined], ['p9b', 9]] as const) await t.publish('pq', task(id, p));
    expect(ids(await t.fetch(['pq'], 10, 0))).toEqual(['p9', 'p9b', 'p5', 'p0', 'none']);
    expect(warnings).toEqual([]);
  });

  it('reject with requeue and restore put the message back at its original position, marked redelivered', async () => {
    const t = make();
    for (const id of ['a', 'b', 'c']) await t.publish('rq', task(id));
    const [a] = await t.fetch(['rq'], 1, 0);
    await a!.reject(true);
    const again = await t.fetch(['rq'], 10, 0);
    expect(ids(again)).toEqual(['a', 'b', 'c']);
    expect(again.map((d) => d.info.redelivered)).toEqual([true, false, false]);
    await again[0]!.ack();
    await again[2]!.restore();
    await again[1]!.restore();
    const last = await t.fetch(['rq'], 10, 0);
    expect(ids(last)).toEqual(['b', 'c']);
    expect(last.map((d) => d.info.redelivered)).toEqual([true, true]);
  });

  it('acks of one turn go out together, yet never acknowledge a message still held', async () => {
    const t = make();
    for (let i = 0; i < 8; i++) await t.publish('aq', task(`m${i}`));
    // A fetch that does not wait returns all the broker already pushed (a waiting one returns
    // at the first arrival, which may be part of them).
    const got = await t.fetch(['aq'], 8, 0);
    expect(ids(got)).toHaveLength(8);
    // m0-m2 and m4-m6 acked in one turn, in any order; m3 and m7 stay held.
    await Promise.all([2, 0, 1, 6, 4, 5].map((i) => got[i]!.ack()));
    await t.close();
    const next = make();
    const again = await next.fetch(['aq'], 8, 1000);
    if (again.length < 2) again.push(...(await next.fetch(['aq'], 8, 1000)));
    expect(ids(again).sort()).toEqual(['m3', 'm7']);
    expect(again.every((d) => d.info.redelivered)).toBe(true);
  });

  it('reject without requeue keeps the message, headers intact, in <queue>.celeriac.dead with the reason', async () => {
    const t = make();
    await t.publish('dq', task('a', undefined, { big: 2 ** 40, f: 1.5 }));
    const [a] = await t.fetch(['dq'], 1, 0);
    await a!.reject(false, 'bad input');
    expect(await t.size('dq')).toBe(0);
    expect(await t.size('dq.celeriac.dead')).toBe(1);
    const [dead] = await drain(url, 'dq.celeriac.dead');
    expect(dead!.properties.headers).toMatchObject({ id: 'a', 'x-celeriac-reason': 'bad input', big: 2 ** 40, f: 1.5, timelimit: [null, null] });
    expect(dead!.properties).toMatchObject({ contentType: 'application/json', deliveryMode: 2, correlationId: 'a' });
    expect(dead!.content.toString()).toBe(task('a').body.toString());
  });

  it('resolves publish only once confirmed: a confirmed message is in the queue', async () => {
    const t = make();
    await Promise.all(Array.from({ length: 50 }, (_, i) => t.publish('cq', task(`m${i}`))));
    expect(await t.size('cq')).toBe(50);
    expect(await t.purge('cq')).toBe(50);
    expect(await t.size('never-declared')).toBe(0);
    expect(await t.purge('never-declared')).toBe(0);
  });

  it('buffers no more than the caller holds plus asks for (prefetch), so other consumers get the rest', async () => {
    const t = make();
    const other = make();
    for (let i = 0; i < 6; i++) await t.publish('pf', task(`m${i}`));
    const first = await t.fetch(['pf'], 2, 0);
    expect(ids(first)).toEqual(['m0', 'm1']);
    expect(await t.size('pf')).toBe(4);
    expect(ids(await other.fetch(['pf'], 3, 0))).toEqual(['m2', 'm3', 'm4']);
    // Still holding two: asking for one more raises the prefetch to three (as Celery does for ETA tasks).
    expect(ids(await t.fetch(['pf'], 1, 1000))).toEqual(['m5']);
    expect(first.map((d) => d.deliveryTag)).toEqual([expect.stringMatching(/^\d+\.1$/), expect.stringMatching(/^\d+\.2$/)]);
  });

  it('routes through another exchange by binding the queue; on the default exchange the routing key is the queue', async () => {
    const t = make();
    await t.publish('rt', task('a'), { exchange: 'custom', routingKey: 'rk.a' });
    await t.publish('rt', task('b'), { exchange: '', routingKey: 'ignored' });
    const got = await t.fetch(['rt'], 10, 0);
    expect(got.map((d) => [d.message.headers.id, d.info.exchange, d.info.routingKey])).toEqual([['a', 'custom', 'rk.a'], ['b', '', 'rt']]);
  });

  it('consumes only the queues of the latest fetch', async () => {
    const t = make();
    await t.publish('qa', task('a1'));
    await t.publish('qb', task('b1'));
    expect(ids(await t.fetch(['qa', 'qb'], 10, 0)).sort()).toEqual(['a1', 'b1']);
    await t.publish('qa', task('a2'));
    await t.publish('qc', task('c1'));
    expect(ids(await t.fetch(['qc'], 10, 0))).toEqual(['c1']);
    expect(await t.size('qa')).toBe(1); // no longer consumed, so not taken
  });

  it('declares and consumes a queue again after it was deleted under its consumer', async () => {
    const t = make();
    await t.publish('gone', task('a'));
    expect(ids(await t.fetch(['gone'], 1, 0))).toEqual(['a']);
    const { ch, close } = await rawChannel(url);
    await ch.deleteQueue('gone'); // RabbitMQ cancels our consumer
    await close();
    await new Promise((r) => setTimeout(r, 50));
    expect(await t.fetch(['gone'], 1, 0)).toEqual([]);
    const producer = make();
    await producer.publish('gone', task('b'));
    expect(ids(await t.fetch(['gone'], 1, 2000))).toEqual(['b']);
  });
});

describe('AMQP header frames', () => {
  /** A basic content-header frame whose header table holds one value: `tag` followed by `bytes`. */
  function headerFrame(tag: string, bytes: number[]): Buffer {
    const key = Buffer.from('k');
    const table = Buffer.concat([Buffer.from([key.length]), key, Buffer.from(tag), Buffer.from(bytes)]);
    const ct = Buffer.from('application/json');
    const payload = Buffer.alloc(14);
    payload.writeUInt16BE(60, 0);
    payload.writeUInt16BE(0xa000, 12); // content-type + headers
    const tableLen = Buffer.alloc(4);
    tableLen.writeUInt32BE(table.length);
    const body = Buffer.concat([payload, Buffer.from([ct.length]), ct, tableLen, table]);
    const head = Buffer.alloc(7);
    head.writeUInt8(2, 0);
    head.writeUInt16BE(1, 1);
    head.writeUInt32BE(body.length, 3);
    return Buffer.concat([head, body, Buffer.from([0xce])]);
  }
  function decode(frame: Buffer): Record<string | symbol, unknown> {
    const conn = { rest: frame, stream: { read: () => null }, recvSinceLastCheck: false, recvFrame: (): unknown => false };
    patchHeaderDecoding({ connection: conn } as never);
    return (conn.recvFrame() as { fields: Record<string | symbol, unknown> }).fields;
  }

  it("reads py-amqp's signed 64-bit tag L, which amqplib alone cannot", () => {
    const fields = decode(headerFrame('L', [0xff, 0xff, 0xff, 0x00, 0, 0, 0, 0]));
    expect(fields).toMatchObject({ contentType: 'application/json', headers: { k: -(2 ** 40) } });
  });

  it('turns a header table it cannot read into a marked message instead of a broken connection', () => {
    const fields = decode(headerFrame('Z', [1, 2, 3]));
    expect(fields.contentType).toBe('application/json');
    const headers = fields.headers as Record<symbol, unknown>;
    expect(Object.getOwnPropertySymbols(headers).map((s) => headers[s])).toEqual(['unknown field type "Z"']);
  });
});
