import type { Logger } from '../../common/log.ts';

/** What the autoscaler reads and changes in the worker. */
export interface Scalable {
  /** Requests accepted and not finished (reserved or running): Celery's reserved_requests. */
  demand(): number;
  readonly poolSize: number;
  setPoolSize(n: number): void;
}

/** Seconds after the last scale-up before the pool may shrink (Celery's AUTOSCALE_KEEPALIVE). */
function keepalive(): number {
  const v = Number(process.env.AUTOSCALE_KEEPALIVE);
  return Number.isFinite(v) && v > 0 ? v : 30;
}

/**
 * `--autoscale MAX,MIN`, as Celery's Autoscaler: once a second, grow to the demand (at most MAX);
 * shrink towards it (at least MIN) once `keepalive` seconds have passed since the last growth.
 */
export class Autoscaler {
  private timer: NodeJS.Timeout | undefined;
  private lastScaleUp: number | undefined;
  private readonly keepalive = keepalive();

  constructor(
    private readonly target: Scalable,
    public max: number,
    public min: number,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.maybeScale(), 1000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  maybeScale(): void {
    const procs = this.target.poolSize;
    const qty = this.target.demand();
    const up = Math.min(qty, this.max);
    if (up > procs) return this.scaleUp(up - procs);
    const down = Math.max(qty, this.min);
    if (down < procs && this.lastScaleUp !== undefined && (performance.now() - this.lastScaleUp) / 1000 > this.keepalive) this.shrink(procs - down);
  }

  /** The `autoscale` control command: new bounds, applied now. */
  update(max: number | undefined, min: number | undefined): [number, number] {
    if (max !== undefined) {
      if (max < this.target.poolSize) this.shrink(this.target.poolSize - max);
      this.max = max;
    }
    if (min !== undefined) {
      if (min > this.target.poolSize) this.grow(min - this.target.poolSize);
      this.min = min;
    }
    return [this.max, this.min];
  }

  private scaleUp(n: number): void {
    this.lastScaleUp = performance.now();
    this.grow(n);
  }

  private grow(n: number): void {
    this.log.info(`Scaling up ${n} processes.`);
    this.target.setPoolSize(this.target.poolSize + n);
  }

  private shrink(n: number): void {
    this.log.info(`Scaling down ${n} processes.`);
    this.target.setPoolSize(this.target.poolSize - n);
  }

  info(): Record<string, number> {
    return { max: this.max, min: this.min, current: this.target.poolSize, qty: this.target.demand() };
  }
}
