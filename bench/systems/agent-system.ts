import { type DrainHooks, instanceRssKb, timedDrain } from '../lib/drain.ts';
import type { Agent } from '../lib/rpc.ts';
import type { DrainOptions, DrainResult, MemoryResult, PublishMode, PublishOptions, PublishResult, SteadyOptions, SteadyResult } from './types.ts';

/**
 * What the Node systems (celeriac, BullMQ) share: a client agent process that publishes, times round
 * trips and runs the steady load, and worker processes whose memory is read from /proc.
 */
export abstract class AgentSystem {
  protected abstract agent(): Promise<Agent>;
  /** Throws when a worker process died. */
  protected abstract check(): void;
  /** Process trees of the worker instances. */
  protected abstract instances(): number[][];
  /** How to tell the queue is empty and how many results exist, for drains. */
  protected abstract drainHooks(agent: Agent): Pick<DrainHooks, 'pending' | 'results' | 'quiesced'>;
  protected publishExtra: Record<string, unknown> = {};

  async setup(): Promise<void> {
    await this.agent();
  }

  async publish(mode: PublishMode, opts: PublishOptions): Promise<PublishResult | null> {
    return (await this.agent()).call<PublishResult | null>('publish', { mode, ...opts, ...this.publishExtra });
  }

  async memory(): Promise<MemoryResult> {
    this.check();
    const instances = this.instances();
    return { rssKb: instanceRssKb(instances), processes: instances.flat().length };
  }

  async roundtrip(n: number, warmup: number): Promise<number[]> {
    this.check();
    return (await (await this.agent()).call<{ ms: number[] }>('roundtrip', { n, warmup })).ms;
  }

  async steady(opts: SteadyOptions): Promise<SteadyResult> {
    this.check();
    return (await this.agent()).call<SteadyResult>('steady', { ...opts, inflight: 100 });
  }

  async drain(opts: DrainOptions): Promise<DrainResult> {
    const agent = await this.agent();
    return timedDrain({
      instances: () => this.instances(),
      prefill: async (n, stored, payload) => void (await agent.call('prefill', { n, stored, payload })),
      purge: async () => void (await agent.call('purge')),
      check: () => this.check(),
      ...this.drainHooks(agent),
    }, opts);
  }
}
