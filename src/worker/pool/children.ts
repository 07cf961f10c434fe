/**
 * The processes and threads pools: `size` children, each running one task at a time, as Celery's
 * prefork. The parent keeps the time: the hard limit, revoke-with-terminate and a dead child end
 * the task here (the child is killed or gone), and a fresh child takes its place.
 */
import os from 'node:os';
import type { Celery } from '../../app/celery.ts';
import type { Task } from '../../app/task.ts';
import type { TraceEnv, TraceOutcome } from '../../app/trace.ts';
import { ImproperlyConfigured, TaskRevokedError } from '../../errors.ts';
import type { TaskRequest } from '../../protocol/task-message.ts';
import { type LongTimeout, setLongTimeout } from '../../timers.ts';
import type { LogFormat, Logger } from '../../common/log.ts';
import { type Executor, startExecutor } from './executor.ts';
import { type ChildInit, type FromChild, outcomeFromWire } from './messages.ts';
import { failed, terminated, timeLimitError, workerLostError } from './outcomes.ts';
import { type Limits, limitsFor, type Pool } from './types.ts';

export interface ChildPoolOptions {
  kind: 'processes' | 'threads';
  size: number;
  /** The -A value the children load. */
  appSpec: string;
  hostname: string;
  log: Logger;
  logFormat?: LogFormat;
  maxTasksPerChild?: number | null;
  /** KiB of resident memory (a thread: of its heap) after which a child is replaced. */
  maxMemoryPerChild?: number | null;
  /** The worker's default limits (--time-limit, --soft-time-limit). */
  limits?: Limits;
}

interface Job {
  id: number;
  task: Task;
  req: TaskRequest;
  env: TraceEnv;
  started: number;
  timer?: LongTimeout;
  /** Set when the parent stops the child on purpose. */
  stop?: { why: 'timeout'; hard: number } | { why: 'terminate' } | { why: 'close' };
  resolve(o: TraceOutcome | Promise<TraceOutcome>): void;
}

/** A job handed over by the worker, waiting for a free child. */
interface Waiting {
  job: Job;
  go(child: Child): void;
}

interface Child {
  index: number;
  exec: Executor;
  tasks: number;
  mem: number;
  job?: Job;
  /** Leaves after its current task (shrink, restart, limits). */
  retire?: boolean;
  ready?: boolean;
  gone?: boolean;
}

function status(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `signal ${os.constants.signals[signal]} (${signal})` : `exitcode ${code ?? 0}`;
}

export class ChildPool implements Pool {
  readonly name: 'processes' | 'threads';
  private readonly children = new Set<Child>();
  private readonly idle: Child[] = [];
  private readonly waiting: Waiting[] = [];
  private size: number;
  private jobs = 0;
  private closing = false;
  /** Children are replaced only once the pool has started. */
  private started = false;
  private readonly indexes = new Set<number>();

  constructor(
    private readonly app: Celery,
    private readonly opts: ChildPoolOptions,
  ) {
    this.name = opts.kind;
    this.size = opts.size;
  }

  /** Start every child; the first that cannot load the app fails the worker's start-up. */
  async start(): Promise<void> {
    const started = await Promise.allSettled(Array.from({ length: this.size }, () => this.spawn()));
    const failure = started.find((s) => s.status === 'rejected');
    if (failure) {
      await this.close({ force: true });
      throw (failure as PromiseRejectedResult).reason;
    }
    this.started = true;
  }

  private spawn(): Promise<Child> {
    let index = 1;
    while (this.indexes.has(index)) index++;
    this.indexes.add(index);
    const { opts } = this;
    const init: ChildInit = {
      kind: opts.kind, app: opts.appSpec, broker: this.app.conf.broker, backend: this.app.conf.backend, hostname: opts.hostname,
      index, logLevel: opts.log.level, logFormat: opts.logFormat ?? 'text',
    };
    const exec = startExecutor(init);
    const child: Child = { index, exec, tasks: 0, mem: 0 };
    this.children.add(child);
    return new Promise((resolve, reject) => {
      const fail = (why: string) => {
        child.gone = true;
        this.children.delete(child);
        this.indexes.delete(index);
        reject(new ImproperlyConfigured(`A ${opts.kind} pool child ${why}`));
      };
      exec.onMessage((msg: FromChild) => {
        if (msg.t === 'ready') {
          child.ready = true;
          child.mem = msg.mem;
          resolve(child);
          this.release(child);
        } else if (msg.t === 'failed') {
          fail(`could not load the app ${opts.appSpec}: ${msg.message}`);
          exec.kill();
        } else if (msg.t === 'done') {
          this.done(child, msg);
        }
      });
      exec.onExit((code, signal) => {
        if (!child.ready) {
          if (!child.gone) fail(`exited (${status(code, signal)}) before it had loaded the app ${opts.appSpec}`);
          return;
        }
        this.exited(child, code, signal);
      });
    });
  }

  /**
   * One task more than children per child: the next one has had its revoke check while the child
   * still runs the current one, and goes to it the moment it is free (no broker round trip between
   * two tasks of a child). It is not sent before: a child runs one task at a time, and it is not
   * acknowledged before either (onAccepted).
   */
  slots(size: number): number {
    return size * 2;
  }

  isWaiting(taskId: string): boolean {
    return this.waiting.some((w) => w.job.req.id === taskId);
  }

  readonly holdsWaitingTasks = true;

  run(task: Task, req: TaskRequest, env: TraceEnv, onAccepted?: () => void): Promise<TraceOutcome> {
    const { hard, soft } = limitsFor(this.app, task, req, this.opts.limits);
    return new Promise<TraceOutcome>((resolve) => {
      const job: Job = { id: ++this.jobs, task, req, env, started: performance.now(), resolve };
      let runner: Child | undefined;
      const entry: Waiting = {
        job,
        go: (child) => {
          runner = child;
          child.job = job;
          job.started = performance.now();
          child.exec.send({ t: 'run', job: job.id, req, deliveryInfo: env.deliveryInfo, properties: env.properties, queue: env.queue, soft });
          onAccepted?.();
          if (hard) job.timer = setLongTimeout(() => this.stop(child, job, { why: 'timeout', hard }), hard * 1000);
        },
      };
      env.abort.onAbort((reason) => {
        if (!(reason instanceof TaskRevokedError)) return;
        if (runner) return this.stop(runner, job, { why: 'terminate' });
        // Not in a child yet: it never runs.
        this.waiting.splice(this.waiting.indexOf(entry), 1);
        resolve(terminated(this.app, req, env));
      });
      const child = this.idle.shift();
      if (child) entry.go(child);
      else this.waiting.push(entry);
    });
  }

  private stop(child: Child, job: Job, stop: NonNullable<Job['stop']>): void {
    if (child.job !== job || job.stop) return;
    job.stop = stop;
    if (stop.why === 'timeout') this.opts.log.error(`Hard time limit (${stop.hard}s) exceeded for ${job.req.name}[${job.req.id}]`);
    child.exec.kill();
  }

  private done(child: Child, msg: Extract<FromChild, { t: 'done' }>): void {
    const job = child.job;
    if (!job || job.id !== msg.job || job.stop) return;
    job.timer?.clear();
    child.job = undefined;
    child.tasks++;
    child.mem = msg.mem;
    job.resolve(outcomeFromWire(msg.outcome));
    const { maxTasksPerChild, maxMemoryPerChild } = this.opts;
    if (maxMemoryPerChild && msg.mem > maxMemoryPerChild) {
      this.opts.log.warning(`child process exiting after exceeding memory limit (${msg.mem}KiB / ${maxMemoryPerChild}KiB)`);
      child.retire = true;
    }
    if (maxTasksPerChild && child.tasks >= maxTasksPerChild) child.retire = true;
    this.release(child);
  }

  /** An idle child: retired (and replaced), or given the next job. */
  private release(child: Child): void {
    if (child.gone) return;
    if (child.retire || this.closing || this.children.size > this.size) {
      child.gone = true;
      this.children.delete(child);
      this.indexes.delete(child.index);
      child.exec.send({ t: 'exit' });
      this.maintain();
      return;
    }
    const next = this.waiting.shift();
    if (next) next.go(child);
    else this.idle.push(child);
  }

  private exited(child: Child, code: number | null, signal: NodeJS.Signals | null): void {
    const i = this.idle.indexOf(child);
    if (i >= 0) this.idle.splice(i, 1);
    const wasGone = child.gone;
    child.gone = true;
    this.children.delete(child);
    this.indexes.delete(child.index);
    const job = child.job;
    // Celery's line for a child that went away by itself (not retired, not stopped by the parent).
    if (!wasGone && !this.closing && !job?.stop) this.opts.log.error(`Process '${this.processName(child)}' pid:${child.exec.pid} exited with '${status(code, signal)}'`);
    if (job) {
      job.timer?.clear();
      child.job = undefined;
      job.resolve(this.lost(job, code, signal));
    }
    this.maintain();
  }

  private processName(child: Child): string {
    return `${this.name === 'threads' ? 'ThreadPoolWorker' : 'ForkPoolWorker'}-${child.index}`;
  }

  private lost(job: Job, code: number | null, signal: NodeJS.Signals | null): TraceOutcome | Promise<TraceOutcome> {
    const { app } = this;
    const { task, req, env, stop } = job;
    // Given back by a cold shutdown already: nothing more to store or settle.
    if (stop?.why === 'close') return { state: 'IGNORED' };
    if (stop?.why === 'terminate') return terminated(app, req, env);
    if (stop?.why === 'timeout') return failed(app, task, req, env, timeLimitError(stop.hard), job.started);
    const error = workerLostError(status(code, signal), job.id);
    const acksLate = task.options.acksLate ?? app.conf.taskAcksLate;
    const rejectOnWorkerLost = task.options.rejectOnWorkerLost ?? app.conf.taskRejectOnWorkerLost;
    if (acksLate && rejectOnWorkerLost) return { state: 'REJECTED', requeue: true, reason: error.message };
    return failed(app, task, req, env, error, job.started);
  }

  /** Keep `size` children, replacing those that left; a child that cannot start is retried. */
  private maintain(): void {
    if (this.closing || !this.started) return;
    while (this.children.size < this.size) {
      this.spawn().catch((err: unknown) => {
        this.opts.log.error(`${(err as Error).message}; retrying in 1 s`);
        setTimeout(() => this.maintain(), 1000).unref();
      });
    }
  }

  resize(size: number): void {
    this.size = Math.max(1, size);
    // Idle children beyond the size leave now, busy ones after their task (see release).
    while (this.children.size > this.size && this.idle.length > 0) this.release(this.idle.shift()!);
    this.maintain();
  }

  async restart(): Promise<void> {
    for (const child of this.children) child.retire = true;
    for (const child of this.idle.splice(0)) this.release(child);
  }

  pidOf(taskId: string): number | undefined {
    for (const c of this.children) if (c.job?.req.id === taskId) return c.exec.pid;
    return undefined;
  }

  info(): Record<string, unknown> {
    const children = [...this.children].sort((a, b) => a.index - b.index);
    const total = children.reduce((n, c) => n + c.tasks, 0);
    const per = (v: number) => (v ? v / total : 0).toFixed(2);
    const conf = this.app.conf;
    const described = children.map((c) => ({ index: c.index, pid: c.exec.pid, ...(c.exec.threadId !== undefined ? { 'thread-id': c.exec.threadId } : {}), tasks: c.tasks, [this.name === 'threads' ? 'heap-kib' : 'rss-kib']: c.mem, busy: c.job !== undefined }));
    const base = {
      'max-concurrency': this.size,
      'max-tasks-per-child': this.opts.maxTasksPerChild || 'N/A',
      'max-memory-per-child': this.opts.maxMemoryPerChild || 'N/A',
      'put-guarded-by-semaphore': false,
      timeouts: [conf.taskSoftTimeLimit ?? this.opts.limits?.soft ?? 0, conf.taskTimeLimit ?? this.opts.limits?.hard ?? 0],
      writes: {
        total,
        avg: per(children.length && total ? total / children.length : 0),
        all: children.map((c) => per(c.tasks)).join(', '),
        raw: children.map((c) => String(c.tasks)).join(', '),
        strategy: 'fair',
        inqueues: { total: children.length, active: children.filter((c) => c.job).length },
      },
      children: described,
    };
    return this.name === 'threads' ? { ...base, threads: children.length } : { ...base, processes: children.map((c) => c.exec.pid) };
  }

  async close({ force = false }: { force?: boolean } = {}): Promise<void> {
    this.closing = true;
    // Given back by the cold shutdown already.
    for (const w of this.waiting.splice(0)) w.job.resolve({ state: 'IGNORED' });
    const all = [...this.children];
    const exits = all.map((c) => new Promise<void>((r) => (c.gone && !c.job ? r() : c.exec.onExit(() => r()))));
    for (const c of all) {
      if (c.job) {
        if (force) {
          c.job.stop = { why: 'close' };
          c.exec.kill();
        }
      } else if (!c.gone) {
        c.gone = true;
        c.exec.send({ t: 'exit' });
      }
    }
    const timer = setTimeout(() => all.forEach((c) => c.exec.kill()), 5000);
    await Promise.all(exits);
    clearTimeout(timer);
  }
}
