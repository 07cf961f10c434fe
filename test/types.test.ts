import { describe, expectTypeOf, it } from 'vitest';
import { type AsyncResult, Celery, chain, chord, group, type TaskContext } from '../src/index.ts';

// Type-level checks: `npm test` runs tsc first, so a wrong @ts-expect-error fails the build.
const app = new Celery('types', { broker: 'memory://types' });
const add = app.task('types.add', (x: number, y: number) => x + y);
const greet = app.task({ name: 'types.greet', bind: true }, async (self: TaskContext, name: string) => `${self.request.id}: hi ${name}`);

const total = app.task('types.total', (xs: number[]) => xs.reduce((a, b) => a + b, 0));
const shout = app.task('types.shout', (n: number) => `${n}!`);

const named = app.task({ name: 'types.named', params: ['x', { name: 'y', default: 1 }] }, (x: number, y: number) => x + y);

function typeChecks() {
  void named.applyAsync([2], { y: 3 });
  void named.applyAsync([], { x: 2 });
  // @ts-expect-error y is a number
  void named.applyAsync([2], { y: 'three' });
  // @ts-expect-error z is not a parameter
  void named.applyAsync([2], { z: 3 });
  // @ts-expect-error a string is not a number
  void add.delay('a', 1);
  // @ts-expect-error too few arguments
  void add.delay(1);
  // @ts-expect-error the context is not passed by the caller of a bound task
  void greet.delay({} as TaskContext, 'x');
  void greet.delay('world');
  // @ts-expect-error args must match the tuple
  void add.applyAsync(['1', 2]);

  // Partial signatures: the stored arguments are the last ones; what is left is typed.
  void add.s(1).delay(2);
  // @ts-expect-error one number is left to give, not a string
  void add.s(1).delay('x');
  // @ts-expect-error add.s(1) leaves exactly one argument
  void add.s(1).delay(2, 3);
  // @ts-expect-error 'x' is not a number
  void group([add.s('x', 2)]);
  // @ts-expect-error three arguments for a two-argument task
  void add.s(1, 2, 3);
  // @ts-expect-error an immutable signature takes all of its arguments
  void add.si(1);
  void group([add.s(1, 1), add.s(2)]);
  void chord([add.s(1, 1)], total.s());
}

describe('typed tasks', () => {
  it('keep argument and result types', () => {
    expectTypeOf(add.delay).parameters.toEqualTypeOf<[number, number]>();
    expectTypeOf(add.delay(1, 2)).resolves.toEqualTypeOf<AsyncResult<number>>();
    expectTypeOf(greet.delay).parameters.toEqualTypeOf<[string]>();
    expectTypeOf(greet.delay('x')).resolves.toEqualTypeOf<AsyncResult<string>>();
    expectTypeOf(typeChecks).toBeFunction();
  });

  it('know what a signature still needs and what a chain returns', () => {
    expectTypeOf(add.s(1).delay).parameters.toEqualTypeOf<[x: number]>();
    expectTypeOf(add.s().delay).parameters.toEqualTypeOf<[x: number, y: number]>();
    expectTypeOf(add.si(1, 2).delay).parameters.toEqualTypeOf<[]>();
    expectTypeOf(chain(add.s(1, 2), shout.s()).delay()).resolves.toEqualTypeOf<AsyncResult<string>>();
  });
});
