import { ConfigurationError } from '../errors.ts';
import { COMPRESSIONS, compressionType } from '../protocol/compression.ts';
import { isSerializer } from '../protocol/serializers.ts';
import { didYouMean } from '../common/did-you-mean.ts';
import { parseRate } from '../common/rate.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ErrorClass = abstract new (...args: any[]) => Error;

/** A declared parameter: its name, or its name and the default used when a caller gives none. */
export type ParamSpec = string | { readonly name: string; readonly default: unknown };

/** Per-task options, as Celery's task attributes in camelCase. */
export interface TaskOptions {
  /** The task name every client uses to call it, e.g. `tasks.add`. */
  name: string;
  /** Pass the task context as the first argument (Celery's `bind=True`). */
  bind?: boolean;
  /** Retries allowed before MaxRetriesExceededError (default 3; null = forever). */
  maxRetries?: number | null;
  /** Seconds before a retry when no countdown is given (default 180). */
  defaultRetryDelay?: number;
  /** Error classes that trigger an automatic retry. */
  autoretryFor?: ErrorClass[];
  /** Exponential backoff for autoretry: true = 1 s base, or the base in seconds. */
  retryBackoff?: boolean | number;
  /** Upper bound of the backoff, seconds (default 600). */
  retryBackoffMax?: number;
  /** Randomize the backoff delay (default true). */
  retryJitter?: boolean;
  /** Acknowledge after the task has run rather than before. */
  acksLate?: boolean;
  /** With acksLate: requeue the message when the worker dies while running it. */
  rejectOnWorkerLost?: boolean;
  ignoreResult?: boolean;
  /** Store a STARTED state when the task begins. */
  trackStarted?: boolean;
  /** Seconds after which the task's AbortSignal fires with SoftTimeLimitExceeded. */
  softTimeLimit?: number | null;
  /** Seconds after which the task is failed with TimeLimitExceeded. */
  timeLimit?: number | null;
  /** Default expiry in seconds from sending, or a date. */
  expires?: number | Date | null;
  queue?: string;
  priority?: number;
  serializer?: string;
  /** Compress the messages of this task: `zlib` or `brotli` (Celery's `compression`). */
  compression?: string;
  /** Per-worker rate limit: `10/s`, `100/m`, `1000/h` (Celery's `rate_limit`). */
  rateLimit?: string | number | null;
  /**
   * The names of the task's parameters (after `self` for bound tasks), in order: keyword arguments
   * (`add.delay(2, y=3)` from Python) then land in their positions, as in Python. Without it they
   * arrive as one trailing object argument. `true` reads the names from the function's source
   * (plain parameter names only; not with a minifier that renames them).
   */
  params?: readonly ParamSpec[] | true;
}

const KNOWN: ReadonlySet<string> = new Set([
  'name', 'bind', 'maxRetries', 'defaultRetryDelay', 'autoretryFor', 'retryBackoff', 'retryBackoffMax', 'retryJitter',
  'acksLate', 'rejectOnWorkerLost', 'ignoreResult', 'trackStarted', 'softTimeLimit', 'timeLimit', 'expires', 'queue',
  'priority', 'serializer', 'compression', 'rateLimit', 'params',
]);

export function validateTaskOptions(o: TaskOptions): void {
  const where = `task ${JSON.stringify(o.name)}`;
  if (typeof o.name !== 'string' || o.name.length === 0) {
    throw new ConfigurationError('a task needs a non-empty string name, e.g. app.task(\'tasks.add\', fn)');
  }
  for (const key of Object.keys(o)) {
    if (!KNOWN.has(key)) {
      const hint = didYouMean(key, [...KNOWN]);
      throw new ConfigurationError(`${where}: unknown option ${JSON.stringify(key)}` + (hint ? `; did you mean ${JSON.stringify(hint)}?` : ''));
    }
  }
  const nonNegative = (k: keyof TaskOptions) => {
    const v = o[k];
    if (v !== undefined && v !== null && (typeof v !== 'number' || !(v >= 0))) {
      throw new ConfigurationError(`${where}: option ${k} must be a number of seconds ≥ 0, got ${JSON.stringify(v)}`);
    }
  };
  ['maxRetries', 'defaultRetryDelay', 'retryBackoffMax', 'softTimeLimit', 'timeLimit', 'priority'].forEach((k) => nonNegative(k as keyof TaskOptions));
  if (o.autoretryFor && (!Array.isArray(o.autoretryFor) || o.autoretryFor.some((c) => typeof c !== 'function'))) {
    throw new ConfigurationError(`${where}: autoretryFor must be a list of error classes, e.g. [TypeError]`);
  }
  if (o.rateLimit !== undefined) {
    try {
      parseRate(o.rateLimit);
    } catch (err) {
      throw new ConfigurationError(`${where}: ${(err as Error).message}`);
    }
  }
  if (o.params !== undefined && o.params !== true) {
    const names = Array.isArray(o.params) ? o.params.map((p) => (typeof p === 'string' ? p : (p as { name?: unknown } | null)?.name)) : null;
    if (!names || names.some((n) => typeof n !== 'string' || !/^[A-Za-z_$][\w$]*$/.test(n)) || new Set(names).size !== names.length) {
      throw new ConfigurationError(`${where}: params must list distinct parameter names, e.g. ['x', { name: 'y', default: 1 }]`);
    }
  }
  if (o.serializer !== undefined && !isSerializer(o.serializer)) {
    throw new ConfigurationError(`${where}: serializer ${JSON.stringify(o.serializer)} is not supported (use "json")`);
  }
  if (o.compression !== undefined && compressionType(o.compression) === undefined) {
    throw new ConfigurationError(`${where}: compression ${JSON.stringify(o.compression)} is not supported; use one of: ${COMPRESSIONS.join(', ')}`);
  }
}
