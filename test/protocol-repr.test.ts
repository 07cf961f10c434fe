import { describe, expect, it } from 'vitest';
import { argsRepr, pyRepr } from '../src/protocol/repr.ts';

/** An array that counts how many of its elements are read. */
function counted<T>(items: T[]): { list: T[]; reads: () => number } {
  let n = 0;
  const list = new Proxy(items, {
    get(target, key, recv) {
      if (typeof key === 'string' && /^\d+$/.test(key)) n++;
      return Reflect.get(target, key, recv);
    },
  });
  return { list, reads: () => n };
}

describe('pyRepr limits', () => {
  it('stops reading a large value once past its limit', () => {
    const { list, reads } = counted(Array.from({ length: 100_000 }, (_, i) => `item-${i}`));
    const text = pyRepr(list, 200);
    expect(text).toHaveLength(200);
    expect(text.startsWith("['item-0', 'item-1', ")).toBe(true);
    expect(text.endsWith('...')).toBe(true);
    expect(reads()).toBeLessThan(50);
  });

  it('argsrepr of a large argument also stops at 1024 characters', () => {
    const { list, reads } = counted(Array.from({ length: 100_000 }, (_, i) => i));
    const text = argsRepr([list]);
    expect(text).toHaveLength(1024);
    expect(text.startsWith('([0, 1, 2, ')).toBe(true);
    expect(reads()).toBeLessThan(400);
  });

  it('cuts exactly where a full repr would be cut', () => {
    const value = { s: "it's a \n 'quoted' string ☃".repeat(40), n: [1.5, null, true, false, { deep: ['x'.repeat(300)] }], d: new Date('2024-05-06T07:08:09Z') };
    const full = pyRepr(value, 1e9);
    expect(full.length).toBeGreaterThan(1000);
    for (const max of [5, 17, 64, 200, 611, full.length - 1, full.length, full.length + 1]) {
      expect(pyRepr(value, max)).toBe(full.length > max ? full.slice(0, max - 3) + '...' : full);
    }
    const big = 'y'.repeat(5_000_000);
    expect(pyRepr(big, 200)).toBe("'" + 'y'.repeat(196) + '...');
    expect(argsRepr([big])).toBe("('" + 'y'.repeat(1019) + '...');
  });
});
