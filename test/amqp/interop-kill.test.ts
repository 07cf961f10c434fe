/**
 * kill -9 during acks_late tasks on RabbitMQ, across implementations:
 *  - a celeriac worker process (`node bin/celeriac.js -A test/amqp/ixapp.ts worker -c 2`,
 *    taskAcksLate) holding four `ix.slow` tasks (two running, two reserved) is killed; RabbitMQ
 *    puts the four unacknowledged messages back in the queue as soon as its connection is gone,
 *    and a Python Celery 5.2 worker runs every one;
 *  - a Python prefork worker (task_acks_late = True; the whole process group) is killed the same
 *    way; a celeriac worker runs them all.
 * Nothing is lost, nothing runs twice to completion, and the second delivery of each message is
 * seen as such by the task: request.delivery_info['redelivered'] in Python,
 * self.request.deliveryInfo.redelivered in celeriac (false on the first delivery).
 *
 * Shared broker, default vhost, one queue per direction named for the run (deleted afterwards);
 * records in Redis DB 9 under the queue's name.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/common/log.ts';
import { Worker } from '../../src/worker/worker.ts';
import { runId } from './helpers.ts';
import { makeApp } from './ixapp.ts';
import { BROKER, brokerCounts, createVhost, deleteQueues, deleteVhost, deleteRecords, type Proc, queueWatcher, RECORD, records, startCeleriacWorker, startPythonWorker, until } from './ixhelpers.ts';

const raw = records();
const watcher = queueWatcher();
const queues: string[] = [];
const procs: Proc[] = [];
const TAGS = ['t1', 't2', 't3', 't4'];
const QUIET = ['--without-mingle', '--without-gossip', '--without-heartbeat'];

beforeAll(createVhost);

afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill()));
  await watcher.close();
  raw.disconnect();
  await deleteQueues(queues);
  for (const q of queues) await deleteRecords(`${q}:`);
  await deleteVhost();
}, 30_000);

interface Entry { tag: string; redelivered: boolean; acks_late: boolean }
const entries = async (key: string): Promise<Entry[]> => (await raw.lrange(key, 0, -1)).map((e) => JSON.parse(e) as Entry);
const byTag = (list: Entry[]) => [...list].sort((a, b) => a.tag.localeCompare(b.tag));

async function sendSlow(queue: string, prefix: string, sleepIn: 'js' | 'py'): Promise<void> {
  const app = makeApp({ broker: BROKER, record: RECORD, prefix });
  try {
    for (const tag of TAGS) await app.sendTask('ix.slow', [tag, sleepIn], {}, { queue });
  } finally {
    await app.close();
  }
  expect(await watcher.stats(queue)).toEqual({ ready: 4, consumers: 0 });
}

/** Two tasks running in the worker, the other two reserved by it: none left ready in the queue. */
async function twoRunningTwoHeld(queue: string, started: string, proc?: Proc): Promise<void> {
  await until('two running tasks and four delivered', async () => (await raw.llen(started)) === 2 && (await watcher.stats(queue)).ready === 0)
    .catch((err: Error) => { throw new Error(`${err.message}\nworker log:\n${proc?.log() ?? ''}`); });
  expect(await brokerCounts(queue)).toEqual({ ready: 0, unacked: 4 });
}

/** RabbitMQ gives back every unacknowledged message of a closed connection at once: all four are ready again. */
async function allFourBack(queue: string): Promise<void> {
  await until('the four unacknowledged messages back in the queue', async () => {
    const s = await watcher.stats(queue);
    return s.consumers === 0 && s.ready === 4;
  }, 10_000);
}

// The two directions run at once, each on its own queue and key prefix.
describe.concurrent('kill -9 under acks_late on RabbitMQ', () => {
  it("a killed celeriac worker's tasks are redelivered to a Python worker, which runs every one", async () => {
    const queue = runId('kill-js');
    const prefix = `${queue}:`;
    queues.push(queue);
    await sendSlow(queue, prefix, 'js');

    // -c 2, prefetch 2 × 4: it takes all four, runs two (sleeping 60 s), holds two.
    const js = await startCeleriacWorker(['-Q', queue, '-c', '2', '-n', `killjs${process.pid}@test`, '-l', 'INFO', ...QUIET], { prefix, acksLate: true });
    procs.push(js);
    await twoRunningTwoHeld(queue, prefix + 'started:js', js);
    await js.kill();
    await allFourBack(queue);

    const py = await startPythonWorker(['-P', 'solo', '-l', 'INFO', '-Q', queue, '-n', `killpy${process.pid}@test`, ...QUIET], { prefix, acksLate: true });
    procs.push(py);
    await until('the Python worker to run all four', async () => (await raw.llen(prefix + 'done:py')) === 4)
      .catch((err: Error) => { throw new Error(`${err.message}\npython worker log:\n${py.log()}`); });
    // Celery 5.2's event loop on py-amqp can stall for seconds with frames read but not handled
    // (more so with no mingle/gossip/heartbeat traffic), its acks unsent: a warm shutdown then gives
    // a message whose task already ran back to the queue. So it stops once RabbitMQ has every ack.
    await until('the Python worker to acknowledge all four', async () => (await brokerCounts(queue)).unacked === 0, 30_000, 200);
    await py.stop();

    const startedJs = await entries(prefix + 'started:js');
    expect(startedJs).toHaveLength(2);
    for (const e of startedJs) expect(e).toMatchObject({ redelivered: false, acks_late: true });
    expect(await raw.llen(prefix + 'done:js')).toBe(0);
    // Each of the four once, every one seen as redelivered by Celery.
    expect(byTag(await entries(prefix + 'done:py'))).toEqual(TAGS.map((tag) => ({ tag, redelivered: true, acks_late: true })));
    expect(byTag(await entries(prefix + 'started:py'))).toEqual(TAGS.map((tag) => ({ tag, redelivered: true, acks_late: true })));
    expect(await watcher.stats(queue)).toEqual({ ready: 0, consumers: 0 }); // all acknowledged before the worker left
  }, 60_000);

  it("a killed Python worker's tasks are redelivered to a celeriac worker, which runs every one", async () => {
    const queue = runId('kill-py');
    const prefix = `${queue}:`;
    queues.push(queue);
    await sendSlow(queue, prefix, 'py');

    // prefork -c 2, prefetch 2 × 4: the parent takes all four while two children sleep in the task.
    const py = await startPythonWorker(['-P', 'prefork', '-c', '2', '-l', 'INFO', '-Q', queue, '-n', `killpy${process.pid}@test`, ...QUIET], { prefix, acksLate: true });
    procs.push(py);
    await twoRunningTwoHeld(queue, prefix + 'started:py', py);
    await py.kill(); // the parent and its pool children
    await allFourBack(queue);

    const app = makeApp({ broker: BROKER, record: RECORD, prefix, acksLate: true });
    const worker = new Worker(app, { queues: [queue], concurrency: 4, hostname: `killjs${process.pid}@test`, logger: createLogger({ level: 'CRITICAL' }), withoutMingle: true, withoutGossip: true, withoutHeartbeat: true });
    await worker.start();
    try {
      await until('the celeriac worker to run all four', async () => (await raw.llen(prefix + 'done:js')) === 4);
    } finally {
      await worker.shutdown();
    }

    const startedPy = await entries(prefix + 'started:py');
    expect(startedPy).toHaveLength(2);
    for (const e of startedPy) expect(e).toMatchObject({ redelivered: false, acks_late: true });
    expect(await raw.llen(prefix + 'done:py')).toBe(0);
    expect(byTag(await entries(prefix + 'done:js'))).toEqual(TAGS.map((tag) => ({ tag, redelivered: true, acks_late: true })));
    expect(byTag(await entries(prefix + 'started:js'))).toEqual(TAGS.map((tag) => ({ tag, redelivered: true, acks_late: true })));
    expect(await watcher.stats(queue)).toEqual({ ready: 0, consumers: 0 });
  }, 60_000);
});
