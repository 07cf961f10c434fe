/**
 * The broker goes away under load and comes back after a second: a graceful stop and start, and a
 * kill -9. Redis without persistence loses what it held (that is what the row shows); with AOF
 * (fsync always) and RabbitMQ (durable queues, persistent messages) nothing may be lost.
 */
import type { Broker } from '../lib/brokers.ts';
import { Harness, type Row } from '../lib/harness.ts';
import type { Scenario, ScenarioSettings } from './types.ts';

export async function faultRun(broker: Broker, settings: ScenarioSettings, kind: 'restart' | 'kill9'): Promise<Row> {
  const n = settings.quick ? 200 : 2000;
  const h = new Harness({ scenario: `broker-${kind}`, broker, acksLate: true, workers: 2, concurrency: 8, visibilityTimeout: 5, transportFaults: true, log: settings.log });
  try {
    await h.startWorkers();
    await h.send(n, 50);
    await h.waitUntilRecorded(Math.floor(n / 3));
    const fault = kind === 'restart' ? broker.restart! : broker.crash!;
    await fault(1000);
    h.lastFaultEnd = Date.now();
    settings.log(`  broker ${kind} done`);
    const last = await h.drain(broker.name === 'redis' ? 15_000 : 30_000);
    if (broker.name === 'redis') h.notes.push('no persistence: what the broker held is gone');
    return await h.finish(last);
  } finally {
    await h.close();
  }
}

export const brokerFault: Scenario = {
  name: 'broker-fault',
  description: 'the broker is stopped (restart) or killed with -9 (kill9) under load and back after 1 s',
  brokers: ['redis', 'redis-aof', 'amqp'],
  async run(broker, settings) {
    return [await faultRun(broker, settings, 'restart'), await faultRun(broker, settings, 'kill9')];
  },
};
