// A BullMQ worker with a sandboxed processor (bench/pools.ts): `node bullmq-pool-worker.mjs <queue> <prefix> <concurrency> <process|thread>`.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';

const [queue, prefix, concurrency, kind] = process.argv.slice(2);
const connection = new Redis(process.env.BENCH_BROKER, { maxRetriesPerRequest: null });
const processor = path.join(path.dirname(fileURLToPath(import.meta.url)), 'bullmq-sandboxed.mjs');
const worker = new Worker(queue, processor, { connection, prefix, concurrency: Number(concurrency), useWorkerThreads: kind === 'thread', removeOnComplete: { count: 0 } });
worker.on('error', (err) => process.stderr.write(`bullmq worker: ${err.message}\n`));
process.on('SIGTERM', () => void worker.close().then(() => process.exit(0), () => process.exit(1)));
await worker.waitUntilReady();
