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
import type { TraceOutcome } from '../app/trace.ts';
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
  /** Its task returned and its slot went to the next task while the outcome is stored. */
  lent?: boolean;
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
  /** Messages that got a slot this tick: they start together (strategy's startBatch). */
  starting: Held[];
  /** Send the acknowledgements queued in this turn now (Transport.flushAcks). */
  flushAcks(): void;
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
 * A task that can start at once, runs synchronously and is acknowledged early makes no promise of
 * its own: tasks that get a slot in the same tick start together (after one read of revoke marks
 * where the worker does not follow them), then their results and acks are written. Returns a promise only while the message waits (ETA, rate limit,
 * a signal receiver) or is refused; what it rejects with is unexpected (a bug), never a task's error.
 */
export function handleDelivery(env: StrategyEnv, delivery: Delivery): Promise<void> | undefined {
  let request: TaskRequest;
  try {
    request = decodeTaskMessage(delivery.message, env.app.conf.acceptContent);
  } catch (err) {
    return refuseInvalid(env, delivery, err);
  }
  const task = env.app.tasks.get(request.name);
  if (!task) return refuseUnregistered(env, delivery, request);
  const held: Held = { delivery, request, task, state: 'reserved', acked: false, abort: new RunAbort(), timeStart: null };
  env.held.add(held);
  if (LEVELS[env.log.level] <= LEVELS.INFO) env.log.info(`Task ${request.name}[${request.id}] received`, { taskId: request.id, task: request.name });
  env.events?.task('task-received', () => ({
    uuid: request.id, name: request.name, args: request.argsrepr, kwargs: request.kwargsrepr, root_id: request.rootId,
    parent_id: request.parentId, retries: request.retries, eta: request.eta?.toISOString() ?? null, expires: request.expires?.toISOString() ?? null,
  }));
  const eta = request.eta?.getTime();
  if (signals.taskReceived.connected || (eta !== undefined && eta > Date.now())) return schedule(env, held);
  return admit(env, held);
}

async function refuseInvalid(env: StrategyEnv, delivery: Delivery, err: unknown): Promise<void> {
  const reason = err instanceof DecodeError ? err.message : String(err);
  env.log.error(`Received invalid task message from queue ${delivery.queue}: ${reason}. The message was rejected and kept as a dead letter.`, {
    queue: delivery.queue,
    deliveryTag: delivery.deliveryTag,
    body: delivery.message.body.toString('utf8').slice(0, 500),
  });
  await settle(env, delivery, () => delivery.reject(false, `invalid task message: ${reason}`));
  await signals.taskRejected.send({ sender: env.worker, message: delivery.message, exc: err });
}

async function refuseUnregistered(env: StrategyEnv, delivery: Delivery, request: TaskRequest): Promise<void> {
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
}

/** task_received receivers first, then the ETA. */
async function schedule(env: StrategyEnv, held: Held): Promise<void> {
  const received = signals.taskReceived.connected ? signals.taskReceived.send({ sender: env.worker, request: held.request }) : undefined;
  if (received) await received;
  const eta = held.request.eta?.getTime();
  if (eta !== undefined && eta > Date.now()) {
    held.state = 'scheduled';
    env.onRelease(); // ETA tasks do not count against the prefetch window (Celery raises QoS for them)
    await new Promise<void>((resolve) => {
      held.timer = setTimeoutAt(resolve, eta);
    });
    if (!env.held.has(held)) return; // given back by a shutdown while waiting
    held.state = 'reserved';
  }
  await admit(env, held);
}

/** The task's rate limit, then a slot; the start is queued for the tick's batch. */
function admit(env: StrategyEnv, held: Held): Promise<void> | undefined {
  const limited = env.rateLimits.wait(held.task.name);
  if (limited) return limited.then(() => env.slots.whenFree(() => start(env, held)));
  env.slots.whenFree(() => start(env, held));
  return undefined;
}

/** Holding a slot: into this tick's batch of starts, unless the message went back or expired. */
function start(env: StrategyEnv, held: Held): void {
  if (!env.held.has(held)) return release(env, held); // given back by a shutdown while waiting
  const { request } = held;
  if (request.expires && request.expires.getTime() < Date.now()) {
    env.log.info(`Discarding revoked task: ${request.name}[${request.id}] (expired)`, { taskId: request.id });
    return guard(env, held, revoked(env, held, 'expired'));
  }
  if (env.starting.push(held) === 1) queueMicrotask(() => startBatch(env));
}

/**
 * The batch runs, after a read of revoke marks where one is needed; its early acks leave once its
 * tasks have started, just after the results of those that already finished.
 */
function startBatch(env: StrategyEnv): void {
  const batch = env.starting;
  env.starting = [];
  const acked = ackEarly(env, batch);
  const marks = env.revokes.marked(batch.map((h) => h.request.id));
  if (!marks) return runBatch(env, batch, undefined, acked);
  sendSettled(env, acked);
  void marks.then((revokedMarks) => runBatch(env, batch, revokedMarks, false));
}

/**
 * Early acks (a revoked task is acknowledged too) are queued here and sent once the batch's tasks
 * have started (sendSettled): Celery's prefork acknowledges once its child has begun the task, so
 * there too a task may run, even finish, before its ack leaves. A pool that may hold the task
 * waiting for a free child acknowledges it only when a child takes it, as Celery's prefork does.
 * Returns whether any was queued.
 */
function ackEarly(env: StrategyEnv, batch: Held[]): boolean {
  const acks = new Map<Promise<void>, Delivery[]>();
  for (const held of batch) {
    if (acksLate(env, held) || env.pool.holdsWaitingTasks) continue;
    held.acked = true;
    const ack = held.delivery.ack();
    const sharing = acks.get(ack); // transports that batch acks give one promise to the batch
    if (sharing) sharing.push(held.delivery);
    else acks.set(ack, [held.delivery]);
  }
  for (const [ack, deliveries] of acks) {
    ack.catch((err: unknown) => {
      for (const d of deliveries) env.log.error(`Could not settle message ${d.deliveryTag} with the broker: ${describe(err)}; it may be delivered again`);
    });
  }
  return acks.size > 0;
}

/**
 * The results stored so far and the acks queued so far are written now, results first: a round
 * trip waits for the result, not for the ack.
 */
function sendSettled(env: StrategyEnv, acked: boolean): void {
  env.backend?.flushWrites?.();
  env.flushAcks();
  if (acked) env.onRelease();
}

/** A task that held the event loop this long gets the batch's results and acks sent before the next task starts. */
const LONG_SYNC_MS = 20;

function runBatch(env: StrategyEnv, batch: Held[], marks: ReadonlySet<string> | undefined, acked: boolean): void {
  let since = performance.now();
  for (const held of batch) {
    try {
      run(env, held, marks);
    } catch (err) {
      guard(env, held, Promise.reject(err));
    }
    if (performance.now() - since > LONG_SYNC_MS) {
      sendSettled(env, acked);
      since = performance.now();
    }
  }
  sendSettled(env, acked);
}

function run(env: StrategyEnv, held: Held, marks: ReadonlySet<string> | undefined): void {
  // An unacknowledged message given back by a shutdown while its batch waited: it is in the queue again.
  if (!env.held.has(held)) return release(env, held);
  const { request, task, delivery } = held;
  if (env.revokes.isRevoked(request.id, marks)) {
    env.log.info(`Discarding revoked task: ${request.name}[${request.id}]`, { taskId: request.id });
    return guard(env, held, revoked(env, held, 'revoked'));
  }
  held.state = 'active';
  held.timeStart = Date.now() / 1000;
  // Counted when accepted, as Celery's total_count: `stats` shows running tasks in `total` already.
  env.processed.set(task.name, (env.processed.get(task.name) ?? 0) + 1);
  env.events?.task('task-started', { uuid: request.id });
  const outcome = env.pool.run(task, request, {
    hostname: env.hostname,
    deliveryInfo: delivery.info,
    properties: delivery.properties ?? { ...delivery.message.properties },
    queue: delivery.queue,
    eager: false,
    abort: held.abort,
    backend: env.backend,
    log: env.log,
    // Solo keeps Celery's one-at-a-time, storing included.
    onReturned: env.pool.name === 'async' ? () => (held.lent = env.slots.lend()) : undefined,
  }, acksLate(env, held) ? undefined : () => void ackOnce(env, held));
  if (outcome instanceof Promise) {
    outcome.then((o) => finishAndRelease(env, held, o), (err: unknown) => guard(env, held, Promise.reject(err)));
    return;
  }
  finishAndRelease(env, held, outcome);
}

/** The message is settled, and the slot freed, without a promise unless settling makes one. */
function finishAndRelease(env: StrategyEnv, held: Held, outcome: TraceOutcome): void {
  let finished: Promise<void> | undefined;
  try {
    finished = finish(env, held, outcome);
  } catch (err) {
    return guard(env, held, Promise.reject(err));
  }
  if (finished) return guard(env, held, finished);
  try {
    release(env, held);
  } catch (err) {
    unexpected(env, held, err);
  }
}

/** Log and send the outcome's event; settle the message unless it was acknowledged early. */
function finish(env: StrategyEnv, held: Held, outcome: TraceOutcome): Promise<void> | undefined {
  const { request, task, delivery } = held;
  // Built on demand: a SUCCESS not logged at INFO (the hot path) needs neither.
  const tag = (): string => `${request.name}[${request.id}]`;
  const fields = () => ({ taskId: request.id, task: request.name, state: outcome.state });
  switch (outcome.state) {
    case 'SUCCESS':
      // Building the line (a repr of the result) is skipped when INFO is not logged: it is on the hot path.
      if (LEVELS[env.log.level] <= LEVELS.INFO) env.log.info(`Task ${tag()} succeeded in ${outcome.runtime.toFixed(6)}s: ${pyRepr(outcome.result, 200)}`, { ...fields(), runtime: outcome.runtime });
      env.events?.task('task-succeeded', () => ({ uuid: request.id, result: pyRepr(outcome.result), runtime: outcome.runtime }));
      break;
    case 'FAILURE':
      env.log.error(`Task ${tag()} raised unexpected: ${describe(outcome.error)}\n${outcome.traceback}`, fields());
      env.events?.task('task-failed', () => ({ uuid: request.id, exception: describe(outcome.error), traceback: outcome.traceback }));
      break;
    case 'RETRY':
      env.log.info(`Task ${tag()} retry: ${describe(outcome.error)}`, fields());
      env.events?.task('task-retried', () => ({ uuid: request.id, exception: describe(outcome.error), traceback: null }));
      break;
    case 'REVOKED':
      env.log.warning(`Terminating ${tag()}: revoked`, fields());
      env.events?.task('task-revoked', { uuid: request.id, terminated: true, signum: 15, expired: false });
      return Promise.resolve(signals.taskRevoked.send({ sender: task, request, terminated: true, signum: 15, expired: false })).then(() => ackOnce(env, held));
    case 'REJECTED':
      env.log.warning(`Task ${tag()} rejected: ${outcome.reason}${outcome.requeue ? ' (requeued)' : ''}`, fields());
      env.events?.task('task-rejected', { uuid: request.id, requeue: outcome.requeue });
      if (!held.acked) {
        held.acked = true;
        return settle(env, delivery, () => delivery.reject(outcome.requeue, outcome.reason));
      }
      break;
    case 'IGNORED':
      break;
  }
  return ackOnce(env, held);
}

/** The end of a held message's path: an error settles it (once), and its slot is freed either way. */
function guard(env: StrategyEnv, held: Held, work: Promise<void>): void {
  work
    .catch((err: unknown) => settleAfterError(env, held, err, acksLate(env, held)))
    .finally(() => release(env, held))
    .catch((err: unknown) => unexpected(env, held, err));
}

function unexpected(env: StrategyEnv, held: Held, err: unknown): void {
  env.log.critical(`Unexpected error while handling message ${held.delivery.deliveryTag}: ${(err as Error)?.stack ?? String(err)}`);
}

function release(env: StrategyEnv, held: Held): void {
  env.slots.release(held.lent);
  env.held.delete(held);
  env.onRelease();
}

function acksLate(env: StrategyEnv, held: Held): boolean {
  return held.task.options.acksLate ?? env.app.conf.taskAcksLate;
}

async function revoked(env: StrategyEnv, held: Held, reason: 'revoked' | 'expired'): Promise<void> {
  const exc = { exc_type: 'TaskRevokedError', exc_message: [reason], exc_module: 'celery.exceptions' };
  await env.backend?.storeResult(held.request.id, exc, 'REVOKED', { groupId: held.request.group, parentId: held.request.parentId, replyTo: held.request.replyTo, correlationId: held.request.correlationId });
  // A revoked chord header still counts, as a failure: the chord must not hang waiting for it.
  if (held.request.embed.chord && env.backend) await onChordPartReturn(env.app, env.backend, chordPartOf(held.request), 'REVOKED', exc);
  env.events?.task('task-revoked', { uuid: held.request.id, terminated: false, signum: null, expired: reason === 'expired' });
  await ackOnce(env, held);
  await signals.taskRevoked.send({ sender: held.task, request: held.request, terminated: false, signum: null, expired: reason === 'expired' });
}

function ackOnce(env: StrategyEnv, held: Held): Promise<void> | undefined {
  if (held.acked) return undefined;
  held.acked = true;
  return settle(env, held.delivery, () => held.delivery.ack());
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
