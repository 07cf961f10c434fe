import type { ResultBackend } from '../backend/result-backend.ts';
import type { TaskRequest } from '../protocol/task-message.ts';
import type { Celery } from './celery.ts';
import type { ResultNode, ResultSource } from './result.ts';
import type { TraceEnv, TraceOutcome } from './trace.ts';
import type { Task } from './task.ts';

/**
 * A point where the app calls up into a layer it must not import (canvas/ fills the app's when
 * it loads): unlike a signal it has one implementation, returns its value and its errors are the
 * caller's, so a workflow's behaviour never depends on what a user connected.
 */
export class Hook<F extends (...args: never[]) => unknown> {
  private impl: F | undefined;

  constructor(
    readonly name: string,
    private readonly fallback?: F,
  ) {}

  provide(impl: F): void {
    this.impl = impl;
  }

  get call(): F {
    const f = this.impl ?? this.fallback;
    if (!f) throw new Error(`${this.name} is not loaded: import the app from 'celeriac' (or load celeriac's canvas module)`);
    return f;
  }
}

/** What a task run needs from the canvas layer: callbacks, chord parts, errbacks, builtin tasks. */
export const canvasHooks = {
  /** After a success, before the result is stored: `link` callbacks and the chain's next step. */
  applyCallbacks: new Hook<(app: Celery, req: TaskRequest, result: unknown) => Promise<void>>('canvas callbacks'),
  /** After a success: count the chord part the request belongs to. */
  chordPartDone: new Hook<(app: Celery, backend: ResultBackend, req: TaskRequest, result: unknown) => Promise<void>>('canvas chord'),
  /** After a failure is stored: chord part, the rest of the chain, errbacks. */
  applyFailure: new Hook<(app: Celery, backend: ResultBackend | undefined, req: TaskRequest, exc: unknown, error: unknown, traceback: string, store: boolean) => Promise<void>>('canvas errbacks'),
  /** A result handle from its stored tuple (Celery's `result_from_tuple`): an AsyncResult or a GroupResult. */
  resultFromTuple: new Hook<(tuple: unknown, source: ResultSource) => ResultNode>('canvas results'),
  /** Celery's builtin tasks (`celery.map`, …); none until the canvas provides them. */
  builtinTask: new Hook<(app: Celery, name: string) => Task | undefined>('canvas builtins', () => undefined),
};

/** Around each task run, in its async context (OpenTelemetry's consumer span); a plain call without it. */
export const aroundRun = new Hook<(task: Task, req: TaskRequest, env: TraceEnv, run: () => TraceOutcome | Promise<TraceOutcome>) => TraceOutcome | Promise<TraceOutcome>>('run wrapper', (_task, _req, _env, run) => run());
