/** Runs the chosen scenarios, each broker started once (lazily) and destroyed at the end. */
import { type Broker, type BrokerName, startBroker } from './brokers.ts';
import type { Row } from './harness.ts';
import { SCENARIOS, type ScenarioSettings } from '../scenarios/index.ts';

export interface ChaosOptions extends ScenarioSettings {
  only?: readonly string[];
  brokers?: readonly BrokerName[];
  /** A row is reported as soon as it is measured. */
  onRow?: (row: Row) => void;
}

export async function runChaos(opts: ChaosOptions): Promise<Row[]> {
  const unknown = (opts.only ?? []).filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length > 0) throw new Error(`unknown scenario ${unknown.join(', ')}: choose among ${SCENARIOS.map((s) => s.name).join(', ')}`);
  const chosen = SCENARIOS.filter((s) => !opts.only?.length || opts.only.includes(s.name));
  const started = new Map<BrokerName, Broker>();
  const rows: Row[] = [];
  try {
    for (const name of ['sqlite', 'redis', 'redis-aof', 'amqp'] as const) {
      if (opts.brokers?.length && !opts.brokers.includes(name) && !(name === 'redis-aof' && opts.brokers.includes('redis'))) continue;
      const scenarios = chosen.filter((s) => s.brokers.includes(name));
      if (scenarios.length === 0) continue;
      opts.log(`starting a private ${name} broker`);
      const broker = await startBroker(name);
      started.set(name, broker);
      for (const s of scenarios) {
        opts.log(`${s.name} on ${name}`);
        for (const row of await s.run(broker, opts)) {
          rows.push(row);
          opts.onRow?.(row);
        }
      }
      await broker.destroy();
      started.delete(name);
    }
  } finally {
    for (const b of started.values()) await b.destroy().catch(() => undefined);
  }
  return rows;
}
