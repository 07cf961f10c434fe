/**
 * kill -9 of a busy worker, with and without acksLate: two workers run short tasks, one is
 * killed when a third of them ran, a replacement starts. With acksLate nothing may be lost; the
 * only tasks run twice are those the killed worker had finished but not yet acknowledged.
 */
import type { Broker } from '../lib/brokers.ts';
import { Harness, type Row } from '../lib/harness.ts';
import type { Scenario, ScenarioSettings } from './types.ts';

export async function killRun(broker: Broker, settings: ScenarioSettings, acksLate: boolean): Promise<Row> {
  const n = settings.quick ? 200 : 2000;
  const h = new Harness({ scenario: acksLate ? 'worker-kill9' : 'worker-kill9-early-ack', broker, acksLate, workers: 2, concurrency: 8, visibilityTimeout: 5, log: settings.log });
  try {
    await h.startWorkers();
    await h.send(n, 50);
    await h.waitUntilRecorded(Math.floor(n / 3));
    const pid = await h.fleet.killOne();
    h.lastFaultEnd = Date.now();
    settings.log(`  killed worker ${pid}`);
    await h.fleet.start(1);
    const last = await h.drain(20_000);
    return await h.finish(last);
  } finally {
    await h.close();
  }
}

export const workerKill: Scenario = {
  name: 'worker-kill9',
  description: 'kill -9 of a busy worker (2 workers, 50 ms tasks) with acksLate and with early ack; a replacement starts',
  brokers: ['sqlite', 'redis', 'amqp'],
  async run(broker, settings) {
    return [await killRun(broker, settings, true), await killRun(broker, settings, false)];
  },
};
