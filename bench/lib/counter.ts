import type { Redis } from 'ioredis';

const FLUSH_EVERY_MS = 5;

/**
 * Executions of this process, added to a Redis key in batches: at most one INCRBY every 5 ms
 * while tasks run, none while idle. The connection opens on the first execution, so a client
 * process that only imports the tasks never connects.
 */
export class Counter {
  private pending = 0;
  private timer: NodeJS.Timeout | undefined;
  private client: Redis | undefined;

  constructor(
    private readonly connect: () => Redis,
    private readonly key: string,
  ) {}

  incr(): void {
    this.pending++;
    this.timer ??= setTimeout(() => this.flush(), FLUSH_EVERY_MS);
  }

  private flush(): void {
    this.timer = undefined;
    const n = this.pending;
    this.pending = 0;
    if (n === 0) return;
    this.client ??= this.connect();
    this.client.incrby(this.key, n).catch((err: Error) => process.stderr.write(`bench counter: ${err.message}\n`));
  }
}
