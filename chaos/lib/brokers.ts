/**
 * The brokers under test, each private to the run: an SQLite file in a temp folder, a redis-server
 * without persistence, one with AOF (fsync always), and a RabbitMQ node, all on spare ports (the
 * shared Redis and RabbitMQ are never stopped). Each gives the URL workers use and what the
 * scenarios need to look inside: messages left in the queue, dead letters, a raw non-envelope.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import amqplib from 'amqplib';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { privateRabbit, type PrivateRabbit } from '../../test/amqp/helpers.ts';
import { durableRedis, privateRedis, type DurableRedis, type PrivateRedis } from '../../test/redis/helpers.ts';

export type BrokerName = 'sqlite' | 'redis' | 'redis-aof' | 'amqp';
export const BROKERS: readonly BrokerName[] = ['sqlite', 'redis', 'redis-aof', 'amqp'];

export interface Broker {
  name: BrokerName;
  /** The broker's TCP port (not for SQLite). */
  port?: number;
  /** URL of the broker, or of a proxy in front of it on `port`. */
  url(port?: number): string;
  /** Messages of the queue still in the broker: ready, unacknowledged or locked. */
  leftIn(queue: string): Promise<number>;
  deadLetters(queue: string): Promise<number>;
  /** Every uuid found in the dead letters of the queue (their task ids, or the id in a garbage text). */
  deadLetterIds(queue: string): Promise<Set<string>>;
  /** Put something on the queue that is not a message envelope at all. */
  pushGarbage(queue: string, text: string): Promise<void>;
  /** Graceful stop, then start again after `downMs`. */
  restart?(downMs: number): Promise<void>;
  /** kill -9 of the broker process, then start again after `downMs`. */
  crash?(downMs: number): Promise<void>;
  destroy(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
const uuidsIn = (texts: string[]) => new Set(texts.flatMap((t) => t.match(UUID) ?? []));

export async function startBroker(name: BrokerName): Promise<Broker> {
  switch (name) {
    case 'sqlite':
      return sqliteBroker();
    case 'redis':
      return redisBroker(await privateRedis(), false);
    case 'redis-aof':
      return redisBroker(await durableRedis(), true);
    case 'amqp':
      return amqpBroker(await privateRabbit());
  }
}

function sqliteBroker(): Broker {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'celeriac-chaos-'));
  const file = path.join(dir, 'broker.db');
  const withDb = <T>(fn: (db: Database.Database) => T): T => {
    const db = new Database(file);
    db.pragma('busy_timeout = 10000');
    try {
      return fn(db);
    } finally {
      db.close();
    }
  };
  const count = (sql: string, queue: string) => withDb((db) => (db.prepare(sql).get(queue) as { n: number }).n);
  return {
    name: 'sqlite',
    url: () => `sqlite:///${file}`,
    leftIn: async (queue) => count('SELECT count(*) AS n FROM celeriac_messages WHERE queue = ?', queue),
    deadLetters: async (queue) => count('SELECT count(*) AS n FROM celeriac_dead_letters WHERE queue = ?', queue),
    deadLetterIds: async (queue) =>
      uuidsIn(withDb((db) => (db.prepare('SELECT envelope FROM celeriac_dead_letters WHERE queue = ?').all(queue) as { envelope: string }[]).map((r) => r.envelope))),
    pushGarbage: async (queue, text) =>
      withDb((db) => {
        db.prepare(`INSERT INTO celeriac_messages (queue, priority, visible_at, delayed, envelope, delivery_tag)
                    VALUES (?, 0, ?, 0, ?, ?)`).run(queue, Date.now(), text, randomUUID());
      }),
    destroy: async () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

function redisBroker(server: PrivateRedis | DurableRedis, aof: boolean): Broker {
  const client = () => {
    const r = new Redis({ port: server.port, lazyConnect: true, maxRetriesPerRequest: 2 });
    r.on('error', () => undefined);
    return r;
  };
  const use = async <T>(fn: (r: Redis) => Promise<T>): Promise<T> => {
    const r = client();
    try {
      return await fn(r);
    } finally {
      r.disconnect();
    }
  };
  const pid = () => use(async (r) => Number(/process_id:(\d+)/.exec(await r.info('server'))![1]));
  const lists = (queue: string) => [queue, ...[3, 6, 9].map((s) => `${queue}\x06\x16${s}`)];
  return {
    name: aof ? 'redis-aof' : 'redis',
    port: server.port,
    url: (port = server.port) => `redis://127.0.0.1:${port}/0`,
    leftIn: (queue) =>
      use(async (r) => {
        let n = await r.hlen('unacked');
        for (const l of lists(queue)) n += await r.llen(l);
        return n;
      }),
    deadLetters: (queue) => use((r) => r.llen(`${queue}.celeriac.dead`)),
    deadLetterIds: (queue) => use(async (r) => uuidsIn(await r.lrange(`${queue}.celeriac.dead`, 0, -1))),
    pushGarbage: (queue, text) => use(async (r) => void (await r.lpush(queue, text))),
    async restart(downMs) {
      if ('stop' in server) await server.stop();
      else await use(async (r) => void (await r.shutdown().catch(() => undefined)));
      await sleep(downMs);
      await server.start();
    },
    async crash(downMs) {
      if ('crash' in server) await server.crash();
      else {
        const p = await pid();
        process.kill(p, 'SIGKILL');
        while (isAlive(p)) await sleep(20);
      }
      await sleep(downMs);
      await server.start();
    },
    destroy: async () => ('destroy' in server ? server.destroy() : server.stop()),
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The beam.smp of the private node (its environment names the node), never another node's. */
function beamPid(port: number): number {
  const node = `RABBITMQ_NODENAME=celeriac-test-${port}@localhost`;
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (!fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0')[0]?.endsWith('beam.smp')) continue;
      if (fs.readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').includes(node)) return Number(entry);
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  throw new Error(`no beam.smp for ${node}`);
}

/** start(), with more patience than the helper's 30 s: a restart on a loaded machine can take longer. */
async function startRabbit(rabbit: PrivateRabbit): Promise<void> {
  try {
    await rabbit.start();
  } catch (err) {
    const deadline = Date.now() + 90_000;
    for (;;) {
      try {
        const c = await amqplib.connect(`amqp://guest:guest@127.0.0.1:${rabbit.port}`);
        await c.close();
        return;
      } catch {
        if (Date.now() > deadline) throw err;
        await sleep(500);
      }
    }
  }
}

function amqpBroker(rabbit: PrivateRabbit): Broker {
  const url = (port = rabbit.port) => `amqp://guest:guest@127.0.0.1:${port}//`;
  const use = async <T>(fn: (ch: amqplib.ConfirmChannel) => Promise<T>): Promise<T> => {
    const conn = await amqplib.connect(url());
    conn.on('error', () => undefined);
    try {
      const ch = await conn.createConfirmChannel();
      ch.on('error', () => undefined);
      return await fn(ch);
    } finally {
      await conn.close().catch(() => undefined);
    }
  };
  const count = (queue: string) => use(async (ch) => (await ch.checkQueue(queue)).messageCount).catch(() => 0);
  return {
    name: 'amqp',
    port: rabbit.port,
    url,
    leftIn: count,
    deadLetters: (queue) => count(`${queue}.celeriac.dead`),
    deadLetterIds: (queue) =>
      use(async (ch) => {
        // Read without taking: every message is fetched, then the channel closes and they go back.
        const texts: string[] = [];
        for (let m; (m = await ch.get(`${queue}.celeriac.dead`, { noAck: false })) !== false;) {
          texts.push(JSON.stringify(m.properties.headers ?? {}), m.content.toString('latin1').slice(0, 4096));
        }
        return uuidsIn(texts);
      }),
    pushGarbage: (queue, text) =>
      use(async (ch) => {
        ch.sendToQueue(queue, Buffer.from(text), { contentType: 'text/plain' });
        await ch.waitForConfirms();
      }),
    async restart(downMs) {
      await rabbit.stop();
      await sleep(downMs);
      await startRabbit(rabbit);
    },
    async crash(downMs) {
      const pid = beamPid(rabbit.port);
      process.kill(pid, 'SIGKILL');
      while (isAlive(pid)) await sleep(20);
      await sleep(downMs);
      await startRabbit(rabbit);
    },
    destroy: () => rabbit.destroy(),
  };
}
