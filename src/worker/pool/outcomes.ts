/**
 * Outcomes the parent writes for a task whose child could not: it was stopped by the hard time
 * limit, by revoke-with-terminate, or died. As Celery's main process does (Request.on_timeout,
 * on_failure): FAILURE stored with chord part and errbacks, or REVOKED.
 */
import type { Celery } from '../../app/celery.ts';
import { applyFailure } from '../../canvas/callbacks.ts';
import type { Task } from '../../app/task.ts';
import type { TraceEnv, TraceOutcome } from '../../app/trace.ts';
import { chordPartOf, onChordPartReturn } from '../../canvas/index.ts';
import { TimeLimitExceeded, WorkerLostError } from '../../errors.ts';
import { formatTraceback, serializeException } from '../../protocol/exceptions.ts';
import type { TaskRequest } from '../../protocol/task-message.ts';

const storeOpts = (req: TaskRequest) => ({ groupId: req.group, parentId: req.parentId, children: [], replyTo: req.replyTo, correlationId: req.correlationId });

export function timeLimitError(hard: number): TimeLimitExceeded {
  return Object.assign(new TimeLimitExceeded(`TimeLimitExceeded(${hard},)`), { args: [hard] });
}

/** billiard's message, with its `human_status` of the exit. */
export function workerLostError(status: string, job: number): WorkerLostError {
  const message = `Worker exited prematurely: ${status} Job: ${job}.`;
  return Object.assign(new WorkerLostError(message), { args: [message] });
}


export async function failed(app: Celery, task: Task, req: TaskRequest, env: TraceEnv, error: Error, started: number): Promise<TraceOutcome> {
  const store = env.backend && !(req.ignoreResult || task.options.ignoreResult) ? env.backend : undefined;
  const traceback = formatTraceback(error);
  const exc = serializeException(error);
  await store?.storeResult(req.id, exc, 'FAILURE', { ...storeOpts(req), traceback });
  await applyFailure(app, env.backend, req, exc, error, traceback, store !== undefined);
  return { state: 'FAILURE', error, traceback, runtime: (performance.now() - started) / 1000 };
}

export async function terminated(app: Celery, req: TaskRequest, env: TraceEnv): Promise<TraceOutcome> {
  const exc = { exc_type: 'TaskRevokedError', exc_message: ['terminated'], exc_module: 'celery.exceptions' };
  await env.backend?.storeResult(req.id, exc, 'REVOKED', storeOpts(req));
  if (req.embed.chord && env.backend) await onChordPartReturn(app, env.backend, chordPartOf(req), 'REVOKED', exc);
  return { state: 'REVOKED', reason: 'terminated' };
}
