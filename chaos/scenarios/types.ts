import type { Broker, BrokerName } from '../lib/brokers.ts';
import type { Row } from '../lib/harness.ts';

export interface ScenarioSettings {
  /** The short version (CI): small counts, short durations. */
  quick: boolean;
  log: (line: string) => void;
}

export interface Scenario {
  name: string;
  /** One line for the README and --help. */
  description: string;
  brokers: readonly BrokerName[];
  run(broker: Broker, settings: ScenarioSettings): Promise<Row[]>;
}
