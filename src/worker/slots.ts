/** A counting semaphore: at most `size` holders at once, waiters served in order. */
export class Slots {
  private used = 0;
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

  release(): void {
    const next = this.used <= this.size ? this.waiters.shift() : undefined;
    if (next) next();
    else this.used--;
  }

  /** Resolves once nothing holds a slot. */
  async drained(): Promise<void> {
    while (this.used > 0 || this.waiters.length > 0) await new Promise((r) => setTimeout(r, 20));
  }
}
