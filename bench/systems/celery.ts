/**
 * Python Celery 5.2 (Debian's, `/usr/bin/python3 -m celery`) on Redis (broker DB 14, results
 * DB 15) or RabbitMQ (results in Redis DB 15). Everything runs in bench/py/agent.py, one per
 * broker, shared by the pool variants: the client, the worker's lifecycle, and the drain, which
 * it prefills with apply_async and times itself. Workers run with -l WARNING and without gossip,
 * mingle, heartbeat, events or remote control (celeriac has none of these).
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { AMQP_URL, COUNTER_KEY, PYTHON, QUEUE, REDIS_BROKER_URL, REDIS_RESULTS_URL } from '../lib/config.ts';
import { ROOT } from '../lib/node-agent.ts';
import { Agent } from '../lib/rpc.ts';
import type { BenchSystem, DrainOptions, DrainResult, MemoryResult, PublishMode, PublishOptions, PublishResult, SteadyOptions, SteadyResult } from './types.ts';

type Broker = 'redis' | 'amqp';
export type Pool = 'prefork' | 'threads' | 'gevent';

const agents = new Map<Broker, Promise<Agent>>();

/** Threads of the "concurrent" publish mode: Celery's client is synchronous. */
export const CELERY_PUBLISH_THREADS = 8;

function agentFor(broker: Broker): Promise<Agent> {
  let a = agents.get(broker);
  if (!a) {
    a = (async () => {
      const agent = new Agent(`celery ${broker} agent`, PYTHON, [path.join(ROOT, 'bench', 'py', 'agent.py')], {
        cwd: path.join(ROOT, 'bench', 'py'),
        env: {
          ...process.env,
          BENCH_BROKER: broker === 'redis' ? REDIS_BROKER_URL : AMQP_URL,
          BENCH_BACKEND: REDIS_RESULTS_URL,
          BENCH_COUNTER_URL: REDIS_BROKER_URL,
          BENCH_COUNTER_KEY: COUNTER_KEY,
          BENCH_QUEUE: QUEUE,
          PYTHONDONTWRITEBYTECODE: '1',
        },
      });
      await agent.ready;
      return agent;
    })();
    agents.set(broker, a);
  }
  return a;
}

/** Can this Python import the module? (gevent is optional.) */
export function pythonHas(module: string): boolean {
  try {
    execFileSync(PYTHON, ['-c', `import ${module}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export async function probeCelery(broker: Broker): Promise<{ reason: string | null; versions?: Record<string, string> }> {
  try {
    const versions = await (await agentFor(broker)).call<Record<string, string>>('hello');
    return { reason: null, versions };
  } catch (err) {
    agents.delete(broker);
    return { reason: (err as Error).message.split('\n').slice(0, 3).join(' ') };
  }
}

class CelerySystem implements BenchSystem {
  readonly family = 'celery' as const;
  readonly id: string;
  readonly label: string;
  readonly workerDescription: string;

  constructor(
    readonly broker: Broker,
    readonly pool: Pool,
    readonly concurrency: number,
    readonly publisher: boolean,
  ) {
    this.id = `celery-${broker}-${pool}`;
    this.label = `Celery ${broker === 'redis' ? 'Redis' : 'RabbitMQ'} ${pool} ${concurrency}`;
    this.workerDescription = `1 worker, -P ${pool} -c ${concurrency} (prefetch ×4)`;
  }

  private agent(): Promise<Agent> {
    return agentFor(this.broker);
  }

  async setup(): Promise<void> {
    await this.agent();
  }

  async publish(mode: PublishMode, opts: PublishOptions): Promise<PublishResult | null> {
    return (await this.agent()).call<PublishResult | null>('publish', { mode, seconds: opts.seconds, max: opts.max, threads: CELERY_PUBLISH_THREADS });
  }

  async startWorker(): Promise<void> {
    await (await this.agent()).call('start_worker', { pool: this.pool, concurrency: this.concurrency });
  }

  async memory(): Promise<MemoryResult> {
    return (await this.agent()).call<MemoryResult>('memory');
  }

  async roundtrip(n: number, warmup: number): Promise<number[]> {
    return (await (await this.agent()).call<{ ms: number[] }>('roundtrip', { n, warmup })).ms;
  }

  async steady(opts: SteadyOptions): Promise<SteadyResult> {
    return (await this.agent()).call<SteadyResult>('steady', { ...opts });
  }

  async drain(opts: DrainOptions): Promise<DrainResult> {
    return (await this.agent()).call<DrainResult>('drain', { n: opts.n, stored: opts.stored, max_seconds: opts.maxSeconds, payload: opts.payloadBytes ?? 0 });
  }

  async stopWorker(): Promise<void> {
    await (await this.agent()).call('stop_worker');
  }

  async teardown(): Promise<void> {
    const a = agents.get(this.broker);
    agents.delete(this.broker);
    const agent = await a?.catch(() => undefined);
    await agent?.close(); // stops the worker, purges and (RabbitMQ) deletes the queue
  }
}

export function celerySystems(brokers: Broker[], gevent: boolean): BenchSystem[] {
  const out: BenchSystem[] = [];
  for (const broker of brokers) {
    out.push(new CelerySystem(broker, 'prefork', 2, true));
    out.push(new CelerySystem(broker, 'threads', 8, false));
    if (gevent) out.push(new CelerySystem(broker, 'gevent', 100, false));
  }
  return out;
}
