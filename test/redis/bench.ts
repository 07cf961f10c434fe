/**
 * Quick single-process drain benchmark of the Redis broker (not a test):
 *   node --import tsx test/redis/bench.ts [count]
 * publishes `count` (20,000) task messages to DB 10 under a unique key prefix, then fetches them
 * with max 100 per fetch and acks each batch; prints messages per second for both, then cleans up.
 */
import { buildTaskMessage } from '../../src/protocol/task-message.ts';
import { createTransport } from '../../src/transport/registry.ts';
import { deleteByPrefix, REDIS_HOST, runPrefix, TRANSPORT_DB } from './helpers.ts';

const N = Number(process.argv[2] ?? 20_000);
const prefix = runPrefix('bench');
const t = createTransport(`redis://${REDIS_HOST}/${TRANSPORT_DB}?global_keyprefix=${encodeURIComponent(prefix)}`);
try {
  const messages = Array.from({ length: N }, (_, i) => buildTaskMessage({ id: `m${i}`, name: 'tasks.add', args: [i, 2], origin: 'bench@host', replyTo: 'r' }));
  let start = performance.now();
  for (let i = 0; i < N; i += 500) await Promise.all(messages.slice(i, i + 500).map((m) => t.publish('celery', m)));
  console.log(`publish: ${N} in ${((performance.now() - start) / 1000).toFixed(2)} s = ${Math.round(N / ((performance.now() - start) / 1000))} msg/s`);
  start = performance.now();
  let n = 0;
  for (let batch; (batch = await t.fetch(['celery'], 100, 0)).length > 0;) {
    n += batch.length;
    await Promise.all(batch.map((d) => d.ack()));
  }
  const s = (performance.now() - start) / 1000;
  console.log(`fetch (max 100) + ack: ${n} in ${s.toFixed(2)} s = ${Math.round(n / s)} msg/s`);
} finally {
  await t.close();
  await deleteByPrefix(TRANSPORT_DB, prefix);
}
