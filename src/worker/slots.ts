/**
 * A counting semaphore: at most `size` holders at once, waiters served in order. A holder whose
 * task has returned may lend its slot to the next waiter while its result is being stored; at most
 * `size` slots are lent at once, so a slow result store still holds the worker back.
 */
export class Slots {
  private used = 0;
  private lentOut = 0;
  private readonly waiters: Array<() => void> = [];

  constructor(public size: number) {}

  get active(): number {
    return this.used;
  }

  /** Take a free slot now if there is one (and nobody waits for it). */
  tryAcquire(): boolean {
    if (this.used >= this.size || this.waiters.length > 0) return false;
    this.used++;
    return true;
  }

  /** Call `holder` with a slot taken for it: now if one is free, else when one is released (no promise). */
  whenFree(holder: () => void): void {
    if (this.tryAcquire()) holder();
    else this.waiters.push(holder);
  }

  /** Change the number of slots; waiters get the new ones at once. */
  resize(size: number): void {
    this.size = size;
    while (this.used < this.size && this.waiters.length > 0) {
      this.used++;
      this.waiters.shift()!();
    }
  }

  /** Give a held slot to the next waiter before the holder is done; false when too many are lent already. */
  lend(): boolean {
    if (this.lentOut >= this.size) return false;
    this.lentOut++;
    this.release();
    return true;
  }

  /** The holder is done: its slot is freed, or, if it was lent, it stops counting as lent. */
  release(lent = false): void {
    if (lent) {
      this.lentOut--;
      return;
    }
    const next = this.used <= this.size ? this.waiters.shift() : undefined;
    if (next) next();
    else this.used--;
  }

  /** Resolves once nothing holds a slot or has lent it. */
  async drained(): Promise<void> {
    while (this.used > 0 || this.lentOut > 0 || this.waiters.length > 0) await new Promise((r) => setTimeout(r, 20));
  }
}
