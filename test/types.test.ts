import { describe, expectTypeOf, it } from 'vitest';
import { type AsyncResult, Celery, type TaskContext } from '../src/index.ts';

// Type-level checks: `npm test` runs tsc first, so a wrong @ts-expect-error fails the build.
const app = new Celery('types', { broker: 'memory://types' });
const add = app.task('types.add', (x: number, y: number) => x + y);
const greet = app.task({ name: 'types.greet', bind: true }, async (self: TaskContext, name: string) => `${self.request.id}: hi ${name}`);

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
}

describe('typed tasks', () => {
  it('keep argument and result types', () => {
    expectTypeOf(add.delay).parameters.toEqualTypeOf<[number, number]>();
    expectTypeOf(add.delay(1, 2)).resolves.toEqualTypeOf<AsyncResult<number>>();
    expectTypeOf(greet.delay).parameters.toEqualTypeOf<[string]>();
    expectTypeOf(greet.delay('x')).resolves.toEqualTypeOf<AsyncResult<string>>();
    expectTypeOf(typeChecks).toBeFunction();
  });
});
