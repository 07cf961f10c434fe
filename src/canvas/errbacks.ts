/**
 * Errbacks (`link_error`), as Celery's `_call_task_errbacks`: an errback whose task is registered
 * here, is not bound, and declares more than one parameter (or a `...rest`) is called in the
 * worker as `(request, error, traceback, ...its own args)` — only its own args when immutable —
 * and the others are sent as a group of tasks with the failed task's id as their first argument.
 */
import { arityGreater } from '../app/params.ts';
import type { Celery } from '../app/celery.ts';
import type { Task } from '../app/task.ts';
import { createLogger } from '../common/log.ts';
import { Group } from './group.ts';
import { type AnySignature, Signature, type SigLike } from './signature.ts';

export interface FailedRequest {
  id: string;
  rootId: string | null;
  [field: string]: unknown;
}

const log = createLogger({ level: 'WARNING' });
const takesRequestCache = new WeakMap<Task, boolean>();

/** Celery's test: `arity_greater(task.__header__, 1)`, and bound tasks are always sent. */
function takesRequest(task: Task): boolean {
  let yes = takesRequestCache.get(task);
  if (yes === undefined) {
    const params = task.options.params;
    yes = !task.options.bind && ((Array.isArray(params) && params.length > 1) || arityGreater(task.fn, 1));
    takesRequestCache.set(task, yes);
  }
  return yes;
}

export async function callErrbacks(app: Celery, request: FailedRequest, errbacks: readonly SigLike[], error: unknown, traceback: string | null): Promise<void> {
  const sent: AnySignature[] = [];
  for (const eb of errbacks) {
    const sig = Signature.fromDict(eb, app);
    const task = sig.subtaskType === null ? app.tasks.get(sig.task) : undefined;
    if (task && takesRequest(task)) {
      try {
        const args = sig.immutable ? sig.args : [request, error, traceback, ...sig.args];
        await task.fn(...task.argumentsFor(args, sig.kwargs));
      } catch (err) {
        log.error(`Errback ${sig.task} for task ${request.id} raised: ${(err as Error)?.stack ?? String(err)}`);
      }
    } else {
      sent.push(sig);
    }
  }
  if (sent.length === 0) return;
  await new Group(sent, {}, app).applyAsync([request.id], {}, { parent_id: request.id, root_id: request.rootId ?? request.id });
}
