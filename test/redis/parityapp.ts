/**
 * celeriac side of test/redis/interop-parity.test.ts: the tasks of test/redis/py/paritytasks.py,
 * written as a TypeScript user would, so that one scenario runs on either worker.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { Celery } from '../../src/index.ts';
import type { TaskContext } from '../../src/app/context.ts';
import { currentSignal } from '../../src/app/publish.ts';
import { chain, group } from '../../src/canvas/index.ts';
import { SoftTimeLimitExceeded } from '../../src/errors.ts';

export function makeParityApp(env: { broker: string; backend: string; prefix: string; queue: string }): Celery {
  const app = new Celery('parityapp', {
    broker: env.broker,
    backend: env.backend,
    brokerTransportOptions: { global_keyprefix: env.prefix },
    taskDefaultQueue: env.queue,
  });
  let redis: Redis | undefined;
  const note = (tag: string, entry: unknown) => (redis ??= new Redis(env.broker)).rpush(env.prefix + 'eb:' + tag, JSON.stringify(entry));
  const closeApp = app.close.bind(app);
  app.close = async () => {
    redis?.disconnect();
    await closeApp();
  };
  type Req = { id: string };

  // 1. Errbacks
  app.task('par.fail', (tag: string) => {
    throw new RangeError('boom ' + tag);
  });
  app.task({ name: 'par.eb_args', ignoreResult: true }, async (request: Req, exc: Error, traceback: string, tag: string, extra: string) => {
    await note(tag, { kind: 'args', id: request.id, exc: exc.message, tb: typeof traceback === 'string', extra });
  });
  app.task({ name: 'par.eb_kw', ignoreResult: true, params: ['request', 'exc', 'traceback', 'tag', 'extra'] }, async (request: Req, _exc: Error, _tb: string, tag: string, extra = 'default') => {
    await note(tag, { kind: 'kw', id: request.id, extra });
  });
  app.task({ name: 'par.eb_own', ignoreResult: true }, async (tag: string, a: string, b: string | null = null) => {
    await note(tag, { kind: 'own', a, b });
  });
  app.task({ name: 'par.eb_rest', ignoreResult: true }, async (...args: unknown[]) => {
    await note(args[args.length - 1] as string, { kind: 'rest', n: args.length, id: (args[0] as Req).id });
  });
  app.task({ name: 'par.eb_id', ignoreResult: true }, async (taskId: string) => {
    await note('ids', { kind: 'id', task_id: taskId });
  });
  app.task({ name: 'par.eb_bound', bind: true, ignoreResult: true }, async (_self: TaskContext, ...args: unknown[]) => {
    await note(args[args.length - 1] as string, { kind: 'bound', args });
  });

  // 2. Keyword arguments by name
  app.task({ name: 'par.add', params: ['x', { name: 'y', default: 1 }] }, (x: number, y: number) => [x, y]);
  app.task({ name: 'par.add10', params: ['x', 'y'] }, (x: number, y = 10) => [x, y]);
  app.task({ name: 'par.badd', bind: true, params: true }, (_self: TaskContext, x: number, y: number) => [x, y]);

  // 3. Soft time limits (the limits come with the message)
  app.task('par.soft_handled', async () => {
    const signal = currentSignal()!;
    try {
      await sleep(5000, undefined, { signal });
    } catch (err) {
      if (signal.reason instanceof SoftTimeLimitExceeded) return 'handled';
      throw err;
    }
    return 'not stopped';
  });
  app.task('par.soft_unhandled', async () => {
    await sleep(5000);
    return 'not stopped';
  });
  app.task('par.soft_then_hard', async () => {
    await sleep(5000, undefined, { signal: currentSignal()! }).catch(() => sleep(5000));
    return 'not stopped';
  });

  // 4. Result handles as results
  app.task('par.spawn_one', () => app.sendTask('par.add', [1, 2]));
  app.task('par.spawn_group', () => group([app.getTask('par.add').s(1, 2), app.getTask('par.add').s(3)]).applyAsync());

  // 5. Celery's exception types
  app.task({ name: 'par.retry_later', bind: true }, (self: TaskContext, withExc: boolean) =>
    self.retry({ countdown: 300, exc: withExc ? Object.assign(new Error('transient'), { name: 'KeyError', module: 'builtins' }) : undefined }));
  app.task({ name: 'par.replace_empty', bind: true }, (self: TaskContext) => self.replace(chain()));

  return app;
}
