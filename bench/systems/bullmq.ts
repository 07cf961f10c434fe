/**
 * BullMQ from node_modules on the same Redis (broker DB 14, key prefix `celeriac-bench-bull`).
 * Workers are bench/agents/bullmq-worker.ts processes (1, or 2 for the two-core comparison) with a
 * given concurrency each; the client is
 * bench/agents/client.ts. Results ignored = jobs added with removeOnComplete: true; stored =
 * removeOnComplete: false (the job and its return value stay in Redis).
 */
import type { ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { Queue } from 'bullmq';
import { bundled } from '../lib/build.ts';
import { BULLMQ_PREFIX, QUEUE, REDIS_BROKER_URL } from '../lib/config.ts';
import { ROOT, startNodeAgent, waitExecuted } from '../lib/node-agent.ts';
import { alive, processTree, spawnTracked, stopProcess } from '../lib/proc.ts';
import { brokerDb, executedCount } from '../lib/redis.ts';
import type { Agent } from '../lib/rpc.ts';
import { AgentSystem } from './agent-system.ts';
import type { BenchSystem } from './types.ts';

let sharedAgent: Promise<Agent> | undefined;
let sharedQueue: Queue | undefined;

export const BULLMQ_VERSION = (createRequire(import.meta.url)('bullmq/package.json') as { version: string }).version;

class BullmqSystem extends AgentSystem implements BenchSystem {
  readonly family = 'bullmq' as const;
  readonly broker = 'redis' as const;
  readonly id: string;
  readonly label: string;
  readonly workerDescription: string;
  private workers: ChildProcess[] = [];
  private stderr = '';

  constructor(
    readonly concurrency: number,
    readonly publisher: boolean,
    readonly processes = 1,
  ) {
    super();
    this.publishExtra = { chunk: 1000 };
    this.id = processes === 1 ? `bullmq-c${concurrency}` : `bullmq-${processes}p-c${concurrency}`;
    this.label = processes === 1 ? `BullMQ c${concurrency}` : `BullMQ ${processes}p c${concurrency}`;
    this.workerDescription = `${processes} worker process${processes > 1 ? 'es' : ''}, concurrency ${concurrency}${processes > 1 ? ' each' : ''}`;
  }

  protected agent(): Promise<Agent> {
    sharedAgent ??= startNodeAgent('bullmq client', 'bullmq', {});
    return sharedAgent;
  }

  private queue(): Queue {
    sharedQueue ??= new Queue(QUEUE, { connection: brokerDb().duplicate({ maxRetriesPerRequest: null }), prefix: BULLMQ_PREFIX });
    return sharedQueue;
  }

  async startWorker(): Promise<void> {
    const agent = await this.agent();
    this.stderr = '';
    for (let i = 0; i < this.processes; i++) {
      const w = spawnTracked(process.execPath, [bundled('bullmq-worker'), String(this.concurrency)], {
        cwd: ROOT,
        env: { ...process.env, BENCH_COUNTER_URL: REDIS_BROKER_URL },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      w.stderr!.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
      this.workers.push(w);
    }
    const base = await executedCount();
    await agent.call('send', { stored: false });
    await waitExecuted(executedCount, base + 1, 60_000, () => this.check());
  }

  protected check(): void {
    const dead = this.workers.find((w) => !alive(w));
    if (dead) throw new Error(`BullMQ worker exited (${dead.signalCode ?? dead.exitCode})${this.stderr ? `:\n${this.stderr.trim()}` : ''}`);
  }

  protected instances(): number[][] {
    return this.workers.map((w) => processTree(w.pid!));
  }

  protected drainHooks() {
    return {
      // Waiting, prioritized, delayed and active jobs: a job leaves `active` only after its processor returned.
      pending: async () => {
        const c = await this.queue().getJobCounts('wait', 'prioritized', 'delayed', 'active', 'waiting-children');
        return Object.values(c).reduce((a, b) => a + b, 0);
      },
      results: async () => (await this.queue().getJobCounts('completed')).completed ?? 0,
    };
  }

  async stopWorker(): Promise<void> {
    const workers = this.workers;
    this.workers = [];
    await Promise.all(workers.map((w) => stopProcess(w, 15_000)));
  }

  async teardown(): Promise<void> {
    await this.stopWorker();
    const agent = await sharedAgent?.catch(() => undefined);
    sharedAgent = undefined;
    await agent?.close(); // obliterates the queue
    await sharedQueue?.close();
    sharedQueue = undefined;
  }
}

/** One process per concurrency given; with `twoProcesses`, also 2 processes at concurrency 200 each. */
export function bullmqSystems(concurrencies: number[], twoProcesses: boolean): BenchSystem[] {
  const out = concurrencies.map((c, i) => new BullmqSystem(c, i === 0));
  if (twoProcesses) out.push(new BullmqSystem(200, false, 2));
  return out;
}
