/**
 * Stopping a worker process with tasks in flight: warm shutdown (SIGTERM) lets running tasks
 * finish and gives back the rest; a second SIGTERM turns it into a cold shutdown.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { AsyncResult } from '../../src/index.ts';
import { createSandbox, openGate, queueSize, readEvents, type Sandbox, startWorker, stopAllWorkers, waitFor } from './helpers.ts';

vi.setConfig({ testTimeout: 30_000, hookTimeout: 40_000 });

let sb: Sandbox;

beforeAll(async () => {
  sb = await createSandbox('shutdown');
});

afterEach(async () => {
  await stopAllWorkers();
  await (await sb.tasks.app.transport()).purge('celery');
});

afterAll(async () => {
  await sb?.cleanup();
});

function eventsOf(ids: string[]) {
  const wanted = new Set(ids);
  return readEvents(sb).filter((e) => wanted.has(e.id));
}

function startedIds(ids: string[]): string[] {
  return [...new Set(eventsOf(ids).filter((e) => e.event === 'start').map((e) => e.id))];
}

async function states(results: AsyncResult[]): Promise<string[]> {
  return Promise.all(results.map((r) => r.state));
}

describe('warm shutdown (SIGTERM)', () => {
  it('finishes running tasks, exits 0, and leaves unstarted tasks queued for the next worker', async () => {
    const worker = await startWorker(sb, ['-c', '2']);
    const results = [];
    for (let i = 0; i < 5; i++) results.push(await sb.tasks.gated.delay('warm', `w${i}`));
    const ids = results.map((r) => r.id);
    await waitFor('two tasks running', () => startedIds(ids).length === 2);
    await waitFor('the other three reserved by the worker', () => queueSize(sb) === 0);

    worker.signal('SIGTERM');
    await worker.waitForLine('Warm shutdown');
    // The three that had not started are given back at once, while the two keep running.
    await waitFor('3 messages back in the queue', () => queueSize(sb) === 3);
    await worker.waitForLine('Restoring 3 unacknowledged message(s)');
    expect(worker.status).toBeUndefined();
    expect(eventsOf(ids).filter((e) => e.event === 'end')).toEqual([]);

    openGate(sb, 'warm');
    expect(await worker.exited).toEqual({ code: 0, signal: null });
    const ran = startedIds(ids);
    expect(ran).toHaveLength(2);
    for (const r of results) expect(await r.state).toBe(ran.includes(r.id) ? 'SUCCESS' : 'PENDING');
    expect(queueSize(sb)).toBe(3);

    const next = await startWorker(sb, ['-c', '2']);
    expect(await Promise.all(results.map((r) => r.get({ timeout: 15 })))).toEqual(['w0', 'w1', 'w2', 'w3', 'w4']);
    expect(await next.stop('SIGTERM')).toEqual({ code: 0, signal: null });

    // Every task ran exactly once, across the two workers.
    const events = eventsOf(ids);
    for (const id of ids) {
      expect(events.filter((e) => e.id === id && e.event === 'start')).toHaveLength(1);
      expect(events.filter((e) => e.id === id && e.event === 'end')).toHaveLength(1);
    }
    expect(new Set(events.map((e) => e.pid))).toEqual(new Set([worker.pid, next.pid]));
    expect(queueSize(sb)).toBe(0);
  });

  it('an idle worker exits 0 promptly', async () => {
    const worker = await startWorker(sb, ['-c', '1']);
    const started = Date.now();
    expect(await worker.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(worker.output()).toContain('worker: SIGTERM received; finishing active tasks');
  });
});

describe('cold shutdown (second SIGTERM)', () => {
  it('exits non-zero at once and gives back every unacknowledged message, running acksLate ones included', async () => {
    const worker = await startWorker(sb, ['-c', '1', '--prefetch-multiplier', '3']);
    const results = [];
    for (let i = 0; i < 3; i++) results.push(await sb.tasks.gatedLate.delay('cold', `c${i}`));
    const ids = results.map((r) => r.id);
    await waitFor('one task running', () => startedIds(ids).length === 1);
    await waitFor('all three reserved by the worker', () => queueSize(sb) === 0);

    worker.signal('SIGTERM');
    await worker.waitForLine('Warm shutdown');
    await worker.waitForLine('Restoring 2 unacknowledged message(s)');
    worker.signal('SIGTERM');
    const status = await worker.exited;
    expect(status.signal).toBeNull();
    expect(status.code).not.toBe(0);
    expect(worker.output()).toContain('Cold shutdown');
    // The running acksLate task never finished, so its message came back too.
    expect(eventsOf(ids).filter((e) => e.event === 'end')).toEqual([]);
    expect(queueSize(sb)).toBe(3);
    expect(await states(results)).toEqual(['PENDING', 'PENDING', 'PENDING']);

    openGate(sb, 'cold');
    const next = await startWorker(sb, ['-c', '3']);
    expect(await Promise.all(results.map((r) => r.get({ timeout: 15 })))).toEqual(['c0', 'c1', 'c2']);
    expect(await next.stop('SIGTERM')).toEqual({ code: 0, signal: null });

    const [interrupted] = startedIds(ids);
    const runs = eventsOf(ids).filter((e) => e.id === interrupted && e.event === 'start');
    expect(runs.map((e) => e.pid)).toEqual([worker.pid, next.pid]);
    expect(runs.map((e) => e.redelivered)).toEqual([false, true]);
    expect(queueSize(sb)).toBe(0);
  });
  it('with early acks, names every task that was running and is lost, and gives back the rest', async () => {
    const worker = await startWorker(sb, ['-c', '2', '--prefetch-multiplier', '2']);
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await sb.tasks.gated.delay('cold-early', `e${i}`));
    const ids = results.map((r) => r.id);
    await waitFor('two tasks running', () => startedIds(ids).length === 2);
    await waitFor('all four reserved by the worker', () => queueSize(sb) === 0);

    worker.signal('SIGINT');
    await worker.waitForLine('Restoring 2 unacknowledged message(s)');
    worker.signal('SIGINT');
    const status = await worker.exited;
    expect(status.code).not.toBe(0);
    const running = startedIds(ids);
    for (const id of running) expect(worker.output()).toMatch(new RegExp(`Task tasks\\.gated\\[${id}\\] was running and is lost: its message was acknowledged`));
    for (const id of ids.filter((i) => !running.includes(i))) expect(worker.output()).not.toContain(`[${id}] was running`);
    // The two that had not started are back in the queue; the two lost ones are not.
    expect(queueSize(sb)).toBe(2);
    expect(await states(results)).toEqual(['PENDING', 'PENDING', 'PENDING', 'PENDING']);
  });
});
