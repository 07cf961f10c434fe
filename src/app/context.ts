import type { DeliveryInfo } from '../protocol/message.ts';
import type { TaskState } from '../protocol/states.ts';
import type { TaskRequest } from '../protocol/task-message.ts';

/** `self.request` of a bound task. */
export interface RequestContext extends Omit<TaskRequest, 'name'> {
  task: string;
  hostname: string;
  deliveryInfo: DeliveryInfo | null;
  /** The message properties as received (`correlation_id`, `reply_to`, `priority`, `delivery_mode`, …), as Celery's `request.properties`. */
  properties: Record<string, unknown>;
  isEager: boolean;
}

export interface RetryOptions {
  /** Seconds before the retry runs (default: the task's defaultRetryDelay). */
  countdown?: number;
  eta?: Date;
  /** The error that caused the retry; re-thrown when retries are exhausted. */
  exc?: unknown;
  /** Overrides the task's maxRetries for this call. */
  maxRetries?: number | null;
  args?: unknown[];
  kwargs?: Record<string, unknown>;
  queue?: string;
  /** The retry's priority (default: the priority the message was delivered with). */
  priority?: number;
}

/** What a bound task (`bind: true`) receives as its first argument (Celery's `self`). */
export interface TaskContext {
  readonly name: string;
  readonly request: RequestContext;
  /** Fires on a soft time limit, a revoke with terminate, or a worker shutdown. */
  readonly signal: AbortSignal;
  /**
   * Re-publish this task and end the current run. Always rejects: use `return self.retry(...)`
   * or `await self.retry(...)`.
   */
  retry(options?: RetryOptions): Promise<never>;
  /** Store a custom state (e.g. PROGRESS) with metadata, visible to clients. */
  updateState(state: TaskState, meta?: unknown): Promise<void>;
}
