/**
 * The rpc:// result backend on RabbitMQ (a vhost of its own), against itself and against the real
 * Python Celery 5.2: results as messages to the sending client's reply queue, in both directions.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Celery } from '../../src/index.ts';
import type { TaskContext } from '../../src/app/context.ts';
import { RpcBackend } from '../../src/backend/rpc/index.ts';
import { chord, group } from '../../src/canvas/index.ts';
import { ConfigurationError, TaskError, TaskRevokedError, UnsupportedByBackend } from '../../src/errors.ts';
import { createLogger } from '../../src/common/log.ts';
import { Worker } from '../../src/worker/worker.ts';
import { PYTHON, spawnCeleryWorker, stopChild } from '../helpers/python-worker.ts';
import { createVhosts, deleteVhosts, rawChannel, runId, vhostUrl } from './helpers.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const vhost = runId('rpc');
const broker = vhostUrl(vhost);
const JS_QUEUE = 'rpc-js';
const PY_QUEUE = 'rpc-py';
const env = { ...process.env, PYTHONPATH: path.join(here, 'py'), CELERIAC_TEST_BROKER: broker, CELERIAC_RPC_PY_QUEUE: PY_QUEUE };
const warnings: string[] = [];
const logger = { warning: (m: string) => void warnings.push(m), info: () => undefined };

let gateOpen: (() => void) | undefined;
const finished: number[] = [];

function defineTasks(app: Celery): void {
  app.task('rpcjs.add', (x: number, y: number) => x + y);
  app.task('rpcjs.fail', (message: string) => {
    throw new TypeError(message);
  });
  app.task('rpcjs.sleepy', async (ms: number, value: number) => {
    await new Promise((r) => setTimeout(r, ms));
    finished.push(value);
    return value;
  });
  app.task({ name: 'rpcjs.gated', bind: true, trackStarted: true }, async (self: TaskContext, value: string) => {
    await new Promise<void>((r) => (gateOpen = r));
    return `${value} from ${self.request.id}`;
  });
  app.task('rpcjs.xsum', (values: number[]) => values.reduce((a, b) => a + b, 0));
}

const config = { broker, backend: 'rpc://', taskDefaultQueue: JS_QUEUE, brokerTransportOptions: { logger } };
const client = new Celery('rpc-client', config);
const workerApp = new Celery('rpc-worker', config);
defineTasks(client);
defineTasks(workerApp);
let worker: Worker;
let python: ReturnType<typeof spawnCeleryWorker>['child'] | undefined;
let pythonLog = '';

function py(...args: string[]): Promise<unknown> {
  return new Promise((resolve, reject) => {
    execFile(PYTHON, [path.join(here, 'py', 'rpcclient.py'), ...args], { env, timeout: 40_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`rpcclient.py ${args[0]} failed: ${err.message}\n${stderr}`));
      resolve(JSON.parse(stdout));
    });
  });
}

async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(async () => {
  await createVhosts([vhost]);
  worker = new Worker(workerApp, { queues: [JS_QUEUE], concurrency: 10, logger: createLogger({ level: 'CRITICAL' }) });
  await worker.start();
  const args = ['-A', 'rpctasks', 'worker', '-P', 'solo', '-l', 'INFO', '-Q', PY_QUEUE, '-n', `rpcpy${process.pid}@%h`,
    '--without-mingle', '--without-gossip', '--without-heartbeat'];
  const started = spawnCeleryWorker(args, { cwd: path.join(here, 'py'), env, onOutput: (t) => (pythonLog += t) });
  python = started.child;
  await started.ready;
}, 40_000);

afterAll(async () => {
  await stopChild(python);
  await worker?.shutdown();
  await client.close();
  await workerApp.close();
  await deleteVhosts([vhost]);
}, 40_000);

describe('rpc:// between celeriac clients and workers', () => {
  it('delivers a success and a failure to the sending client', async () => {
    const ok = await client.sendTask('rpcjs.add', [2, 3]);
    expect(await ok.get({ timeout: 10 })).toBe(5);
    expect(await ok.state).toBe('SUCCESS');
    const bad = await client.sendTask('rpcjs.fail', ['bad input']);
    const err = await bad.get({ timeout: 10 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskError);
    expect(err).toMatchObject({ excType: 'TypeError', excMessage: ['bad input'], excModule: 'builtins', taskId: bad.id });
    expect((err as TaskError).traceback).toMatch(/TypeError: bad input/);
    expect(await bad.state).toBe('FAILURE');
    // Refused by the worker before it runs (as Celery's on_unknown_task): the failure comes the same way.
    const unknown = await client.sendTask('rpcjs.nope', []);
    await expect(unknown.get({ timeout: 10 })).rejects.toMatchObject({ excType: 'NotRegistered' });
  });

  it('tells the client about a task revoked while it waited for its countdown', async () => {
    const later = await client.sendTask('rpcjs.add', [1, 1], {}, { countdown: 2 });
    await new Promise((r) => setTimeout(r, 300)); // held by the worker
    await later.revoke();
    await expect(later.get({ timeout: 10 })).rejects.toThrow(TaskRevokedError);
    expect(await later.state).toBe('REVOKED');
  });

  it('shows STARTED for a task that tracks it, then its result', async () => {
    const r = await client.sendTask<string>('rpcjs.gated', ['hello']);
    expect(await until(() => r.state, (s) => s === 'STARTED')).toBe('STARTED');
    expect(await r.result).toMatchObject({ pid: process.pid });
    // STARTED is sent just before the task runs: wait for it to reach its gate.
    await until(async () => gateOpen, (g) => g !== undefined);
    gateOpen!();
    gateOpen = undefined;
    expect(await r.get({ timeout: 10 })).toBe(`hello from ${r.id}`);
  });

  it('gives each AsyncResult its own result when they arrive out of order', async () => {
    finished.length = 0;
    const plan = [[400, 1], [10, 2], [250, 3], [100, 4], [0, 5]] as const;
    const results = await Promise.all(plan.map(([ms, v]) => client.sendTask<number>('rpcjs.sleepy', [ms, v])));
    // Waited for in the order sent: the later ones' replies come first and are kept meanwhile.
    for (const [i, r] of results.entries()) expect(await r.get({ timeout: 10 })).toBe(plan[i]![1]);
    expect(finished).not.toEqual([1, 2, 3, 4, 5]);
    // And read again, in any order, from what the client received.
    expect(await Promise.all(results.reverse().map((r) => r.get({ timeout: 1 })))).toEqual([5, 4, 3, 2, 1]);
  });

  it('sends each state as Celery does: default exchange, routing key reply_to, correlation_id, five fields', async () => {
    const replies = `${vhost}-peek`;
    const { ch, close } = await rawChannel(broker);
    try {
      await ch.assertQueue(replies, { durable: false, autoDelete: false });
      const r = await client.sendTask('rpcjs.add', [1, 2], {}, { replyTo: replies } as never);
      let got: Awaited<ReturnType<typeof ch.get>> = false;
      for (let i = 0; i < 200 && got === false; i++) {
        got = await ch.get(replies, { noAck: true });
        if (got === false) await new Promise((res) => setTimeout(res, 25));
      }
      expect(got).not.toBe(false);
      const msg = got as Exclude<typeof got, false>;
      expect(msg.fields).toMatchObject({ exchange: '', routingKey: replies });
      expect(msg.properties).toMatchObject({ correlationId: r.id, deliveryMode: 1, contentType: 'application/json', contentEncoding: 'utf-8' });
      expect(JSON.parse(msg.content.toString())).toEqual({ task_id: r.id, status: 'SUCCESS', result: 3, traceback: null, children: [] });
      await ch.deleteQueue(replies);
    } finally {
      await close();
    }
  });

  it('joins a group; a result reaches only the client that sent the task', async () => {
    const g = await group([client.getTask('rpcjs.add').s(1, 1), client.getTask('rpcjs.add').s(2, 2)]).applyAsync();
    expect(await g.get({ timeout: 10 })).toEqual([2, 4]);
    const r = await client.sendTask('rpcjs.add', [20, 22]);
    expect(await r.get({ timeout: 10 })).toBe(42);
    const other = new Celery('rpc-other', config);
    try {
      expect(await other.AsyncResult(r.id).state).toBe('PENDING');
    } finally {
      await other.close();
    }
  });

  it('refuses chords at once, naming the backends that have them', async () => {
    const add = client.getTask('rpcjs.add');
    const err = await chord([add.s(1, 1), add.s(2, 2)], client.getTask('rpcjs.xsum').s()).applyAsync().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsupportedByBackend);
    expect((err as Error).message).toMatch(/rpc:\/\/ result backend does not support chords.*redis:\/\//);
    // A group piped into a task is a chord too.
    await expect(group([add.s(1, 1)]).pipe(client.getTask('rpcjs.xsum').s()).applyAsync()).rejects.toThrow(UnsupportedByBackend);
    const g = await group([add.s(3, 3)]).applyAsync();
    await expect(g.save()).rejects.toThrow(/cannot save groups.*redis:\/\//);
    expect(await g.get({ timeout: 10 })).toEqual([6]);
  });

  it('says which broker rpc:// needs', async () => {
    const app = new Celery('rpc-redis', { broker: 'redis://127.0.0.1:6379/0', backend: 'rpc://' });
    const err = await app.backend().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigurationError);
    expect((err as Error).message).toMatch(/must then be RabbitMQ \(amqp:\/\/ or amqps:\/\/\).*redis:\/\//);
    await app.close();
  });
});

describe('rpc:// with Python Celery 5.2', () => {
  it('Python client → celeriac worker: .get() returns the result, and raises the failure', async () => {
    const out = (await py('send', JSON.stringify([
      { task: 'rpcjs.add', args: [6, 7], queue: JS_QUEUE },
      { task: 'rpcjs.fail', args: ['boom'], queue: JS_QUEUE },
      { task: 'rpcjs.sleepy', args: [200, 9], queue: JS_QUEUE },
    ]))) as Record<string, unknown>[];
    expect(out[0]).toMatchObject({ result: 13 });
    expect(out[1]).toMatchObject({ error: 'boom', type: 'TypeError', module: 'builtins' });
    expect(out[2]).toMatchObject({ result: 9 });
  });

  it('celeriac client → Python worker: get() returns the result, STARTED included, and the failure', async () => {
    const r = await client.sendTask('rpctasks.add', [2, 3], {}, { queue: PY_QUEUE });
    expect(await r.get({ timeout: 15 })).toBe(5);
    const bad = await client.sendTask('rpctasks.fail', ['nope'], {}, { queue: PY_QUEUE });
    await expect(bad.get({ timeout: 15 })).rejects.toMatchObject({ excType: 'ValueError', excMessage: ['nope'], excModule: 'builtins' });
    // task_track_started on the Python side: its STARTED message comes the same way.
    const slow = await client.sendTask('rpctasks.slow', [0.5, 'late'], {}, { queue: PY_QUEUE });
    expect(await until(() => slow.state, (s) => s === 'STARTED')).toBe('STARTED');
    expect(await slow.result).toMatchObject({ pid: expect.any(Number), hostname: expect.stringMatching(/^rpcpy/) });
    expect(await slow.get({ timeout: 15 })).toBe('late');
    expect(pythonLog).not.toMatch(/PRECONDITION_FAILED/);
  });

  it('declares the reply queue exactly as Python does: no PRECONDITION_FAILED either way', async () => {
    // The celeriac client's queue (declared when it sent its tasks), declared again by kombu.
    await client.sendTask('rpcjs.add', [1, 1]);
    expect(await py('declare', client.oid)).toEqual({ declared: client.oid });
    // A queue kombu declared first, declared again by a celeriac client of the same oid.
    const oid = `${vhost}-py-first`;
    expect(await py('declare', oid)).toEqual({ declared: oid });
    const backend = new RpcBackend({ broker, oid, expires: client.conf.resultExpires, transport: () => client.transport() });
    expect((await backend.getTaskMeta('nothing-yet')).status).toBe('PENDING');
    await backend.close();
    expect(warnings).toEqual([]);
    // What RabbitMQ holds: not durable, auto-delete, x-expires = result_expires in ms.
    const { ch, close } = await rawChannel(broker);
    try {
      await expect(ch.assertQueue(client.oid, { durable: false, autoDelete: true, arguments: { 'x-expires': 86_400_000 } })).resolves.toMatchObject({ queue: client.oid });
    } finally {
      await close();
    }
  });
});
