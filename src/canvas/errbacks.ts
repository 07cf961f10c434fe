/**
 * Errbacks (`link_error`), as Celery's `_call_task_errbacks`: an errback whose task is registered
 * here and takes more than one argument is called in the worker as `(request, error, traceback)`;
 * the others are sent as a group of tasks with the failed task's id as their one argument.
 */
import type { Celery } from '../app/celery.ts';
import { createLogger } from '../worker/log.ts';
import { Group } from './group.ts';
import { type AnySignature, Signature, type SigLike } from './signature.ts';

export interface FailedRequest {
  id: string;
  rootId: string | null;
  [field: string]: unknown;
}

const log = createLogger({ level: 'WARNING' });

export async function callErrbacks(app: Celery, request: FailedRequest, errbacks: readonly SigLike[], error: unknown, traceback: string | null): Promise<void> {
  const sent: AnySignature[] = [];
  for (const eb of errbacks) {
    const sig = Signature.fromDict(eb, app);
    const task = sig.subtaskType === null ? app.tasks.get(sig.task) : undefined;
    if (task && !task.options.bind && task.fn.length > 1) {
      try {
        await task.fn(request, error, traceback);
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
