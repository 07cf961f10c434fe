/**
 * Quick single-process benchmark of the RabbitMQ broker (not a test):
 *   node --import tsx test/amqp/bench.ts [count]
 * in a vhost of its own on the shared broker: publishes `count` (20,000) persistent task messages
 * (each confirmed; 500 in flight at a time, then one at a time for 1,000), then drains them as a
 * worker does (fetch max 100 with a 1 s timeout, ack each), prints messages per second, cleans up.
 */
import { buildTaskMessage } from '../../src/protocol/task-message.ts';
import { createTransport } from '../../src/transport/registry.ts';
import { createVhosts, deleteVhosts, runId, vhostUrl } from './helpers.ts';

const N = Number(process.argv[2] ?? 20_000);
const vhost = runId('bench');
await createVhosts([vhost]);
const t = createTransport(vhostUrl(vhost));
const rate = (n: number, start: number) => `${n} in ${((performance.now() - start) / 1000).toFixed(2)} s = ${Math.round(n / ((performance.now() - start) / 1000))} msg/s`;
try {
  await t.declareQueue('celery');
  const messages = Array.from({ length: N }, (_, i) => buildTaskMessage({ id: `m${i}`, name: 'tasks.add', args: [i, 2], origin: 'bench@host', replyTo: 'r' }));
  let start = performance.now();
  for (let i = 0; i < N; i += 500) await Promise.all(messages.slice(i, i + 500).map((m) => t.publish('celery', m)));
  console.log(`publish, confirmed, 500 in flight: ${rate(N, start)}`);
  start = performance.now();
  for (const m of messages.slice(0, 1000)) await t.publish('celery', m);
  console.log(`publish, confirmed, one at a time: ${rate(1000, start)}`);
  start = performance.now();
  let n = 0;
  for (let batch; (batch = await t.fetch(['celery'], 100, n < N + 1000 ? 1000 : 0)).length > 0;) {
    n += batch.length;
    await Promise.all(batch.map((d) => d.ack()));
    if (n >= N + 1000) break;
  }
  console.log(`fetch (max 100) + ack: ${rate(n, start)}`);
} finally {
  await t.close();
  await deleteVhosts([vhost]);
}
