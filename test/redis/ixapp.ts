/**
 * celeriac side of test/redis/interop-*.test.ts: the same task names as test/redis/py/ixtasks.py,
 * recording what they do under the same keys. Loaded in-process (`makeApp`) and by worker child
 * processes (`celeriac -A test/redis/ixapp.ts worker`, which reads `app`).
 *
 * Environment (as ixtasks.py): CELERIAC_TEST_BROKER (redis://host:port/db, no query),
 * CELERIAC_TEST_PREFIX (global_keyprefix), CELERIAC_TEST_VISIBILITY (seconds, optional),
 * CELERIAC_TEST_BACKEND (optional).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { Celery } from '../../src/index.ts';
import type { TaskContext } from '../../src/app/context.ts';

export interface IxEnv {
  broker: string;
  prefix: string;
  visibility?: number;
  backend?: string;
  /** Where tasks record what they do (default: the broker); a test that restarts the broker records elsewhere. */
  record?: string;
}

export function makeApp(env: IxEnv): Celery {
  const app = new Celery('ixapp', {
    broker: env.broker,
    backend: env.backend ?? null,
    brokerTransportOptions: { global_keyprefix: env.prefix, ...(env.visibility ? { visibility_timeout: env.visibility } : {}) },
    workerRestoreLost: process.env.CELERIAC_TEST_RESTORE_LOST === '1',
  });
  const P = env.prefix;
  let redis: Redis | undefined;
  const rec = () => (redis ??= new Redis(env.record ?? env.broker, { maxRetriesPerRequest: 5 }));
  const closeApp = app.close.bind(app);
  app.close = async () => {
    redis?.disconnect();
    redis = undefined;
    await closeApp();
  };

  const requestInfo = (self: TaskContext) => ({
    id: self.request.id,
    retries: self.request.retries,
    eta: self.request.eta,
    expires: self.request.expires,
    hostname: self.request.hostname,
    exchange: self.request.deliveryInfo?.exchange ?? null,
    routing_key: self.request.deliveryInfo?.routingKey ?? null,
    priority: self.request.deliveryInfo?.priority ?? null,
  });

  /** What it was given (`received`: the function's arguments, Python kwargs trailing), its request, and when it ran. */
  app.task({ name: 'ix.echo', bind: true }, (self: TaskContext, ...received: unknown[]) => ({
    args: self.request.args,
    kwargs: self.request.kwargs,
    received,
    request: requestInfo(self),
    ran_at: Date.now() / 1000,
    by: 'js',
  }));

  app.task({ name: 'ix.retry', bind: true, maxRetries: 5 }, async (self: TaskContext, times: number) => {
    if (self.request.retries < times) return self.retry({ countdown: 0.2 });
    return { retries: self.request.retries, by: 'js' };
  });

  app.task({ name: 'ix.order', bind: true }, async (_self: TaskContext, tag: string) => {
    await rec().rpush(P + 'order', tag);
    return tag;
  });

  app.task({ name: 'ix.record', bind: true, ignoreResult: true }, async (self: TaskContext) => {
    await rec().pipeline().hincrby(P + 'ran', self.request.id, 1).incr(P + 'by:js').exec();
  });

  /** Records <prefix>ran[tag] += 1, then keeps its slot for `ms`. */
  app.task({ name: 'ix.busy', bind: true }, async (_self: TaskContext, tag: string, ms: number) => {
    await rec().hincrby(P + 'ran', tag, 1);
    await sleep(ms);
    return tag;
  });

  app.task({ name: 'ix.slow', bind: true, acksLate: true, ignoreResult: true }, async (self: TaskContext, tag: string, sleepIn: string) => {
    await rec().hincrby(P + 'started:js', tag, 1);
    if (sleepIn === 'js') await sleep(60_000, undefined, { signal: self.signal });
    await rec().hincrby(P + 'done:js', tag, 1);
  });

  return app;
}

const broker = process.env.CELERIAC_TEST_BROKER;
export const app: Celery | undefined = broker
  ? makeApp({
      broker,
      prefix: process.env.CELERIAC_TEST_PREFIX ?? '',
      visibility: process.env.CELERIAC_TEST_VISIBILITY ? Number(process.env.CELERIAC_TEST_VISIBILITY) : undefined,
      backend: process.env.CELERIAC_TEST_BACKEND || undefined,
    })
  : undefined;
