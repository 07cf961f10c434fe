import { afterEach, describe, expect, it } from 'vitest';
import { type Celery, currentSignal, signals, TaskError, TimeoutError, type Worker } from '../src/index.ts';
import { createTestApp, startTestWorker } from '../src/testing.ts';

let app: Celery;
let worker: Worker | undefined;

afterEach(async () => {
  await worker?.shutdown();
  worker = undefined;
});

describe('worker on the memory broker', () => {
  it('runs many concurrent I/O-bound tasks on the event loop', async () => {
    app = createTestApp();
    let running = 0;
    let peak = 0;
    const io = app.task('io', async (ms: number) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, ms));
      running--;
      return ms;
    });
    worker = await startTestWorker(app, { concurrency: 500 });
    const results = await Promise.all(Array.from({ length: 1000 }, () => io.delay(50)));
    const values = await Promise.all(results.map((r) => r.get({ timeout: 20 })));
    expect(values).toHaveLength(1000);
    expect(peak).toBeGreaterThan(100);
    expect(peak).toBeLessThanOrEqual(500);
  });

  it('stores STARTED when trackStarted and custom states from updateState', async () => {
    app = createTestApp();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const progress = app.task({ name: 'progress', bind: true, trackStarted: true }, async (self) => {
      await self.updateState('PROGRESS', { done: 1, total: 2 });
      await gate;
      return 'ok';
    });
    worker = await startTestWorker(app);
    const r = await progress.delay();
    await waitFor(async () => (await r.state) === 'PROGRESS');
    expect(await r.result).toEqual({ done: 1, total: 2 });
    release();
    expect(await r.get({ timeout: 5 })).toBe('ok');
  });

  it('fires the abort signal at the soft time limit and fails at the hard limit', async () => {
    app = createTestApp();
    const soft = app.task({ name: 'soft', bind: true, softTimeLimit: 0.05 }, async (self) => {
      await new Promise((resolve) => self.signal.addEventListener('abort', resolve));
      return (self.signal.reason as Error).name;
    });
    const hard = app.task({ name: 'hard', timeLimit: 0.05 }, () => new Promise(() => {}));
    worker = await startTestWorker(app);
    expect(await (await soft.delay()).get({ timeout: 5 })).toBe('SoftTimeLimitExceeded');
    const err = await (await hard.delay()).get({ timeout: 5 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskError);
    expect((err as TaskError).excType).toBe('TimeLimitExceeded');
  });

  it('an unbound task reaches its signal with currentSignal(); soft then hard limit; an eager run too', async () => {
    app = createTestApp();
    const handled = app.task({ name: 'handled', softTimeLimit: 0.05 }, async () => {
      const signal = currentSignal()!;
      await new Promise((resolve) => signal.addEventListener('abort', resolve));
      return (signal.reason as Error).name;
    });
    const unhandled = app.task({ name: 'unhandled', softTimeLimit: 0.05 }, () => new Promise(() => {}));
    const both = app.task({ name: 'both', softTimeLimit: 0.05, timeLimit: 0.2 }, async () => {
      currentSignal();
      await new Promise(() => {});
    });
    expect(currentSignal()).toBeNull();
    expect(await (await handled.apply()).get()).toBe('SoftTimeLimitExceeded');
    worker = await startTestWorker(app);
    expect(await (await handled.delay()).get({ timeout: 5 })).toBe('SoftTimeLimitExceeded');
    for (const [task, excType] of [[unhandled, 'SoftTimeLimitExceeded'], [both, 'TimeLimitExceeded']] as const) {
      const err = await (await task.delay()).get({ timeout: 5 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TaskError);
      expect([(err as TaskError).excType, (err as TaskError).excModule]).toEqual([excType, 'billiard.exceptions']);
    }
  });

  it('does not store a result for ignoreResult tasks', async () => {
    app = createTestApp();
    const quiet = app.task({ name: 'quiet', ignoreResult: true }, () => 1);
    const loud = app.task('loud', () => 2);
    worker = await startTestWorker(app, { concurrency: 1 });
    const q = await quiet.delay();
    expect(await (await loud.delay()).get({ timeout: 5 })).toBe(2);
    await expect(q.get({ timeout: 0.2 })).rejects.toThrow(TimeoutError);
    expect(await q.state).toBe('PENDING');
  });

  it('revokes a task before it starts', async () => {
    app = createTestApp();
    const t = app.task('revocable', () => 'ran');
    const r = await t.applyAsync([], {}, { countdown: 0.3 });
    await r.revoke();
    worker = await startTestWorker(app);
    await expect(r.get({ timeout: 5 })).rejects.toThrow(/revoked/);
    expect(await r.state).toBe('REVOKED');
  });

  it('starts the next task while the outcome of one that returned is pending, one pending outcome per slot at most', async () => {
    app = createTestApp();
    const order: string[] = [];
    let running = 0;
    let peak = 0;
    const step = app.task('step', async (name: string) => {
      running++;
      peak = Math.max(peak, running);
      order.push(`run ${name}`);
      await new Promise((r) => setTimeout(r, 5));
      running--;
      return name;
    });
    // task_success receivers hold the outcomes of a and b open, as a slow result store would.
    const gates = new Map(['a', 'b'].map((name) => {
      let open!: () => void;
      const gate = new Promise<void>((r) => (open = r));
      return [name, { gate, open }];
    }));
    const hold = async ({ result }: { result: unknown }) => {
      order.push(`outcome ${String(result)}`);
      await gates.get(String(result))?.gate;
    };
    signals.taskSuccess.connect(hold);
    try {
      worker = await startTestWorker(app, { concurrency: 1 });
      const [a, , c] = [await step.delay('a'), await step.delay('b'), await step.delay('c')];
      // b runs in the slot a lent; c waits: b cannot lend it again while a's is lent.
      await waitFor(async () => order.length === 4);
      await new Promise((r) => setTimeout(r, 100));
      expect(order).toEqual(['run a', 'outcome a', 'run b', 'outcome b']);
      expect(await a.state).toBe('SUCCESS');
      gates.get('b')!.open();
      expect(await c.get({ timeout: 5 })).toBe('c');
      expect(order).toEqual(['run a', 'outcome a', 'run b', 'outcome b', 'run c', 'outcome c']);
      expect(peak).toBe(1);
    } finally {
      for (const { open } of gates.values()) open();
      signals.taskSuccess.disconnect(hold);
    }
  });

  it('stores FAILURE with the encoding error when a result cannot be encoded, and keeps working', async () => {
    app = createTestApp();
    const bytes = app.task('bytes', () => Buffer.from('raw'));
    const fine = app.task('fine', () => 'ok');
    worker = await startTestWorker(app);
    const r = await bytes.delay();
    await expect(r.get({ timeout: 5 })).rejects.toThrow(/bytes is not JSON serializable/);
    expect(await r.state).toBe('FAILURE');
    expect(await (await fine.delay()).get({ timeout: 5 })).toBe('ok');
  });

  it('publishes link callbacks and chain steps with the result', async () => {
    app = createTestApp();
    const add = app.task('add', (x: number, y: number) => x + y);
    app.task('mul', (x: number, y: number) => x * y);
    worker = await startTestWorker(app);
    const sig = (task: string, args: unknown[], id: string) => ({ task, args, kwargs: {}, options: { task_id: id }, subtask_type: null, immutable: false });
    await add.applyAsync([1, 2], {}, { link: sig('mul', [10], 'cb-1') });
    expect(await app.AsyncResult('cb-1').get({ timeout: 5 })).toBe(30);
  });
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
