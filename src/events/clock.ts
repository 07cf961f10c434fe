/** Lamport clock (kombu's LamportClock): forward before sending, adjust on every message received. */
export class LamportClock {
  constructor(public value = 0) {}

  forward(): number {
    return ++this.value;
  }

  adjust(other: unknown): number {
    const n = typeof other === 'number' ? other : typeof other === 'string' ? Number(other) : Number.NaN;
    if (Number.isFinite(n)) this.value = Math.max(this.value, n) + 1;
    return this.value;
  }
}
