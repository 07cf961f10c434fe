import type { Celery } from '../app/celery.ts';
import { RunAbort } from '../app/run-abort.ts';
import type { Task } from '../app/task.ts';
import { signals, type WorkerSender } from '../app/signals.ts';
import { chordPartOf, onChordPartReturn } from '../canvas/index.ts';
import type { ResultBackend } from '../backend/result-backend.ts';
import { DecodeError, NotRegistered } from '../errors.ts';
import { formatTraceback, serializeException } from '../protocol/exceptions.ts';
import { pyRepr } from '../protocol/repr.ts';
import { decodeTaskMessage, type TaskRequest } from '../protocol/task-message.ts';
import { type LongTimeout, setTimeoutAt } from '../timers.ts';
import type { Delivery } from '../transport/types.ts';
import type { EventDispatcher } from '../events/dispatcher.ts';
import { LEVELS, type Logger } from '../common/log.ts';
import type { RateLimits } from './rate-limit.ts';
import type { RevokeChecker } from './revokes.ts';
import type { Slots } from './slots.ts';
import type { Pool } from './pool/types.ts';
import { settleAfterError } from './unsettled.ts';

/** A message the worker holds: waiting for its ETA, for a slot, or running. */
export interface Held {
  delivery: Delivery;
  request: TaskRequest;
  task: Task;
  state: 'scheduled' | 'reserved' | 'active';
  acked: boolean;
  /** Given back to the broker by a shutdown (so `acked` without having run). */
  restored?: boolean;
  abort: RunAbort;
  timer?: LongTimeout;
  /** Unix seconds when it started running. */
  timeStart: number | null;
}

export interface StrategyEnv {
  app: Celery;
  /** The worker, as the sender of its signals. */
  worker: WorkerSender;
  hostname: string;
  log: Logger;
  slots: Slots;
  backend: ResultBackend | undefined;
  revokes: RevokeChecker;
  rateLimits: RateLimits;
  /** Task events go here when the worker sends them (-E). */
  events: EventDispatcher | undefined;
  held: Set<Held>;
  /** Called whenever a held message leaves the prefetch window (acked, rejected, scheduled). */
  onRelease(): void;
  /** Counters for stats. */
  processed: Map<string, number>;
  /** Where the task runs: the event loop, a thread or a child process. */
  pool: Pool;
}

/**
 * What the worker does with one delivery (Celery's `strategy` + `Request`): decode, refuse what
 * cannot run (and say why), honour expiry, revokes and ETA, then run it in a slot and settle it.
 */
export async function handleDelivery(env: StrategyEnv, delivery: Delivery): Promise<void> {
  let request: TaskRequest;
  try {
    request = decodeTaskMessage(delivery.message, env.app.conf.acceptContent);
  } catch (err) {
    const reason = err instanceof DecodeError ? err.message : String(err);
    env.log.error(`Received invalid task message from queue ${delivery.queue}: ${reason}. The message was rejected and kept as a dead letter.`, {
      queue: delivery.queue,
      deliveryTag: delivery.deliveryTag,
      body: delivery.message.body.toString('utf8').slice(0, 500),
    });
    await settle(env, delivery, () => delivery.reject(false, `invalid task message: ${reason}`));
    await signals.taskRejected.send({ sender: env.worker, message: delivery.message, exc: err });
    return;
  }
  const task = env.app.tasks.get(request.name);
  if (!task) {
    const err = new NotRegistered(request.name);
    env.log.error(`Received unregistered task of type ${pyRepr(request.name)}. ${err.message} The message was rejected and kept as a dead letter.`, {
      taskId: request.id,
      task: request.name,
    });
    try {
      await env.backend?.storeResult(request.id, serializeException(err), 'FAILURE', { traceback: formatTraceback(err), replyTo: request.replyTo, correlationId: request.correlationId });
    } catch (storeErr) {
      env.log.error(`The FAILURE of unregistered task ${request.id} could not be stored: ${describe(storeErr)}`, { taskId: request.id });
    }
    await settle(env, delivery, () => delivery.reject(false, err.message));
    await signals.taskUnknown.send({ sender: env.worker, message: delivery.message, exc: err, name: request.name, id: request.id });
    return;
  }
  const held: Held = { delivery, request, task, state: 'reserved', acked: false, abort: new RunAbort(), timeStart: null };
  env.held.add(held);
  if (LEVELS[env.log.level] <= LEVELS.INFO) env.log.info(`Task ${request.name}[${request.id}] received`, { taskId: request.id, task: request.name });
  env.events?.task('task-received', () => ({
    uuid: request.id, name: request.name, args: request.argsrepr, kwargs: request.kwargsrepr, root_id: request.rootId,
    parent_id: request.parentId, retries: request.retries, eta: request.eta?.toISOString() ?? null, expires: request.expires?.toISOString() ?? null,
  }));
  const received = signals.taskReceived.connected ? signals.taskReceived.send({ sender: env.worker, request }) : undefined;
  if (received) await received;
  const eta = request.eta?.getTime();
  if (eta !== undefined && eta > Date.now()) {
    held.state = 'scheduled';
    env.onRelease(); // ETA tasks do not count against the prefetch window (Celery raises QoS for them)
    await new Promise<void>((resolve) => {
      held.timer = setTimeoutAt(resolve, eta);
    });
    if (!env.held.has(held)) return; // given back by a shutdown while waiting
    held.state = 'reserved';
  }
  const limited = env.rateLimits.wait(task.name);
  if (limited) await limited;
  if (!env.slots.tryAcquire()) await env.slots.acquire();
  try {
    if (env.held.has(held)) await execute(env, held);
  } catch (err) {
    await settleAfterError(env, held, err, task.options.acksLate ?? env.app.conf.taskAcksLate);
  } finally {
    env.slots.release();
    env.held.delete(held);
    env.onRelease();
  }
}

async function execute(env: StrategyEnv, held: Held): Promise<void> {
  const { request, task, delivery } = held;
  const tag = `${request.name}[${request.id}]`;
  if (request.expires && request.expires.getTime() < Date.now()) {
    env.log.info(`Discarding revoked task: ${tag} (expired)`, { taskId: request.id });
    await revoked(env, held, 'expired');
    return;
  }
  const acksLate = task.options.acksLate ?? env.app.conf.taskAcksLate;
  // The early ack and the revoke check are independent round trips: they go out together (a
  // revoked task is acknowledged too). A pool that may hold the task waiting for a free child
  // acknowledges it only when a child takes it, as Celery's prefork does.
  const early = acksLate || env.pool.holdsWaitingTasks ? undefined : ack(env, held);
  if (await env.revokes.isRevoked(request.id)) {
    env.log.info(`Discarding revoked task: ${tag}`, { taskId: request.id });
    await early;
    await revoked(env, held, 'revoked');
    return;
  }
  held.state = 'active';
  held.timeStart = Date.now() / 1000;
  // Counted when accepted, as Celery's total_count: `stats` shows running tasks in `total` already.
  env.processed.set(task.name, (env.processed.get(task.name) ?? 0) + 1);
  env.events?.task('task-started', { uuid: request.id });
  await early;
  const outcome = await env.pool.run(task, request, {
    hostname: env.hostname,
    deliveryInfo: delivery.info,
    properties: delivery.properties ?? { ...delivery.message.properties },
    queue: delivery.queue,
    eager: false,
    abort: held.abort,
    backend: env.backend,
    log: env.log,
  }, acksLate ? undefined : () => void ack(env, held));
  const fields = { taskId: request.id, task: request.name, state: outcome.state };
  switch (outcome.state) {
    case 'SUCCESS':
      // Building the line (a repr of the result) is skipped when INFO is not logged: it is on the hot path.
      if (LEVELS[env.log.level] <= LEVELS.INFO) env.log.info(`Task ${tag} succeeded in ${outcome.runtime.toFixed(6)}s: ${pyRepr(outcome.result, 200)}`, { ...fields, runtime: outcome.runtime });
      env.events?.task('task-succeeded', () => ({ uuid: request.id, result: pyRepr(outcome.result), runtime: outcome.runtime }));
      break;
    case 'FAILURE':
      env.log.error(`Task ${tag} raised unexpected: ${describe(outcome.error)}\n${outcome.traceback}`, fields);
      env.events?.task('task-failed', () => ({ uuid: request.id, exception: describe(outcome.error), traceback: outcome.traceback }));
      break;
    case 'RETRY':
      env.log.info(`Task ${tag} retry: ${describe(outcome.error)}`, fields);
      env.events?.task('task-retried', () => ({ uuid: request.id, exception: describe(outcome.error), traceback: null }));
      break;
    case 'REVOKED':
      env.log.warning(`Terminating ${tag}: revoked`, fields);
      env.events?.task('task-revoked', { uuid: request.id, terminated: true, signum: 15, expired: false });
      await signals.taskRevoked.send({ sender: task, request, terminated: true, signum: 15, expired: false });
      break;
    case 'REJECTED':
      env.log.warning(`Task ${tag} rejected: ${outcome.reason}${outcome.requeue ? ' (requeued)' : ''}`, fields);
      env.events?.task('task-rejected', { uuid: request.id, requeue: outcome.requeue });
      if (!held.acked) {
        held.acked = true;
        await settle(env, delivery, () => delivery.reject(outcome.requeue, outcome.reason));
        return;
      }
      break;
    case 'IGNORED':
      break;
  }
  await ack(env, held);
}

async function revoked(env: StrategyEnv, held: Held, reason: 'revoked' | 'expired'): Promise<void> {
  const exc = { exc_type: 'TaskRevokedError', exc_message: [reason], exc_module: 'celery.exceptions' };
  await env.backend?.storeResult(held.request.id, exc, 'REVOKED', { groupId: held.request.group, parentId: held.request.parentId, replyTo: held.request.replyTo, correlationId: held.request.correlationId });
  // A revoked chord header still counts, as a failure: the chord must not hang waiting for it.
  if (held.request.embed.chord && env.backend) await onChordPartReturn(env.app, env.backend, chordPartOf(held.request), 'REVOKED', exc);
  env.events?.task('task-revoked', { uuid: held.request.id, terminated: false, signum: null, expired: reason === 'expired' });
  await ack(env, held);
  await signals.taskRevoked.send({ sender: held.task, request: held.request, terminated: false, signum: null, expired: reason === 'expired' });
}

async function ack(env: StrategyEnv, held: Held): Promise<void> {
  if (held.acked) return;
  held.acked = true;
  await settle(env, held.delivery, () => held.delivery.ack());
}

async function settle(env: StrategyEnv, delivery: Delivery, op: () => Promise<void>): Promise<void> {
  try {
    await op();
  } catch (err) {
    env.log.error(`Could not settle message ${delivery.deliveryTag} with the broker: ${describe(err)}; it will be redelivered`);
  } finally {
    env.onRelease();
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) return `${err.name}(${pyRepr(err.message)})`;
  return pyRepr(err);
}
