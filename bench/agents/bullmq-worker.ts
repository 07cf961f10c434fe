/**
 * A BullMQ worker process for the benchmark (started by bench/systems/bullmq.ts):
 * `node --import tsx bench/agents/bullmq-worker.ts <concurrency>`. Its processor is the same
 * no-op as the celeriac and Celery tasks: count the execution (bench/lib/counter.ts), return
 * "ok" for jobs named bench.noop_stored, and its argument for bench.echo (the large-message drain). Whether the job and its return value are kept is the
 * job's removeOnComplete option, chosen by the client. SIGTERM closes it (finishing active jobs).
 */
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { BULLMQ_PREFIX, COUNTER_KEY, QUEUE, REDIS_BROKER_URL, TASK_ECHO, TASK_STORED } from '../lib/config.ts';
import { Counter } from '../lib/counter.ts';

const concurrency = Number(process.argv[2] ?? 200);
const counter = new Counter(() => new Redis(REDIS_BROKER_URL), COUNTER_KEY);
const connection = new Redis(REDIS_BROKER_URL, { maxRetriesPerRequest: null });

const worker = new Worker(
  QUEUE,
  async (job) => {
    counter.incr();
    if (job.name === TASK_ECHO) return (job.data as { value: string }).value;
    return job.name === TASK_STORED ? 'ok' : undefined;
  },
  { connection, prefix: BULLMQ_PREFIX, concurrency },
);
worker.on('error', (err) => process.stderr.write(`bullmq worker: ${err.message}\n`));

let closing = false;
const stop = (): void => {
  if (closing) process.exit(1);
  closing = true;
  void worker.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
await worker.waitUntilReady();
