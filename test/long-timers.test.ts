import { afterEach, describe, expect, it, vi } from 'vitest';
import { type Celery, type Worker } from '../src/index.ts';
import { createTestApp, startTestWorker } from '../src/testing.ts';
import { MAX_TIMER_MS, setLongTimeout, setTimeoutAt } from '../src/timers.ts';

const DAY = 86_400_000;

describe('timers beyond Node setTimeout limit (24.8 days)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('a deadline 100 days ahead fires then, not when the first 2^31-1 ms step ends', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const fired: number[] = [];
    const start = Date.now();
    setLongTimeout(() => fired.push(Date.now() - start), 100 * DAY);
    vi.advanceTimersByTime(MAX_TIMER_MS + 1);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(100 * DAY - MAX_TIMER_MS - 2);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual([100 * DAY]);
  });

  it('an ETA in year 9999 is not reached after 24.86 days', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    let ran = false;
    setTimeoutAt(() => (ran = true), Date.UTC(9999, 11, 31));
    vi.advanceTimersByTime(3 * MAX_TIMER_MS);
    expect(ran).toBe(false);
  });

  it('a cleared long timer never fires', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    let ran = false;
    const t = setLongTimeout(() => (ran = true), 30 * DAY);
    vi.advanceTimersByTime(MAX_TIMER_MS + 5);
    t.clear();
    vi.advanceTimersByTime(30 * DAY);
    expect(ran).toBe(false);
  });
});

describe('a worker with very long limits', () => {
  let app: Celery;
  let worker: Worker | undefined;
  afterEach(async () => {
    await worker?.shutdown();
    worker = undefined;
  });

  it('a hard time limit of 3,000,000 s lets a 50 ms task finish', async () => {
    app = createTestApp();
    const nap = app.task({ name: 'nap', timeLimit: 3_000_000 }, async () => {
      await new Promise((r) => setTimeout(r, 50));
      return 'rested';
    });
    worker = await startTestWorker(app);
    expect(await (await nap.delay()).get({ timeout: 5 })).toBe('rested');
  });

  it('a soft time limit of 3,000,000 s does not fire the abort signal of a 50 ms task', async () => {
    app = createTestApp();
    const watch = app.task({ name: 'watch', bind: true, softTimeLimit: 3_000_000 }, async (self) => {
      await new Promise((r) => setTimeout(r, 50));
      return self.signal.aborted;
    });
    worker = await startTestWorker(app);
    expect(await (await watch.delay()).get({ timeout: 5 })).toBe(false);
  });
});
