import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { pendingMeta, type TaskMeta } from '../backend/result-backend.ts';
import { serializeException } from '../protocol/exceptions.ts';
import { naiveUtcIso } from '../protocol/json.ts';
import { argsRepr, pyRepr } from '../protocol/repr.ts';
import type { SignatureDict, TaskRequest } from '../protocol/task-message.ts';
import type { CallOptions } from '../protocol/call-options.ts';
import type { Celery } from './celery.ts';
import { AsyncResult, type ResultSource } from './result.ts';
import { RunAbort } from './run-abort.ts';
import type { Task } from './task.ts';
import { traceTask } from './trace.ts';

/** Options of `task.apply()` / `signature.apply()` beyond the calling options (Celery's `Task.apply`). */
export interface EagerOptions extends CallOptions {
  /** Re-throw the task's error (default: the app's taskEagerPropagates). */
  throw?: boolean;
  /** The request's retries to start from. */
  retries?: number;
}

/**
 * Run a task in this process (`task_always_eager`, `task.apply()`); retries run at once, in a loop.
 * `link`/`linkError` are applied as a worker would (sent, unless the app is eager too).
 */
export async function runEager(app: Celery, task: Task, args: unknown[], kwargs: Record<string, unknown>, options: EagerOptions): Promise<TaskMeta> {
  const id = options.taskId ?? randomUUID();
  const backend = app.conf.taskStoreEagerResult ? await app.backend() : undefined;
  const callbacks = sigList(options.link);
  const errbacks = sigList(options.linkError);
  const propagate = options.throw ?? app.conf.taskEagerPropagates;
  for (let retries = options.retries ?? 0; ; retries++) {
    const req: TaskRequest = {
      protocol: 2, id, name: task.name, args, kwargs, embed: { callbacks, errbacks, chain: null, chord: null },
      eta: null, expires: null, retries, timelimit: [options.timeLimit ?? null, options.softTimeLimit ?? null],
      rootId: id, parentId: null, group: null, groupIndex: null, shadow: null, origin: app.origin,
      ignoreResult: false, argsrepr: argsRepr(args), kwargsrepr: pyRepr(kwargs), replyTo: app.oid, correlationId: id,
      headers: options.headers ?? {},
    };
    const outcome = await traceTask(app, task, req, {
      hostname: os.hostname(), deliveryInfo: null, queue: null, eager: true, abort: new RunAbort(), backend,
    });
    switch (outcome.state) {
      case 'RETRY':
        continue;
      case 'SUCCESS':
        return { ...pendingMeta(id), status: 'SUCCESS', result: outcome.result, date_done: naiveUtcIso(new Date()) };
      case 'FAILURE':
        if (propagate) throw outcome.error;
        return { ...pendingMeta(id), status: 'FAILURE', result: serializeException(outcome.error), traceback: outcome.traceback, date_done: naiveUtcIso(new Date()) };
      default:
        return { ...pendingMeta(id), status: outcome.state };
    }
  }
}

function sigList(v: SignatureDict | SignatureDict[] | undefined): SignatureDict[] | null {
  if (v === undefined || v === null) return null;
  const list = Array.isArray(v) ? v : [v];
  return list.length > 0 ? list : null;
}

/** The result of an eager run: already known, no backend needed. */
export class EagerResult<R = unknown> extends AsyncResult<R> {
  constructor(
    private readonly known: TaskMeta,
    source: ResultSource,
  ) {
    super(known.task_id, source);
  }

  protected override async meta(): Promise<TaskMeta> {
    return this.known;
  }

  override async get(options: { propagate?: boolean } = {}): Promise<R> {
    return this.settle(this.known, options.propagate ?? true);
  }
}
