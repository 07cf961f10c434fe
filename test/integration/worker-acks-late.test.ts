/**
 * A worker process killed with SIGKILL while running acksLate tasks: nothing is lost, the next
 * worker runs them (again: at-least-once is what acksLate promises).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createSandbox, openGate, queueSize, readEvents, type Sandbox, startWorker, stopAllWorkers, waitFor, withDb } from './helpers.ts';

vi.setConfig({ testTimeout: 30_000, hookTimeout: 40_000 });

let sb: Sandbox;

beforeAll(async () => {
  sb = await createSandbox('acks-late');
});

afterEach(async () => {
  await stopAllWorkers();
});

afterAll(async () => {
  await sb?.cleanup();
});

const messagesInBroker = () => withDb(sb, (db) => (db.prepare('SELECT count(*) AS n FROM celeriac_messages').get() as { n: number }).n);

describe('kill -9 under acksLate', () => {
  it('every task still finishes after the worker is killed mid-run; none is lost', async () => {
    const worker = await startWorker(sb, ['-c', '2']);
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await sb.tasks.gatedLate.delay('kill', `k${i}`));
    const ids = new Set(results.map((r) => r.id));
    const starts = () => readEvents(sb).filter((e) => ids.has(e.id) && e.event === 'start');
    await waitFor('two tasks running', () => starts().length === 2);
    await waitFor('all four held by the worker', () => queueSize(sb) === 0);
    const interrupted = starts().map((e) => e.id);

    worker.signal('SIGKILL');
    expect(await worker.exited).toEqual({ code: null, signal: 'SIGKILL' });
    // Unacknowledged: all four messages are still in the broker, locked by the dead process.
    expect(messagesInBroker()).toBe(4);
    expect(await Promise.all(results.map((r) => r.state))).toEqual(['PENDING', 'PENDING', 'PENDING', 'PENDING']);

    openGate(sb, 'kill');
    const next = await startWorker(sb, ['-c', '2']);
    expect(await Promise.all(results.map((r) => r.get({ timeout: 20 })))).toEqual(['k0', 'k1', 'k2', 'k3']);
    for (const r of results) expect(await r.state).toBe('SUCCESS');
    expect(await next.stop('SIGTERM')).toEqual({ code: 0, signal: null });

    const events = readEvents(sb).filter((e) => ids.has(e.id));
    for (const id of ids) {
      // Finished at least once, by the new worker.
      expect(events.some((e) => e.id === id && e.event === 'end' && e.pid === next.pid)).toBe(true);
      expect(events.some((e) => e.id === id && e.event === 'end' && e.pid === worker.pid)).toBe(false);
    }
    // The two that were running when the worker died ran again, marked as redelivered.
    for (const id of interrupted) {
      const runs = events.filter((e) => e.id === id && e.event === 'start');
      expect(runs.map((e) => [e.pid, e.redelivered])).toEqual([[worker.pid, false], [next.pid, true]]);
    }
    expect(messagesInBroker()).toBe(0);
  });
});
