/**
 * Exceptions in result metas, as Celery stores them (`celery/backends/base.py:
 * BaseBackend.prepare_exception` / `exception_to_python`):
 *
 *   {"exc_type": "ValueError", "exc_message": ["boom", 42], "exc_module": "builtins"}
 *
 * `exc_message` is the exception's `args` list. A Python client rebuilds the class from
 * `exc_module` + `exc_type` when that module is imported, and otherwise creates an exception class
 * of that name on the fly; so `exc_type` is the name people see, and `exc_module` decides whether a
 * Python `except ValueError:` catches it.
 *
 * Mapping of JS errors (serializeException):
 *
 * | thrown in JS                                   | exc_type / exc_module                      |
 * |------------------------------------------------|--------------------------------------------|
 * | an error with a string `module` property       | its name / that module                      |
 * | plain `Error`                                  | `Exception` / `builtins`                    |
 * | `TypeError`, `SyntaxError`                     | same name / `builtins`                      |
 * | `RangeError`, `URIError`                       | `ValueError` / `builtins`                   |
 * | `ReferenceError`                               | `NameError` / `builtins`                    |
 * | `EvalError`                                    | `RuntimeError` / `builtins`                 |
 * | `AggregateError`                               | `Exception` / `builtins`                    |
 * | node:assert `AssertionError`                   | `AssertionError` / `builtins`               |
 * | celeriac errors that Celery also has (`TaskRevokedError`, `NotRegistered`, `Retry`, … ) | same name / `celery.exceptions` |
 * | `TimeLimitExceeded`, `SoftTimeLimitExceeded`, `WorkerLostError` | same name / `billiard.exceptions` (as Celery stores them) |
 * | celeriac `EncodeError` / `DecodeError`         | same name / `kombu.exceptions`              |
 * | other celeriac errors                          | class name / `celeriac`                     |
 * | `TaskError` (a remote failure re-thrown)       | its original excType / excMessage / excModule |
 * | any other Error subclass                       | `name` (or class name) / null (Python makes a class of that name) |
 * | a thrown non-Error value `v`                   | `Exception` / `builtins`, exc_message `[v]` |
 *
 * Only the built-in classes themselves are mapped, not their subclasses: `class Oops extends
 * TypeError` is stored as `Oops`, so that a client can tell it apart.
 */
import { CeleriacError, DecodeError, NotRegistered, Reject, TaskError } from '../errors.ts';
import { dumps } from './json.ts';
import { argsRepr, pyRepr } from './repr.ts';

export interface SerializedException {
  exc_type: string;
  exc_message: unknown[];
  exc_module: string | null;
}

const JS_BUILTINS = new Map<unknown, string>([
  [Error, 'Exception'],
  [TypeError, 'TypeError'],
  [SyntaxError, 'SyntaxError'],
  [RangeError, 'ValueError'],
  [URIError, 'ValueError'],
  [ReferenceError, 'NameError'],
  [EvalError, 'RuntimeError'],
  [AggregateError, 'Exception'],
]);

/** celeriac error classes that have a namesake in Celery (`celery/exceptions.py`) or kombu. */
const CELERY_NAMESAKES: Record<string, string> = {
  TaskRevokedError: 'celery.exceptions',
  NotRegistered: 'celery.exceptions',
  // Celery re-exports these from billiard, and stores billiard's module.
  TimeLimitExceeded: 'billiard.exceptions',
  SoftTimeLimitExceeded: 'billiard.exceptions',
  WorkerLostError: 'billiard.exceptions',
  MaxRetriesExceededError: 'celery.exceptions',
  TimeoutError: 'celery.exceptions',
  ImproperlyConfigured: 'celery.exceptions',
  Retry: 'celery.exceptions',
  Ignore: 'celery.exceptions',
  Reject: 'celery.exceptions',
  EncodeError: 'kombu.exceptions',
  DecodeError: 'kombu.exceptions',
};

/** The `result` Celery stores for a failed task (FAILURE, RETRY, REVOKED). Never throws. */
export function serializeException(err: unknown): SerializedException {
  if (err instanceof TaskError) {
    return { exc_type: err.excType, exc_message: serializableArgs(err.excMessage), exc_module: err.excModule };
  }
  if (!isErrorLike(err)) {
    return { exc_type: 'Exception', exc_message: serializableArgs([err]), exc_module: 'builtins' };
  }
  const e = err as Error & { module?: unknown; args?: unknown; code?: unknown };
  const args = serializableArgs(Array.isArray(e.args) ? e.args : defaultArgs(err));
  const name = typeName(err);
  if (typeof e.module === 'string' && e.module) return { exc_type: name, exc_message: args, exc_module: e.module };

  const builtin = JS_BUILTINS.get(Object.getPrototypeOf(err)?.constructor);
  if (builtin) return { exc_type: builtin, exc_message: args, exc_module: 'builtins' };
  if (e.name === 'AssertionError' && e.code === 'ERR_ASSERTION') {
    return { exc_type: 'AssertionError', exc_message: args, exc_module: 'builtins' };
  }
  if (err instanceof CeleriacError) {
    return { exc_type: name, exc_message: args, exc_module: CELERY_NAMESAKES[name] ?? 'celeriac' };
  }
  return { exc_type: name, exc_message: args, exc_module: null };
}

/** Python's `exc.args` for our errors that carry more than a message. */
function defaultArgs(err: Error): unknown[] {
  if (err instanceof NotRegistered) return [err.taskName]; // NotRegistered('wiretasks.nope') [cap redis-handmade-acceptance.json]
  if (err instanceof Reject) return [err.reason, err.requeue];
  return err.message === '' ? [] : [err.message];
}

/** `err.name` when set on the error itself, else the class name (an inherited "Error" would hide a subclass). */
function typeName(err: Error): string {
  if (Object.hasOwn(err, 'name') && typeof err.name === 'string' && err.name) return err.name;
  const ctor = (Object.getPrototypeOf(err) as { constructor?: { name?: unknown } } | null)?.constructor?.name;
  if (typeof ctor === 'string' && ctor && ctor !== 'Object') return ctor;
  return typeof err.name === 'string' && err.name ? err.name : 'Error';
}

/** Like Celery's `ensure_serializable`: items JSON cannot hold are replaced by their repr. */
function serializableArgs(args: readonly unknown[]): unknown[] {
  return args.map((a) => {
    try {
      dumps(a);
      return a;
    } catch {
      return isErrorLike(a) ? `${typeName(a)}(${pyRepr(a.message)})` : pyRepr(a);
    }
  });
}

/** Python's `str(exc)`: '' for no args, str(arg) for one, the tuple repr for several. */
function excStr(args: readonly unknown[]): string {
  if (args.length === 0) return '';
  if (args.length === 1) return typeof args[0] === 'string' ? args[0] : pyRepr(args[0]);
  return argsRepr([...args]);
}

/**
 * A Python-looking traceback for the `traceback` field of a result meta and `task-failed` events:
 *
 *   Traceback (most recent call last):
 *     at outer (file:///app/tasks.js:10:5)
 *     at inner (file:///app/tasks.js:3:11)
 *   ValueError: bad value
 *
 * The frames are the JS stack's, oldest first as Python prints them; the last line is Python's
 * `format_exception_only` of the serialized exception (module-qualified unless builtins). A `cause`
 * chain is printed first, joined by Python's "direct cause" sentence.
 */
export function formatTraceback(err: unknown): string {
  return formatChain(err, new Set());
}

function formatChain(err: unknown, seen: Set<unknown>): string {
  seen.add(err);
  let prefix = '';
  const cause = isErrorLike(err) ? err.cause : undefined;
  if (isErrorLike(cause) && !seen.has(cause)) {
    prefix = formatChain(cause, seen) + '\nThe above exception was the direct cause of the following exception:\n\n';
  }
  const frames = isErrorLike(err) && typeof err.stack === 'string'
    ? err.stack.split('\n').filter((l) => /^\s+at /.test(l)).map((l) => '  ' + l.trim()).reverse()
    : [];
  const exc = serializeException(err);
  const type = exc.exc_module && exc.exc_module !== 'builtins' && exc.exc_module !== '__main__' ? `${exc.exc_module}.${exc.exc_type}` : exc.exc_type;
  const message = excStr(exc.exc_message);
  const last = message ? `${type}: ${message}` : type;
  return prefix + ['Traceback (most recent call last):', ...frames, last].join('\n') + '\n';
}

/**
 * The TaskError a client throws for a FAILURE/RETRY/REVOKED meta. Accepts the whole meta
 * (`{status, result: {exc_type, …}, traceback, task_id}`) or just its `result`, with the traceback
 * and task id given separately. A non-list `exc_message` (older Celery) becomes a one-item list.
 * Throws DecodeError when there is no `exc_type`.
 */
export function deserializeException(meta: unknown, traceback?: string | null, taskId?: string): TaskError {
  let exc = meta;
  if (isObject(meta) && 'status' in meta && 'result' in meta) {
    exc = meta.result;
    traceback ??= typeof meta.traceback === 'string' ? meta.traceback : null;
    taskId ??= typeof meta.task_id === 'string' ? meta.task_id : undefined;
  }
  if (!isObject(exc) || typeof exc.exc_type !== 'string' || exc.exc_type === '') {
    let shown: string;
    try {
      shown = dumps(exc).slice(0, 200);
    } catch {
      shown = String(exc);
    }
    throw new DecodeError(`stored exception has no "exc_type": ${shown}`, meta);
  }
  const message = exc.exc_message;
  const args = Array.isArray(message) ? message : message === undefined || message === null ? [] : [message];
  const module = typeof exc.exc_module === 'string' ? exc.exc_module : null;
  return new TaskError(exc.exc_type, args, module, traceback ?? null, taskId);
}

/** An Error, or an error from another realm (vm context) that `instanceof` does not recognise. */
function isErrorLike(v: unknown): v is Error {
  return v instanceof Error || (isObject(v) && typeof v.message === 'string' && typeof v.name === 'string' && typeof v.stack === 'string');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
