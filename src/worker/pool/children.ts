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

/** Jobs a child holds at once: the one it runs and the next, sent ahead so that it never waits for the parent between two tasks. */
const DEPTH = 2;

interface Job {
  id: number;
  task: Task;
  req: TaskRequest;
  env: TraceEnv;
  soft: number | null;
  hard: number | null;
  onAccepted?: () => void;
  started: number;
  timer?: LongTimeout;
  /** Set when the parent stops the child on purpose. */
  stop?: { why: 'timeout'; hard: number } | { why: 'terminate' } | { why: 'close' };
  /** Asked back from a child before it started (a `cancel` sent, no answer yet). */
  recalled?: boolean;
  /** Revoked before a child started it: settled already, it must not run. */
  dropped?: boolean;
  resolve(o: TraceOutcome | Promise<TraceOutcome>): void;
}

interface Child {
  index: number;
  exec: Executor;
  tasks: number;
  mem: number;
  /** The job it runs (it said `started`). */
  job?: Job;
  /** Sent to it, not started yet, in order. */
  queued: Job[];
  /** Takes no new job and leaves once empty (shrink, restart, limits). */
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
  /** Jobs handed over by the worker, waiting for room in a child. */
  private readonly waiting: Job[] = [];
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
      index, logLevel: opts.log.level, logFormat: opts.logFormat ?? 'text', maxMemory: opts.maxMemoryPerChild,
    };
    const exec = startExecutor(init);
    const child: Child = { index, exec, tasks: 0, mem: 0, queued: [] };
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
          if (this.closing || this.serving() > this.size) this.retire(child);
          else this.dispatch();
        } else if (msg.t === 'started') {
          this.started_(child, msg.job);
        } else if (msg.t === 'cancelled') {
          this.cancelled(child, msg.job);
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
   * Two tasks per child: each child runs one and holds the next (DEPTH), sent ahead after its
   * revoke check, so no IPC round trip separates two tasks of a child. A child starts them one at
   * a time, and a task is acknowledged only when its child starts it (onAccepted).
   */
  slots(size: number): number {
    return size * DEPTH;
  }

  isWaiting(taskId: string): boolean {
    const is = (j: Job) => j.req.id === taskId && !j.dropped;
    return this.waiting.some(is) || [...this.children].some((c) => c.queued.some(is));
  }

  readonly holdsWaitingTasks = true;

  run(task: Task, req: TaskRequest, env: TraceEnv, onAccepted?: () => void): Promise<TraceOutcome> {
    const { hard, soft } = limitsFor(this.app, task, req, this.opts.limits);
    return new Promise<TraceOutcome>((resolve) => {
      const job: Job = { id: ++this.jobs, task, req, env, soft, hard, onAccepted, started: performance.now(), resolve };
      env.abort.onAbort((reason) => {
        if (reason instanceof TaskRevokedError) this.revoke(job);
      });
      this.waiting.push(job);
      this.dispatch();
    });
  }

  /** Children not retiring: those that take jobs. */
  private serving(): number {
    let n = 0;
    for (const c of this.children) if (!c.retire && !c.gone) n++;
    return n;
  }

  private load(c: Child): number {
    return (c.job ? 1 : 0) + c.queued.length;
  }

  private accepts(c: Child): boolean {
    if (!c.ready || c.gone || c.retire || this.closing) return false;
    const load = this.load(c);
    const max = this.opts.maxTasksPerChild;
    // Never more than the child may still run before it is recycled.
    return load < DEPTH && !(max && c.tasks + load >= max);
  }

  /** Waiting jobs to the least loaded children that have room. */
  private dispatch(): void {
    while (this.waiting.length > 0) {
      let best: Child | undefined;
      for (const c of this.children) if (this.accepts(c) && (!best || this.load(c) < this.load(best))) best = c;
      if (!best) return;
      const job = this.waiting.shift()!;
      best.queued.push(job);
      const { req, env } = job;
      best.exec.send({ t: 'run', job: job.id, req, deliveryInfo: env.deliveryInfo, properties: env.properties, queue: env.queue, soft: job.soft });
    }
  }

  /** The child begins a job: now it is acknowledged and its hard limit runs. */
  private started_(child: Child, id: number): void {
    const i = child.queued.findIndex((j) => j.id === id);
    if (i < 0) return;
    const [job] = child.queued.splice(i, 1) as [Job];
    child.job = job;
    job.recalled = false;
    if (job.dropped) {
      // Revoked with terminate while its cancel was on the way: stop it as a running one.
      job.stop = { why: 'terminate' };
      child.exec.kill();
      return;
    }
    job.started = performance.now();
    job.onAccepted?.();
    const { hard } = job;
    if (hard) job.timer = setLongTimeout(() => this.stop(child, job, { why: 'timeout', hard }), hard * 1000);
  }

  private cancelled(child: Child, id: number): void {
    const i = child.queued.findIndex((j) => j.id === id);
    if (i < 0) return;
    const [job] = child.queued.splice(i, 1) as [Job];
    job.recalled = false;
    // Taken back from a retiring child: it runs in another one.
    if (!job.dropped) this.waiting.unshift(job);
    this.settle(child);
    this.dispatch();
  }

  /** Ask back a job the child has not started; it answers `cancelled`, or `started` if too late. */
  private recall(child: Child, job: Job): void {
    if (job.recalled) return;
    job.recalled = true;
    child.exec.send({ t: 'cancel', job: job.id });
  }

  private revoke(job: Job): void {
    const w = this.waiting.indexOf(job);
    if (w >= 0) {
      // Not in a child yet: it never runs.
      this.waiting.splice(w, 1);
      return job.resolve(terminated(this.app, job.req, job.env));
    }
    for (const c of this.children) {
      if (c.job === job) return this.stop(c, job, { why: 'terminate' });
      if (c.queued.includes(job) && !job.dropped) {
        // Queued in a child, not started: the child skips it and lives on.
        job.dropped = true;
        job.resolve(terminated(this.app, job.req, job.env));
        return this.recall(c, job);
      }
    }
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
      this.retire(child);
    }
    if (maxTasksPerChild && child.tasks >= maxTasksPerChild) this.retire(child);
    this.settle(child);
    this.dispatch();
  }

  /** No new job for this child; the ones it has not started go back to the waiting list. */
  private retire(child: Child): void {
    child.retire = true;
    for (const job of child.queued) this.recall(child, job);
    this.settle(child);
  }

  /** A retiring child with nothing left leaves, and is replaced. */
  private settle(child: Child): void {
    if (child.gone || !(child.retire || this.closing) || child.job || child.queued.length > 0) return;
    child.gone = true;
    this.children.delete(child);
    this.indexes.delete(child.index);
    child.exec.send({ t: 'exit' });
    this.maintain();
  }

  private exited(child: Child, code: number | null, signal: NodeJS.Signals | null): void {
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
      // Revoked before it started (see started_): settled already.
      if (!job.dropped) job.resolve(this.lost(job, code, signal));
    }
    // Never started in the dead child: they run in another one (a cold shutdown gave them back already).
    for (const queued of child.queued.splice(0).reverse()) {
      queued.recalled = false;
      if (queued.dropped) continue;
      if (this.closing) queued.resolve({ state: 'IGNORED' });
      else this.waiting.unshift(queued);
    }
    this.maintain();
    this.dispatch();
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
    // The least loaded children leave: idle ones now, busy ones after their task.
    const serving = [...this.children].filter((c) => !c.retire && !c.gone).sort((a, b) => this.load(a) - this.load(b));
    for (const c of serving.slice(0, Math.max(0, serving.length - this.size))) this.retire(c);
    this.maintain();
    this.dispatch();
  }

  async restart(): Promise<void> {
    for (const child of [...this.children]) this.retire(child);
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
    for (const job of this.waiting.splice(0)) job.resolve({ state: 'IGNORED' });
    const all = [...this.children];
    const exits = all.map((c) => new Promise<void>((r) => (c.gone && !c.job ? r() : c.exec.onExit(() => r()))));
    for (const c of all) {
      if (c.job || c.queued.length > 0) {
        if (force) {
          if (c.job) c.job.stop = { why: 'close' };
          c.exec.kill();
        }
      } else this.settle(c);
    }
    const timer = setTimeout(() => all.forEach((c) => c.exec.kill()), 5000);
    await Promise.all(exits);
    clearTimeout(timer);
  }
}
