import type { ResultBackend } from '../backend/result-backend.ts';
import { Ignore, MaxRetriesExceededError, Reject, Retry, SoftTimeLimitExceeded, TaskRevokedError, TimeLimitExceeded } from '../errors.ts';
import { formatTraceback, serializeException } from '../protocol/exceptions.ts';
import { type LongTimeout, setLongTimeout } from '../timers.ts';
import type { DeliveryInfo } from '../protocol/message.ts';
import type { TaskState } from '../protocol/states.ts';
import type { TaskRequest } from '../protocol/task-message.ts';
import { createLogger, type Logger } from '../common/log.ts';
import type { Celery } from './celery.ts';
import type { RequestContext, RetryOptions, TaskContext } from './context.ts';
import { aroundRun, canvasHooks } from './hooks.ts';
import { exceptionInfo, signals } from './signals.ts';
import { currentTask, type TaskScope } from './publish.ts';
import { isResultNode } from './result.ts';
import type { RunAbort } from './run-abort.ts';
import { backoffDelay, republishForRetry } from './retry.ts';
import type { Task } from './task.ts';

export interface TraceEnv {
  hostname: string;
  deliveryInfo: DeliveryInfo | null;
  /** The message properties as received; empty in eager mode. */
  properties?: Record<string, unknown>;
  /** The queue the message came from; retries go back to it. */
  queue: string | null;
  eager: boolean;
  /**
   * The run's controller: the worker aborts it on revoke-with-terminate or cold shutdown, and
   * the time limits abort it too. Its signal is the task's `self.signal`.
   */
  abort: RunAbort;
  /** Where states are stored; undefined when the app has no result backend. */
  backend: ResultBackend | undefined;
  /** The worker's logger (time limits, kwargs without params); a default one when absent. */
  log?: Logger;
  /** Time limits already resolved by a worker pool (seconds, null: none), instead of the request's and the task's. */
  limits?: { soft: number | null; hard: number | null };
  /**
   * The task's function has returned a value and what follows is storing it (callbacks, result,
   * chord): the worker may start its next task meanwhile.
   */
  onReturned?: () => void;
}

export type TraceOutcome =
  | { state: 'SUCCESS'; result: unknown; runtime: number }
  | { state: 'FAILURE'; error: unknown; traceback: string; runtime: number }
  | { state: 'RETRY'; error: unknown }
  | { state: 'IGNORED' }
  | { state: 'REVOKED'; reason: string }
  | { state: 'REJECTED'; requeue: boolean; reason: string };

type StoreOpts = { groupId: string | null; parentId: string | null; children: unknown[]; replyTo: string | null; correlationId: string | null };

/**
 * Run one task request to its outcome and store its state: Celery's `trace_task`, shared by the
 * worker and eager mode. Never throws for anything the task does. What the task sends while it
 * runs gets it as parent and is stored as its children. A synchronous task that stores nothing
 * has its outcome returned at once: no promise is made for it (the worker's hot path).
 */
export function traceTask(app: Celery, task: Task, req: TaskRequest, env: TraceEnv): TraceOutcome | Promise<TraceOutcome> {
  const scope: TaskScope = { id: req.id, rootId: req.rootId, children: [], abort: env.abort };
  return currentTask.run(scope, () => aroundRun.call(task, req, env, () => traceWithSignals(app, task, req, env, scope)));
}

function traceWithSignals(app: Celery, task: Task, req: TaskRequest, env: TraceEnv, scope: TaskScope): TraceOutcome | Promise<TraceOutcome> {
  if (!signals.taskPrerun.connected && !signals.taskPostrun.connected) return trace(app, task, req, env, scope);
  return traceWithRunSignals(app, task, req, env, scope);
}

async function traceWithRunSignals(app: Celery, task: Task, req: TaskRequest, env: TraceEnv, scope: TaskScope): Promise<TraceOutcome> {
  const pre = signals.taskPrerun.connected ? signals.taskPrerun.send({ sender: task, taskId: req.id, task, args: req.args, kwargs: req.kwargs, request: req }) : undefined;
  if (pre) await pre;
  const outcome = await trace(app, task, req, env, scope);
  if (signals.taskPostrun.connected) {
    const retval = outcome.state === 'SUCCESS' ? outcome.result : 'error' in outcome ? outcome.error : null;
    const post = signals.taskPostrun.send({ sender: task, taskId: req.id, task, args: req.args, kwargs: req.kwargs, request: req, retval, state: outcome.state });
    if (post) await post;
  }
  return outcome;
}

/** One run: what every step of the trace needs. */
interface Run {
  app: Celery;
  task: Task;
  req: TaskRequest;
  env: TraceEnv;
  started: number;
  store: ResultBackend | undefined;
  storeOpts: StoreOpts;
}

function trace(app: Celery, task: Task, req: TaskRequest, env: TraceEnv, scope: TaskScope): TraceOutcome | Promise<TraceOutcome> {
  const store = env.backend && !(req.ignoreResult || task.options.ignoreResult) ? env.backend : undefined;
  const storeOpts: StoreOpts = { groupId: req.group, parentId: req.parentId, children: scope.children, replyTo: req.replyTo, correlationId: req.correlationId };
  const run: Run = { app, task, req, env, started: performance.now(), store, storeOpts };
  if (store && (task.options.trackStarted ?? app.conf.taskTrackStarted)) {
    return store.storeResult(req.id, { pid: process.pid, hostname: env.hostname }, 'STARTED', storeOpts).then(() => callTask(run), (error: unknown) => handleError(run, error));
  }
  return callTask(run);
}

function callTask(run: Run): TraceOutcome | Promise<TraceOutcome> {
  const { app, task, req, env } = run;
  let value: unknown;
  try {
    const args = task.argumentsFor(req.args, req.kwargs, env.log);
    value = task.options.bind ? task.fn(new BoundContext(app, task, req, env, run.storeOpts) as unknown as TaskContext, ...args) : task.fn(...args);
  } catch (error) {
    return handleError(run, error);
  }
  // A synchronous task has finished here; only a pending promise can be stopped while it runs.
  return isThenable(value) ? awaitTask(run, value) : succeed(run, value);
}

async function awaitTask(run: Run, value: PromiseLike<unknown>): Promise<TraceOutcome> {
  const { task, req, env } = run;
  const abort = env.abort;
  const { hard, soft } = env.limits ?? timeLimits(run.app, task, req);
  let softTimer: LongTimeout | undefined;
  let hardTimer: LongTimeout | undefined;
  try {
    const stopped = new Promise<never>((_, reject) => {
      abort.onAbort((reason) => {
        if (reason instanceof TaskRevokedError || reason instanceof TimeLimitExceeded) reject(reason);
        // A task that never looked at its signal cannot handle the soft limit: it ends with it, as
        // Python code that does not catch SoftTimeLimitExceeded.
        else if (reason instanceof SoftTimeLimitExceeded && !abort.watched) reject(reason);
      });
      if (soft) {
        softTimer = setLongTimeout(() => {
          (env.log ?? log()).warning(`Soft time limit (${soft}s) exceeded for ${task.name}[${req.id}]`);
          abort.abort(pyError(new SoftTimeLimitExceeded('SoftTimeLimitExceeded()'), []));
        }, soft * 1000);
      }
      if (hard) {
        // Not through abort(): after a soft limit has aborted the run, the hard one must still end it.
        hardTimer = setLongTimeout(() => {
          (env.log ?? log()).error(`Hard time limit (${hard}s) exceeded for ${task.name}[${req.id}]`);
          const error = pyError(new TimeLimitExceeded(`TimeLimitExceeded(${hard},)`), [hard]);
          abort.abort(error);
          reject(error);
        }, hard * 1000);
      }
    });
    const result = prepared(await Promise.race([value, stopped]));
    const runtime = (performance.now() - run.started) / 1000;
    env.onReturned?.();
    // The limits still cover the callbacks and storing the result.
    await storeSuccess(run, result);
    return afterSuccess(run, result, runtime);
  } catch (error) {
    return handleError(run, error);
  } finally {
    softTimer?.clear();
    hardTimer?.clear();
  }
}

/** A synchronous task returned `result`. */
function succeed(run: Run, value: unknown): TraceOutcome | Promise<TraceOutcome> {
  const { req } = run;
  const result = prepared(value);
  const runtime = (performance.now() - run.started) / 1000;
  const plain = !req.embed.callbacks?.length && !req.embed.chain?.length && !req.embed.chord && !signals.taskSuccess.connected;
  if (plain && !run.store) return { state: 'SUCCESS', result, runtime };
  run.env.onReturned?.();
  if (plain) {
    const outcome: TraceOutcome = { state: 'SUCCESS', result, runtime };
    return run.store!.storeResult(req.id, result, 'SUCCESS', run.storeOpts).then(() => outcome, (error: unknown) => handleError(run, error));
  }
  return storeSuccess(run, result).then(() => afterSuccess(run, result, runtime), (error: unknown) => handleError(run, error));
}

/** Celery's prepare_value: a result handle is stored as its as_tuple(). */
function prepared(result: unknown): unknown {
  return isResultNode(result) ? result.asTuple() : result;
}

/** Callbacks first, so that the stored result lists them as children (as Celery does). */
async function storeSuccess(run: Run, result: unknown): Promise<void> {
  const { app, req, store } = run;
  if (req.embed.callbacks?.length || req.embed.chain?.length) await canvasHooks.applyCallbacks.call(app, req, result);
  await store?.storeResult(req.id, result, 'SUCCESS', run.storeOpts);
}

/** After the result is stored; what fails here is not the task's failure (the worker handles it). */
async function afterSuccess(run: Run, result: unknown, runtime: number): Promise<TraceOutcome> {
  const { app, task, req, env } = run;
  // A chord part counts even when its result is not stored (Celery's mark_as_done).
  if (req.embed.chord && env.backend) await canvasHooks.chordPartDone.call(app, env.backend, req, result);
  const success = signals.taskSuccess.connected ? signals.taskSuccess.send({ sender: task, result, request: req }) : undefined;
  if (success) await success;
  return { state: 'SUCCESS', result, runtime };
}

/** A request's [hard, soft] limits win over the task's, which win over the app's. */
export function timeLimits(app: Celery, task: Task, req: TaskRequest): { soft: number | null; hard: number | null } {
  const opts = task.options;
  return { hard: req.timelimit[0] ?? opts.timeLimit ?? app.conf.taskTimeLimit, soft: req.timelimit[1] ?? opts.softTimeLimit ?? app.conf.taskSoftTimeLimit };
}

/**
 * Celery's bound `self`: made only for tasks with `bind: true`. Its `replace` and `addToChord` are
 * added by the canvas layer.
 */
export class BoundContext implements Omit<TaskContext, 'replace' | 'addToChord'> {
  private requestContext: RequestContext | undefined;

  constructor(
    readonly app: Celery,
    readonly task: Task,
    readonly req: TaskRequest,
    readonly env: TraceEnv,
    private readonly storeOpts: StoreOpts,
  ) {}

  get name(): string {
    return this.task.name;
  }

  get request(): RequestContext {
    const { req, env } = this;
    return (this.requestContext ??= { ...req, task: req.name, hostname: env.hostname, deliveryInfo: env.deliveryInfo, properties: env.properties ?? {}, isEager: env.eager });
  }

  get signal(): AbortSignal {
    return this.env.abort.signal;
  }

  retry(options: RetryOptions = {}): Promise<never> {
    return retry(this.app, this.task, this.req, this.env, options);
  }

  async updateState(state: TaskState, meta?: unknown): Promise<void> {
    await this.env.backend?.storeResult(this.req.id, meta ?? null, state, this.storeOpts);
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof (v as { then?: unknown } | null)?.then === 'function';
}

/** An error whose Python `args` (its stored exc_message) are given. */
function pyError<E extends Error>(error: E, args: unknown[]): E {
  return Object.assign(error, { args });
}

let fallbackLog: Logger | undefined;
function log(): Logger {
  return (fallbackLog ??= createLogger({ level: 'WARNING' }));
}

async function handleError(run: Run, error: unknown): Promise<TraceOutcome> {
  const { app, task, req, env, started, store, storeOpts } = run;
  if (error instanceof Retry) {
    // As Celery's mark_as_retry: the exception given to retry(), or null without one.
    const exc = error.exc === undefined || error.exc === null ? null : serializeException(error.exc);
    const traceback = formatTraceback(error.exc ?? error);
    await store?.storeResult(req.id, exc, 'RETRY', { ...storeOpts, traceback });
    const sent = signals.taskRetry.connected ? signals.taskRetry.send({ sender: task, request: req, reason: error, einfo: exceptionInfo(error.exc ?? error, traceback) }) : undefined;
    if (sent) await sent;
    return { state: 'RETRY', error: error.exc ?? error };
  }
  if (error instanceof Ignore) return { state: 'IGNORED' };
  if (error instanceof TaskRevokedError) {
    const exc = { exc_type: 'TaskRevokedError', exc_message: ['terminated'], exc_module: 'celery.exceptions' };
    await env.backend?.storeResult(req.id, exc, 'REVOKED', storeOpts);
    return { state: 'REVOKED', reason: 'terminated' };
  }
  if (error instanceof Reject) return { state: 'REJECTED', requeue: error.requeue, reason: error.reason };
  const autoretry = task.options.autoretryFor;
  if (autoretry?.some((cls) => error instanceof cls)) {
    const countdown = backoffDelay(task.options, req.retries);
    try {
      await retry(app, task, req, env, { exc: error, countdown });
    } catch (retryError) {
      if (retryError instanceof Retry) return handleError(run, retryError);
      error = retryError;
    }
  }
  const traceback = formatTraceback(error);
  const exc = serializeException(error);
  await store?.storeResult(req.id, exc, 'FAILURE', { ...storeOpts, traceback });
  await canvasHooks.applyFailure.call(app, env.backend, req, exc, error, traceback, store !== undefined);
  if (signals.taskFailure.connected) {
    const einfo = exceptionInfo(error, traceback);
    const sent = signals.taskFailure.send({ sender: task, taskId: req.id, exception: error, args: req.args, kwargs: req.kwargs, traceback, einfo, request: req });
    if (sent) await sent;
  }
  return { state: 'FAILURE', error, traceback, runtime: (performance.now() - started) / 1000 };
}

/** `self.retry()`: re-publish with retries + 1 and reject with Retry, or throw when exhausted. */
async function retry(app: Celery, task: Task, req: TaskRequest, env: TraceEnv, options: RetryOptions): Promise<never> {
  const max = options.maxRetries !== undefined ? options.maxRetries : task.options.maxRetries ?? 3;
  if (max !== null && req.retries >= max) {
    if (options.exc !== undefined) throw options.exc;
    throw new MaxRetriesExceededError(`Can't retry ${task.name}[${req.id}] args:${req.argsrepr} kwargs:${req.kwargsrepr}`);
  }
  const countdown = options.countdown ?? task.options.defaultRetryDelay ?? 180;
  const when = options.eta ?? new Date(Date.now() + countdown * 1000);
  if (env.eager) throw new Retry(`Retry in ${countdown}s`, options.exc, when);
  await republishForRetry(app, req, env.queue, env.deliveryInfo, { ...options, eta: when });
  throw new Retry(`Retry in ${countdown}s`, options.exc, when);
}
