/**
 * Revoked task ids as Celery keeps them (`LimitedSet`): at most 50,000, each forgotten after
 * three hours. Timestamps are monotonic seconds, as Celery's, because mingle exchanges them.
 */
export class RevokedSet {
  private readonly entries = new Map<string, number>();

  constructor(
    readonly maxlen = 50_000,
    readonly expiresSeconds = 10_800,
  ) {}

  add(id: string, at = monotonic()): void {
    this.entries.delete(id);
    this.entries.set(id, at);
    this.purge();
  }

  has(id: string): boolean {
    const at = this.entries.get(id);
    if (at === undefined) return false;
    if (monotonic() - at > this.expiresSeconds) {
      this.entries.delete(id);
      return false;
    }
    return true;
  }

  ids(): string[] {
    this.purge();
    return [...this.entries.keys()];
  }

  /** Mingle's wire form: `{id: [timestamp, id]}` with float timestamps. */
  toMingle(): Record<string, [number, string]> {
    this.purge();
    return Object.fromEntries([...this.entries].map(([id, at]) => [id, [at, id]]));
  }

  /** Merge another node's set (mingle `hello`); accepts Celery's dict form or a plain list. */
  update(other: unknown): void {
    if (Array.isArray(other)) for (const id of other) if (typeof id === 'string') this.add(id);
    if (other && typeof other === 'object' && !Array.isArray(other)) {
      for (const [id, v] of Object.entries(other)) this.add(id, Array.isArray(v) && typeof v[0] === 'number' ? Math.min(v[0], monotonic()) : monotonic());
    }
  }

  get size(): number {
    return this.entries.size;
  }

  private purge(): void {
    const now = monotonic();
    for (const [id, at] of this.entries) {
      if (this.entries.size <= this.maxlen && now - at <= this.expiresSeconds) break;
      this.entries.delete(id);
    }
  }
}

/**
 * Seconds on CLOCK_MONOTONIC, the clock of Python's `time.monotonic()` on Linux; always with a
 * fraction, so the JSON holds a float, which Python's LimitedSet requires.
 */
export function monotonic(): number {
  const t = Number(process.hrtime.bigint() / 1000n) / 1e6;
  return Number.isInteger(t) ? t + 0.000001 : t;
}
