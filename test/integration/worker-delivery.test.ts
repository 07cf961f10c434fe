/**
 * When and in which order a worker process runs what it is sent: countdown/ETA, expiry and
 * revokes, message priority.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { TaskRevokedError } from '../../src/index.ts';
import { createSandbox, openGate, queueSize, readEvents, rejection, type Sandbox, startWorker, type WorkerProcess } from './helpers.ts';

vi.setConfig({ testTimeout: 30_000, hookTimeout: 40_000 });

let sb: Sandbox;
let worker: WorkerProcess;

beforeAll(async () => {
  sb = await createSandbox('delivery');
  worker = await startWorker(sb, ['-c', '2']);
});

afterAll(async () => {
  await sb?.cleanup();
});

describe('countdown / ETA', () => {
  it('a countdown task does not run before its time, and tasks sent after it run first', async () => {
    const sent = Date.now();
    const later = await sb.tasks.stamp.applyAsync(['later'], {}, { countdown: 1.5 });
    const now = await Promise.all(['a', 'b', 'c'].map((l) => sb.tasks.stamp.delay(l)));

    const quick = await Promise.all(now.map((r) => r.get({ timeout: 10 })));
    // The quick ones are done while the countdown task is still waiting.
    expect(await later.state).toBe('PENDING');
    const delayed = await later.get({ timeout: 10 });

    expect(delayed.at).toBeGreaterThanOrEqual(sent + 1500);
    for (const q of quick) expect(q.at).toBeLessThan(delayed.at);
    expect(Math.max(...quick.map((q) => q.at))).toBeLessThan(sent + 1500);
    const doneLater = (await later.date_done)!.getTime();
    for (const r of now) expect((await r.date_done)!.getTime()).toBeLessThanOrEqual(doneLater);
    expect(doneLater).toBeGreaterThanOrEqual(sent + 1500);
  });

  it('an absolute eta works the same way', async () => {
    const eta = new Date(Date.now() + 600);
    const r = await sb.tasks.stamp.applyAsync(['eta'], {}, { eta });
    expect((await r.get({ timeout: 10 })).at).toBeGreaterThanOrEqual(eta.getTime());
  });
});

describe('expiry and revokes', () => {
  it('a task sent already expired ends REVOKED and get() throws TaskRevokedError', async () => {
    const r = await sb.tasks.stamp.applyAsync(['too late'], {}, { expires: new Date(Date.now() - 1000) });
    const err = await rejection(r.get({ timeout: 10 }));
    expect(err).toBeInstanceOf(TaskRevokedError);
    expect((err as Error).message).toContain('expired');
    expect(await r.state).toBe('REVOKED');
    await worker.waitForLine(`Discarding revoked task: tasks.stamp[${r.id}] (expired)`);
    expect(worker.output()).not.toContain(`Task tasks.stamp[${r.id}] succeeded`);
  });

  it('a task that expires while it waits for its countdown is never run', async () => {
    const sent = Date.now();
    const r = await sb.tasks.stamp.applyAsync(['expires first'], {}, { countdown: 0.8, expires: 0.3 });
    expect(await rejection(r.get({ timeout: 10 }))).toBeInstanceOf(TaskRevokedError);
    expect(await r.state).toBe('REVOKED');
    expect((await r.date_done)!.getTime()).toBeGreaterThanOrEqual(sent + 800);
    await worker.waitForLine(`Discarding revoked task: tasks.stamp[${r.id}] (expired)`);
    expect(worker.output()).not.toContain(`Task tasks.stamp[${r.id}] succeeded`);
  });

  it('a task revoked before its countdown is discarded', async () => {
    const r = await sb.tasks.stamp.applyAsync(['revoked'], {}, { countdown: 0.5 });
    await r.revoke();
    expect(await rejection(r.get({ timeout: 10 }))).toBeInstanceOf(TaskRevokedError);
    expect(await r.state).toBe('REVOKED');
    await worker.waitForLine(`Discarding revoked task: tasks.stamp[${r.id}]`);
  });
});

describe('several workers', () => {
  it('two worker processes share a queue and each task runs exactly once', async () => {
    const second = await startWorker(sb, ['-c', '2']);
    try {
      openGate(sb, 'shared');
      const sent = await Promise.all(Array.from({ length: 12 }, (_, i) => sb.tasks.gated.delay('shared', `s${i}`)));
      expect(await Promise.all(sent.map((r) => r.get({ timeout: 15 })))).toEqual(sent.map((_, i) => `s${i}`));
      const ids = new Set(sent.map((r) => r.id));
      const starts = readEvents(sb).filter((e) => ids.has(e.id) && e.event === 'start');
      expect(starts.map((e) => e.id).sort()).toEqual([...ids].sort());
      for (const e of starts) expect([worker.pid, second.pid]).toContain(e.pid);
    } finally {
      expect(await second.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    }
  });
});

describe('priority', () => {
  let prioWorker: WorkerProcess | undefined;
  afterEach(async () => {
    await prioWorker?.stop('SIGKILL');
  });

  it('a single-slot worker started on a full queue runs the highest priority first', async () => {
    const priorities = [3, 7, 0, 9, 5, 1, 8, 2, 6, 4];
    const sent = [];
    for (const p of priorities) sent.push(await sb.tasks.stamp.applyAsync([`p${p}`], {}, { queue: 'prio', priority: p }));
    expect(queueSize(sb, 'prio')).toBe(10);

    prioWorker = await startWorker(sb, ['-Q', 'prio', '-c', '1', '--prefetch-multiplier', '1']);
    const results = await Promise.all(sent.map((r) => r.get({ timeout: 15 })));
    const order = [...results].sort((a, b) => a.seq - b.seq).map((r) => r.label);
    expect(order).toEqual(['p9', 'p8', 'p7', 'p6', 'p5', 'p4', 'p3', 'p2', 'p1', 'p0']);
    expect(new Set(results.map((r) => r.pid))).toEqual(new Set([prioWorker.pid]));

    expect(await prioWorker.stop('SIGTERM')).toEqual({ code: 0, signal: null });
  });
});
