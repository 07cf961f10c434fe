import { parseRate } from '../common/rate.ts';

/** One token bucket per task name (Celery's per-worker task rate limits). */
export class RateLimits {
  private readonly buckets = new Map<string, { rate: number; tokens: number; last: number; queue: Promise<void> }>();

  set(taskName: string, rate: string | number | null | undefined): void {
    const perSecond = parseRate(rate);
    if (perSecond <= 0) this.buckets.delete(taskName);
    else this.buckets.set(taskName, { rate: perSecond, tokens: 1, last: Date.now(), queue: Promise.resolve() });
  }

  /** Resolves when a task of this name may start; null when the name has no limit. */
  wait(taskName: string): Promise<void> | null {
    const b = this.buckets.get(taskName);
    if (!b) return null;
    b.queue = b.queue.then(async () => {
      for (;;) {
        const now = Date.now();
        b.tokens = Math.min(1, b.tokens + ((now - b.last) / 1000) * b.rate);
        b.last = now;
        if (b.tokens >= 1) {
          b.tokens -= 1;
          return;
        }
        await new Promise((r) => setTimeout(r, ((1 - b.tokens) / b.rate) * 1000));
      }
    });
    return b.queue;
  }
}
