import { Celery } from '../../src/index.ts';

const broker = process.env.CELERIAC_TEST_BROKER;
const backend = process.env.CELERIAC_TEST_BACKEND;
if (!broker || !backend) throw new Error('set CELERIAC_TEST_BROKER and CELERIAC_TEST_BACKEND');

/** The celeriac worker of test/cluster. */
export const app = new Celery('clustertasks', {
  broker, backend, taskDefaultQueue: process.env.CELERIAC_TEST_QUEUE ?? 'celery',
  brokerTransportOptions: { global_keyprefix: process.env.CELERIAC_TEST_PREFIX ?? '' },
});

export const sleep = app.task({ name: 'cluster.ts_sleep', bind: true }, async (self, seconds: number) => {
  await new Promise((resolve) => {
    const timer = setTimeout(resolve, seconds * 1000);
    self.signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve(undefined);
    });
  });
  return 'slept';
});

export const echo = app.task('cluster.ts_echo', (value: unknown) => value);

export const fail = app.task('cluster.ts_fail', (message: string) => {
  throw new Error(message);
});
