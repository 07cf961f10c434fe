/** The orchestrator's own Redis connections (broker DB with the counter, results DB). */
import { Redis } from 'ioredis';
import { BROKER_DB, COUNTER_KEY, REDIS_HOST, REDIS_PORT, RESULTS_DB } from './config.ts';

let brokerClient: Redis | undefined;
let resultsClient: Redis | undefined;

const open = (db: number) => new Redis({ host: REDIS_HOST, port: REDIS_PORT, db, lazyConnect: true, maxRetriesPerRequest: 2, connectionName: 'celeriac-bench' });

export function brokerDb(): Redis {
  return (brokerClient ??= open(BROKER_DB));
}

export function resultsDb(): Redis {
  return (resultsClient ??= open(RESULTS_DB));
}

/** Tasks executed so far by every worker of every system (never reset during a run). */
export async function executedCount(): Promise<number> {
  return Number((await brokerDb().get(COUNTER_KEY)) ?? 0);
}

/** Empty the benchmark's two databases (and only those). */
export async function flushBenchDbs(): Promise<void> {
  await brokerDb().flushdb();
  await resultsDb().flushdb();
}

export function closeRedis(): void {
  brokerClient?.disconnect();
  resultsClient?.disconnect();
  brokerClient = resultsClient = undefined;
}
