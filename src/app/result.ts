import type { ResultBackend, TaskMeta } from '../backend/result-backend.ts';
import { TaskError, TaskRevokedError, TimeoutError } from '../errors.ts';
import { PROPAGATE_STATES, READY_STATES, type TaskState } from '../protocol/states.ts';
import { canvasHooks } from './hooks.ts';

export interface GetOptions {
  /** Seconds to wait; throws TimeoutError after it (default: wait forever). */
  timeout?: number;
  /** Throw the task's error when it failed (default true). */
  propagate?: boolean;
  /** Seconds between polls on backends without change notification (default 0.05). */
  interval?: number;
  signal?: AbortSignal;
}

/** A result in a workflow graph: an AsyncResult or a GroupResult, linked to the result before it. */
export interface ResultNode {
  readonly id: string;
  parent?: ResultNode | undefined;
  /** Celery's `as_tuple()`: `[[id, parent_tuple_or_null], children_or_null]`. */
  asTuple(): unknown;
}

/** The classes whose instances are result handles (canvas/ adds GroupResult). */
export const resultNodeClasses: (abstract new (...args: never[]) => ResultNode)[] = [];

/** A result handle a task returned, stored as its `asTuple()` (Celery's prepare_value). */
export function isResultNode(v: unknown): v is ResultNode {
  return typeof v === 'object' && v !== null && resultNodeClasses.some((c) => v instanceof c);
}

/** The source of results an AsyncResult reads: the app's backend, or a value kept in memory (eager). */
export interface ResultSource {
  backend(): Promise<ResultBackend>;
  revoke(taskId: string, opts?: { terminate?: boolean }): Promise<void>;
}

/**
 * A handle on a task's outcome (`celery.result.AsyncResult`). Like Celery's properties, `state`,
 * `result`, `traceback` and `date_done` read the backend on each access: `await r.state`.
 */
export class AsyncResult<R = unknown> implements ResultNode {
  /** The result before this one in a chain (set by the canvas that sent it, as in Celery). */
  parent: ResultNode | undefined;

  /** Sent by this client and not waited for yet: its first wait needs only one read (waitForReady). */
  private justSent: boolean;

  constructor(
    readonly id: string,
    protected readonly source: ResultSource,
    sentNow = false,
  ) {
    this.justSent = sentNow;
  }

  asTuple(): unknown {
    return [[this.id, this.parent ? this.parent.asTuple() : null], null];
  }

  /**
   * What the task sent while running (next chain step, callbacks, subtasks, groups), from the
   * `children` its stored result carries; empty until it has stored one.
   */
  get children(): Promise<ResultNode[]> {
    return this.meta().then(async (m) => {
      if (!Array.isArray(m.children) || m.children.length === 0) return [];
      return m.children.map((c) => canvasHooks.resultFromTuple.call(c, this.source));
    });
  }

  protected async meta(): Promise<TaskMeta> {
    return (await this.source.backend()).getTaskMeta(this.id);
  }

  get state(): Promise<TaskState> {
    return this.meta().then((m) => m.status);
  }

  /** Celery's alias of `state`. */
  get status(): Promise<TaskState> {
    return this.state;
  }

  /** The return value when successful, the serialized exception when failed, meta for custom states. */
  get result(): Promise<unknown> {
    return this.meta().then((m) => m.result);
  }

  get traceback(): Promise<string | null> {
    return this.meta().then((m) => m.traceback);
  }

  get date_done(): Promise<Date | null> {
    return this.meta().then((m) => (m.date_done ? new Date(m.date_done.endsWith('Z') || /[+-]\d\d:\d\d$/.test(m.date_done) ? m.date_done : m.date_done + 'Z') : null));
  }

  async ready(): Promise<boolean> {
    return READY_STATES.has(await this.state);
  }

  async successful(): Promise<boolean> {
    return (await this.state) === 'SUCCESS';
  }

  async failed(): Promise<boolean> {
    return (await this.state) === 'FAILURE';
  }

  /** Wait for the task and return its value; throws the remote error (as TaskError) when it failed. */
  async get(options: GetOptions = {}): Promise<R> {
    const backend = await this.source.backend();
    const timeoutMs = options.timeout === undefined ? Number.POSITIVE_INFINITY : options.timeout * 1000;
    const justSent = this.justSent;
    this.justSent = false;
    const meta = await backend.waitForReady(this.id, Math.min(timeoutMs, 2 ** 31 - 1), options.signal, justSent);
    if (!READY_STATES.has(meta.status)) {
      if (options.signal?.aborted) throw options.signal.reason;
      if (timeoutMs === Number.POSITIVE_INFINITY) return this.get(options);
      throw new TimeoutError(`task ${this.id} not ready after ${options.timeout} s (state ${meta.status}); is a worker consuming its queue?`);
    }
    return this.settle(meta, options.propagate ?? true);
  }

  protected settle(meta: TaskMeta, propagate: boolean): R {
    if (propagate && PROPAGATE_STATES.has(meta.status)) throw errorFromMeta(meta);
    return meta.result as R;
  }

  /** Remove the result from the backend. */
  async forget(): Promise<void> {
    await (await this.source.backend()).forget(this.id);
  }

  /** Ask workers not to run this task (or to stop it when it is running and terminate is supported). */
  revoke(opts: { terminate?: boolean } = {}): Promise<void> {
    return this.source.revoke(this.id, opts);
  }

  toString(): string {
    return `<AsyncResult: ${this.id}>`;
  }
}

/** Rebuild the error a task failed with, from its stored meta. */
export function errorFromMeta(meta: TaskMeta): Error {
  const r = (meta.result ?? {}) as { exc_type?: unknown; exc_message?: unknown; exc_module?: unknown };
  const type = typeof r.exc_type === 'string' ? r.exc_type : meta.status;
  const args = Array.isArray(r.exc_message) ? r.exc_message : r.exc_message === undefined ? [] : [r.exc_message];
  if (meta.status === 'REVOKED') {
    const err = new TaskRevokedError(`task ${meta.task_id} was revoked (${args.join(', ') || 'revoked'})`);
    return err;
  }
  return new TaskError(type, args, typeof r.exc_module === 'string' ? r.exc_module : null, meta.traceback, meta.task_id);
}

resultNodeClasses.push(AsyncResult);
