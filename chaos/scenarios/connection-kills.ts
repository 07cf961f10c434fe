/**
 * Every 500 ms each worker connection is cut (TCP reset through a proxy, and new connections are
 * refused for 50 ms) while the workers drain their tasks.
 */
import { cuttableProxy } from '../../test/amqp/helpers.ts';
import { Harness, sleep } from '../lib/harness.ts';
import type { Scenario } from './types.ts';

export const connectionKills: Scenario = {
  name: 'connection-kills',
  description: 'every worker connection is reset every 500 ms (a proxy in between) while 2 workers run a stream of 20 ms tasks for 30 s (quick: 5 s)',
  brokers: ['redis', 'amqp'],
  async run(broker, settings) {
    const n = settings.quick ? 200 : 2000;
    const proxy = await cuttableProxy(broker.port!);
    const h = new Harness({ scenario: 'connection-kills', broker, acksLate: true, workers: 2, concurrency: 8, visibilityTimeout: 5, workerUrl: broker.url(proxy.port), transportFaults: true, log: settings.log });
    let cuts = 0;
    let timer: NodeJS.Timeout | undefined;
    try {
      await h.startWorkers();
      timer = setInterval(() => {
        proxy.cut(50);
        cuts++;
      }, 500);
      // Sent as a stream over the whole fault period, so the cuts land while tasks run.
      const seconds = settings.quick ? 5 : 30;
      for (let i = 0; i < 10 * seconds; i++) {
        const tick = Date.now();
        await h.send(Math.ceil(n / (10 * seconds)), 20);
        await sleep(Math.max(0, 100 - (Date.now() - tick)));
      }
      await h.waitUntilRecorded(h.sentTags.length, 60_000).catch(() => undefined);
      clearInterval(timer);
      h.lastFaultEnd = Date.now();
      const last = await h.drain(20_000);
      h.notes.push(`${cuts} cuts`);
      return [await h.finish(last)];
    } finally {
      clearInterval(timer);
      await h.close();
      await proxy.close();
    }
  },
};
