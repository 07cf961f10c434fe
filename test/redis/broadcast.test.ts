/**
 * Exchanges on Redis (src/transport/redis/broadcast.ts) as kombu has them: channel names, bytes
 * and bindings checked against the Celery 5.2 captures, then with real Python Celery 5.2:
 * a celeriac Mailbox pings a Python worker, `celery inspect ping` reaches a celeriac Worker, and
 * celeriac's event receiver gets a Python worker's heartbeats and task events.
 *
 * TEST_DB, with a key prefix unique to the run, so pub/sub channels are private too (the `celery`
 * command line gets its prefix from the app module, test/redis/py/ixtasks.py).
 */
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Celery } from '../../src/index.ts';
import { Mailbox } from '../../src/control/mailbox.ts';
import { PIDBOX_EXCHANGE, REPLY_EXCHANGE, replyQueue } from '../../src/control/pidbox.ts';
import { EVENT_EXCHANGE, type CeleryEvent } from '../../src/events/event.ts';
import { receiveEvents } from '../../src/events/receiver.ts';
import { fromEnvelope } from '../../src/protocol/envelope.ts';
import { loads } from '../../src/protocol/json.ts';
import type { Message } from '../../src/protocol/message.ts';
import { RedisTransport } from '../../src/transport/redis/index.ts';
import { fanoutPrefix, KombuKeys } from '../../src/transport/redis/keys.ts';
import type { ExchangeSpec, Subscription } from '../../src/transport/types.ts';
import { createLogger } from '../../src/common/log.ts';
import { Worker } from '../../src/worker/worker.ts';
import { loadFixture } from '../helpers/fixtures.ts';
import { celeryPython, deleteByPrefix, PY_DIR, type Proc, REDIS_HOST, redisClient, runPrefix, startPythonWorker, TEST_DB } from './helpers.ts';

const SEP = '\x06\x16';
const DB = TEST_DB;
const prefix = runPrefix('broadcast');
const brokerUrl = `redis://${REDIS_HOST}/${DB}?global_keyprefix=${encodeURIComponent(prefix)}`;
const raw = redisClient(DB);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const transports: RedisTransport[] = [];
const transport = () => {
  const t = new RedisTransport(new URL(brokerUrl));
  transports.push(t);
  return t;
};
const withTag = (envelope: string, tag: string) => envelope.replace(/"delivery_tag": "[^"]*"/, `"delivery_tag": "${tag}"`);
const tagOf = (envelope: string) => (JSON.parse(envelope) as { properties: { delivery_tag: string } }).properties.delivery_tag;

/** Every PUBLISH under our prefix, as a raw subscriber sees it. */
async function capture(pattern = `${prefix}*`): Promise<{ got: { channel: string; data: string }[]; close: () => void }> {
  const sub = redisClient(DB);
  const got: { channel: string; data: string }[] = [];
  sub.on('pmessage', (_p: string, channel: string, data: string) => got.push({ channel, data }));
  await sub.psubscribe(pattern);
  return { got, close: () => sub.disconnect() };
}

async function until<T>(what: string, read: () => T | undefined | Promise<T | undefined>, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

afterAll(async () => {
  await Promise.all(transports.map((t) => t.close()));
  raw.disconnect();
  await deleteByPrefix(DB, prefix);
});

describe('kombu names and bytes', () => {
  it('names channels and patterns as kombu (fixtures redis-monitor-*.json, REFERENCE.md §2.6/§2.7)', () => {
    const k = new KombuKeys('', undefined, undefined, fanoutPrefix(undefined, 0));
    expect(k.channel('celeryev', 'worker.heartbeat')).toBe('/0.celeryev/worker.heartbeat');
    expect(k.channel('celeryev', 'task.multi')).toBe('/0.celeryev/task.multi');
    expect(k.channel('celery.pidbox', '')).toBe('/0.celery.pidbox');
    expect(k.pattern('celery.pidbox', '')).toBe('/0.celery.pidbox');
    expect(k.pattern('celeryev', 'worker.#')).toBe('/0.celeryev/worker.*');
    expect(k.pattern('celeryev', '#')).toBe('/0.celeryev/*');
    expect(k.routingKeyOf('celeryev', '/0.celeryev/worker.heartbeat')).toBe('worker.heartbeat');
    expect(k.routingKeyOf('celery.pidbox', '/0.celery.pidbox')).toBe('');
    const w = new KombuKeys('wirepfx:', undefined, undefined, fanoutPrefix(true, 6));
    expect(w.channel('celeryev', 'worker.online')).toBe('wirepfx:/6.celeryev/worker.online');
    expect(w.pattern('celery.pidbox', '')).toBe('wirepfx:/6.celery.pidbox');
    expect(new KombuKeys('', undefined, undefined, fanoutPrefix('false', 2)).channel('celeryev', 'x.y')).toBe('celeryev/x.y');
    expect(new KombuKeys('', undefined, undefined, '/1.', false).channel('celeryev', 'x.y')).toBe('/1.celeryev');
    // The broker URL's database goes into the channel name.
    const t = new RedisTransport(new URL('redis://127.0.0.1:6379/0'));
    expect(t.keys.channel('celeryev', 'worker.heartbeat')).toBe('/0.celeryev/worker.heartbeat');
    void t.close();
  });

  it('publishes an event byte for byte as a Python worker (event-worker-heartbeat.json)', async () => {
    const fx = loadFixture('event-worker-heartbeat');
    const cap = await capture();
    const t = transport();
    await t.broadcast.publishExchange(EVENT_EXCHANGE, 'worker.heartbeat', fromEnvelope(fx.raw).message);
    const [m] = await until('the PUBLISH', () => (cap.got.length ? cap.got : undefined));
    cap.close();
    expect(m!.channel).toBe(`${prefix}/${DB}.celeryev/worker.heartbeat`);
    expect(m!.data).toBe(withTag(fx.raw, tagOf(m!.data)));
    expect(tagOf(m!.data)).not.toBe(tagOf(fx.raw));
  });

  it('publishes a pidbox request on /<db>.celery.pidbox in the shape `celery inspect` sends (pidbox-ping-request.json)', async () => {
    const fx = loadFixture('pidbox-ping-request');
    expect(fx.channel).toBe('/0.celery.pidbox');
    const cap = await capture();
    const t = transport();
    const replies = new Mailbox(t.broadcast, 'oid-1').call('ping', {}, { timeout: 0.2 });
    const [m] = await until('the PUBLISH', () => (cap.got.length ? cap.got : undefined));
    expect(await replies).toEqual([]);
    cap.close();
    expect(m!.channel).toBe(`${prefix}/${DB}.celery.pidbox`);
    const env = JSON.parse(m!.data);
    expect(Object.keys(env)).toEqual(Object.keys(fx.envelope));
    expect(Object.keys(env.properties)).toEqual(Object.keys(fx.envelope.properties));
    expect(Object.keys(env.headers)).toEqual(Object.keys(fx.envelope.headers));
    expect(env.properties.delivery_info).toEqual({ exchange: 'celery.pidbox', routing_key: '' });
    expect(env.properties.delivery_mode).toBe(2);
    const body = JSON.parse(Buffer.from(env.body, 'base64').toString());
    expect(Object.keys(body)).toEqual(Object.keys(fx.body_decoded_json));
    expect(body.reply_to).toEqual({ exchange: 'reply.celery.pidbox', routing_key: 'oid-1' });
  });

  it('binds and consumes a reply queue as `celery inspect` does, and replies byte for byte as a Python worker (redis-monitor-cli-inspect-ping.json, pidbox-ping-reply.json)', async () => {
    const fx = loadFixture('pidbox-ping-reply');
    const oid = '03148275-9971-3e97-acf7-f6b7aea757c5';
    expect(fx.list_key).toBe(replyQueue(oid));
    const t = transport();
    const bindings = `${prefix}_kombu.binding.reply.celery.pidbox`;
    const member = `${oid}${SEP}${SEP}${oid}.reply.celery.pidbox`;
    const monitor = loadFixture('redis-monitor-cli-inspect-ping').commands.map((c: { cmd: string[] }) => c.cmd);
    expect(monitor).toContainEqual(['SADD', '_kombu.binding.reply.celery.pidbox', member]);
    expect(monitor).toContainEqual(['SREM', '_kombu.binding.reply.celery.pidbox', member]);

    // The bytes of the LPUSH: a binding without a consumer keeps what arrives.
    await raw.sadd(bindings, member);
    await t.broadcast.publishExchange(REPLY_EXCHANGE, oid, fromEnvelope(fx.raw).message);
    const [stored] = await raw.lrange(`${prefix}${fx.list_key}`, 0, -1);
    expect(stored).toBe(withTag(fx.raw, tagOf(stored!)));
    await raw.srem(bindings, member);
    await raw.del(`${prefix}${fx.list_key}`);

    // A subscription SADDs that member, BRPOPs the list, and on close SREMs and DELetes.
    const got: [Message, string][] = [];
    const sub = await t.broadcast.subscribe({ exchange: REPLY_EXCHANGE, bindingKey: oid, queue: replyQueue(oid) }, (m, rk) => got.push([m, rk]));
    expect(await raw.smembers(bindings)).toEqual([member]);
    await t.broadcast.publishExchange(REPLY_EXCHANGE, oid, fromEnvelope(fx.raw).message);
    await t.broadcast.publishExchange(REPLY_EXCHANGE, 'someone-else', fromEnvelope(fx.raw).message); // no binding: dropped
    await until('the reply', () => (got.length ? got : undefined));
    expect(got[0]![1]).toBe(oid);
    expect(loads(got[0]![0].body.toString())).toEqual({ 'wireA@vm': { ok: 'pong' } });
    expect(got[0]![0].headers).toEqual(fx.envelope.headers);
    await raw.lpush(`${prefix}${replyQueue(oid)}\x06\x169`, 'left over');
    await sub.close();
    expect(await raw.smembers(bindings)).toEqual([]);
    expect(await raw.keys(`${prefix}*reply*`)).toEqual([]);
    expect(got).toHaveLength(1);
  });

  it('topic subscriptions get what their AMQP pattern matches, though Redis patterns are coarser', async () => {
    const t = transport();
    const got: Record<string, string[]> = { all: [], worker: [], task: [] };
    const subs: Subscription[] = [];
    for (const [name, bindingKey] of [['all', '#'], ['worker', 'worker.#'], ['task', 'task.*']] as const) {
      subs.push(await t.broadcast.subscribe({ exchange: EVENT_EXCHANGE, bindingKey, queue: `celeryev.${name}` }, (_m, rk) => got[name]!.push(rk)));
    }
    expect((await raw.smembers(`${prefix}_kombu.binding.celeryev`)).sort()).toEqual([`#${SEP}${SEP}celeryev.all`, `task.*${SEP}${SEP}celeryev.task`, `worker.#${SEP}${SEP}celeryev.worker`]);
    const msg = (n: number): Message => ({ headers: { hostname: 'h' }, properties: { delivery_mode: 1 }, contentType: 'application/json', contentEncoding: 'utf-8', body: Buffer.from(`{"n": ${n}}`) });
    const keys = ['worker.heartbeat', 'task.multi', 'task.a.b', 'worker.elect.ack', 'workers.x'];
    for (const [i, rk] of keys.entries()) await t.broadcast.publishExchange(EVENT_EXCHANGE, rk, msg(i));
    await until('all events', () => (got.all!.length === keys.length ? true : undefined));
    await sleep(50);
    expect(got.all).toEqual(keys);
    expect(got.worker).toEqual(['worker.heartbeat', 'worker.elect.ack']);
    expect(got.task).toEqual(['task.multi']);
    for (const s of subs) await s.close();
    expect(await raw.smembers(`${prefix}_kombu.binding.celeryev`)).toEqual([]);
  });

  it('fanout: every subscriber gets each message once; one subscriber connection; closing one leaves the others', async () => {
    const t = transport();
    const a: unknown[] = [];
    const b: unknown[] = [];
    const other: ExchangeSpec = { name: 'celery.pidboxx', type: 'fanout' };
    const c: unknown[] = [];
    // Connections that were there before are other test files' (or other runs'): they subscribe in this database too.
    const addr = (l: string) => /\baddr=(\S+)/.exec(l)?.[1];
    const before = new Set(((await raw.client('LIST')) as string).split('\n').map(addr));
    const sa = await t.broadcast.subscribe({ exchange: PIDBOX_EXCHANGE, bindingKey: '', queue: 'a.celery.pidbox' }, (m) => a.push(loads(m.body.toString())));
    const sb = await t.broadcast.subscribe({ exchange: PIDBOX_EXCHANGE, bindingKey: '', queue: 'b.celery.pidbox' }, (m) => b.push(loads(m.body.toString())));
    const sc = await t.broadcast.subscribe({ exchange: other, bindingKey: '', queue: 'c' }, (m) => c.push(loads(m.body.toString())));
    const names = (await raw.client('LIST')) as string;
    expect(names.split('\n').filter((l) => !before.has(addr(l)) && l.includes('name=celeriac') && / psub=[1-9]/.test(l) && l.includes(` db=${DB} `)).map((l) => /psub=(\d+)/.exec(l)![1])).toEqual(['2']);
    const msg = (n: number): Message => ({ headers: {}, properties: { delivery_mode: 2 }, contentType: 'application/json', contentEncoding: 'utf-8', body: Buffer.from(String(n)) });
    await t.broadcast.publishExchange(PIDBOX_EXCHANGE, '', msg(1));
    await until('both', () => (a.length && b.length ? true : undefined));
    await sa.close();
    await t.broadcast.publishExchange(PIDBOX_EXCHANGE, '', msg(2));
    await until('b', () => (b.length === 2 ? true : undefined));
    await sleep(50);
    expect([a, b, c]).toEqual([[1], [1, 2], []]);
    expect(await raw.smembers(`${prefix}_kombu.binding.celery.pidbox`)).toEqual([`${SEP}${SEP}b.celery.pidbox`]);
    await sb.close();
    await sc.close();
  });
});

describe('with Python Celery 5.2', () => {
  const env = { CELERIAC_TEST_BROKER: `redis://${REDIS_HOST}/${DB}`, CELERIAC_TEST_PREFIX: prefix, CELERIAC_TEST_QUEUE: 'bc' };
  const pyNode = `bc${process.pid}@celeriac-test`;
  const events: CeleryEvent[] = [];
  const taskMulti: { rk: string; body: unknown }[] = [];
  let python: Proc | undefined;
  let receivers: Subscription[] = [];
  let t: RedisTransport;

  beforeAll(async () => {
    t = transport();
    receivers = [
      await receiveEvents(t.broadcast, (e) => events.push(e)),
      await t.broadcast.subscribe({ exchange: EVENT_EXCHANGE, bindingKey: 'task.#', queue: 'celeryev.raw' }, (m, rk) => taskMulti.push({ rk, body: loads(m.body.toString()) })),
    ];
    python = await startPythonWorker('ixtasks', ['-P', 'solo', '-l', 'INFO', '-E', '-Q', 'bc', '-n', pyNode, '--without-mingle', '--without-gossip'], env);
  }, 30_000);

  afterAll(async () => {
    for (const r of receivers) await r.close();
    await python?.stop();
  });

  it('(1) a celeriac Mailbox pings a Python worker', async () => {
    // Celery logs "ready." before its first poll subscribes it to the pidbox channel, and pub/sub
    // keeps nothing: a ping sent in between is lost, as one from `celery inspect ping` would be. On a
    // loaded machine (the whole suite in parallel) that gap has lasted over 6 s: ask until it answers.
    let replies: unknown[] = [];
    for (const deadline = Date.now() + 40_000; replies.length === 0 && Date.now() < deadline; ) {
      replies = await new Mailbox(t.broadcast, 'celeriac-oid-ping').call('ping', {}, { timeout: 5, destination: [pyNode] });
    }
    expect(replies).toEqual([{ [pyNode]: { ok: 'pong' } }]);
    // Broadcast to all: the Python worker is the only node on these channels.
    expect(await new Mailbox(t.broadcast, 'celeriac-oid-ping').call('ping', {}, { timeout: 6, limit: 1 })).toEqual([{ [pyNode]: { ok: 'pong' } }]);
    expect(await raw.keys(`${prefix}*reply*`)).toEqual([]);
  }, 60_000);

  it('(3) receiveEvents gets the Python worker\'s worker-online and worker-heartbeat events', async () => {
    const beat = await until('a worker-heartbeat', () => events.find((e) => e.type === 'worker-heartbeat' && e.hostname === pyNode), 6000);
    expect(events.find((e) => e.type === 'worker-online' && e.hostname === pyNode)).toBeDefined();
    expect(beat).toMatchObject({ freq: 2, sw_ident: 'py-celery', sw_ver: '5.2.6', active: 0 });
    expect(typeof beat.local_received).toBe('number');
  });

  it('(3) with -E, task events arrive as task.multi list bodies', async () => {
    const app = new Celery('bc', { broker: brokerUrl });
    try {
      const r = await app.sendTask('ix.echo', [1], {}, { queue: 'bc' });
      const types = () => events.filter((e) => e.uuid === r.id).map((e) => e.type);
      await until('task-succeeded', () => (types().includes('task-succeeded') ? true : undefined), 10_000);
      expect(types()).toEqual(['task-received', 'task-started', 'task-succeeded']);
      const multi = taskMulti.filter((m) => Array.isArray(m.body) && (m.body as CeleryEvent[]).some((e) => e.uuid === r.id));
      expect(multi.length).toBeGreaterThan(0);
      expect(multi.every((m) => m.rk === 'task.multi')).toBe(true);
    } finally {
      await app.close();
    }
  });

  it('(2) `celery inspect ping` is answered by a celeriac Worker', async () => {
    // A prefix of its own: only the celeriac Worker listens there.
    const cliPrefix = `${prefix}cli:`;
    const app = new Celery('cli', { broker: `redis://${REDIS_HOST}/${DB}`, brokerTransportOptions: { global_keyprefix: cliPrefix } });
    const node = `celeriac${process.pid}@celeriac-test`;
    const worker = new Worker(app, { queues: [`bc-cli-${process.pid}`], hostname: node, logger: createLogger({ level: 'CRITICAL' }), withoutMingle: true, withoutGossip: true });
    await worker.start();
    try {
      const out = await new Promise<string>((resolve, reject) => {
        const cliEnv = { ...process.env, PYTHONPATH: PY_DIR, CELERIAC_TEST_BROKER: `redis://${REDIS_HOST}/${DB}`, CELERIAC_TEST_PREFIX: cliPrefix };
        execFile(celeryPython(), ['-m', 'celery', '-A', 'ixtasks', 'inspect', 'ping', '-t', '3', '-d', node], { cwd: PY_DIR, env: cliEnv, timeout: 20_000 }, (err, stdout, stderr) =>
          err ? reject(new Error(`${err.message}\n${stdout}\n${stderr}`)) : resolve(stdout),
        );
      });
      expect(out).toContain(`${node}: OK`);
      expect(out).toContain('pong');
    } finally {
      await worker.shutdown();
    }
  });
});
