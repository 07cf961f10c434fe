import type { Celery } from '../../app/celery.ts';
import type { Task } from '../../app/task.ts';
import { timeLimits, type TraceEnv, type TraceOutcome } from '../../app/trace.ts';
import type { TaskRequest } from '../../protocol/task-message.ts';
import { ConfigurationError } from '../../errors.ts';

/** The pools, by the names Celery gives them. */
export const POOL_NAMES = ['async', 'threads', 'processes', 'solo'] as const;
export type PoolName = (typeof POOL_NAMES)[number];

/** Celery names accepted for a celeriac pool: Node's event loop is its gevent/eventlet. */
const ALIASES: Record<string, PoolName> = { prefork: 'processes', gevent: 'async', eventlet: 'async' };

/** The pool named by -P/--pool or workerPool, and the alias it was given by, if any. */
export function parsePoolName(value: string): { name: PoolName; alias?: string } {
  const v = value.trim().toLowerCase();
  if ((POOL_NAMES as readonly string[]).includes(v)) return { name: v as PoolName };
  const name = ALIASES[v];
  if (name) return { name, alias: v };
  throw new ConfigurationError(`unknown pool ${JSON.stringify(value)}: use one of ${POOL_NAMES.join(', ')} (prefork, gevent and eventlet are accepted as Celery's names)`);
}

/**
 * Where tasks run. The strategy hands it a request once a slot is free; the pool runs it to its
 * outcome (stored as the async pool stores it) and never throws for anything the task does.
 */
export interface Pool {
  readonly name: PoolName;
  start(): Promise<void>;
  /** How many tasks the worker may hand over at once to a pool of this size. */
  slots(size: number): number;
  /** Handed over, but waiting in the parent for a free child: `inspect` reports it reserved. */
  isWaiting(taskId: string): boolean;
  /**
   * Run a task to its outcome. `onAccepted` is called when the task starts in a child (Celery's
   * on_accepted): an early ack waits for it, so a task still waiting in the parent stays unacked
   * and is redelivered if the parent dies. A task that ends synchronously may give its outcome at once.
   */
  run(task: Task, request: TaskRequest, env: TraceEnv, onAccepted?: () => void): TraceOutcome | Promise<TraceOutcome>;
  /** Whether tasks may wait in the parent for a free child (then acks wait for `onAccepted`). */
  readonly holdsWaitingTasks: boolean;
  /** Set the number of children (threads, processes); the inline pools only count slots. */
  resize(size: number): void;
  /** Replace every child (after its current task): a fresh import of the task module. */
  restart(): Promise<void>;
  /** The pid running a task, for `inspect active`. */
  pidOf(taskId: string): number | undefined;
  /** The `pool` section of `inspect stats`. */
  info(): Record<string, unknown>;
  /** Stop the children: after their tasks, or at once with `force`. */
  close(opts?: { force?: boolean }): Promise<void>;
}

export type Limits = { soft: number | null; hard: number | null };

/** The request's limits, else the task's, else the app's, else the worker's (--time-limit, --soft-time-limit). */
export function limitsFor(app: Celery, task: Task, req: TaskRequest, defaults: Limits | undefined): Limits {
  const l = timeLimits(app, task, req);
  return defaults ? { hard: l.hard ?? defaults.hard, soft: l.soft ?? defaults.soft } : l;
}
