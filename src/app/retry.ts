import type { DeliveryInfo } from '../protocol/message.ts';
import type { TaskRequest } from '../protocol/task-message.ts';
import type { Celery } from './celery.ts';
import type { RetryOptions } from './context.ts';
import { publishTask } from './publish.ts';
import type { TaskOptions } from './task-options.ts';

/** Seconds before the next automatic retry (Celery's `get_exponential_backoff_interval`). */
export function backoffDelay(opts: Readonly<TaskOptions>, retries: number): number {
  if (!opts.retryBackoff) return opts.defaultRetryDelay ?? 180;
  const factor = opts.retryBackoff === true ? 1 : opts.retryBackoff;
  const max = opts.retryBackoffMax ?? 600;
  const countdown = Math.min(max, factor * 2 ** retries);
  return (opts.retryJitter ?? true) ? Math.floor(Math.random() * (countdown + 1)) : countdown;
}

/**
 * Publish the retry of a request, as Celery 5.2 does: same id, retries + 1, `parent_id` set to
 * its own id, root kept, back to the queue it came from with the message's priority, exchange
 * and routing key (Celery's `signature_from_request`).
 */
export async function republishForRetry(app: Celery, req: TaskRequest, queue: string | null, info: DeliveryInfo | null, options: RetryOptions & { eta: Date }): Promise<void> {
  const custom = Object.fromEntries(Object.entries(req.headers).filter(([k]) => !STANDARD_HEADERS.has(k)));
  // A message sent through a named exchange goes back through it; the default exchange routes by queue.
  const route = !options.queue && info?.exchange ? { exchange: info.exchange, routingKey: info.routingKey } : {};
  await publishTask(app, req.name, options.args ?? req.args, options.kwargs ?? req.kwargs, {
    taskId: req.id,
    retries: req.retries + 1,
    eta: options.eta,
    expires: req.expires ?? undefined,
    queue: options.queue ?? queue ?? undefined,
    ...route,
    priority: options.priority ?? info?.priority,
    parentId: req.id,
    rootId: req.rootId,
    group: req.group,
    groupIndex: req.groupIndex,
    timeLimit: req.timelimit[0],
    softTimeLimit: req.timelimit[1],
    shadow: req.shadow ?? undefined,
    ignoreResult: req.ignoreResult,
    link: req.embed.callbacks ?? undefined,
    linkError: req.embed.errbacks ?? undefined,
    chain: req.embed.chain,
    chord: req.embed.chord,
    headers: custom,
    properties: { origin: req.origin, replaced_task_nesting: 0 },
  });
}

const STANDARD_HEADERS: ReadonlySet<string> = new Set([
  'lang', 'task', 'id', 'shadow', 'eta', 'expires', 'group', 'group_index', 'retries', 'timelimit', 'root_id',
  'parent_id', 'argsrepr', 'kwargsrepr', 'origin', 'ignore_result', 'redelivered',
]);
