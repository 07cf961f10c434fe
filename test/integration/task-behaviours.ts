/**
 * What a worker does with the tasks it runs (results, failures, retries, canvas), whatever its
 * pool: worker-tasks.test.ts runs it on the async pool, pool-conformance.test.ts on the others.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { chain, chord, MaxRetriesExceededError, TaskError } from '../../src/index.ts';
import { rejection, type Sandbox, type WorkerProcess } from './helpers.ts';

export function taskBehaviours(get: () => { sb: Sandbox; worker: WorkerProcess }): void {
  let sb: Sandbox;
  let worker: WorkerProcess;
  beforeAll(() => {
    ({ sb, worker } = get());
  });

  describe('results', () => {
    it('delay().get() returns the value and the result is SUCCESS', async () => {
      const r = await sb.tasks.add.delay(2, 3);
      expect(await r.get({ timeout: 15 })).toBe(5);
      expect(await r.state).toBe('SUCCESS');
      expect(await r.date_done).toBeInstanceOf(Date);
      await worker.waitForLine(`Task tasks.add[${r.id}] succeeded`);
    });

    it('kwargs sent by a client arrive as a trailing object argument', async () => {
      const r = await sb.tasks.app.sendTask('tasks.echo', [1, 'two'], { three: 3, four: [4] });
      expect(await r.get({ timeout: 10 })).toEqual([1, 'two', { three: 3, four: [4] }]);
      const onlyKwargs = await sb.tasks.echo.applyAsync([], { a: null });
      expect(await onlyKwargs.get({ timeout: 10 })).toEqual([{ a: null }]);
    });

    it('round-trips unicode and nested JSON unchanged', async () => {
      const value = {
        text: 'héllo wörld — 日本語 — emoji 🎉🚀 — rtl עברית — nul\u0000byte',
        nested: { list: [1, 2.5, -3, [true, false, null], { deep: { deeper: ['x', { k: 'v' }] } }], empty: {}, none: [] },
        'key with spaces & ünïcode ✓': 'ok',
        big: Number.MAX_SAFE_INTEGER,
      };
      const r = await sb.tasks.echo.delay(value, '∑');
      expect(await r.get({ timeout: 10 })).toEqual([value, '∑']);
    });
  });

  describe('failures', () => {
    it('get() throws TaskError with excType, message and traceback; state is FAILURE', async () => {
      const r = await sb.tasks.fail.delay('the answer');
      const err = await rejection(r.get({ timeout: 10 }));
      expect(err).toBeInstanceOf(TaskError);
      const e = err as TaskError;
      expect(e.excType).toBe('TypeError');
      expect(e.message).toBe('cannot handle the answer');
      expect(e.excMessage).toEqual(['cannot handle the answer']);
      expect(e.taskId).toBe(r.id);
      expect(e.traceback).toMatch(/^Traceback \(most recent call last\):/);
      expect(e.traceback).toContain('TypeError: cannot handle the answer');
      expect(e.traceback).toContain('worker-app/tasks.ts');
      expect(await r.state).toBe('FAILURE');
      expect(await r.result).toMatchObject({ exc_type: 'TypeError', exc_message: ['cannot handle the answer'] });
      expect(await r.traceback).toBe(e.traceback);
      await worker.waitForLine(`Task tasks.fail[${r.id}] raised unexpected: TypeError('cannot handle the answer')`);
    });

    it('get({ propagate: false }) returns the stored exception instead of throwing', async () => {
      const r = await sb.tasks.fail.delay('quietly');
      expect(await r.get({ timeout: 10, propagate: false })).toMatchObject({ exc_type: 'TypeError', exc_message: ['cannot handle quietly'] });
    });
  });

  describe('retries', () => {
    it('self.retry({ countdown }) re-runs the task until it succeeds; request.retries counts the runs', async () => {
      const sent = Date.now();
      const r = await sb.tasks.retryThenSucceed.delay(2);
      expect(await r.get({ timeout: 15 })).toEqual({ retries: 2, id: r.id });
      expect(await r.state).toBe('SUCCESS');
      // Two retries with a 0.1 s countdown each.
      expect(Date.now() - sent).toBeGreaterThanOrEqual(200);
      await worker.waitForLine(new RegExp(`Task tasks\\.retry_then_succeed\\[${r.id}\\] retry: Retry`));
    });

    it('fails with MaxRetriesExceededError once maxRetries is used up', async () => {
      const r = await sb.tasks.retryForever.delay();
      const err = await rejection(r.get({ timeout: 15 }));
      expect(err).toBeInstanceOf(TaskError);
      const e = err as TaskError;
      expect(e.excType).toBe(MaxRetriesExceededError.name);
      expect(e.message).toContain(`Can't retry tasks.retry_forever[${r.id}]`);
      expect(await r.state).toBe('FAILURE');
      // The failure is logged after the last run: every earlier line has arrived by then.
      await worker.waitForLine(`Task tasks.retry_forever[${r.id}] raised unexpected: MaxRetriesExceededError`);
      // The first run plus maxRetries (2) retries.
      const runs = worker.lines.filter((l) => l.includes(`Task tasks.retry_forever[${r.id}] received`));
      expect(runs).toHaveLength(3);
    });

    it('autoretryFor with retryBackoff retries after each failure, with exponential delays, then succeeds', async () => {
      const sent = Date.now();
      const r = await sb.tasks.autoretry.delay(3);
      const value = await r.get({ timeout: 15 });
      expect(value.retries).toBe(3);
      expect(await r.state).toBe('SUCCESS');
      // Backoff 0.1 * 2^n without jitter: 0.1 + 0.2 + 0.4 s before the 4th run.
      expect(value.at - sent).toBeGreaterThanOrEqual(700);
      await worker.waitForLine(`Task tasks.autoretry[${r.id}] succeeded`);
      const retried = worker.lines.filter((l) => l.includes(`Task tasks.autoretry[${r.id}] retry: FlakyError`));
      expect(retried).toHaveLength(3);
      expect(retried[0]).toContain("FlakyError('attempt 1 failed')");
    });

    it('autoretry gives up with the original error when retries run out', async () => {
      const r = await sb.tasks.autoretry.delay(99);
      const err = await rejection(r.get({ timeout: 15 }));
      expect(err).toBeInstanceOf(TaskError);
      expect((err as TaskError).excType).toBe('FlakyError');
      expect((err as TaskError).message).toBe('attempt 4 failed'); // the first run and maxRetries (3) retries
      expect(await r.state).toBe('FAILURE');
    });
  });

  describe('canvas', () => {
    it('a chain passes each result on, and a chord gives the header results to its body', async () => {
      const c = await chain(sb.tasks.add.s(1, 2), sb.tasks.add.s(3)).applyAsync();
      expect(await c.get({ timeout: 20 })).toBe(6);
      const ch = await chord([sb.tasks.add.s(1, 1), sb.tasks.add.s(2, 2), sb.tasks.add.s(3, 3)], sb.tasks.echo.s()).applyAsync();
      expect(await ch.get({ timeout: 20 })).toEqual([[2, 4, 6]]);
    });
  });
}
