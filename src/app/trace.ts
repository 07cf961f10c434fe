import type { ResultBackend } from '../backend/result-backend.ts';
import { Ignore, MaxRetriesExceededError, Reject, Retry, SoftTimeLimitExceeded, TaskRevokedError, TimeLimitExceeded } from '../errors.ts';
import { formatTraceback, serializeException } from '../protocol/exceptions.ts';
import type { DeliveryInfo } from '../protocol/message.ts';
import type { TaskRequest } from '../protocol/task-message.ts';
import { addToChordOf, chordPartOf, onChordPartReturn, replaceTask } from '../canvas/index.ts';
import { applyCallbacks, applyFailure } from './callbacks.ts';
import type { Celery } from './celery.ts';
import type { RequestContext, RetryOptions, TaskContext } from './context.ts';
import { currentTask, type TaskScope } from './publish.ts';
import { backoffDelay, republishForRetry } from './retry.ts';
import type { Task } from './task.ts';

export interface TraceEnv {
  hostname: string;
  deliveryInfo: DeliveryInfo | null;
  /** The queue the message came from; retries go back to it. */
  queue: string | null;
  eager: boolean;
  /**
   * The run's controller: the worker aborts it on revoke-with-terminate or cold shutdown, and
   * the time limits abort it too. Its signal is the task's `self.signal`.
   */
  abort: AbortController;
  /** Where states are stored; undefined when the app has no result backend. */
  backend: ResultBackend | undefined;
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
 * runs gets it as parent and is stored as its children.
 */
export function traceTask(app: Celery, task: Task, req: TaskRequest, env: TraceEnv): Promise<TraceOutcome> {
  const scope: TaskScope = { id: req.id, rootId: req.rootId, children: [] };
  return currentTask.run(scope, () => trace(app, task, req, env, scope));
}

async function trace(app: Celery, task: Task, req: TaskRequest, env: TraceEnv, scope: TaskScope): Promise<TraceOutcome> {
  const started = performance.now();
  const opts = task.options;
  const store = env.backend && !(req.ignoreResult || opts.ignoreResult) ? env.backend : undefined;
  const abort = env.abort;
  const [hard, soft] = [req.timelimit[0] ?? opts.timeLimit ?? app.conf.taskTimeLimit, req.timelimit[1] ?? opts.softTimeLimit ?? app.conf.taskSoftTimeLimit];
  const timers: NodeJS.Timeout[] = [];
  const request: RequestContext = { ...req, task: req.name, hostname: env.hostname, deliveryInfo: env.deliveryInfo, isEager: env.eager };
  const storeOpts: StoreOpts = { groupId: req.group, parentId: req.parentId, children: scope.children, replyTo: req.replyTo, correlationId: req.correlationId };

  const context: TaskContext = {
    name: task.name,
    request,
    signal: abort.signal,
    retry: (options: RetryOptions = {}) => retry(app, task, req, env, options),
    updateState: async (state, meta) => {
      await env.backend?.storeResult(req.id, meta ?? null, state, storeOpts);
    },
    replace: (sig) => replaceTask(app, req, env.eager, sig),
    addToChord: addToChordOf(app, req),
  };

  let result: unknown;
  let runtime: number;
  try {
    if (store && (opts.trackStarted ?? app.conf.taskTrackStarted)) {
      await store.storeResult(req.id, { pid: process.pid, hostname: env.hostname }, 'STARTED', storeOpts);
    }
    const args = Object.keys(req.kwargs).length > 0 ? [...req.args, req.kwargs] : req.args;
    const running = Promise.resolve().then(() => (opts.bind ? task.fn(context, ...args) : task.fn(...args)));
    if (soft) timers.push(setTimeout(() => abort.abort(new SoftTimeLimitExceeded(`soft time limit (${soft} s) exceeded`)), soft * 1000));
    const contenders: Promise<unknown>[] = [running, revokedWhileRunning(abort.signal)];
    if (hard) {
      contenders.push(new Promise<never>((_, reject) => {
        timers.push(setTimeout(() => {
          const err = new TimeLimitExceeded(`TimeLimitExceeded(${hard})`);
          abort.abort(err);
          reject(err);
        }, hard * 1000));
      }));
    }
    const limited = Promise.race(contenders);
    result = await limited;
    runtime = (performance.now() - started) / 1000;
    // Callbacks first, so that the stored result lists them as children (as Celery does).
    await applyCallbacks(app, req, result);
    await store?.storeResult(req.id, result, 'SUCCESS', storeOpts);
  } catch (error) {
    return handleError(app, task, req, env, error, started, store, storeOpts);
  } finally {
    for (const t of timers) clearTimeout(t);
  }
  // A chord part counts even when its result is not stored (Celery's mark_as_done).
  if (req.embed.chord && env.backend) await onChordPartReturn(app, env.backend, chordPartOf(req), 'SUCCESS', result);
  return { state: 'SUCCESS', result, runtime };
}

async function handleError(
  app: Celery,
  task: Task,
  req: TaskRequest,
  env: TraceEnv,
  error: unknown,
  started: number,
  store: ResultBackend | undefined,
  storeOpts: StoreOpts,
): Promise<TraceOutcome> {
  if (error instanceof Retry) {
    await store?.storeResult(req.id, serializeException(error.exc ?? error), 'RETRY', { ...storeOpts, traceback: formatTraceback(error.exc ?? error) });
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
      if (retryError instanceof Retry) return handleError(app, task, req, env, retryError, started, store, storeOpts);
      error = retryError;
    }
  }
  const traceback = formatTraceback(error);
  const exc = serializeException(error);
  await store?.storeResult(req.id, exc, 'FAILURE', { ...storeOpts, traceback });
  await applyFailure(app, env.backend, req, exc, error, traceback, store !== undefined);
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
  await republishForRetry(app, req, env.queue, { ...options, eta: when });
  throw new Retry(`Retry in ${countdown}s`, options.exc, when);
}

/** Rejects when the task is revoked with terminate: its result is REVOKED, whatever it does next. */
function revokedWhileRunning(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    const check = () => {
      if (signal.reason instanceof TaskRevokedError) reject(signal.reason);
    };
    if (signal.aborted) check();
    else signal.addEventListener('abort', check, { once: true });
  });
}
