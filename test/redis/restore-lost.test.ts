/**
 * workerRestoreLost: a celeriac worker process holding acksLate tasks is killed with SIGKILL; a
 * surviving celeriac worker sees its heartbeats stop and gives its messages back at once, though
 * the visibility timeout is an hour. Each runs on the survivor once. Broker under a run-unique prefix.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { Celery } from '../../src/index.ts';
import { createLogger } from '../../src/common/log.ts';
import { Worker } from '../../src/worker/worker.ts';
import { deleteByPrefix, type Proc, redisClient, runPrefix, startCeleriacWorker, TRANSPORT_DB } from './helpers.ts';

const prefix = runPrefix('restore-lost');
const broker = `redis://127.0.0.1:6379/${TRANSPORT_DB}`;
const raw = redisClient(TRANSPORT_DB);
const TAGS = ['r1', 'r2', 'r3', 'r4'];
const lines: string[] = [];
const procs: Proc[] = [];
let survivor: Worker | undefined;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill()));
  await survivor?.shutdown();
  await deleteByPrefix(TRANSPORT_DB, prefix);
  raw.disconnect();
});

async function until(what: string, check: () => Promise<boolean> | boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${lines.join('\n')}`);
    await sleep(50);
  }
}

describe('workerRestoreLost on Redis', () => {
  it('a killed worker\'s unacknowledged tasks are back and run once within seconds, with a 1 h visibility timeout', async () => {
    const env = { CELERIAC_TEST_BROKER: broker, CELERIAC_TEST_PREFIX: prefix, CELERIAC_TEST_RESTORE_LOST: '1' };
    const doomed = await startCeleriacWorker('test/redis/ixapp.ts', ['-Q', 'slow', '-c', '4', '-n', `doomed${process.pid}@%h`, '--heartbeat-interval', '1', '--without-mingle'], env);
    procs.push(doomed);

    const app = new Celery('survivor', { broker, brokerTransportOptions: { global_keyprefix: prefix }, workerRestoreLost: true });
    const ranHere: string[] = [];
    app.task({ name: 'ix.slow', acksLate: true, ignoreResult: true }, (tag: string) => void ranHere.push(tag));
    for (const tag of TAGS) await app.sendTask('ix.slow', [tag, 'js'], {}, { queue: 'slow' });
    await until('the doomed worker to start every task', async () => Object.keys(await raw.hgetall(`${prefix}started:js`)).length === TAGS.length, 20_000);
    expect(await raw.hlen(`${prefix}unacked`)).toBe(TAGS.length);

    survivor = new Worker(app, { queues: ['slow'], hostname: `survivor${process.pid}@test`, withoutMingle: true, heartbeatInterval: 1, logger: createLogger({ level: 'INFO', write: (l) => void lines.push(l) }) });
    await survivor.start();
    await until('the survivor to see the doomed worker', () => lines.some((l) => l.includes('joined')) || survivor!.cluster?.gossip?.state.aliveWorkers().length === 1, 10_000);

    await doomed.kill();
    // Within the detection window (heartbeats 1 s, checked every 5 s), not the hour of the timeout.
    await until('the survivor to run the restored tasks', () => ranHere.length === TAGS.length, 20_000);
    expect([...ranHere].sort()).toEqual(TAGS);
    // The restore script's count comes back on the command connection; the restored messages wake the
    // consumer through key tracking on another one, so they may run before the line is logged.
    const restored = new RegExp(`gossip: restored ${TAGS.length} messages held by lost worker doomed${process.pid}@`);
    await until('the restore to be logged', () => lines.some((l) => restored.test(l)), 5_000);
    await until('an empty unacked', async () => (await raw.hlen(`${prefix}unacked`)) === 0, 5_000);
    expect(await raw.hlen(`${prefix}celeriac.holders`)).toBe(0);
  });
});
