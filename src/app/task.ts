import type { CallOptions } from './call-options.ts';
import type { Celery } from './celery.ts';
import type { TaskContext } from './context.ts';
import type { AsyncResult } from './result.ts';
import type { TaskOptions } from './task-options.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyFn = (...args: any[]) => unknown;

/**
 * A registered task. `A` is the argument list, `R` the resolved return type; both come from the
 * function given to `app.task`, so `add.delay('a', 1)` is a type error when add takes numbers.
 */
export class Task<A extends unknown[] = unknown[], R = unknown> {
  readonly name: string;

  constructor(
    readonly app: Celery,
    readonly options: Readonly<TaskOptions>,
    /** The user function; for bound tasks its first parameter is the TaskContext. */
    readonly fn: AnyFn,
  ) {
    this.name = options.name;
  }

  /** Send the task with positional arguments (Celery's `delay`). */
  delay(...args: A): Promise<AsyncResult<R>> {
    return this.applyAsync(args);
  }

  /** Send the task with arguments, keyword arguments and calling options (Celery's `apply_async`). */
  applyAsync(args?: A, kwargs?: Record<string, unknown>, options: CallOptions = {}): Promise<AsyncResult<R>> {
    return this.app.sendTask<R>(this.name, args ?? [], kwargs, options);
  }

  /** Run the task in this process and wait for it, as the worker would (Celery's `apply`). */
  apply(args?: A, kwargs?: Record<string, unknown>, options: CallOptions = {}): Promise<AsyncResult<R>> {
    return this.app.applyEager<R>(this, args ?? [], kwargs ?? {}, options);
  }

  /** Call the function directly, without a message (Celery's `__call__`). */
  call(...args: A): R | Promise<R> {
    if (this.options.bind) throw new TypeError(`task ${this.name} is bound: use apply() to run it with a context`);
    return this.fn(...args) as R | Promise<R>;
  }

  toString(): string {
    return `<@task: ${this.name} of ${this.app.main}>`;
  }
}

export type BoundFn<A extends unknown[], R> = (self: TaskContext, ...args: A) => R;
