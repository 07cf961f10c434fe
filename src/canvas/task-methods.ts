/**
 * The signature methods of a task (`add.s(2)`, `add.map([...])`): the canvas adds them to the
 * app's Task, which does not know the canvas.
 */
import type { AsyncResult } from '../app/result.ts';
import { Task } from '../app/task.ts';
import { Chunks, XMap, XStarmap } from './map.ts';
import type { SignatureOptions } from './options.ts';
import { Signature, signature } from './signature.ts';

declare module '../app/task.ts' {
  interface Task<A extends unknown[] = unknown[], R = unknown, K = null> {
    /**
     * A signature of this task (Celery's `.s()`): arguments now, the rest later. In a chain or as a
     * callback the previous result is put in front of these arguments.
     */
    s<P extends Suffix<A>>(...args: P): Signature<R, AsyncResult<R>, DropLast<A, P['length']>>;
    /** An immutable signature (Celery's `.si()`): it ignores the previous result of a chain or callback. */
    si(...args: A): Signature<R, AsyncResult<R>, []>;
    /** A signature with kwargs and calling options (camelCase or Celery's snake_case). */
    signature(args?: unknown[], kwargs?: Record<string, unknown>, options?: SignatureOptions & { immutable?: boolean }): Signature<R>;
    /** `[task(x) for x in it]`, run by one worker in one message (Celery's `task.map`). */
    map(it: unknown[]): XMap<R>;
    /** `[task(...x) for x in it]` in one message (Celery's `task.starmap`). */
    starmap(it: unknown[][]): XStarmap<R>;
    /** Split argument lists into chunks of n: a group of starmaps (Celery's `task.chunks`). */
    chunks(it: unknown[][], n: number): Chunks<R>;
  }
}

/**
 * The argument lists a partial signature may fix: the last N of the task's (Celery puts the
 * arguments given later, or a chain's previous result, in front of the stored ones).
 */
export type Suffix<A extends unknown[]> = A extends [unknown, ...infer T] ? A | Suffix<T> : A;

/** A without its last N elements: what a signature with N stored arguments still needs. */
export type DropLast<A extends unknown[], N extends number, Dropped extends unknown[] = []> = Dropped['length'] extends N
  ? A
  : A extends [...infer Init, infer Last]
    ? DropLast<Init, N, [...Dropped, Last]>
    : A;


const blank = (task: Task): Signature => new Signature(task.name, [], {}, {}, { app: task.app });

const methods: ThisType<Task> & Partial<Task> = {
  s(...args: unknown[]) {
    return new Signature(this.name, args, {}, {}, { app: this.app });
  },
  si(...args: unknown[]) {
    return new Signature(this.name, args, {}, {}, { immutable: true, app: this.app });
  },
  signature(args: unknown[] = [], kwargs: Record<string, unknown> = {}, options: SignatureOptions & { immutable?: boolean } = {}) {
    return signature(this.name, args, kwargs, options, this.app);
  },
  map(it: unknown[]) {
    return new XMap(blank(this), it, {}, this.app);
  },
  starmap(it: unknown[][]) {
    return new XStarmap(blank(this), it, {}, this.app);
  },
  chunks(it: unknown[][], n: number) {
    return new Chunks(blank(this), it, n, {}, this.app);
  },
};
Object.assign(Task.prototype, methods);
