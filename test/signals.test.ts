import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, expectTypeOf, it } from 'vitest';
import { Celery, createLogger, type Signal, signals, type SignalArgs, type SignalName, type Task, type TaskState, Worker } from '../src/index.ts';
import { setSignalLogger } from '../src/app/signal.ts';
import type { TaskRequest } from '../src/protocol/task-message.ts';
import { amqpConformanceKind } from './amqp/helpers.ts';
import { redisConformanceKind } from './redis/helpers.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'celeriac-signals-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
let seq = 0;

const brokers = [
  { name: 'memory', newUrl: () => `memory://signals-${seq++}`, cleanup: undefined as (() => Promise<void>) | undefined },
  { name: 'sqlite', newUrl: () => `sqlite:///${path.join(dir, `broker-${seq++}.db`)}`, cleanup: undefined },
  redisConformanceKind(),
  amqpConformanceKind(),
];

type Fired = { [N in SignalName]?: SignalArgs[N][] };

/** Connect a recording receiver to every signal; returns what each received and a disconnect. */
function record(): { fired: Fired; off: () => void } {
  const fired: Fired = {};
  const offs: (() => void)[] = [];
  for (const name of Object.keys(signals) as SignalName[]) {
    const receiver = (args: never) => void ((fired[name] ??= []) as unknown[]).push(args);
    (signals[name] as { connect(r: unknown): unknown }).connect(receiver);
    offs.push(() => (signals[name] as { disconnect(r: unknown): boolean }).disconnect(receiver));
  }
  return { fired, off: () => offs.forEach((f) => f()) };
}

const until = async (cond: () => boolean, what: string): Promise<void> => {
  for (let i = 0; i < 400 && !cond(); i++) await new Promise((r) => setTimeout(r, 25));
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
};

const quiet = createLogger({ level: 'CRITICAL' });
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe.each(brokers)('signals on the $name broker', (broker) => {
  afterAll(() => broker.cleanup?.());

  it('fire once per event with Celery arguments; a throwing receiver fails nothing', async () => {
    const app = new Celery('signals', { broker: broker.newUrl() });
    const add = app.task('sig.add', (x: number, y: number) => x + y);
    const boom = app.task('sig.boom', () => {
      throw new TypeError('boom');
    });
    let tries = 0;
    const flaky = app.task({ name: 'sig.flaky', bind: true }, async (self) => {
      if (tries++ === 0) return self.retry({ countdown: 0 });
      return 'again';
    });
    const { fired, off } = record();
    cleanups.push(off);
    // Receivers that fail, sync and async, on the hottest signals: logged, never fatal.
    const throwing = () => {
      throw new Error('receiver failed');
    };
    const rejecting = async () => {
      throw new Error('async receiver failed');
    };
    for (const s of [signals.taskPrerun, signals.taskSuccess, signals.taskPostrun, signals.beforeTaskPublish] as unknown as Signal<{ sender: unknown }>[]) {
      s.connect(throwing);
      s.connect(rejecting);
      cleanups.push(() => (s.disconnect(throwing), s.disconnect(rejecting)));
    }
    const onlyBoom: SignalArgs['taskFailure'][] = [];
    const onlyAdd: SignalArgs['taskFailure'][] = [];
    signals.taskFailure.connect((a) => void onlyBoom.push(a), { sender: 'sig.boom' });
    const addReceiver = signals.taskFailure.connect((a) => void onlyAdd.push(a), { sender: add });
    cleanups.push(() => signals.taskFailure.disconnect(addReceiver, { sender: add }));

    const worker = new Worker(app, { logger: quiet, heartbeatInterval: 0.2, withoutMingle: true, withoutGossip: true });
    cleanups.push(() => worker.shutdown());
    await worker.start();
    expect(fired.workerInit).toEqual([{ sender: worker }]);
    expect(fired.workerProcessInit).toEqual([{ sender: null }]);
    expect(fired.workerReady).toEqual([{ sender: worker }]);
    expect(fired.setupLogging).toHaveLength(1);
    expect(fired.setupLogging![0]).toMatchObject({ sender: null, loglevel: 'CRITICAL', logfile: null, format: 'text' });

    const sent = await add.delay(2, 3);
    await boom.delay();
    await flaky.delay();
    await app.sendTask('sig.unknown', [1]);
    await until(() => (fired.taskPostrun?.length ?? 0) >= 4 && (fired.taskUnknown?.length ?? 0) === 1, 'four runs and one unknown task');

    // Publishing: once per message, the retry's included, with the headers about to be sent.
    const published = fired.beforeTaskPublish!.map((p) => p.sender);
    expect(published.sort()).toEqual(['sig.add', 'sig.boom', 'sig.flaky', 'sig.flaky', 'sig.unknown']);
    expect(fired.afterTaskPublish!.map((p) => p.sender).sort()).toEqual(published);
    const pub = fired.beforeTaskPublish!.find((p) => p.sender === 'sig.add')!;
    expect(pub).toMatchObject({ body: [[2, 3], {}, { callbacks: null, errbacks: null, chain: null, chord: null }], routingKey: 'celery', declare: ['celery'] });
    expect(pub.headers).toMatchObject({ id: sent.id, task: 'sig.add', lang: 'py' });

    expect(fired.taskReceived!.map((r) => r.request.name).sort()).toEqual(['sig.add', 'sig.boom', 'sig.flaky', 'sig.flaky']);
    expect(fired.taskReceived!.every((r) => r.sender === worker)).toBe(true);
    const runs = (s: 'taskPrerun' | 'taskPostrun') => fired[s]!.map((r) => `${r.task.name}:${r.taskId === r.request.id}`).sort();
    expect(runs('taskPrerun')).toEqual(['sig.add:true', 'sig.boom:true', 'sig.flaky:true', 'sig.flaky:true']);
    expect(runs('taskPostrun')).toEqual(runs('taskPrerun'));
    const post = fired.taskPostrun!.find((r) => r.task === add)!;
    expect(post).toMatchObject({ sender: add, taskId: sent.id, args: [2, 3], kwargs: {}, retval: 5, state: 'SUCCESS' });
    expect(fired.taskPostrun!.filter((r) => r.task.name === 'sig.flaky').map((r) => r.state).sort()).toEqual(['RETRY', 'SUCCESS']);

    expect(fired.taskSuccess!.map((s) => [s.sender.name, s.result]).sort()).toEqual([['sig.add', 5], ['sig.flaky', 'again']]);
    expect(fired.taskRetry).toHaveLength(1);
    expect(fired.taskRetry![0]).toMatchObject({ sender: flaky, request: { name: 'sig.flaky', retries: 0 } });
    expect(fired.taskFailure).toHaveLength(1);
    const failure = fired.taskFailure![0]!;
    expect(failure).toMatchObject({ sender: boom, args: [], kwargs: {}, einfo: { type: 'TypeError' } });
    expect(failure.exception).toBeInstanceOf(TypeError);
    expect(failure.traceback).toContain('boom');
    expect(onlyBoom).toHaveLength(1);
    expect(onlyAdd).toHaveLength(0);
    expect(fired.taskUnknown).toHaveLength(1);
    expect(fired.taskUnknown![0]).toMatchObject({ sender: worker, name: 'sig.unknown' });
    expect(fired.taskRejected).toBeUndefined();

    if (worker.cluster) await until(() => (fired.heartbeatSent?.length ?? 0) >= 2, 'heartbeats');
    await worker.shutdown({ sig: 'SIGTERM' });
    expect(fired.workerShuttingDown).toEqual([{ sender: worker.hostname, sig: 'SIGTERM', how: 'Warm', exitcode: 0 }]);
    expect(fired.workerShutdown).toEqual([{ sender: worker }]);
    expect(fired.heartbeatSent?.every((h) => h.sender === worker) ?? true).toBe(true);
    expect(fired.workerInit).toHaveLength(1);
  });
});

describe('signals in one process', () => {
  it('taskRevoked fires for an expired task; taskRejected for a message that is not a task', async () => {
    const app = new Celery('signals', { broker: `memory://signals-${seq++}` });
    const add = app.task('sig.add', (x: number, y: number) => x + y);
    const { fired, off } = record();
    cleanups.push(off);
    const worker = new Worker(app, { logger: quiet });
    cleanups.push(() => worker.shutdown());
    await worker.start();
    await add.applyAsync([1, 2], {}, { expires: new Date(Date.now() - 1000) });
    const transport = await app.transport();
    await transport.publish('celery', { headers: { task: 'x' }, properties: {}, contentType: 'application/x-nothing', contentEncoding: 'binary', body: Buffer.from('?') }, { exchange: '', routingKey: 'celery' });
    await until(() => fired.taskRevoked?.length === 1 && fired.taskRejected?.length === 1, 'a revoked and a rejected message');
    expect(fired.taskRevoked![0]).toMatchObject({ sender: add, terminated: false, signum: null, expired: true });
    expect(fired.taskRejected![0]!.sender).toBe(worker);
    expect(fired.taskPrerun).toBeUndefined();
  });

  it('eager runs send the task signals too, and async receivers are awaited in order', async () => {
    const app = new Celery('signals', { broker: `memory://signals-${seq++}` });
    const add = app.task('sig.add', (x: number, y: number) => x + y);
    const order: string[] = [];
    const slow = async () => {
      await new Promise((r) => setTimeout(r, 20));
      order.push('slow');
    };
    const fast = () => void order.push('fast');
    signals.taskPrerun.connect(slow, { sender: 'sig.add' });
    signals.taskPrerun.connect(fast);
    signals.taskPrerun.connect(fast); // again: once only
    cleanups.push(() => (signals.taskPrerun.disconnect(slow, { sender: 'sig.add' }), signals.taskPrerun.disconnect(fast)));
    const lines: string[] = [];
    setSignalLogger(createLogger({ level: 'WARNING', write: (line) => void lines.push(line) }));
    const failing = function failingReceiver(): never {
      throw new RangeError('no luck');
    };
    signals.taskSuccess.connect(failing);
    cleanups.push(() => signals.taskSuccess.disconnect(failing));
    const r = await add.apply([1, 1]);
    expect(await r.get()).toBe(2);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/Signal handler failingReceiver for taskSuccess raised: RangeError: no luck/);
    expect(order).toEqual(['slow', 'fast']);
    expect(signals.taskPrerun.disconnect(fast)).toBe(true);
    expect(signals.taskPrerun.disconnect(fast)).toBe(false);
    expect(() => signals.taskPrerun.connect('nope' as never)).toThrow(/receiver must be a function/);
  });

  it('types each receiver argument by signal', () => {
    // Checked by tsc; never called.
    const typesOnly = () => {
      signals.taskPostrun.connect((a) => {
        expectTypeOf(a.task).toEqualTypeOf<Task>();
        expectTypeOf(a.state).toEqualTypeOf<TaskState>();
        expectTypeOf(a.request).toEqualTypeOf<TaskRequest>();
      });
      signals.beforeTaskPublish.connect((a) => {
        expectTypeOf(a.sender).toEqualTypeOf<string>();
        expectTypeOf(a.headers).toEqualTypeOf<Record<string, unknown>>();
      });
      signals.workerShuttingDown.connect((a) => expectTypeOf(a.how).toEqualTypeOf<'Warm' | 'Cold'>());
      // @ts-expect-error taskSuccess has no retval
      signals.taskSuccess.connect((a) => a.retval);
    };
    expect(typeof typesOnly).toBe('function');
  });
});
