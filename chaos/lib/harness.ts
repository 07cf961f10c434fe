/**
 * What every scenario shares: a client app on the broker, the fleet of workers, the execution
 * record, sending tagged tasks, waiting for them to drain, and the tally that becomes a table row.
 */
import { randomUUID } from 'node:crypto';
import { Celery } from '../../src/index.ts';
import type { Broker } from './brokers.ts';
import { ExecutionRecord } from './record.ts';
import { Fleet } from './workers.ts';

export interface Row {
  scenario: string;
  broker: string;
  acksLate: boolean;
  sent: number;
  ranOnce: number;
  ranTwice: number;
  /** Run twice where the first run was not in a killed worker and no broker or connection fault happened. */
  twiceOutsideWindow: number;
  lost: number;
  stuck: number;
  /** Seconds from the end of the last fault until the last task ran; null without a fault. */
  recoveryS: number | null;
  workerCrashed: number;
  peakRssMb: number;
  notes: string;
}

export interface Settings {
  quick: boolean;
  log: (line: string) => void;
}

export interface RunOptions {
  scenario: string;
  broker: Broker;
  acksLate: boolean;
  workers: number;
  concurrency: number;
  visibilityTimeout?: number;
  /** URL the workers use (a proxy), default the broker's. */
  workerUrl?: string;
  /** Broker or connection faults: every duplicate is inside the at-least-once window. */
  transportFaults?: boolean;
  log?: (line: string) => void;
}

export class Harness {
  readonly queue: string;
  readonly record: ExecutionRecord;
  readonly fleet: Fleet;
  readonly app: Celery;
  readonly sentTags: string[] = [];
  lastFaultEnd: number | null = null;
  lastProgress = Date.now();
  notes: string[] = [];

  constructor(readonly opts: RunOptions) {
    this.queue = `chaos-${opts.scenario}-${randomUUID().slice(0, 8)}`;
    this.record = ExecutionRecord.unique(`${opts.scenario}:${opts.broker.name}`);
    this.fleet = new Fleet({
      brokerUrl: opts.workerUrl ?? opts.broker.url(),
      queue: this.queue,
      recordKey: this.record.key,
      acksLate: opts.acksLate,
      visibilityTimeout: opts.visibilityTimeout ?? 5,
      concurrency: opts.concurrency,
    });
    this.app = new Celery('chaos-client', {
      broker: opts.broker.url(),
      taskDefaultQueue: this.queue,
      taskIgnoreResult: true,
      brokerTransportOptions: { visibility_timeout: opts.visibilityTimeout ?? 5 },
    });
  }

  async startWorkers(): Promise<void> {
    await this.fleet.start(this.opts.workers);
  }

  /** Send `n` tasks of `ms` each (with `payload`), `parallel` publishes in flight. */
  async send(n: number, ms: number, payload?: string, parallel = 50): Promise<void> {
    let next = 0;
    const one = async () => {
      while (next < n) {
        next++;
        const tag = randomUUID();
        this.sentTags.push(tag);
        await this.app.sendTask('chaos.work', payload === undefined ? [tag, ms] : [tag, ms, payload], {}, { taskId: tag });
      }
    };
    await Promise.all(Array.from({ length: Math.min(parallel, n) }, one));
  }

  async recorded(): Promise<number> {
    return this.record.count();
  }

  async waitUntilRecorded(n: number, timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((await this.recorded()) < n) {
      if (Date.now() > deadline) throw new Error(`${this.opts.scenario}/${this.opts.broker.name}: fewer than ${n} tasks ran within ${timeoutMs} ms`);
      await sleep(100);
    }
  }

  /** Wait until every sent task ran, or nothing new ran for `idleMs`. Returns when the last one ran. */
  async drain(idleMs: number): Promise<number> {
    let last = -1;
    let lastChange = Date.now();
    for (;;) {
      const n = await this.recorded();
      if (n !== last) {
        last = n;
        lastChange = Date.now();
      }
      if (n >= this.sentTags.length) {
        const tags = new Set((await this.record.read()).map((e) => e.tag));
        if (this.sentTags.every((t) => tags.has(t))) return lastChange;
      }
      if (Date.now() - lastChange > idleMs) return lastChange;
      await sleep(200);
    }
  }

  /** Stop the workers, count, clean up; one table row. */
  async finish(lastRunAt: number, extra: Partial<Row> = {}): Promise<Row> {
    // Deliveries whose ack a fault lost come back: let the live workers take them before counting.
    for (const until = Date.now() + 20_000; Date.now() < until && (await this.opts.broker.leftIn(this.queue)) > 0;) await sleep(250);
    await sleep(500);
    await this.fleet.stop();
    const runs = await this.record.read();
    const byTag = new Map<string, number[]>();
    for (const e of runs) byTag.set(e.tag, [...(byTag.get(e.tag) ?? []), e.pid]);
    let once = 0;
    let twice = 0;
    let outside = 0;
    for (const tag of this.sentTags) {
      const pids = byTag.get(tag);
      if (!pids) continue;
      if (pids.length === 1) once++;
      else {
        twice++;
        if (!this.opts.transportFaults && !this.fleet.killed.has(pids[0]!)) outside++;
      }
    }
    const stuck = await this.opts.broker.leftIn(this.queue);
    for (const c of this.fleet.crashes) (this.opts.log ?? console.error)(c);
    const row: Row = {
      scenario: this.opts.scenario,
      broker: this.opts.broker.name,
      acksLate: this.opts.acksLate,
      sent: this.sentTags.length,
      ranOnce: once,
      ranTwice: twice,
      twiceOutsideWindow: outside,
      lost: this.sentTags.filter((t) => !byTag.has(t)).length,
      stuck,
      recoveryS: this.lastFaultEnd === null ? null : Math.max(0, (lastRunAt - this.lastFaultEnd) / 1000),
      workerCrashed: this.fleet.crashes.length,
      peakRssMb: Math.round(this.fleet.peakRssMb),
      notes: this.notes.join('; '),
      ...extra,
    };
    await this.close();
    return row;
  }

  async close(): Promise<void> {
    await this.fleet.stop().catch(() => undefined);
    await this.app.close().catch(() => undefined);
    await this.record.destroy().catch(() => undefined);
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
