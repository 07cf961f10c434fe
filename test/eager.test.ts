import { describe, expect, it } from 'vitest';
import { Celery, TaskError } from '../src/index.ts';

describe('eager mode (taskAlwaysEager)', () => {
  const app = new Celery('eager', { broker: 'memory://eager', taskAlwaysEager: true });
  const add = app.task('eager.add', (x: number, y: number) => x + y);
  const fail = app.task('eager.fail', (msg: string) => {
    throw new TypeError(msg);
  });
  let attempts = 0;
  const flaky = app.task({ name: 'eager.flaky', bind: true, maxRetries: 5 }, async (self) => {
    attempts++;
    if (self.request.retries < 2) return self.retry({ countdown: 60 });
    return { retries: self.request.retries, eager: self.request.isEager };
  });
  const kw = app.task('eager.kw', (x: number, kwargs?: { y?: number }) => x + (kwargs?.y ?? 0));

  it('runs the task in process and returns its value', async () => {
    const r = await add.delay(2, 3);
    expect(await r.get()).toBe(5);
    expect(await r.state).toBe('SUCCESS');
    expect(await r.successful()).toBe(true);
  });

  it('stores a failure with its type and traceback and get() throws it', async () => {
    const r = await fail.delay('nope');
    expect(await r.state).toBe('FAILURE');
    expect(await r.traceback).toMatch(/^Traceback \(most recent call last\):/);
    const err = await r.get().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskError);
    expect((err as TaskError).excType).toBe('TypeError');
    expect((err as TaskError).message).toBe('nope');
    expect(await r.get({ propagate: false })).toMatchObject({ exc_type: 'TypeError', exc_message: ['nope'] });
  });

  it('runs retries at once', async () => {
    attempts = 0;
    expect(await (await flaky.delay()).get()).toEqual({ retries: 2, eager: true });
    expect(attempts).toBe(3);
  });

  it('passes keyword arguments as a trailing object', async () => {
    expect(await (await kw.applyAsync([1], { y: 2 })).get()).toBe(3);
  });

  it('applies link callbacks and errbacks, eagerly too (as Celery\'s apply_async in eager mode)', async () => {
    const seen: unknown[] = [];
    const record = app.task('eager.record', (v: unknown) => {
      seen.push(v);
      return v;
    });
    const r = await add.applyAsync([2, 3], {}, { link: record.s().toJSON(), linkError: record.s().toJSON() });
    expect(await r.get()).toBe(5);
    const f = await fail.applyAsync(['x'], {}, { linkError: record.s().toJSON() });
    expect(seen).toEqual([5, f.id]);
  });

  it('task.apply() takes throw, overriding taskEagerPropagates', async () => {
    await expect(fail.apply(['thrown'], {}, { throw: true })).rejects.toThrow(TypeError);
    expect(await (await fail.apply(['kept'])).state).toBe('FAILURE');
  });

  it('propagates the error itself with taskEagerPropagates', async () => {
    const strict = new Celery('eager2', { broker: 'memory://eager2', taskAlwaysEager: true, taskEagerPropagates: true });
    const boom = strict.task('eager2.boom', () => {
      throw new RangeError('out of range');
    });
    await expect(boom.delay()).rejects.toThrow(RangeError);
  });
});
