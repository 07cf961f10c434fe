/*
 * One error tree for celeriac.
 *
 *   CeleriacError (code, cause)
 *   ├── ConfigurationError        bad or unknown config key/value, bad URL
 *   ├── UnsupportedByBackend      the result backend cannot do this (chords on rpc://)
 *   ├── ImproperlyConfigured      app cannot be found or loaded (--app)
 *   ├── DecodeError               a message could not be decoded; keeps the raw message
 *   ├── EncodeError               a value cannot be serialized (bytes, cycles, …)
 *   ├── NotRegistered             unknown task name
 *   ├── TimeoutError              AsyncResult.get() waited too long
 *   ├── TaskError                 a task failed remotely (excType, excMessage, excModule, traceback)
 *   ├── TaskRevokedError          task revoked, terminated or expired
 *   ├── TimeLimitExceeded / SoftTimeLimitExceeded
 *   ├── WorkerLostError           the process running a task went away
 *   ├── MaxRetriesExceededError
 *   └── control flow thrown from inside a task:
 *       ├── Retry                 re-publish the task (self.retry())
 *       ├── Ignore                do not store any state
 *       └── Reject                reject the message (requeue or not)
 */

export class CeleriacError extends Error {
  readonly code: string = 'ECELERIAC';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class ConfigurationError extends CeleriacError {
  override readonly code = 'ECONFIG';
}

/** The result backend cannot do what was asked (Celery's NotImplementedError, e.g. chords on rpc://). */
export class UnsupportedByBackend extends CeleriacError {
  override readonly code = 'EUNSUPPORTED';
}

export class ImproperlyConfigured extends CeleriacError {
  override readonly code = 'EAPPNOTFOUND';
}

export class DecodeError extends CeleriacError {
  override readonly code = 'EDECODE';
  constructor(message: string, readonly raw: unknown, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export class EncodeError extends CeleriacError {
  override readonly code = 'EENCODE';
  /** Where in the value the problem is (keys from its root), when known: a cycle. */
  readonly path?: (string | number)[];
  constructor(message: string, options?: { cause?: unknown; path?: (string | number)[] }) {
    super(message, options);
    if (options?.path) this.path = options.path;
  }
}

export class NotRegistered extends CeleriacError {
  override readonly code = 'ENOTREGISTERED';
  constructor(readonly taskName: string) {
    super(`Task of type ${JSON.stringify(taskName)} is not registered in this worker. ` +
      'Import the module that defines it in the app given with -A, or check the task name the client used.');
  }
}

export class TimeoutError extends CeleriacError {
  override readonly code = 'ETIMEOUT';
}

/** A task failed in a worker (of any language); carries the remote exception. */
export class TaskError extends CeleriacError {
  override readonly code = 'ETASKFAILED';
  constructor(
    readonly excType: string,
    readonly excMessage: unknown[],
    readonly excModule: string | null,
    readonly traceback: string | null,
    readonly taskId?: string,
  ) {
    super(formatExcMessage(excType, excMessage));
    this.name = excType;
  }
}

function formatExcMessage(excType: string, args: unknown[]): string {
  if (args.length === 0) return excType;
  if (args.length === 1) return typeof args[0] === 'string' ? args[0] : JSON.stringify(args[0]);
  return args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(', ');
}

export class TaskRevokedError extends CeleriacError {
  override readonly code = 'EREVOKED';
}

export class TimeLimitExceeded extends CeleriacError {
  override readonly code = 'ETIMELIMIT';
}

export class SoftTimeLimitExceeded extends CeleriacError {
  override readonly code = 'ESOFTTIMELIMIT';
}

/** The process running a task went away (Celery's, from billiard). */
export class WorkerLostError extends CeleriacError {
  override readonly code = 'EWORKERLOST';
}

export class MaxRetriesExceededError extends CeleriacError {
  override readonly code = 'EMAXRETRIES';
}

/** Thrown by `self.retry()`; the worker re-publishes the task and stores RETRY. */
export class Retry extends CeleriacError {
  override readonly code = 'ERETRY';
  constructor(
    message: string,
    readonly exc: unknown,
    readonly when: Date,
  ) {
    super(message);
  }
}

/** Thrown from a task to store no state and acknowledge the message. */
export class Ignore extends CeleriacError {
  override readonly code = 'EIGNORE';
}

/** Thrown from a task to reject its message, with or without requeue. */
export class Reject extends CeleriacError {
  override readonly code = 'EREJECT';
  constructor(
    readonly reason: string,
    readonly requeue = false,
  ) {
    super(reason);
  }
}

/**
 * The SQLite file a process has open was deleted or replaced by another file: this process would
 * go on using the old one while others use the new one. Fatal for a worker.
 */
export class DatabaseFileGone extends CeleriacError {
  override readonly code = 'EDBFILEGONE';
}

/** A message larger than `brokerMaxMessageSize`, refused before anything is written. */
export class MessageTooLarge extends CeleriacError {
  override readonly code = 'EMSGTOOLARGE';
}
