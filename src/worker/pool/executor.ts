/** One pool child as the parent drives it: a forked process or a worker thread. */
import { fork } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker as Thread } from 'node:worker_threads';
import type { ChildInit, FromChild, ToChild } from './messages.ts';

export interface Executor {
  /** The process id (a thread: its process's). */
  readonly pid: number;
  readonly threadId: number | undefined;
  send(msg: ToChild): void;
  /** Stop it now, whatever it runs (SIGKILL, or a thread's termination). */
  kill(): void;
  onMessage(fn: (msg: FromChild) => void): void;
  onExit(fn: (code: number | null, signal: NodeJS.Signals | null) => void): void;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const BOOTSTRAP = path.resolve(here, '..', '..', '..', 'bin', 'pool-child.js');
/** Running from the TypeScript sources (a checkout, under tsx): children do the same. */
const SOURCES = import.meta.url.endsWith('.ts') ? ['--celeriac-sources'] : [];

export function startExecutor(init: ChildInit): Executor {
  return init.kind === 'threads' ? startThread(init) : startProcess(init);
}

function startProcess(init: ChildInit): Executor {
  const child = fork(BOOTSTRAP, SOURCES, {
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, CELERIAC_POOL_CHILD: JSON.stringify(init) },
    // The parent's own flags (such as --import loaders or --inspect) are not the child's business.
    execArgv: process.execArgv.filter((a) => !a.startsWith('--inspect')),
  });
  return {
    pid: child.pid!,
    threadId: undefined,
    send: (msg) => child.send(msg),
    kill: () => child.kill('SIGKILL'),
    onMessage: (fn) => child.on('message', (m) => fn(m as FromChild)),
    onExit: (fn) => child.once('exit', fn),
  };
}

function startThread(init: ChildInit): Executor {
  const thread = new Thread(BOOTSTRAP, { workerData: init, argv: SOURCES });
  // An uncaught error in the thread comes as 'error', then 'exit' with code 1.
  thread.on('error', (err) => process.stderr.write(`[ThreadPoolWorker-${init.index}] ${(err as Error)?.stack ?? String(err)}\n`));
  return {
    pid: process.pid,
    threadId: thread.threadId,
    send: (msg) => thread.postMessage(msg),
    kill: () => void thread.terminate(),
    onMessage: (fn) => thread.on('message', fn),
    onExit: (fn) => thread.once('exit', (code) => fn(code, null)),
  };
}
