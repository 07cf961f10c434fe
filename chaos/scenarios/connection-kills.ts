/**
 * Every 500 ms each worker connection is cut (TCP reset through a proxy, and new connections are
 * refused for 50 ms) while the workers drain their tasks.
 */
import { cuttableProxy } from '../../test/amqp/helpers.ts';
import { Harness } from '../lib/harness.ts';
import type { Scenario } from './types.ts';

export const connectionKills: Scenario = {
  name: 'connection-kills',
  description: 'every worker connection is reset every 500 ms (a proxy in between) while 2 workers drain 20 ms tasks',
  brokers: ['redis', 'amqp'],
  async run(broker, settings) {
    const n = settings.quick ? 200 : 2000;
    const proxy = await cuttableProxy(broker.port!);
    const h = new Harness({ scenario: 'connection-kills', broker, acksLate: true, workers: 2, concurrency: 8, visibilityTimeout: 5, workerUrl: broker.url(proxy.port), transportFaults: true, log: settings.log });
    let cuts = 0;
    let timer: NodeJS.Timeout | undefined;
    try {
      await h.startWorkers();
      await h.send(n, 20);
      timer = setInterval(() => {
        proxy.cut(50);
        cuts++;
      }, 500);
      await h.waitUntilRecorded(n, settings.quick ? 60_000 : 300_000).catch(() => undefined);
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
