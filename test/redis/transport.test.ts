/**
 * The Redis broker against a real Redis (DB 10, a key prefix per test): kombu's key layout byte
 * for byte, consumption order, `unacked` bookkeeping, restore and requeue, the visibility-timeout
 * restore, and idle wake-ups. The shared conformance suite runs it too
 * (test/transport-conformance.test.ts).
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { fromEnvelope } from '../../src/protocol/envelope.ts';
import { buildTaskMessage, decodeTaskMessage } from '../../src/protocol/task-message.ts';
import { markRedelivered, parseUnackedEntry } from '../../src/transport/redis/envelope-edit.ts';
import { RedisTransport } from '../../src/transport/redis/index.ts';
import { createTransport } from '../../src/transport/registry.ts';
import type { Delivery } from '../../src/transport/types.ts';
import { loadFixture } from '../helpers/fixtures.ts';
import { monitorRedis } from '../helpers/redis-monitor.ts';
import { deleteByPrefix, REDIS_HOST, redisClient, runPrefix, TRANSPORT_DB } from './helpers.ts';

const SEP = '\x06\x16';
const base = runPrefix('transport');
let seq = 0;
const raw = redisClient(TRANSPORT_DB);
const open: RedisTransport[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
});
afterAll(async () => {
  raw.disconnect();
  await deleteByPrefix(TRANSPORT_DB, base);
});

/** A transport on a fresh prefix; `p` is that prefix. */
function make(query = ''): { t: RedisTransport; p: string } {
  const p = `${base}${seq++}:`;
  const t = createTransport(`redis://${REDIS_HOST}/${TRANSPORT_DB}?global_keyprefix=${encodeURIComponent(p)}${query}`) as RedisTransport;
  open.push(t);
  return { t, p };
}

const task = (id: string, priority?: number) => buildTaskMessage({ id, name: 'tasks.add', args: [1, 2], origin: 'test@host', replyTo: 'reply', priority });
const ids = (ds: Delivery[]) => ds.map((d) => String(d.message.headers.id));
const withTag = (envelope: string, tag: string) => envelope.replace(/"delivery_tag": "[^"]*"/, `"delivery_tag": "${tag}"`);

describe('kombu key layout', () => {
  it.each([
    ['redis-task-plain', 'celery'],
    ['redis-task-priority-5', `celery${SEP}3`],
    ['redis-task-priority-9', `celery${SEP}9`],
    ['redis-task-options', 'celery'],
  ])('publishes %s byte for byte as kombu, on list %j', async (name, listKey) => {
    const fx = loadFixture(name);
    const captured = fx.messages[0];
    expect(captured.list_key).toBe(listKey);
    const { t, p } = make();
    const d = fromEnvelope(captured.raw);
    await t.publish('celery', d.message, { exchange: d.delivery.exchange, routingKey: d.delivery.routingKey });
    const stored = await raw.lrange(p + listKey, 0, -1);
    expect(stored).toHaveLength(1);
    const tag = JSON.parse(stored[0]!).properties.delivery_tag as string;
    expect(tag).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(stored[0]).toBe(withTag(captured.raw, tag));
    // The binding kombu's producer declares for the default queue (captured once per process).
    expect(await raw.smembers(`${p}_kombu.binding.celery`)).toEqual(loadFixture('redis-task-plain').all_keys['_kombu.binding.celery'].value);
  });

  it('declareQueue adds the binding of the direct exchange named like the queue', async () => {
    const { t, p } = make();
    await t.declareQueue('wire_other');
    expect(await raw.smembers(`${p}_kombu.binding.wire_other`)).toEqual([`wire_other${SEP}${SEP}wire_other`]);
  });

  it('maps priorities to steps like kombu (largest step <= p, clamped to 0..9)', async () => {
    const { t, p } = make();
    for (const [id, pri] of [['a', 0], ['b', 2], ['c', 3], ['d', 5], ['e', 8], ['f', 9], ['g', 20], ['h', -4], ['i', undefined]] as const) {
      await t.publish('q', task(id, pri));
    }
    const lists = Object.fromEntries(await Promise.all(['', `${SEP}3`, `${SEP}6`, `${SEP}9`].map(async (s) => [s || '0', ids((await raw.lrange(`${p}q${s}`, 0, -1)).map((e) => ({ message: fromEnvelope(e).message }) as Delivery))])));
    expect(lists).toEqual({ 0: ['i', 'h', 'b', 'a'], [`${SEP}3`]: ['d', 'c'], [`${SEP}6`]: ['e'], [`${SEP}9`]: ['g', 'f'] });
    expect(await t.size('q')).toBe(9);
    expect(await t.purge('q')).toBe(9);
    expect(await raw.exists(`${p}q`, `${p}q${SEP}3`, `${p}q${SEP}6`, `${p}q${SEP}9`)).toBe(0);
  });
});

describe('consumption order', () => {
  // The order a Python worker executed these in [cap redis-brpop-order.json].
  const fx = loadFixture('redis-brpop-order');
  const publishAll = async (t: RedisTransport) => {
    for (const m of fx.sent_in_this_order) await t.publish(m.queue, task(m.label, m.priority ?? undefined));
  };

  it('is priority-major, lower steps first, round robin between queues, one at a time', async () => {
    const { t } = make();
    await publishAll(t);
    const got: string[] = [];
    for (let d; (d = await t.fetch(['wire_b', 'wire_a'], 1, 0)).length > 0;) got.push(...ids(d));
    expect(got).toEqual(fx.execution_order);
  });

  it('gives the same order when one fetch takes several', async () => {
    const { t } = make();
    await publishAll(t);
    expect(ids(await t.fetch(['wire_b', 'wire_a'], 100, 0))).toEqual(fx.execution_order);
  });

  it('keeps the given queue order with queue_order_strategy=priority', async () => {
    const { t } = make('&queue_order_strategy=priority');
    await publishAll(t);
    expect(ids(await t.fetch(['wire_b', 'wire_a'], 100, 0))).toEqual(['b1', 'b2', 'b3', 'b-pri0', 'a1', 'a2', 'a3', 'b-pri3', 'a-pri9']);
  });
});

describe('unacked bookkeeping', () => {
  it('records a fetched message in unacked and unacked_index, as kombu QoS.append', async () => {
    const { t, p } = make();
    await t.publish('celery', task('a'));
    const [envelope] = await raw.lrange(`${p}celery`, 0, -1);
    const before = Date.now() / 1000;
    const [d] = await t.fetch(['celery'], 10, 0);
    expect(d!.deliveryTag).toMatch(/^[0-9a-f-]{36}-1$/); // the fetch's own tags: see fetch.lua
    expect(await raw.hget(`${p}unacked`, d!.deliveryTag)).toBe(`[${envelope}, "", "celery"]`);
    const score = Number(await raw.zscore(`${p}unacked_index`, d!.deliveryTag));
    expect(score).toBeGreaterThanOrEqual(before - 1);
    expect(score).toBeLessThanOrEqual(Date.now() / 1000 + 1);
    await d!.ack();
    expect(await raw.hlen(`${p}unacked`)).toBe(0);
    expect(await raw.zcard(`${p}unacked_index`)).toBe(0);
  });

  it('acks of one tick, settle-once, and no resurrection by a late settle', async () => {
    const { t, p } = make();
    for (const id of ['a', 'b', 'c']) await t.publish('q', task(id));
    const ds = await t.fetch(['q'], 10, 0);
    await Promise.all([ds[0]!.ack(), ds[1]!.ack(), ds[0]!.ack()]);
    expect(await raw.hkeys(`${p}unacked`)).toEqual([ds[2]!.deliveryTag]);
    // Someone else (the visibility restore) already gave `c` back: our late restore must not duplicate it.
    await raw.hdel(`${p}unacked`, ds[2]!.deliveryTag);
    await ds[2]!.restore();
    expect(await t.size('q')).toBe(0);
    expect(await raw.zcard(`${p}unacked_index`)).toBe(0);
  });

  it('gives every message its own entry when envelopes\' delivery tags repeat, within a fetch and across fetches', async () => {
    const { t, p } = make();
    await t.publish('q', task('x'));
    const [envelope] = await raw.lrange(`${p}q`, 0, -1);
    await raw.del(`${p}q`);
    await raw.lpush(`${p}q`, withTag(envelope!.replace('"x"', '"a"'), 'same'));
    const first = await t.fetch(['q'], 10, 0);
    await raw.lpush(`${p}q`, ...[['b', 'same'], ['c', 'other'], ['d', 'other']].map(([id, tag]) => withTag(envelope!.replaceAll('"x"', `"${id}"`), tag!)));
    const second = await t.fetch(['q'], 10, 0);
    const all = [...first, ...second];
    expect(ids(all).sort()).toEqual(['a', 'b', 'c', 'd']);
    const tags = all.map((d) => d.deliveryTag);
    expect(new Set(tags).size).toBe(4);
    expect((await raw.hkeys(`${p}unacked`)).sort()).toEqual([...tags].sort());
    expect(await raw.zcard(`${p}unacked_index`)).toBe(4);
    await Promise.all(all.map((d) => d.ack()));
    expect(await raw.hlen(`${p}unacked`)).toBe(0);
    expect(await raw.zcard(`${p}unacked_index`)).toBe(0);
  });

  it('sends pending acks before a fetch, so that they do not wait for its script', async () => {
    const { t, p } = make();
    for (const id of ['a', 'b', 'c']) await t.publish('q', task(id));
    const [first] = await t.fetch(['q'], 1, 0);
    const seen: string[] = [];
    const [host, port] = REDIS_HOST.split(':');
    const monitor = await monitorRedis(host!, Number(port), (args) => {
      if (args.some((a) => a.startsWith(p))) seen.push(args[0]!.toLowerCase());
    });
    try {
      const acked = first!.ack();
      const fetched = t.fetch(['q'], 2, 0); // in the same tick as the ack, which alone would wait for the next one
      await Promise.all([acked, fetched]);
      const waitFor = Date.now() + 5000;
      while (!seen.includes('rpop') && Date.now() < waitFor) await new Promise((r) => setTimeout(r, 10));
    } finally {
      monitor.close();
    }
    // Commands run inside scripts show up too: the ack's ZREM, then the fetch's RPOPs.
    expect(seen.indexOf('zrem')).toBeGreaterThanOrEqual(0);
    expect(seen.indexOf('zrem')).toBeLessThan(seen.indexOf('rpop'));
  });

  it('restore() puts the message at the front with kombu\'s redelivered flags; reject(true) at the back', async () => {
    const { t, p } = make();
    for (const id of ['a', 'b', 'c']) await t.publish('q', task(id));
    const [a, b] = await t.fetch(['q'], 2, 0);
    const rawA = (await raw.hget(`${p}unacked`, a!.deliveryTag))!;
    await a!.restore();
    await b!.reject(true);
    const list = await raw.lrange(`${p}q`, 0, -1); // left = back, right = next delivered
    expect(list[2]).toBe(markRedelivered(parseUnackedEntry(rawA)!.message));
    expect(JSON.parse(list[2]!)).toMatchObject({ headers: { redelivered: true }, properties: { delivery_info: { redelivered: true } } });
    const again = await t.fetch(['q'], 10, 0);
    expect(ids(again)).toEqual(['a', 'c', 'b']);
    expect(again.map((d) => d.info.redelivered)).toEqual([true, false, true]);
  });

  it('edits envelopes exactly as kombu restores them [cap redis-monitor-shutdown-restore.json]', () => {
    const cmds = (loadFixture('redis-monitor-shutdown-restore').commands as { cmd: string[] }[]).map((c) => c.cmd as [string, string, string, string]);
    const entries = new Map(cmds.filter((c) => c[0] === 'HSET' && c[1] === 'unacked').map((c) => [c[2], c[3]]));
    const restored = cmds.filter((c) => c[0] === 'RPUSH' && entries.has(JSON.parse(c[2]).properties.delivery_tag));
    expect(restored.length).toBeGreaterThanOrEqual(3);
    for (const [, , payload] of restored) {
      const entry = parseUnackedEntry(entries.get(JSON.parse(payload).properties.delivery_tag)!)!;
      expect(entry).toMatchObject({ exchange: '', routingKey: 'celery' });
      expect(markRedelivered(entry.message)).toBe(payload);
    }
  });

  it('reject(false) keeps a dead letter on <queue>.celeriac.dead', async () => {
    const { t, p } = make();
    await t.publish('q', task('a'));
    const [a] = await t.fetch(['q'], 1, 0);
    await a!.reject(false, 'bad input');
    const [record] = await raw.lrange(`${p}q.celeriac.dead`, 0, -1);
    expect(JSON.parse(record!)).toMatchObject({ reason: 'bad input', queue: 'q', delivery_tag: a!.deliveryTag });
    expect(fromEnvelope(JSON.parse(record!).envelope).message.headers.id).toBe('a');
    expect(await raw.hlen(`${p}unacked`)).toBe(0);
  });

  it('hands over an undecodable message (still recorded in unacked) for the worker to reject', async () => {
    const { t, p } = make();
    await raw.lpush(`${p}q`, 'not json \u00e9');
    const [d] = await t.fetch(['q'], 1, 0);
    expect(d!.message.contentType).toBe('application/x-celeriac-undecodable');
    expect(await raw.hget(`${p}unacked`, d!.deliveryTag)).toBe('["not json \\u00e9", "", "q"]');
  });

  it('records an envelope with whitespace around it as the envelope itself', async () => {
    const { t, p } = make();
    await t.publish('q', task('a'));
    const [envelope] = await raw.lrange(`${p}q`, 0, -1);
    await raw.del(`${p}q`);
    await raw.lpush(`${p}q`, ` ${envelope}\n`);
    const [d] = await t.fetch(['q'], 1, 0);
    expect(ids([d!])).toEqual(['a']);
    expect(JSON.parse((await raw.hget(`${p}unacked`, d!.deliveryTag))!)).toEqual([JSON.parse(envelope!), '', 'q']);
  });
});

describe('large envelopes (fetched as bytes, body decoded from them)', () => {
  const big = (id: string, arg: string) => buildTaskMessage({ id, name: 'tasks.echo', args: [arg], origin: 'test@host', replyTo: '' });
  const expectEntry = async (p: string, tag: string, envelope: string, exchange: string, routingKey: string) => {
    const entry = (await raw.hget(`${p}unacked`, tag))!;
    const expected = `[${envelope}, ${JSON.stringify(exchange)}, ${JSON.stringify(routingKey)}]`;
    expect(entry.length).toBe(expected.length); // the strings themselves are too long to print
    expect(entry === expected).toBe(true);
  };

  it('records each in unacked as kombu does and delivers its argument whole, small ones among them', async () => {
    const { t, p } = make();
    const args = ['a'.repeat(300_000) + ' é', 'small', 'b'.repeat(200_000)];
    for (const [i, arg] of args.entries()) await t.publish('q', big(`m${i}`, arg));
    const envelopes = (await raw.lrange(`${p}q`, 0, -1)).reverse();
    // One by one: the first fetch reads text, the ones after a large envelope read bytes.
    for (const [i, arg] of args.entries()) {
      const [d] = await t.fetch(['q'], 1, 0);
      expect(decodeTaskMessage(d!.message).args[0] === arg).toBe(true);
      await expectEntry(p, d!.deliveryTag, envelopes[i]!, '', 'q');
      await d!.ack();
    }
    expect(await raw.hlen(`${p}unacked`)).toBe(0);
  });

  it('a fetch stops at its byte limit (the first message whatever its size) and the next one takes the rest at once', async () => {
    const { t, p } = make();
    for (let i = 0; i < 6; i++) await t.publish('q', big(`b${i}`, String(i).repeat(100_000)));
    await t.publish('q', big('last', 'small'));
    // Each envelope holds its body in base64, about 133,000 bytes: the third passes 300,000.
    const first = await t.fetch(['q'], 10, 0, undefined, 300_000);
    expect(ids(first)).toEqual(['b0', 'b1', 'b2']);
    expect(await raw.hlen(`${p}unacked`)).toBe(3);
    const one = await t.fetch(['q'], 10, 0, undefined, 1);
    expect(ids(one)).toEqual(['b3']);
    // Stopped by bytes, not by an empty list: no wait for a change notification.
    const started = Date.now();
    const rest = await t.fetch(['q'], 10, 5000);
    expect(ids(rest)).toEqual(['b4', 'b5', 'last']);
    expect(Date.now() - started).toBeLessThan(900);
    for (const d of [...first, ...one, ...rest]) await d.ack();
    expect(await raw.hlen(`${p}unacked`)).toBe(0);
  });

  it('goes back to its list with kombu\'s redelivered flags, and to the dead letters whole', async () => {
    const { t, p } = make();
    await t.publish('q', big('r1', 'c'.repeat(150_000)));
    await t.publish('q', big('r2', 'd'.repeat(150_000)));
    const [first] = await t.fetch(['q'], 1, 0);
    await first!.restore();
    const [again, second] = await t.fetch(['q'], 2, 0);
    expect(again!.info.redelivered).toBe(true);
    const entry = parseUnackedEntry((await raw.hget(`${p}unacked`, again!.deliveryTag))!)!;
    await again!.restore();
    expect((await raw.lrange(`${p}q`, -1, -1))[0] === markRedelivered(entry.message)).toBe(true);
    await second!.reject(false, 'too big to like');
    const [record] = await raw.lrange(`${p}q.celeriac.dead`, 0, -1);
    expect(decodeTaskMessage(fromEnvelope(JSON.parse(record!).envelope).message).args[0]).toBe('d'.repeat(150_000));
  });

  it('records a hand-made envelope sent through an exchange under the queue it was taken from', async () => {
    const { t, p } = make();
    const long = 'q\\"uote \\\\ back\\u00e9 '.repeat(5000);
    const body = Buffer.from(JSON.stringify([['x'.repeat(30_000)], {}, {}])).toString('base64');
    const envelope = `{"body": "${body}", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "tasks.echo", "id": "h1", "note": "${long}"}, "properties": {"delivery_info": {"exchange": "ex\\"1", "routing_key": "rk"}, "body_encoding": "base64", "delivery_tag": "tag-h1"}}`;
    expect(envelope.length).toBeGreaterThan(64 * 1024);
    await raw.lpush(`${p}q`, envelope);
    const [d] = await t.fetch(['q'], 1, 0);
    expect(d!.info).toMatchObject({ exchange: 'ex"1', routingKey: 'rk' });
    expect(d!.message.headers.note).toBe(JSON.parse(`"${long}"`));
    await expectEntry(p, d!.deliveryTag, envelope, '', 'q');
    // A visibility restore (ours here; kombu's reads the entry the same way) puts it back into q.
    await raw.zadd(`${p}unacked_index`, 1, d!.deliveryTag);
    expect(await t.restoreVisible()).toBe(1);
    expect(ids(await t.fetch(['q'], 1, 0))).toEqual(['h1']);
  });

  it('hands over a text in braces that is not JSON as undecodable; rejecting it removes it from unacked', async () => {
    const { t, p } = make();
    const broken = `{"body": "${'e'.repeat(100_000)}", "headers": nope, "properties": {"delivery_tag": "x"}}`;
    await raw.lpush(`${p}q`, broken);
    const [d] = await t.fetch(['q'], 1, 0);
    expect(d!.message.contentType).toBe('application/x-celeriac-undecodable');
    await d!.reject(false, 'not JSON');
    expect(await raw.hlen(`${p}unacked`)).toBe(0);
    const [record] = await raw.lrange(`${p}q.celeriac.dead`, 0, -1);
    expect(JSON.parse(record!).envelope === broken).toBe(true);
  });
});

describe('visibility timeout', () => {
  it('restores entries older than the timeout at the first fetch, under unacked_mutex', async () => {
    const { t, p } = make('&visibility_timeout=30');
    // A Python worker's entries [cap redis-unacked-snapshot.json], one delivered 60 s ago, one just now.
    const snap = loadFixture('redis-unacked-snapshot').keys.unacked.value as Record<string, string>;
    const [[oldTag, oldEntry], [newTag, newEntry]] = Object.entries(snap) as [[string, string], [string, string]];
    const now = Date.now() / 1000;
    await raw.hset(`${p}unacked`, oldTag, oldEntry, newTag, newEntry);
    await raw.zadd(`${p}unacked_index`, now - 60, oldTag, now, newTag);
    const [d] = await t.fetch(['celery'], 10, 0);
    expect(d!.message.headers.id).toBe(JSON.parse(oldEntry)[0].headers.id);
    expect(await raw.hexists(`${p}unacked`, oldTag)).toBe(0);
    expect(d!.info.redelivered).toBe(true);
    expect(d!.message.headers).toMatchObject({ task: 'wiretasks.sleepy', redelivered: true });
    expect(await raw.hexists(`${p}unacked`, newTag)).toBe(1);
    expect(await raw.exists(`${p}unacked_mutex`)).toBe(0);
  });

  it('leaves the work to whoever holds the mutex', async () => {
    const { t, p } = make('&visibility_timeout=0');
    await t.publish('q', task('a'));
    await t.fetch(['q'], 1, 0);
    await raw.set(`${p}unacked_mutex`, 'python-worker', 'PX', 5000);
    expect(await t.restoreVisible()).toBe(0);
    expect(await raw.get(`${p}unacked_mutex`)).toBe('python-worker');
    await raw.del(`${p}unacked_mutex`);
    expect(await t.restoreVisible()).toBe(1);
    expect(ids(await t.fetch(['q'], 1, 0))).toEqual(['a']);
  });
});

describe('waiting', () => {
  it('wakes a waiting fetch at once when another client LPUSHes, without polling', async () => {
    const { t, p } = make();
    await t.fetch(['q'], 1, 0); // registers key tracking
    const envelope = withTag(loadFixture('redis-task-plain').messages[0].raw, 'f00d');
    const start = Date.now();
    const pending = t.fetch(['q'], 5, 5000);
    setTimeout(() => void raw.lpush(`${p}q${SEP}6`, envelope), 150);
    const got = await pending;
    expect(ids(got)).toEqual([JSON.parse(envelope).headers.id]);
    expect(Date.now() - start).toBeLessThan(600); // the safety poll alone would take 1 s
  });

  /** Fetch scripts this transport runs (each names its own fetch record), as seen by MONITOR. */
  async function countFetches(p: string, body: () => Promise<void>): Promise<number> {
    let fetches = 0;
    const [host, port] = REDIS_HOST.split(':');
    const monitor = await monitorRedis(host!, Number(port), (args) => {
      if (/^eval/i.test(args[0]!) && args.some((a) => a.startsWith(`${p}celeriac.fetch.`))) fetches++;
    });
    try {
      await body();
      await new Promise((r) => setTimeout(r, 100)); // MONITOR's last lines
    } finally {
      monitor.close();
    }
    return fetches;
  }

  const pushLater = (p: string, id: string, ms: number) => setTimeout(() => void raw.lpush(`${p}q`, JSON.stringify({ body: Buffer.from(JSON.stringify([[], {}, {}])).toString('base64'), 'content-type': 'application/json', 'content-encoding': 'utf-8', headers: { id, task: 'tasks.add' }, properties: { delivery_tag: `t-${id}`, body_encoding: 'base64', delivery_info: { exchange: '', routing_key: 'q' } } })), ms);

  it("runs the fetch script once per message while idle: the invalidation of its own pop does not wake it for another", async () => {
    const { t, p } = make();
    await t.fetch(['q'], 1, 0);
    const fetches = await countFetches(p, async () => {
      for (const id of ['m1', 'm2', 'm3']) {
        const start = Date.now();
        pushLater(p, id, 100);
        const got = await t.fetch(['q'], 5, 5000);
        expect(ids(got)).toEqual([id]);
        expect(Date.now() - start).toBeLessThan(700);
        await new Promise((r) => setTimeout(r, 20)); // the task
        await got[0]!.ack();
      }
    });
    // One script per message (neither its own pop nor its ack wakes it for another), and one more
    // before the first wait: the fetch before it ended at its timeout, which the safety poll repeats.
    expect(fetches).toBe(4);
  });

  it('a message the transport restores itself wakes its own waiting fetch at once (Redis does not tell it of its own pushes)', async () => {
    const { t, p } = make();
    const dead = createTransport(`redis://${REDIS_HOST}/${TRANSPORT_DB}?global_keyprefix=${encodeURIComponent(p)}`) as RedisTransport;
    open.push(dead);
    dead.recordHolder('dead@host');
    await dead.publish('q', task('lost'));
    expect(ids(await dead.fetch(['q'], 1, 0))).toEqual(['lost']);
    expect(await t.fetch(['q'], 1, 0)).toEqual([]); // waits from now on for a change of q
    const start = Date.now();
    const pending = t.fetch(['q'], 5, 5000);
    setTimeout(() => void t.restoreLost('dead@host'), 150);
    const got = await pending;
    expect(ids(got)).toEqual(['lost']);
    expect(Date.now() - start).toBeLessThan(600); // the safety poll alone would take 1 s
    await got[0]!.ack();
  });

  it.each([
    ['before the ack', 0],
    ['with the ack', 20],
    ['after the ack', 40],
  ])('a push %s that follows a fetch emptying the list is fetched at once, not at the safety poll', async (_when, pushAfter) => {
    const { t, p } = make();
    await t.fetch(['q'], 1, 0);
    for (let i = 0; i < 5; i++) {
      pushLater(p, `a${i}`, 50);
      const [a] = await t.fetch(['q'], 5, 5000);
      expect(ids([a!])).toEqual([`a${i}`]);
      const start = Date.now();
      pushLater(p, `b${i}`, pushAfter);
      await new Promise((r) => setTimeout(r, 20));
      await a!.ack();
      const got: Delivery[] = [];
      while (got.length === 0 && Date.now() - start < 3000) got.push(...(await t.fetch(['q'], 5, 3000)));
      expect(ids(got)).toEqual([`b${i}`]);
      expect(Date.now() - start).toBeLessThan(700);
      await got[0]!.ack();
    }
  });
});
