import { BrokerConnectionError } from '../transport/connect-error.ts';
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { isRpcUrl } from '../backend/rpc/index.ts';
import { buildTaskMessage, type SignatureDict } from '../protocol/task-message.ts';
import type { InternalCallOptions } from '../protocol/call-options.ts';
import type { Celery } from './celery.ts';
import { retryPolicy } from './config.ts';
import { MessageTooLarge } from '../errors.ts';
import type { RunAbort } from './run-abort.ts';
import { type PublishArgs, signals } from './signals.ts';
import type { TaskOptions } from './task-options.ts';

/** The task a worker is running: what it publishes gets it as parent, and is recorded as its child. */
export interface TaskScope {
  id: string;
  rootId: string | null;
  /** Celery's `request.children`: result tuples of what the task published, stored with its result. */
  children: unknown[];
  /** The run's abort controller, for `currentSignal()`. */
  abort?: RunAbort;
}

export const currentTask = new AsyncLocalStorage<TaskScope>();

/**
 * The AbortSignal of the task running in this async context (null outside a task): how a task
 * without `bind: true` sees its soft time limit, a revoke with terminate or a cold shutdown, as
 * Python code catches SoftTimeLimitExceeded. A task that reads it handles the soft limit itself.
 */
export function currentSignal(): AbortSignal | null {
  return currentTask.getStore()?.abort?.signal ?? null;
}

export interface PublishOptions extends InternalCallOptions {
  /** The `reply_to` property (default: this app's oid); canvas signatures carry their client's. */
  replyTo?: string;
  /** false: do not record the task as a child of the running task (group members; the group is). */
  addToParent?: boolean;
}

/** Build a task message from calling options and publish it; returns the task id. */
export async function publishTask(
  app: Celery,
  name: string,
  args: unknown[],
  kwargs: Record<string, unknown> | undefined,
  options: PublishOptions,
  taskOptions?: Readonly<TaskOptions>,
): Promise<string> {
  const conf = app.conf;
  const id = options.taskId ?? randomUUID();
  // Sent from inside a task: lineage as Celery's send_task (parent = caller, root = caller's root).
  const scope = currentTask.getStore();
  const now = Date.now();
  const eta = options.eta ?? (options.countdown !== undefined ? new Date(now + options.countdown * 1000) : null);
  const expiresOpt = options.expires ?? taskOptions?.expires ?? null;
  const expires = expiresOpt === null ? null : expiresOpt instanceof Date ? expiresOpt : new Date(now + expiresOpt * 1000);
  const queue = options.queue ?? routeFor(app, name) ?? taskOptions?.queue ?? conf.taskDefaultQueue;
  const ignoreResult = options.ignoreResult ?? taskOptions?.ignoreResult ?? conf.taskIgnoreResult;
  const replyTo = options.replyTo ?? app.oid;
  const embed = { callbacks: list(options.link), errbacks: list(options.linkError), chain: options.chain ?? null, chord: options.chord ?? null };
  const message = buildTaskMessage({
    id,
    name,
    args,
    kwargs,
    embed,
    eta,
    expires,
    retries: options.retries ?? 0,
    timeLimit: options.timeLimit ?? taskOptions?.timeLimit ?? conf.taskTimeLimit,
    softTimeLimit: options.softTimeLimit ?? taskOptions?.softTimeLimit ?? conf.taskSoftTimeLimit,
    rootId: options.rootId ?? (scope ? scope.rootId ?? scope.id : id),
    parentId: options.parentId ?? scope?.id ?? null,
    group: options.group ?? null,
    groupIndex: options.groupIndex ?? null,
    shadow: options.shadow ?? null,
    origin: app.origin,
    ignoreResult,
    replyTo,
    priority: options.priority ?? taskOptions?.priority ?? conf.taskDefaultPriority ?? 0,
    headers: options.headers,
    properties: options.properties,
    serializer: options.serializer ?? taskOptions?.serializer ?? conf.taskSerializer,
    compression: options.compression ?? taskOptions?.compression ?? conf.taskCompression ?? undefined,
  });
  const max = conf.brokerMaxMessageSize;
  if (max > 0 && message.body.length > max) {
    throw new MessageTooLarge(
      `task ${name}[${id}] not sent: its message is ${mib(message.body.length)}, over brokerMaxMessageSize (${mib(max)}). ` +
      'Pass a reference to the data (a path, URL or key) instead of the data, or raise brokerMaxMessageSize.',
    );
  }
  // rpc://: the reply queue must exist before a worker can answer (Celery's on_task_call).
  if (!ignoreResult && isRpcUrl(app.backendUrl())) await (await app.backend()).onTaskCall?.(replyTo);
  const transport = await app.transport();
  const route = { exchange: options.exchange ?? '', routingKey: options.routingKey ?? queue };
  const policy = retryPolicy({ ...conf.taskPublishRetryPolicy, ...options.retryPolicy });
  const retry = options.retry ?? conf.taskPublishRetry;
  // Built only when someone listens: publishing is the client's hot path.
  let published: Omit<PublishArgs, 'properties'> | undefined;
  if (signals.beforeTaskPublish.connected || signals.afterTaskPublish.connected) {
    published = { sender: name, body: [args, kwargs ?? {}, embed], exchange: route.exchange, routingKey: route.routingKey, headers: message.headers };
    const before = signals.beforeTaskPublish.send({ ...published, properties: message.properties, declare: [queue], retryPolicy: options.retryPolicy });
    if (before) await before;
  }
  for (let attempt = 0; ; attempt++) {
    try {
      await transport.publish(queue, message, route);
      if (published) {
        const after = signals.afterTaskPublish.send(published);
        if (after) await after;
      }
      if (conf.taskSendSentEvent && transport.broadcast) {
        await app.sentEvents(transport.broadcast).send('task-sent', {
          uuid: id, root_id: options.rootId ?? id, parent_id: options.parentId ?? null, name, args: message.headers.argsrepr,
          kwargs: message.headers.kwargsrepr, retries: options.retries ?? 0, eta: message.headers.eta, expires: message.headers.expires,
          queue, exchange: route.exchange, routing_key: route.routingKey,
        });
      }
      if (scope && options.addToParent !== false) scope.children.push([[id, null], null]);
      return id;
    } catch (err) {
      // Not connected within brokerConnectionTimeout: retrying would only multiply that wait.
      if (!retry || attempt >= policy.maxRetries || err instanceof BrokerConnectionError) throw err;
      await sleep(Math.min(policy.intervalStart + attempt * policy.intervalStep, policy.intervalMax) * 1000);
    }
  }
}

/** `taskRoutes`: `{ 'tasks.add': { queue: 'math' } }` or `{ 'tasks.*': 'math' }`. */
export function routeFor(app: Celery, name: string): string | undefined {
  for (const [pattern, route] of Object.entries(app.conf.taskRoutes)) {
    const matches = pattern.includes('*') ? new RegExp('^' + pattern.split('*').map(escape).join('.*') + '$').test(name) : pattern === name;
    if (!matches) continue;
    if (typeof route === 'string') return route;
    if (route && typeof route === 'object' && typeof (route as { queue?: unknown }).queue === 'string') return (route as { queue: string }).queue;
  }
  return undefined;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function list(v: SignatureDict | SignatureDict[] | undefined): SignatureDict[] | null {
  if (!v) return null;
  return Array.isArray(v) ? v : [v];
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(bytes < 1048576 ? 3 : 1)} MiB (${bytes} bytes)`;
}
