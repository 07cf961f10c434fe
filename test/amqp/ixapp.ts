/**
 * celeriac side of test/amqp/interop-fleet.test.ts and test/amqp/interop-kill.test.ts: the same
 * task names as test/amqp/py/ixtasks.py, recording what they do under the same Redis keys. Loaded
 * in-process (`makeApp`) and by worker child processes (`celeriac -A test/amqp/ixapp.ts worker`,
 * which reads `app`).
 *
 * Environment (as ixtasks.py): CELERIAC_TEST_BROKER (amqp://…), CELERIAC_TEST_RECORD (redis://…),
 * CELERIAC_TEST_PREFIX (key prefix of the records), CELERIAC_TEST_ACKS_LATE ("1": taskAcksLate).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { TEST_REDIS_URL } from '../helpers/redis-db.ts';
import { Celery } from '../../src/index.ts';
import type { TaskContext } from '../../src/app/context.ts';

export interface IxEnv {
  broker: string;
  /** Redis URL the tasks record in. */
  record: string;
  prefix: string;
  acksLate?: boolean;
}

export function makeApp(env: IxEnv): Celery {
  const app = new Celery('ixapp', { broker: env.broker, backend: null, taskIgnoreResult: true, taskAcksLate: env.acksLate === true });
  const P = env.prefix;
  let redis: Redis | undefined;
  const rec = () => (redis ??= new Redis(env.record, { maxRetriesPerRequest: 5 }));
  const closeApp = app.close.bind(app);
  app.close = async () => {
    redis?.disconnect();
    redis = undefined;
    await closeApp();
  };
  const redelivered = (self: TaskContext) => self.request.deliveryInfo?.redelivered === true;

  /** One run of a fleet task: HINCRBY <prefix>ran <id> 1, INCR <prefix>by:js (and <prefix>redelivered if so). */
  app.task({ name: 'ix.record', bind: true }, async (self: TaskContext) => {
    const p = rec().pipeline().hincrby(P + 'ran', self.request.id, 1).incr(P + 'by:js');
    if (redelivered(self)) p.incr(P + 'redelivered');
    await p.exec();
  });

  /** Records RPUSH <prefix>started:js / done:js {tag, redelivered, acks_late}; sleeps 60 s when sleepIn is 'js'. */
  app.task({ name: 'ix.slow', bind: true }, async (self: TaskContext, tag: string, sleepIn: string) => {
    const entry = JSON.stringify({ tag, redelivered: redelivered(self), acks_late: app.conf.taskAcksLate });
    await rec().rpush(P + 'started:js', entry);
    if (sleepIn === 'js') await sleep(60_000, undefined, { signal: self.signal });
    await rec().rpush(P + 'done:js', entry);
  });

  return app;
}

const broker = process.env.CELERIAC_TEST_BROKER;
export const app: Celery | undefined = broker
  ? makeApp({
      broker,
      record: process.env.CELERIAC_TEST_RECORD ?? TEST_REDIS_URL,
      prefix: process.env.CELERIAC_TEST_PREFIX ?? '',
      acksLate: process.env.CELERIAC_TEST_ACKS_LATE === '1',
    })
  : undefined;
