import { HttpError } from './http.ts';
import type { DashboardContext } from './context.ts';
import { parsePyLiteral } from './py-literal.ts';

/**
 * Send a task again with its name, args, kwargs and queue. The values come from the result
 * backend when it stored them (`result_extended`), else from the reprs the events carried,
 * read back as Python literals; a repr that is not one (an object, or cut short) is refused.
 */
export async function retryTask(d: DashboardContext, id: string): Promise<{ id: string; name: string }> {
  const row = d.store.task(id);
  const meta = d.app.backendUrl() ? await (await d.app.backend()).getTaskMeta(id) : undefined;
  const name = (row?.name ?? meta?.name) as string | undefined;
  if (!name) throw new HttpError(404, `Unknown task '${id}'`);
  let args: unknown;
  let kwargs: unknown;
  if (Array.isArray(meta?.args) && meta.kwargs && typeof meta.kwargs === 'object') {
    args = meta.args;
    kwargs = meta.kwargs;
  } else {
    try {
      args = row?.args == null ? [] : parsePyLiteral(String(row.args));
      kwargs = row?.kwargs == null ? {} : parsePyLiteral(String(row.kwargs));
    } catch (err) {
      throw new HttpError(409, `cannot send '${id}' again: its arguments are known only as text that is not a plain value (${(err as Error).message}); ` +
        'set result_extended on the workers so the result backend keeps them');
    }
  }
  if (!Array.isArray(args) || !kwargs || typeof kwargs !== 'object' || Array.isArray(kwargs)) {
    throw new HttpError(409, `cannot send '${id}' again: its args are not a list or its kwargs not a dict`);
  }
  const queue = (typeof meta?.queue === 'string' ? meta.queue : typeof row?.routing_key === 'string' ? row.routing_key : undefined) || workerQueue(d, row?.worker);
  const result = await d.app.sendTask(name, args, kwargs as Record<string, unknown>, { queue });
  return { id: result.id, name };
}

/** Where the events did not say the queue: the first queue of the worker that ran it. */
function workerQueue(d: DashboardContext, worker: unknown): string | undefined {
  const queues = typeof worker === 'string' ? d.inspector.workers.get(worker)?.active_queues : undefined;
  const first = Array.isArray(queues) ? (queues[0] as { name?: unknown } | undefined) : undefined;
  return typeof first?.name === 'string' ? first.name : undefined;
}
