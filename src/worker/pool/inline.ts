import type { Celery } from '../../app/celery.ts';
import type { Task } from '../../app/task.ts';
import { traceTask, type TraceEnv, type TraceOutcome } from '../../app/trace.ts';
import type { TaskRequest } from '../../protocol/task-message.ts';
import type { Logger } from '../../common/log.ts';
import { type Limits, limitsFor, type Pool } from './types.ts';

/** A task holding the event loop longer than this is named in a warning. */
export const BLOCKED_LOOP_MS = 1000;

/**
 * The async pool (tasks are promises on the worker's own event loop) and solo (the same, one at
 * a time). Synchronous code in a task cannot be interrupted here: its first synchronous stretch
 * is timed, and any later stall of the loop is reported with the tasks running at the time.
 */
export class InlinePool implements Pool {
  private readonly running = new Map<string, string>();
  private lastTick = performance.now();
  private monitor: NodeJS.Timeout | undefined;

  constructor(
    readonly name: 'async' | 'solo',
    private readonly app: Celery,
    private readonly log: Logger,
    private readonly size: () => number,
    private readonly limits?: Limits,
  ) {}

  async start(): Promise<void> {
    this.lastTick = performance.now();
    this.monitor = setInterval(() => this.tick(), 250);
    this.monitor.unref();
  }

  slots(size: number): number {
    return size;
  }

  isWaiting(): boolean {
    return false;
  }

  readonly holdsWaitingTasks = false;

  run(task: Task, request: TaskRequest, env: TraceEnv, onAccepted?: () => void): TraceOutcome | Promise<TraceOutcome> {
    onAccepted?.();
    const started = performance.now();
    let outcome: TraceOutcome | Promise<TraceOutcome>;
    try {
      outcome = traceTask(this.app, task, request, this.limits ? { ...env, limits: limitsFor(this.app, task, request, this.limits) } : env);
    } finally {
      const held = performance.now() - started;
      if (held > BLOCKED_LOOP_MS) this.warnBlocked(held, `${request.name}[${request.id}]`);
    }
    if (!(outcome instanceof Promise)) return outcome;
    this.running.set(request.id, `${request.name}[${request.id}]`);
    return outcome.finally(() => this.running.delete(request.id));
  }

  private tick(): void {
    const now = performance.now();
    const stalled = now - this.lastTick - 250;
    this.lastTick = now;
    // The first stretch of a task is reported by run(); this catches stalls after an await.
    if (stalled > BLOCKED_LOOP_MS && this.running.size > 0 && !this.reported) {
      this.warnBlocked(stalled, [...this.running.values()].join(', '), true);
    }
    this.reported = false;
  }

  private reported = false;

  private warnBlocked(ms: number, tags: string, among = false): void {
    this.reported = true;
    this.log.warning(
      `Event loop blocked for ${(ms / 1000).toFixed(1)}s by ${among ? 'one of ' : ''}${tags}: nothing else ran meanwhile ` +
      '(acks, heartbeats, remote control, other tasks); run CPU-bound tasks with -P processes or -P threads',
    );
  }

  resize(): void {}

  async restart(): Promise<void> {
    throw new Error(`the ${this.name} pool runs tasks in the worker's own process and cannot reload their module: use -P processes or -P threads`);
  }

  pidOf(taskId: string): number | undefined {
    return this.running.has(taskId) ? process.pid : undefined;
  }

  info(): Record<string, unknown> {
    const conf = this.app.conf;
    if (this.name === 'solo') return { 'max-concurrency': 1, processes: [process.pid], 'max-tasks-per-child': null, 'put-guarded-by-semaphore': true, timeouts: [] };
    // One process runs every task: prefork's description of that single process, with the real concurrency.
    return {
      'max-concurrency': this.size(),
      processes: [process.pid],
      'max-tasks-per-child': 'N/A',
      'put-guarded-by-semaphore': false,
      timeouts: [conf.taskSoftTimeLimit ?? this.limits?.soft ?? 0, conf.taskTimeLimit ?? this.limits?.hard ?? 0],
    };
  }

  async close(): Promise<void> {
    clearInterval(this.monitor);
  }
}
