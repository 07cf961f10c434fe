// BullMQ sandboxed processor for bench/pools.ts (run in a child process or a worker thread by
// BullMQ): the same no-op as the other systems, counting its executions in batches.
import { Redis } from 'ioredis';

let pending = 0;
let timer;
let client;

export default async function () {
  pending++;
  timer ??= setTimeout(() => {
    timer = undefined;
    client ??= new Redis(process.env.BENCH_COUNTER_URL);
    const n = pending;
    pending = 0;
    void client.incrby(process.env.BENCH_COUNTER_KEY, n);
  }, 5);
}
