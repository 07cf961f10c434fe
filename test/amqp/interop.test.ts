/**
 * Wire compatibility with the real Python Celery 5.2 / kombu / py-amqp over RabbitMQ, in a vhost
 * of its own (results in Redis, RESULTS_DB): declarations made by either side are accepted by the other,
 * header types survive the trip both ways, a Python worker runs celeriac's tasks and a celeriac
 * worker runs Python's.
 */
import { spawnCeleryWorker, stopChild } from '../helpers/python-worker.ts';
import { type ChildProcess, execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Celery } from '../../src/index.ts';
import { buildTaskMessage } from '../../src/protocol/task-message.ts';
import { createTransport } from '../../src/transport/registry.ts';
import type { Transport } from '../../src/transport/types.ts';
import { createLogger } from '../../src/common/log.ts';
import { Worker } from '../../src/worker/worker.ts';
import { createVhosts, deleteVhosts, runId, vhostUrl } from './helpers.ts';
import { RESULTS_REDIS_URL, trackResults } from '../helpers/redis-db.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const PYTHON = '/usr/bin/python3';
const vhost = runId('interop');
const broker = vhostUrl(vhost);
const backend = RESULTS_REDIS_URL;
const env = { ...process.env, PYTHONPATH: path.join(here, 'py'), CELERIAC_TEST_BROKER: broker, CELERIAC_TEST_BACKEND: backend };
const taskIds: string[] = [];
const warnings: string[] = [];
const logger = { warning: (m: string) => void warnings.push(m), info: () => undefined };

const app = new Celery('t', { broker, backend, brokerTransportOptions: { logger } });
app.task('jstasks.mul', (x: number, y: number) => x * y);

let python: ChildProcess | undefined;
let pythonLog = '';
let transport: Transport;

/** Run test/amqp/py/<script> with arguments; resolves with its JSON output. */
function py(script: string, ...args: string[]): Promise<unknown> {
  return new Promise((resolve, reject) => {
    execFile(PYTHON, [path.join(here, 'py', script), ...args], { env, timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${script} ${args[0]} failed: ${err.message}\n${stderr}`));
      resolve(JSON.parse(stdout));
    });
  });
}

function startPythonWorker(): Promise<void> {
  const args = ['-A', 'pytasks', 'worker', '-P', 'solo', '-l', 'INFO', '-Q', 'py', '-n', `py${process.pid}@%h`,
    '--without-mingle', '--without-gossip', '--without-heartbeat'];
  const { child, ready } = spawnCeleryWorker(args, { cwd: path.join(here, 'py'), env, onOutput: (text) => (pythonLog += text) });
  python = child;
  return ready;
}

beforeAll(async () => {
  await createVhosts([vhost]);
  transport = createTransport(broker, { logger });
  await startPythonWorker();
}, 30_000);

afterAll(async () => {
  await stopChild(python);
  await transport?.close();
  await app.close();
  const results = trackResults();
  results.add(taskIds);
  await results.cleanup();
  await deleteVhosts([vhost]);
}, 30_000);

type Typed = { type: string; value: unknown };
const typedValue = (t: Typed): unknown =>
  t.type === 'list' ? (t.value as Typed[]).map(typedValue) : t.type === 'dict' ? Object.fromEntries(Object.entries(t.value as Record<string, Typed>).map(([k, v]) => [k, typedValue(v)])) : t.value;

describe('celeriac and Python Celery 5.2 on one RabbitMQ', () => {
  it('accepts the queues Python declares, and Python accepts the ones celeriac declares', async () => {
    await py('wire.py', 'declare', broker, 'from-py');
    await transport.declareQueue('from-py');
    await transport.declareQueue('from-js');
    await py('wire.py', 'declare', broker, 'from-js'); // kombu raises PreconditionFailed on any difference
    const prio = createTransport(`${broker}?queue_max_priority=10`, { logger });
    await py('wire.py', 'declare', broker, 'prio-from-py', '10');
    await prio.declareQueue('prio-from-py');
    await prio.declareQueue('prio-from-js');
    await py('wire.py', 'declare', broker, 'prio-from-js', '10');
    await prio.close();
    expect(warnings).toEqual([]);
  });

  it('sends header types and properties a Python consumer reads back as the same values', async () => {
    const headers = { n: 1, neg: -7, big: 2 ** 40, f: 1.5, yes: true, nothing: null, nested: { a: [1, 'x', null], b: { c: 2.25 } } };
    const message = buildTaskMessage({ id: 'h1', name: 'pytasks.add', args: [2, 3], origin: 'gen1@host', replyTo: 'r-oid', headers });
    await transport.publish('peek', message);
    const [got] = (await py('wire.py', 'peek', broker, 'peek', '1')) as { headers: Record<string, Typed>; properties: Record<string, unknown>; body: string }[];
    const types = Object.fromEntries(Object.entries(got!.headers).map(([k, v]) => [k, v.type]));
    expect(types).toMatchObject({
      lang: 'str', task: 'str', id: 'str', eta: 'NoneType', group_index: 'NoneType', retries: 'int', timelimit: 'list', ignore_result: 'bool',
      n: 'int', neg: 'int', big: 'int', f: 'float', yes: 'bool', nothing: 'NoneType', nested: 'dict',
    });
    const values = Object.fromEntries(Object.entries(got!.headers).map(([k, v]) => [k, typedValue(v)]));
    expect(values).toEqual({ ...message.headers });
    expect(got!.headers.timelimit!.value).toEqual([{ type: 'NoneType', value: null }, { type: 'NoneType', value: null }]);
    expect(got!.properties).toEqual({ content_type: 'application/json', content_encoding: 'utf-8', delivery_mode: 2, priority: 0, correlation_id: 'h1', reply_to: 'r-oid' });
    expect(got!.body).toBe(message.body.toString());
  });

  it("reads the header types py-amqp writes, 64-bit integers (tag L) included", async () => {
    await py('wire.py', 'publish', broker, 'from-py', JSON.stringify({ id: 'p1', task: 'x', big: '__big__', negbig: '__neg_big__', f: 0.25, lst: [1, null, true], d: { a: 1 } }));
    const [d] = await transport.fetch(['from-py'], 1, 5000);
    expect(d!.message.headers).toEqual({ id: 'p1', task: 'x', big: 2 ** 40, negbig: -(2 ** 40), f: 0.25, lst: [1, null, true], d: { a: 1 } });
    expect(d!.message.properties).toEqual({ correlation_id: 'p1', delivery_mode: 2, priority: 3 });
    expect(d!.info).toMatchObject({ exchange: '', routingKey: 'from-py', priority: 3 });
    await d!.ack();
  });

  it('celeriac client → Python worker → celeriac get()', async () => {
    const r = await app.sendTask('pytasks.add', [2, 3], {}, { queue: 'py' });
    taskIds.push(r.id);
    expect(await r.get({ timeout: 15 })).toBe(5);
  });

  it('Python client → celeriac worker → Python AsyncResult.get()', async () => {
    const worker = new Worker(app, { queues: ['js'], logger: createLogger({ level: 'CRITICAL' }) });
    await worker.start();
    try {
      const [res] = (await py('client.py', JSON.stringify([{ task: 'jstasks.mul', args: [6, 7], queue: 'js' }]))) as { id: string; result: unknown }[];
      taskIds.push(res!.id);
      expect(res).toMatchObject({ result: 42 });
    } finally {
      await worker.shutdown();
    }
  });
});
