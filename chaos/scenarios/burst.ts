/** A burst of 5 MB messages into one worker: every one runs once, RSS stays bounded. */
import { Harness } from '../lib/harness.ts';
import type { Scenario } from './types.ts';

export const burst: Scenario = {
  name: 'burst-5mb',
  description: 'a burst of 5 MB messages (50; quick: 8) into one worker with -c 4',
  brokers: ['sqlite', 'redis', 'amqp'],
  async run(broker, settings) {
    const n = settings.quick ? 8 : 50;
    const h = new Harness({ scenario: 'burst-5mb', broker, acksLate: true, workers: 1, concurrency: 4, log: settings.log });
    try {
      await h.startWorkers();
      const t0 = Date.now();
      await h.send(n, 10, 'x'.repeat(5 * 1024 * 1024), 4);
      const t1 = Date.now();
      const last = await h.drain(30_000);
      h.notes.push(`sent in ${((t1 - t0) / 1000).toFixed(1)} s, all ran ${((last - t1) / 1000).toFixed(1)} s later`);
      return [await h.finish(last)];
    } finally {
      await h.close();
    }
  },
};
