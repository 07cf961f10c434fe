/**
 * Celery's signals (`celery.signals`) with their names and arguments in camelCase. Each receiver
 * gets one object: `sender` and the arguments Celery sends with that signal.
 */
import type { Message } from '../protocol/message.ts';
import type { TaskRequest } from '../protocol/task-message.ts';
import type { TaskState } from '../protocol/states.ts';
import type { Celery } from './celery.ts';
import { Signal } from './signal.ts';
import type { Task } from './task.ts';

/** The worker that sends a worker signal (a celeriac Worker). */
export interface WorkerSender {
  readonly hostname: string;
  readonly app: Celery;
}

/** Celery's ExceptionInfo, as far as it means something here. */
export interface ExceptionInfo {
  exception: unknown;
  /** The exception's class name. */
  type: string;
  /** The formatted traceback (Python's format when the error came from Python). */
  traceback: string;
}

export interface PublishArgs {
  /** The task name. */
  sender: string;
  /** The message body as Celery's protocol 2 tuple: `[args, kwargs, embed]`. */
  body: [unknown[], Record<string, unknown>, Record<string, unknown>];
  exchange: string;
  routingKey: string;
  /** The message headers; a `beforeTaskPublish` receiver may add to them (they are sent after it returns). */
  headers: Record<string, unknown>;
  /** The message properties (correlation_id, reply_to, delivery_info…); may be changed as the headers. */
  properties: Record<string, unknown>;
}

export interface TaskRunArgs {
  sender: Task;
  taskId: string;
  task: Task;
  args: unknown[];
  kwargs: Record<string, unknown>;
  /** celeriac: the request being run (its `headers` are the message's, custom ones included). */
  request: TaskRequest;
}

export type SignalArgs = {
  beforeTaskPublish: PublishArgs & { declare: string[]; retryPolicy: Record<string, unknown> | undefined };
  afterTaskPublish: Omit<PublishArgs, 'properties'>;
  taskReceived: { sender: WorkerSender; request: TaskRequest };
  taskPrerun: TaskRunArgs;
  taskPostrun: TaskRunArgs & { retval: unknown; state: TaskState };
  taskSuccess: { sender: Task; result: unknown; request: TaskRequest };
  taskRetry: { sender: Task; request: TaskRequest; reason: unknown; einfo: ExceptionInfo };
  taskFailure: { sender: Task; taskId: string; exception: unknown; args: unknown[]; kwargs: Record<string, unknown>; traceback: string; einfo: ExceptionInfo; request: TaskRequest };
  taskRevoked: { sender: Task; request: TaskRequest; terminated: boolean; signum: number | null; expired: boolean };
  taskRejected: { sender: WorkerSender; message: Message; exc: unknown };
  taskUnknown: { sender: WorkerSender; message: Message; exc: unknown; name: string; id: string };
  workerInit: { sender: WorkerSender };
  /** Once in each pool child (-P processes, threads); with the async and solo pools, once in the worker's own process, as Celery's solo pool. */
  workerProcessInit: { sender: null };
  workerReady: { sender: WorkerSender };
  workerShuttingDown: { sender: string; sig: string | null; how: 'Warm' | 'Cold'; exitcode: number };
  workerShutdown: { sender: WorkerSender };
  heartbeatSent: { sender: WorkerSender };
  beatInit: { sender: { readonly app: Celery } };
  setupLogging: { sender: null; loglevel: string; logfile: string | null; format: string; colorize: boolean };
};

export type SignalName = keyof SignalArgs;

/** `signals.taskPostrun.connect(({ task, retval }) => …)`, `signals.taskFailure.connect(h, { sender: 'tasks.add' })`. */
export const signals: { readonly [N in SignalName]: Signal<SignalArgs[N]> } = {
  beforeTaskPublish: new Signal('beforeTaskPublish'),
  afterTaskPublish: new Signal('afterTaskPublish'),
  taskReceived: new Signal('taskReceived'),
  taskPrerun: new Signal('taskPrerun'),
  taskPostrun: new Signal('taskPostrun'),
  taskSuccess: new Signal('taskSuccess'),
  taskRetry: new Signal('taskRetry'),
  taskFailure: new Signal('taskFailure'),
  taskRevoked: new Signal('taskRevoked'),
  taskRejected: new Signal('taskRejected'),
  taskUnknown: new Signal('taskUnknown'),
  workerInit: new Signal('workerInit'),
  workerProcessInit: new Signal('workerProcessInit'),
  workerReady: new Signal('workerReady'),
  workerShuttingDown: new Signal('workerShuttingDown'),
  workerShutdown: new Signal('workerShutdown'),
  heartbeatSent: new Signal('heartbeatSent'),
  beatInit: new Signal('beatInit'),
  setupLogging: new Signal('setupLogging'),
};

/** Celery's ExceptionInfo of an error and its formatted traceback. */
export function exceptionInfo(exception: unknown, traceback: string): ExceptionInfo {
  const type = exception instanceof Error ? exception.name : typeof exception;
  return { exception, type, traceback };
}
