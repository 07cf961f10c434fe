/**
 * The drain measurement for systems whose workers the orchestrator runs (celeriac, BullMQ);
 * bench/py/agent.py does the same for Celery.
 *
 *  1. SIGSTOP the worker processes (they are started and idle: "ready").
 *  2. Prefill n tasks through the client process.
 *  3. SIGCONT, start the clock.
 *  4. Poll every 2 ms (the CPU time of the workers and broker servers is read at both ends): done when the execution counter has grown by n AND the broker holds no
 *     message of the queue, ready or unacknowledged (AND, with results stored, n more results
 *     exist). Sample the workers' RSS every 50 ms meanwhile.
 *  5. At the time cap, stop timing: the rate is what was executed so far. The rest is purged and
 *     the workers allowed to finish what they hold, so the next measurement starts clean.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { DrainOptions, DrainResult } from '../systems/types.ts';
import { brokerCpuSeconds, cpuSeconds } from './load.ts';
import { rssKb, signalPids } from './proc.ts';
import { executedCount } from './redis.ts';

const POLL_MS = 2;
const RSS_EVERY_MS = 50;

export interface DrainHooks {
  /** Worker processes, grouped by worker instance. */
  instances(): number[][];
  prefill(n: number, stored: boolean, payloadBytes: number): Promise<void>;
  /** Messages of the queue still in the broker: ready, reserved or unacknowledged. */
  pending(): Promise<number>;
  /** Results stored so far (any monotonic count). */
  results(): Promise<number>;
  purge(): Promise<void>;
  /** Throws when a worker died. */
  check(): void;
  /**
   * Called with the workers stopped: false if one was stopped holding a lock the prefill needs
   * (SQLite's write lock); the workers are then resumed briefly and stopped again.
   */
  quiesced?(): boolean;
}

/** Mean RSS per worker instance (each instance's processes summed). */
export function instanceRssKb(instances: number[][]): number {
  if (instances.length === 0) return 0;
  const sums = instances.map((pids) => pids.reduce((s, p) => s + rssKb(p), 0));
  return sums.reduce((a, b) => a + b, 0) / sums.length;
}

export async function timedDrain(hooks: DrainHooks, opts: DrainOptions): Promise<DrainResult> {
  hooks.check();
  // The process trees are read once: scanning /proc at every sample would cost CPU during the drain.
  const groups = hooks.instances();
  const pids = groups.flat();
  const { n, stored } = opts;
  for (let attempt = 0; ; attempt++) {
    signalPids(pids, 'SIGSTOP');
    if (!hooks.quiesced || hooks.quiesced()) break;
    signalPids(pids, 'SIGCONT');
    if (attempt > 200) throw new Error('could not pause the workers outside a write transaction');
    await sleep(3 + Math.random() * 5);
  }
  let prefillSeconds: number;
  let baseResults: number;
  let base: number;
  try {
    baseResults = await hooks.results();
    base = await executedCount();
    const p0 = performance.now();
    await hooks.prefill(n, stored, opts.payloadBytes ?? 0);
    prefillSeconds = (performance.now() - p0) / 1000;
  } finally {
    signalPids(pids, 'SIGCONT');
  }
  const t0 = performance.now();
  const workerCpu = () => pids.reduce((s, p) => s + cpuSeconds(p), 0);
  const cpu0 = workerCpu();
  const broker0 = brokerCpuSeconds();
  const cost = () => ({ workerCpuSeconds: workerCpu() - cpu0, brokerCpuSeconds: brokerCpuSeconds() - broker0 });
  const capAt = t0 + opts.maxSeconds * 1000;
  let peak = instanceRssKb(groups);
  let nextRss = t0 + RSS_EVERY_MS;
  for (;;) {
    const now = performance.now();
    if (now >= nextRss) {
      peak = Math.max(peak, instanceRssKb(groups));
      nextRss = now + RSS_EVERY_MS;
    }
    const executed = (await executedCount()) - base;
    if (executed >= n && (await hooks.pending()) === 0 && (!stored || (await hooks.results()) - baseResults >= n)) {
      return { n, executed, seconds: (performance.now() - t0) / 1000, complete: true, peakRssKb: peak, prefillSeconds, ...cost() };
    }
    if (now >= capAt) {
      const seconds = (now - t0) / 1000;
      const used = cost();
      await settle(hooks, base + n);
      return { n, executed: Math.min(executed, n), seconds, complete: false, peakRssKb: peak, prefillSeconds, ...used };
    }
    hooks.check();
    await sleep(POLL_MS);
  }
}

/** After a capped drain: purge what is left and wait until the workers hold nothing. */
async function settle(hooks: DrainHooks, target: number): Promise<void> {
  await hooks.purge();
  const until = performance.now() + 30_000;
  let last = -1;
  let stableSince = performance.now();
  while (performance.now() < until) {
    const c = await executedCount();
    if (c !== last) [last, stableSince] = [c, performance.now()];
    if (c >= target || (performance.now() - stableSince > 200 && (await hooks.pending()) === 0)) return;
    await sleep(20);
  }
}
