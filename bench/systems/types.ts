/** The interface every measured system implements (bench/systems/<system>.ts). */

export type Family = 'celeriac' | 'celery' | 'bullmq';
export type PublishMode = 'single' | 'concurrent' | 'bulk';

export interface PublishResult {
  count: number;
  seconds: number;
}

export interface DrainResult {
  /** Tasks prefilled. */
  n: number;
  /** Tasks executed in `seconds` (= n when complete). */
  executed: number;
  /** From the worker's resume to completion (or to the time cap). */
  seconds: number;
  /** False when the time cap ended the drain first; the rate is then executed / seconds. */
  complete: boolean;
  /** Highest RSS seen during the drain, per worker instance (kB). */
  peakRssKb: number;
  /** Seconds the prefill took (not part of the measurement). */
  prefillSeconds?: number;
  /** CPU seconds the worker processes used during the measured time. */
  workerCpuSeconds?: number;
  /** CPU seconds the broker servers (redis-server, beam.smp) used meanwhile, whoever asked. */
  brokerCpuSeconds?: number;
}

export interface SteadyResult {
  executed: number;
  seconds: number;
  published: number;
}

export interface MemoryResult {
  /** RSS of one worker instance (a `worker` command with its child processes), kB; the mean when several run. */
  rssKb: number;
  /** Processes counted. */
  processes: number;
}

export interface DrainOptions {
  n: number;
  stored: boolean;
  /** Stop timing after this many seconds even if tasks remain. */
  maxSeconds: number;
  /** Echo tasks of a string this long instead of no-ops (results stored). */
  payloadBytes?: number;
}

export interface SteadyOptions {
  seconds: number;
  warmup: number;
  /** Most tasks sent but not yet executed. */
  backlog: number;
}

export interface PublishOptions {
  seconds: number;
  max: number;
  /** Calls outstanding at once in `concurrent` mode. */
  inflight: number;
}

export interface BenchSystem {
  /** Stable id, e.g. `celeriac-sqlite-2p`. */
  readonly id: string;
  /** Short column label for the table. */
  readonly label: string;
  readonly family: Family;
  readonly broker: 'sqlite' | 'redis' | 'amqp';
  /** One variant per client library and broker measures publishing (the worker setup does not matter there). */
  readonly publisher: boolean;
  /** What the worker is, for the report (e.g. "1 process, -c 100"). */
  readonly workerDescription: string;

  /** Start the client side and prepare the broker; idempotent (shared agents are started once). */
  setup(): Promise<void>;
  /** Publish rate of one client process; null when the mode does not apply. No worker runs. */
  publish(mode: PublishMode, opts: PublishOptions): Promise<PublishResult | null>;
  /** Start the worker(s) and return once one task has been executed. */
  startWorker(): Promise<void>;
  /** RSS of the worker now. */
  memory(): Promise<MemoryResult>;
  /** Sequential send-and-get round trips, ms each. */
  roundtrip(n: number, warmup: number): Promise<number[]>;
  /** Client and worker together. */
  steady(opts: SteadyOptions): Promise<SteadyResult>;
  /** Pause the worker, prefill, resume, time until every task ran and was acknowledged. */
  drain(opts: DrainOptions): Promise<DrainResult>;
  stopWorker(): Promise<void>;
  /** Stop everything this system started and remove its keys, queues and files. */
  teardown(): Promise<void>;
}
