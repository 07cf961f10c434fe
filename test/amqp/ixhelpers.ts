/**
 * Shared by test/amqp/interop-fleet.test.ts and test/amqp/interop-kill.test.ts: worker processes
 * (Python Celery 5.2 and celeriac) on the shared RabbitMQ, queue stats and clean-up. Each run uses
 * a vhost of its own (VHOST: created and deleted by each test file), queue names of its own (runId), and records in Redis (TEST_DB) under a key
 * prefix of its own.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import amqplib from 'amqplib';
import { deleteByPrefix, type Proc, redisClient, startCeleriacWorker as startCeleriac, startPythonWorker as startWorkerIn } from '../redis/helpers.ts';
import { TEST_DB, TEST_REDIS_URL } from '../helpers/redis-db.ts';
import { createVhosts, deleteVhosts, runId, vhostUrl } from './helpers.ts';

export type { Proc };
/** The vhost of this test file's run: what Celery declares there (celery.pidbox, celeryev, …) goes with it. */
export const VHOST = runId('ix');
export const BROKER = vhostUrl(VHOST);
export const createVhost = () => createVhosts([VHOST]);
export const deleteVhost = () => deleteVhosts([VHOST]);
/** Records go to the suite's TEST_DB under a run-unique prefix. */
export const RECORD_DB = TEST_DB;
export const RECORD = TEST_REDIS_URL;
export const records = () => redisClient(RECORD_DB);
export const deleteRecords = (prefix: string) => deleteByPrefix(RECORD_DB, prefix);

const here = path.dirname(fileURLToPath(import.meta.url));
export const PY_DIR = path.join(here, 'py');

export interface IxEnv {
  prefix: string;
  acksLate?: boolean;
  quiet?: boolean;
}

export function ixEnv(e: IxEnv): NodeJS.ProcessEnv {
  return {
    CELERIAC_TEST_BROKER: BROKER,
    CELERIAC_TEST_RECORD: RECORD,
    CELERIAC_TEST_PREFIX: e.prefix,
    CELERIAC_TEST_ACKS_LATE: e.acksLate ? '1' : '',
    CELERIAC_TEST_QUIET_TASKS: e.quiet ? '1' : '',
  };
}

/** `python3 -m celery -A ixtasks worker …` in test/amqp/py; resolves once ready. */
export function startPythonWorker(args: string[], env: IxEnv): Promise<Proc> {
  return startWorkerIn('ixtasks', args, ixEnv(env), PY_DIR);
}

/** `node bin/celeriac.js -A test/amqp/ixapp.ts worker …`; resolves once ready. */
export function startCeleriacWorker(args: string[], env: IxEnv): Promise<Proc> {
  return startCeleriac('test/amqp/ixapp.ts', args, ixEnv(env));
}

/** Ready messages and consumers of queues (queue.declare, passive), on one connection kept open until close(). */
export function queueWatcher(): { stats(queue: string): Promise<{ ready: number; consumers: number }>; close(): Promise<void> } {
  let conn: Promise<amqplib.ChannelModel> | undefined;
  let ch: Promise<amqplib.Channel> | undefined;
  const channel = () => {
    conn ??= amqplib.connect(BROKER).then((c) => {
      c.on('error', () => undefined);
      return c;
    });
    ch ??= conn.then(async (c) => {
      const opened = await c.createChannel();
      opened.on('error', () => undefined);
      opened.on('close', () => (ch = undefined)); // after a 404, the next call opens another
      return opened;
    });
    return ch;
  };
  return {
    async stats(queue) {
      const q = await (await channel()).checkQueue(queue);
      return { ready: q.messageCount, consumers: q.consumerCount };
    },
    async close() {
      if (conn) await (await conn).close().catch(() => undefined);
    },
  };
}

/**
 * Ready and unacknowledged messages of a queue, from `rabbitmqctl list_queues` (the broker has no
 * management plugin, and queue.declare reports ready messages only). About half a second a call.
 */
export function brokerCounts(queue: string): Promise<{ ready: number; unacked: number }> {
  return new Promise((resolve, reject) => {
    execFile('rabbitmqctl', ['list_queues', '-q', '-p', VHOST, '--no-table-headers', 'name', 'messages_ready', 'messages_unacknowledged'], { timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`rabbitmqctl list_queues: ${err.message}\n${stderr}`));
      const row = stdout.split('\n').map((l) => l.split('\t')).find((cols) => cols[0] === queue);
      if (!row) return reject(new Error(`rabbitmqctl list_queues: no queue ${queue}`));
      resolve({ ready: Number(row[1]), unacked: Number(row[2]) });
    });
  });
}

/** Delete what Celery and celeriac declare for these queues: the queue, its direct exchange, its dead letters. */
export async function deleteQueues(queues: string[]): Promise<void> {
  if (queues.length === 0) return;
  const conn = await amqplib.connect(BROKER);
  conn.on('error', () => undefined);
  try {
    for (const q of queues) {
      // One channel per operation: a 404 closes the channel it happened on.
      for (const op of [(ch: amqplib.Channel) => ch.deleteQueue(q), (ch: amqplib.Channel) => ch.deleteQueue(`${q}.celeriac.dead`), (ch: amqplib.Channel) => ch.deleteExchange(q)]) {
        const ch = await conn.createChannel();
        ch.on('error', () => undefined);
        await op(ch).catch(() => undefined);
        await ch.close().catch(() => undefined);
      }
    }
  } finally {
    await conn.close().catch(() => undefined);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll `check` every `interval` ms until true; throws after `ms`, naming what it waited for. */
export async function until(what: string, check: () => Promise<boolean>, ms = 20_000, interval = 50): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(interval);
  }
}
