/**
 * Real `celeriac worker` processes on chaos/tasks.ts, with their RSS sampled and every exit we did
 * not cause counted as a crash.
 */
import fs from 'node:fs';
import { type Proc, startCeleriacWorker } from '../../test/redis/helpers.ts';

export interface FleetOptions {
  brokerUrl: string;
  queue: string;
  recordKey: string;
  acksLate: boolean;
  /** Visibility timeout, seconds. */
  visibilityTimeout: number;
  concurrency: number;
}

interface Member {
  proc: Proc;
  pid: number;
  /** We stopped or killed it. */
  ended: boolean;
}

function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

export class Fleet {
  private readonly members: Member[] = [];
  readonly killed = new Set<number>();
  readonly crashes: string[] = [];
  peakRssMb = 0;
  /** RSS samples (MB, the sum over live workers) with their time. */
  readonly samples: { at: number; mb: number }[] = [];
  private readonly sampler: NodeJS.Timeout;

  constructor(private readonly opts: FleetOptions) {
    this.sampler = setInterval(() => this.sample(), 250);
  }

  sample(): void {
    let total = 0;
    for (const m of this.members) {
      if (m.ended) continue;
      const mb = rssMb(m.pid);
      this.peakRssMb = Math.max(this.peakRssMb, mb);
      total += mb;
    }
    this.samples.push({ at: Date.now(), mb: total });
  }

  async start(n = 1): Promise<void> {
    await Promise.all(Array.from({ length: n }, () => this.startOne()));
  }

  private async startOne(): Promise<void> {
    const o = this.opts;
    const proc = await startCeleriacWorker('./chaos/tasks.ts:app', ['-c', String(o.concurrency), '-l', 'INFO', '-n', `chaos${this.members.length}@%h`, '--without-heartbeat'], {
      CHAOS_BROKER: o.brokerUrl,
      CHAOS_QUEUE: o.queue,
      CHAOS_RECORD: o.recordKey,
      CHAOS_ACKS_LATE: o.acksLate ? '1' : '0',
      CHAOS_VT: String(o.visibilityTimeout),
    });
    const member: Member = { proc, pid: proc.child.pid!, ended: false };
    this.members.push(member);
    proc.child.once('exit', (code, signal) => {
      if (!member.ended) this.crashes.push(`worker ${member.pid} exited (${code ?? signal}): ${proc.log().slice(-2000)}`);
    });
  }

  /** kill -9 of the busiest live worker (the first one); returns its pid. */
  async killOne(): Promise<number> {
    const m = this.members.find((x) => !x.ended);
    if (!m) throw new Error('no live worker to kill');
    m.ended = true;
    this.killed.add(m.pid);
    await m.proc.kill();
    return m.pid;
  }

  /** Warm shutdown of every live worker; one that does not exit 0 counts as crashed. */
  async stop(): Promise<void> {
    clearInterval(this.sampler);
    await Promise.all(
      this.members.filter((m) => !m.ended).map(async (m) => {
        m.ended = true;
        await m.proc.stop(30_000);
        const { exitCode, signalCode } = m.proc.child;
        if (exitCode !== 0) this.crashes.push(`worker ${m.pid} ended with ${exitCode ?? signalCode} on SIGTERM: ${m.proc.log().slice(-2000)}`);
      }),
    );
  }

  /** Output of every worker (for failure reports). */
  logs(): string {
    return this.members.map((m) => `--- worker ${m.pid}\n${m.proc.log().slice(-5000)}`).join('\n');
  }
}
