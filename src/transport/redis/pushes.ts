import type { Redis } from 'ioredis';

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Values per LPUSH: keeps each command short (Redis runs nothing else meanwhile). */
const MAX_PER_PUSH = 1000;

/**
 * The LPUSHes of one event-loop turn, sent together: per list one LPUSH with every value in call
 * order (the list ends up as if they had been pushed one by one), all in one pipeline and one
 * socket write. Each publish still resolves only once Redis has its message.
 */
export class PushBatch {
  private pending = new Map<string, { values: string[]; waiters: Waiter[] }>();

  constructor(private readonly client: Redis) {}

  push(key: string, value: string): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.pending.size === 0) setImmediate(() => this.flush());
      let entry = this.pending.get(key);
      if (!entry) this.pending.set(key, (entry = { values: [], waiters: [] }));
      entry.values.push(value);
      entry.waiters.push({ resolve, reject });
    });
  }

  private flush(): void {
    const batch = this.pending;
    this.pending = new Map();
    const pipeline = this.client.pipeline();
    const commands: Waiter[][] = [];
    for (const [key, { values, waiters }] of batch) {
      for (let i = 0; i < values.length; i += MAX_PER_PUSH) {
        pipeline.lpush(key, ...values.slice(i, i + MAX_PER_PUSH));
        commands.push(waiters.slice(i, i + MAX_PER_PUSH));
      }
    }
    pipeline.exec().then(
      (replies) => commands.forEach((waiters, i) => {
        const err = replies?.[i]?.[0];
        for (const w of waiters) if (err) w.reject(err); else w.resolve();
      }),
      (err: unknown) => {
        for (const waiters of commands) for (const w of waiters) w.reject(err);
      },
    );
  }
}
