import type { CallOptions } from '../protocol/call-options.ts';
import type { Celery } from './celery.ts';
import type { TaskContext } from './context.ts';
import type { EagerOptions, EagerResult } from './eager.ts';
import type { Logger } from '../common/log.ts';
import { type ArgSpec, argSpec, bindByName, trailingKwargs } from './arguments.ts';
import type { AsyncResult } from './result.ts';
import type { ParamSpec, TaskOptions } from './task-options.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyFn = (...args: any[]) => unknown;

/** The keyword arguments of a task with `params`: each declared name with its position's type. */
export type KwargsOf<P extends readonly ParamSpec[], A extends unknown[]> = {
  [I in keyof P as I extends `${number}` ? NameOf<P[I]> : never]?: I extends keyof A ? A[I] : unknown;
};
type NameOf<S> = S extends string ? S : S extends { readonly name: infer N extends string } ? N : never;

/** Positional args for applyAsync/apply: all of them, or (with `params`) any of them, the rest by name. */
type ArgsFor<A extends unknown[], K> = K extends null ? A : Partial<A>;
type KwargsFor<K> = K extends null ? Record<string, unknown> : K;

/**
 * A registered task. `A` is the argument list, `R` the resolved return type; both come from the
 * function given to `app.task`, so `add.delay('a', 1)` is a type error when add takes numbers.
 * `K` is the keyword arguments' type of a task that declares `params` (null without).
 * Its signature methods (`s`, `si`, `signature`, `map`, `starmap`, `chunks`) come with the canvas.
 */
export class Task<A extends unknown[] = unknown[], R = unknown, K = null> {
  readonly name: string;
  private readonly spec: ArgSpec | undefined;

  constructor(
    readonly app: Celery,
    readonly options: Readonly<TaskOptions>,
    /** The user function; for bound tasks its first parameter is the TaskContext. */
    readonly fn: AnyFn,
  ) {
    this.name = options.name;
    if (options.params) this.spec = argSpec(this.name, fn, options.params, options.bind === true);
  }

  /**
   * Send the task with positional arguments (Celery's `delay`). They travel as JSON: a `Date`
   * reaches the task as an ISO-8601 string, integers beyond 2^53 as `bigint`.
   */
  delay(...args: A): Promise<AsyncResult<R>> {
    return this.applyAsync(args);
  }

  /** Send the task with arguments, keyword arguments and calling options (Celery's `apply_async`). */
  applyAsync(args?: ArgsFor<A, K>, kwargs?: KwargsFor<K>, options: CallOptions = {}): Promise<AsyncResult<R>> {
    return this.app.sendTask<R>(this.name, (args ?? []) as unknown[], kwargs as Record<string, unknown> | undefined, options);
  }

  /**
   * Run the task in this process and wait for it, as the worker would (Celery's `apply`); options
   * used: taskId, link, linkError, headers, time limits, `throw` (default taskEagerPropagates).
   */
  apply(args?: ArgsFor<A, K>, kwargs?: KwargsFor<K>, options: EagerOptions = {}): Promise<EagerResult<R>> {
    return this.app.applyEager<R>(this as unknown as Task, (args ?? []) as unknown[], (kwargs ?? {}) as Record<string, unknown>, options);
  }

  /** Call the function directly, without a message (Celery's `__call__`). */
  call(...args: A): R | Promise<R> {
    if (this.options.bind) throw new TypeError(`task ${this.name} is bound: use apply() to run it with a context`);
    return this.fn(...args) as R | Promise<R>;
  }

  /**
   * The function's arguments (after `self`) for a request's args and kwargs: bound by name when
   * the task declares `params` (throws Python's TypeError when they do not fit), else kwargs
   * trail as one object.
   */
  argumentsFor(args: readonly unknown[], kwargs: Record<string, unknown>, logger?: Logger): unknown[] {
    if (this.spec) return bindByName(this.spec, args, kwargs);
    for (const _ in kwargs) return trailingKwargs(this.name, args, kwargs, logger);
    return args as unknown[];
  }

  toString(): string {
    return `<@task: ${this.name} of ${this.app.main}>`;
  }
}

export type BoundFn<A extends unknown[], R> = (self: TaskContext, ...args: A) => R;
