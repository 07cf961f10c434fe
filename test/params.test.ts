import { describe, expect, it } from 'vitest';
import { arityGreater, parseParams } from '../src/app/params.ts';
import { Celery, ConfigurationError } from '../src/index.ts';

// Functions as users write them; what Celery would read with inspect.getfullargspec.
/* eslint-disable @typescript-eslint/no-unused-vars */
describe('parseParams', () => {
  it('reads names, defaults and a rest parameter from any function form', () => {
    expect(parseParams((x: number, y = 1) => x + y)).toEqual({ params: [{ name: 'x', hasDefault: false }, { name: 'y', hasDefault: true }], rest: false });
    expect(parseParams(async function named(a: unknown, ...more: unknown[]) {})).toEqual({ params: [{ name: 'a', hasDefault: false }], rest: true });
    expect(parseParams(async (x: string) => x)).toEqual({ params: [{ name: 'x', hasDefault: false }], rest: false });
    const obj = { method(a: unknown, b = 'x,y)', c = [1, 2], d = (q: number) => q === 1) {} };
    expect(parseParams(obj.method)!.params.map((p) => [p.name, p.hasDefault])).toEqual([['a', false], ['b', true], ['c', true], ['d', true]]);
    expect(parseParams(({ a, b }: { a: number; b: number }, [c]: number[] = []) => a + b + (c ?? 0))).toEqual({ params: [{ name: null, hasDefault: false }, { name: null, hasDefault: true }], rest: false });
    expect(parseParams(() => 1)).toEqual({ params: [], rest: false });
  });

  it('gives up on functions whose source hides them', () => {
    expect(parseParams(Math.max)).toBeNull();
    expect(parseParams(((a: number, b: number) => a + b).bind(null))).toBeNull();
  });
});

describe('arityGreater (how an errback is called)', () => {
  it('counts parameters with defaults and a rest parameter, unlike fn.length', () => {
    const withDefault = (request: unknown, exc: unknown = null) => [request, exc];
    const rest = (...args: unknown[]) => args;
    expect(withDefault.length).toBe(1);
    expect(arityGreater(withDefault, 1)).toBe(true);
    expect(rest.length).toBe(0);
    expect(arityGreater(rest, 1)).toBe(true);
    expect(arityGreater((taskId: string) => taskId, 1)).toBe(false);
  });
});

describe('params: true', () => {
  const app = new Celery('params', { broker: 'memory://params' });

  it('reads the names from the source, after self for a bound task', async () => {
    const add = app.task({ name: 'p.add', bind: true, params: true }, (_self, x: number, y = 10) => [x, y]);
    expect(await (await add.apply([], { x: 1 })).get()).toEqual([1, 10]);
    expect(await (await add.apply([1], { y: 2 })).get()).toEqual([1, 2]);
  });

  it('fails at registration when a parameter has no plain name', () => {
    expect(() => app.task({ name: 'p.destructured', params: true }, ({ a }: { a: number }) => a)).toThrow(ConfigurationError);
    expect(() => app.task({ name: 'p.destructured', params: true }, ({ a }: { a: number }) => a)).toThrow(/params: true needs a function whose parameters are plain names/);
  });
});
