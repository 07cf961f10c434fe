/**
 * Items added during one event-loop turn, handed to `run` together at the end of the turn, or
 * earlier when `flush()` is called (before an operation that must come after them). Every item
 * of a batch gets the batch's one promise: it settles when `run` has handled them all.
 */
export class TickBatch<T> {
  private items: T[] = [];
  private done: Promise<void> | undefined;
  private settle: { resolve: () => void; reject: (err: unknown) => void } | undefined;
  private running: Promise<void> = Promise.resolve();

  constructor(private readonly run: (items: T[]) => Promise<void> | void) {}

  add(item: T): Promise<void> {
    this.items.push(item);
    if (!this.done) {
      this.done = new Promise<void>((resolve, reject) => (this.settle = { resolve, reject }));
      setImmediate(() => this.flush());
    }
    return this.done;
  }

  /** Hand the pending items to `run` now; nothing to do when there are none. */
  flush(): void {
    const settle = this.settle;
    if (!settle) return;
    const items = this.items;
    this.items = [];
    this.done = undefined;
    this.settle = undefined;
    let ran: Promise<void> | void;
    try {
      ran = this.run(items);
    } catch (err) {
      settle.reject(err);
      return;
    }
    this.running = Promise.resolve(ran).then(settle.resolve, settle.reject);
  }

  /** Resolves when the batch handed over last has been handled (never rejects). */
  settled(): Promise<void> {
    return this.running;
  }
}
