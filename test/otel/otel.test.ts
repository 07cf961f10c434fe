/**
 * OpenTelemetry traces: the SDK with its in-memory exporter in this process (and in a celeriac
 * worker process, test/otel/worker.ts, which writes its spans to a file when it stops). One trace
 * goes from a client span through the producer span to the consumer span, in one process, across
 * Redis to a worker process and back, and across languages: a Python Celery client whose message
 * carries the headers Python's instrumentation writes, and a Python Celery worker that reads what
 * celeriac writes the way Python's instrumentation reads it (test/otel/py/otel_pytasks.py).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Celery, createLogger, Worker } from '../../src/index.ts';
import { RESULTS_REDIS_URL } from '../helpers/redis-db.ts';
import { celeryPython, deleteByPrefix, type Proc, REDIS_HOST, runPrefix, spawnLogged, startPythonWorker, TEST_DB, trackResults } from '../redis/helpers.ts';
import { findMessages, wireMessage } from '../helpers/fixtures.ts';
import { setupTracing, type SpanRecord, spanRecord } from './setup.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const exporter = setupTracing();
const spans = (): SpanRecord[] => exporter.getFinishedSpans().map(spanRecord);
const byName = (list: SpanRecord[], name: string): SpanRecord[] => list.filter((s) => s.name === name);
const one = (list: SpanRecord[], name: string): SpanRecord => {
  const found = byName(list, name);
  expect(found.map((s) => s.name)).toEqual([name]);
  return found[0]!;
};
const tracer = trace.getTracer('otel-test');

/** The finished spans once one named `name` has ended (a run's span ends just after its result is stored). */
async function spansWith(name: string): Promise<SpanRecord[]> {
  for (let i = 0; i < 200 && !exporter.getFinishedSpans().some((s) => s.name === name); i++) await new Promise((r) => setTimeout(r, 10));
  return spans();
}

/** Run `fn` inside a client span; returns the span's ids once it has ended. */
async function inSpan<T>(name: string, fn: () => Promise<T>): Promise<{ value: T; traceId: string; spanId: string }> {
  const span = tracer.startSpan(name);
  try {
    const value = await context.with(trace.setSpan(context.active(), span), fn);
    return { value, ...span.spanContext() };
  } finally {
    span.end();
  }
}

describe('OpenTelemetry in one process (memory broker)', () => {
  const app = new Celery('otel', { broker: 'memory://otel' });
  const add = app.task('otel.add', (x: number, y: number) => x + y);
  const headers = app.task({ name: 'otel.headers', bind: true }, (self) => self.request.headers.traceparent);
  app.task('otel.fail', () => {
    throw new RangeError('out of range');
  });
  app.task({ name: 'wiretasks.add', params: ['x', 'y'] }, (x: number, y: number) => x + y);
  let worker: Worker;
  beforeAll(async () => {
    worker = new Worker(app, { logger: createLogger({ level: 'CRITICAL' }) });
    await worker.start();
  });
  afterAll(() => worker.shutdown());
  beforeEach(() => exporter.reset());

  it('makes one trace: client span, producer span, consumer span, with messaging attributes', async () => {
    const client = await inSpan('client', async () => (await add.delay(2, 3)).get({ timeout: 10 }));
    expect(client.value).toBe(5);
    const all = await spansWith('run/otel.add');
    const producer = one(all, 'apply_async/otel.add');
    const consumer = one(all, 'run/otel.add');
    expect(producer).toMatchObject({ kind: SpanKind.PRODUCER, traceId: client.traceId, parentSpanId: client.spanId });
    expect(consumer).toMatchObject({ kind: SpanKind.CONSUMER, traceId: client.traceId, parentSpanId: producer.spanId });
    const id = producer.attributes['messaging.message.id'];
    expect(producer.attributes).toEqual({
      'messaging.system': 'celery', 'messaging.operation.type': 'send', 'messaging.operation.name': 'apply_async', 'messaging.destination.name': 'celery',
      'messaging.message.id': id, 'messaging.message.conversation_id': id, 'celery.action': 'apply_async', 'celery.task_name': 'otel.add', 'celery.hostname': app.origin,
    });
    expect(consumer.attributes).toMatchObject({
      'messaging.system': 'celery', 'messaging.operation.type': 'process', 'messaging.operation.name': 'run', 'messaging.destination.name': 'celery',
      'messaging.message.id': id, 'celery.action': 'run', 'celery.task_name': 'otel.add', 'celery.hostname': worker.hostname, 'celery.state': 'SUCCESS',
    });
    expect(consumer.status.code).toBe(SpanStatusCode.UNSET);
  });

  it("carries the producer span in the message's traceparent header, as W3C trace context", async () => {
    const client = await inSpan('client', async () => (await headers.delay()).get({ timeout: 10 }));
    const producer = one(await spansWith('run/otel.headers'), 'apply_async/otel.headers');
    expect(client.value).toBe(`00-${client.traceId}-${producer.spanId}-01`);
  });

  it('marks a failed run as an error with the exception recorded', async () => {
    await inSpan('client', async () => {
      await expect((await app.sendTask('otel.fail')).get({ timeout: 10 })).rejects.toThrow(/out of range/);
    });
    const consumer = one(await spansWith('run/otel.fail'), 'run/otel.fail');
    expect(consumer.status).toEqual({ code: SpanStatusCode.ERROR, message: 'RangeError: out of range' });
    expect(consumer.events).toEqual(['exception']);
    expect(consumer.attributes['celery.state']).toBe('FAILURE');
  });

  it("reads the headers Python's instrumentation writes (fixture), and writes them in the same form and place", async () => {
    const fixture = JSON.parse(fs.readFileSync(path.join(here, '..', 'fixtures', 'otel', 'python-instrumented-message.json'), 'utf8')) as { traceId: string; producerSpanId: string; envelope: unknown };
    const message = wireMessage(findMessages({ envelope: fixture.envelope })[0]!);
    await (await app.transport()).publish('celery', message, { exchange: '', routingKey: 'celery' });
    expect(await app.AsyncResult(String(message.headers.id)).get({ timeout: 10 })).toBe(5);
    const consumer = one(await spansWith('run/wiretasks.add'), 'run/wiretasks.add');
    expect(consumer).toMatchObject({ traceId: fixture.traceId, parentSpanId: fixture.producerSpanId, kind: SpanKind.CONSUMER });
    // What celeriac writes: the same header, at the same place, in the same form.
    const client = await inSpan('client', async () => (await headers.delay()).get({ timeout: 10 }));
    const pythonForm = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
    expect(message.headers.traceparent).toMatch(pythonForm);
    expect(client.value).toMatch(pythonForm);
  });

  it('an eager run is a consumer span child of the caller', async () => {
    const client = await inSpan('client', async () => (await add.apply([1, 1])).get());
    expect(client.value).toBe(2);
    const consumer = one(spans(), 'run/otel.add');
    expect(consumer).toMatchObject({ traceId: client.traceId, parentSpanId: client.spanId });
    expect(byName(spans(), 'apply_async/otel.add')).toEqual([]);
  });
});

describe('OpenTelemetry only when set up', () => {
  const headersOf = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ traceparent: string | null }> =>
    new Promise((resolve, reject) => {
      execFile(process.execPath, ['--import', 'tsx', path.join(here, 'publish-headers.ts'), ...args], { env: { ...process.env, ...env }, timeout: 30_000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`publish-headers.ts: ${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout) as { traceparent: string | null }),
      );
    });

  it('adds no header while no tracer provider is registered, nor with CELERIAC_OPENTELEMETRY=off', async () => {
    const [bare, traced, off] = await Promise.all([headersOf([]), headersOf(['sdk']), headersOf(['sdk'], { CELERIAC_OPENTELEMETRY: 'off' })]);
    expect(bare.traceparent).toBeNull();
    expect(traced.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(off.traceparent).toBeNull();
  });
});

describe('OpenTelemetry across Redis, with a celeriac worker process and Python Celery', () => {
  const prefix = runPrefix('otel');
  const brokerBase = `redis://${REDIS_HOST}/${TEST_DB}`;
  const broker = `${brokerBase}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const queue = `otel-${process.pid}`;
  const pyQueue = `otel-py-${process.pid}`;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'celeriac-otel-'));
  const spansFile = path.join(tmp, 'worker-spans.json');
  const pyEnv = { ...process.env, PYTHONPATH: path.join(here, 'py'), OTEL_BROKER_BASE: brokerBase, OTEL_BACKEND: RESULTS_REDIS_URL, OTEL_PREFIX: prefix };
  const results = trackResults();
  const app = new Celery('otel-client', { broker, backend: RESULTS_REDIS_URL });
  let node: Proc;
  let python: Proc | undefined;
  let workerSpans: SpanRecord[] = [];
  const client: Record<string, { traceId: string; spanId: string; value: unknown }> = {};
  // What Python's instrumentation would write for a producer span of its own (otel_pytasks.py).
  const pyTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
  const pySpan = '00f067aa0ba902b7';

  const sendFromPython = (task: string, args: unknown[]): Promise<string> =>
    new Promise((resolve, reject) => {
      const env = { ...pyEnv, OTEL_INJECT_TRACEPARENT: `00-${pyTrace}-${pySpan}-01` };
      execFile(celeryPython(), [path.join(here, 'py', 'otel_client.py'), task, queue, JSON.stringify(args)], { env, timeout: 30_000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`otel_client.py: ${err.message}\n${stderr}`)) : resolve(stdout.trim()),
      );
    });

  beforeAll(async () => {
    exporter.reset();
    node = spawnLogged(process.execPath, ['--import', 'tsx', path.join(here, 'worker.ts')], {
      env: { ...process.env, OTEL_BROKER: broker, OTEL_BACKEND: RESULTS_REDIS_URL, OTEL_QUEUE: queue, SPANS_FILE: spansFile },
    });
    [python] = await Promise.all([
      startPythonWorker('otel_pytasks', ['-P', 'solo', '-l', 'INFO', '-Q', pyQueue, '-n', `otelpy${process.pid}@%h`, '--without-mingle', '--without-gossip', '--without-heartbeat'], pyEnv, path.join(here, 'py')),
      node.waitFor(/ ready\./, 30_000),
    ]);
    const run = async (label: string, fn: () => Promise<unknown>) => (client[label] = await inSpan(label, fn));
    await run('add', async () => {
      const r = await app.sendTask('otel.add', [2, 3], {}, { queue });
      results.add(r);
      return r.get({ timeout: 20 });
    });
    await run('relay', async () => {
      const r = await app.sendTask('otel.relay', [7], {}, { queue });
      results.add(r);
      const inner = (await r.get({ timeout: 20 })) as string;
      results.add(inner);
      return app.AsyncResult(inner).get({ timeout: 20 });
    });
    await run('python worker', async () => {
      const r = await app.sendTask('otel.py_context', [], {}, { queue: pyQueue });
      results.add(r);
      return r.get({ timeout: 20 });
    });
    const fromPython = await sendFromPython('otel.add', [40, 2]);
    results.add(fromPython);
    expect(await app.AsyncResult(fromPython).get({ timeout: 20 })).toBe(42);
    await node.stop();
    workerSpans = JSON.parse(fs.readFileSync(spansFile, 'utf8')) as SpanRecord[];
  }, 90_000);

  afterAll(async () => {
    await node?.kill();
    await python?.stop();
    await app.close();
    await results.cleanup();
    await deleteByPrefix(TEST_DB, prefix);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('one trace from the client span to the consumer span in the worker process', () => {
    expect(client.add!.value).toBe(5);
    const producer = spans().find((s) => s.name === 'apply_async/otel.add' && s.traceId === client.add!.traceId)!;
    expect(producer).toMatchObject({ kind: SpanKind.PRODUCER, parentSpanId: client.add!.spanId });
    const consumers = workerSpans.filter((s) => s.name === 'run/otel.add' && s.traceId === client.add!.traceId);
    expect(consumers).toHaveLength(1);
    expect(consumers[0]).toMatchObject({ kind: SpanKind.CONSUMER, parentSpanId: producer.spanId });
    expect(consumers[0]!.attributes).toMatchObject({ 'messaging.destination.name': queue, 'celery.task_name': 'otel.add', 'celery.state': 'SUCCESS' });
  });

  it('a task sent from inside a run continues the trace: run, its producer span, the next run', () => {
    expect(client.relay!.value).toBe(8);
    const { traceId } = client.relay!;
    const mine = workerSpans.filter((s) => s.traceId === traceId);
    const relayRun = one(mine, 'run/otel.relay');
    const innerSend = one(mine, 'apply_async/otel.add');
    const innerRun = one(mine, 'run/otel.add');
    expect(innerSend.parentSpanId).toBe(relayRun.spanId);
    expect(innerRun.parentSpanId).toBe(innerSend.spanId);
    const clientSend = one(spans().filter((s) => s.traceId === traceId), 'apply_async/otel.relay');
    expect(relayRun.parentSpanId).toBe(clientSend.spanId);
  });

  it("a Python Celery worker reads celeriac's context where Python's instrumentation looks (task.request.traceparent)", () => {
    const { traceId, value } = client['python worker']!;
    const producer = one(spans().filter((s) => s.traceId === traceId), 'apply_async/otel.py_context');
    expect(value).toEqual({ traceparent: `00-${traceId}-${producer.spanId}-01`, tracestate: null });
  });

  it("a message from Python Celery with the instrumentation's headers continues Python's trace in a celeriac worker", () => {
    const consumers = workerSpans.filter((s) => s.traceId === pyTrace);
    expect(consumers.map((s) => [s.name, s.parentSpanId])).toEqual([['run/otel.add', pySpan]]);
  });
});
