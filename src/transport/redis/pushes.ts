import { randomUUID } from 'node:crypto';
import { redisArg } from '../../common/redis-arg.ts';
import type { KombuKeys } from './keys.ts';
import type { ScriptedRedis } from './scripts.ts';

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Values per script run: keeps each run short (Redis runs nothing else meanwhile). */
const MAX_PER_PUSH = 1000;

/**
 * The LPUSHes of one event-loop turn, sent together: per list every value in call order (the list
 * ends up as if they had been pushed one by one), in push.lua runs of at most MAX_PER_PUSH values,
 * one socket write. Each run carries a batch id, so a run re-sent after a lost reply pushes nothing
 * twice. Each publish resolves only once Redis has its message.
 */
export class PushBatch {
  /** Long values as bytes, made at once: a long string would otherwise live until the flush. */
  private pending = new Map<string, { values: (string | Buffer)[]; waiters: Waiter[] }>();

  constructor(
    private readonly client: ScriptedRedis,
    private readonly keys: KombuKeys,
  ) {}

  push(key: string, value: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.pending.size === 0) setImmediate(() => this.flush());
      let entry = this.pending.get(key);
      if (!entry) this.pending.set(key, (entry = { values: [], waiters: [] }));
      entry.values.push(redisArg(value));
      entry.waiters.push({ resolve, reject });
    });
  }

  private flush(): void {
    const batch = this.pending;
    this.pending = new Map();
    let lists: string[] = [];
    let counts: string[] = [];
    let values: (string | Buffer)[] = [];
    let waiters: Waiter[] = [];
    const run = () => {
      const mine = waiters;
      this.client.celeriacPush(1 + lists.length, this.keys.pushRecord(randomUUID()), ...lists, ...counts, ...values).then(
        () => mine.forEach((w) => w.resolve()),
        (err: unknown) => mine.forEach((w) => w.reject(err)),
      );
      lists = [];
      counts = [];
      values = [];
      waiters = [];
    };
    for (const [key, entry] of batch) {
      for (let i = 0; i < entry.values.length; ) {
        const take = Math.min(MAX_PER_PUSH - values.length, entry.values.length - i);
        lists.push(key);
        counts.push(String(take));
        values.push(...entry.values.slice(i, i + take));
        waiters.push(...entry.waiters.slice(i, i + take));
        i += take;
        if (values.length >= MAX_PER_PUSH) run();
      }
    }
    if (values.length > 0) run();
  }
}
