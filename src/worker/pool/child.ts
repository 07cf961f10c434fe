/**
 * A pool child (a process or a thread): loads the worker's app from the same -A, then runs one
 * task at a time, in the order the parent sent them, with the same trace as the async pool. It
 * stores results, sends callbacks and retries with its own connections, as Celery's prefork
 * children do; the parent only hears when a task starts and its outcome (log line, events, ack).
 */
import { threadId } from 'node:worker_threads';
import { RunAbort } from '../../app/run-abort.ts';
import { traceTask } from '../../app/trace.ts';
import type { Celery } from '../../app/celery.ts';
import { pyRepr } from '../../protocol/repr.ts';
import { createLogger } from '../../common/log.ts';
import { type ChildInit, type FromChild, outcomeToWire, type ToChild } from './messages.ts';
import { workerProcessInit } from './process-init.ts';

export interface ParentPort {
  send(msg: FromChild): void;
  onMessage(fn: (msg: ToChild) => void): void;
  exit(code: number): void;
}

/** How the child gets the worker's app: the CLI's -A loading (the worker layer does not import the CLI). */
export type AppLoader = (opts: { app?: string; broker?: string; resultBackend?: string }) => Promise<Celery>;

export async function runChild(init: ChildInit, port: ParentPort, loadApp: AppLoader): Promise<void> {
  const log = createLogger({ level: init.logLevel, format: init.logFormat, processName: `${init.kind === 'threads' ? 'ThreadPoolWorker' : 'ForkPoolWorker'}-${init.index}` });
  const memory = () => Math.round((init.kind === 'threads' ? process.memoryUsage().heapUsed : process.memoryUsage.rss()) / 1024);
  let app;
  try {
    app = await loadApp({ app: init.app, broker: init.broker, resultBackend: init.backend ?? undefined });
    if (init.backend === null) app.conf.backend = null;
    await workerProcessInit(app, { pool: init.kind, index: init.index, pid: process.pid, threadId });
  } catch (err) {
    port.send({ t: 'failed', message: (err as Error)?.message ?? String(err) });
    return;
  }
  const backend = app.backendUrl() ? await app.backend() : undefined;
  // Jobs the parent sent ahead: run one at a time, in order.
  const queue: Extract<ToChild, { t: 'run' }>[] = [];
  let busy = false;
  /** Past its memory limit: the parent replaces it; what it holds, or still gets, goes back unrun. */
  let full = false;
  const giveBack = (job: number) => port.send({ t: 'cancelled', job });
  const run = async (msg: Extract<ToChild, { t: 'run' }>) => {
    port.send({ t: 'started', job: msg.job });
    const task = app.tasks.get(msg.req.name);
    const outcome = task
      ? await traceTask(app, task, msg.req, {
        hostname: init.hostname,
        deliveryInfo: msg.deliveryInfo,
        properties: msg.properties,
        queue: msg.queue,
        eager: false,
        abort: new RunAbort(),
        backend,
        log,
        limits: { soft: msg.soft, hard: null },
      })
      : { state: 'FAILURE' as const, error: new Error(`task ${msg.req.name} is not registered in the pool child: its module differs from the worker's`), traceback: '', runtime: 0 };
    const wire = outcomeToWire(outcome);
    const mem = memory();
    try {
      port.send({ t: 'done', job: msg.job, outcome: wire, mem });
    } catch {
      // A result the channel cannot copy (a function, a handle): it is stored already; the parent logs its repr.
      port.send({ t: 'done', job: msg.job, outcome: { ...wire, result: pyRepr((wire as { result: unknown }).result) } as typeof wire, mem });
    }
    if (init.maxMemory && mem > init.maxMemory) {
      full = true;
      for (const next of queue.splice(0)) giveBack(next.job);
    }
  };
  const pump = async () => {
    if (busy) return;
    busy = true;
    while (queue.length > 0) {
      await run(queue.shift()!);
      // A turn of the event loop between two tasks: their I/O (stores, a counter, a `cancel`)
      // goes through, as when each task came in a message of its own.
      await new Promise((r) => setImmediate(r));
    }
    busy = false;
  };
  port.onMessage(async (msg) => {
    if (msg.t === 'exit') {
      await app.close().catch(() => {});
      port.exit(0);
    } else if (msg.t === 'cancel') {
      const i = queue.findIndex((m) => m.job === msg.job);
      if (i < 0) return;
      queue.splice(i, 1);
      giveBack(msg.job);
    } else if (full) {
      giveBack(msg.job);
    } else {
      queue.push(msg);
      void pump();
    }
  });
  port.send({ t: 'ready', mem: memory() });
}
