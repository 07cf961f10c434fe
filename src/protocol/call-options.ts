import type { SignatureDict } from './task-message.ts';

/** Celery's calling options (`apply_async`), in camelCase. */
export interface CallOptions {
  /** Seconds from now before the task may run. */
  countdown?: number;
  /** The earliest time the task may run. */
  eta?: Date;
  /** Seconds from now, or a date, after which the task is revoked instead of run. */
  expires?: number | Date;
  queue?: string;
  /** Recorded as the delivery's routing key; celeriac routes by queue, as Celery does with `queue=`. */
  routingKey?: string;
  exchange?: string;
  priority?: number;
  /** Custom headers, merged into the message headers. */
  headers?: Record<string, unknown>;
  taskId?: string;
  ignoreResult?: boolean;
  timeLimit?: number | null;
  softTimeLimit?: number | null;
  /** Display name in logs and monitors. */
  shadow?: string;
  /** Retry publishing when the broker is unreachable (default: the app's taskPublishRetry). */
  retry?: boolean;
  retryPolicy?: Partial<{ maxRetries: number; intervalStart: number; intervalStep: number; intervalMax: number }>;
  /** Signatures applied with the result on success (Celery's `link`). */
  link?: SignatureDict | SignatureDict[];
  /** Signatures applied on failure (Celery's `link_error`). */
  linkError?: SignatureDict | SignatureDict[];
  /** Compress the body (Celery's `compression`): `zlib` (also `gzip`, as kombu names it) or `brotli`. */
  compression?: string;
}

/** Options a worker sets when a task sends another (lineage, retries, group membership). */
export interface InternalCallOptions extends CallOptions {
  parentId?: string | null;
  rootId?: string | null;
  retries?: number;
  group?: string | null;
  groupIndex?: number | null;
  chain?: SignatureDict[] | null;
  chord?: SignatureDict | null;
  properties?: Record<string, unknown>;
  serializer?: string;
}
