/**
 * The task module the chaos workers load (`celeriac -A ./chaos/tasks.ts:app worker`). Every run of
 * `chaos.work` appends "<tag> <pid>" to the execution record (a list on the shared Redis, the test DB)
 * once its work is done, so a record survives any kill of the worker or of the broker.
 *
 * Environment (set by chaos/lib/workers.ts):
 *   CHAOS_BROKER     broker URL
 *   CHAOS_QUEUE      queue the scenario uses
 *   CHAOS_RECORD     the record's key on 127.0.0.1:6379, in the test DB (test/helpers/redis-db.ts)
 *   CHAOS_ACKS_LATE  "1" for acksLate
 *   CHAOS_VT         visibility timeout in seconds (Redis, SQLite)
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { Celery } from '../src/index.ts';
import { RECORD_DB } from './lib/record.ts';

const broker = process.env.CHAOS_BROKER;
if (!broker) throw new Error('chaos/tasks.ts: set CHAOS_BROKER to the broker URL');
const recordKey = process.env.CHAOS_RECORD ?? 'chaos-unset';

export const app = new Celery('chaos', {
  broker,
  taskDefaultQueue: process.env.CHAOS_QUEUE ?? 'chaos',
  taskAcksLate: process.env.CHAOS_ACKS_LATE === '1',
  taskIgnoreResult: true,
  brokerTransportOptions: { visibility_timeout: Number(process.env.CHAOS_VT ?? 10) },
});

let record: Redis | undefined;
const recorder = () => (record ??= new Redis({ host: '127.0.0.1', port: 6379, db: RECORD_DB, maxRetriesPerRequest: null }));

/** Sleep `ms` (a busy task), then record the run. `payload` makes big messages; its length is recorded. */
export const work = app.task('chaos.work', async (tag: string, ms: number, payload?: string) => {
  if (ms > 0) await sleep(ms);
  await recorder().rpush(recordKey, `${tag} ${process.pid} ${payload?.length ?? 0}`);
  return null;
});
