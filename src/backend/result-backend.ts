/**
 * What the app, the worker and the canvas need from a result backend (Celery's `Backend`):
 * KeyValueBackend (Redis, SQLite, memory: results stored under keys) and RpcBackend (`rpc://`:
 * results sent as messages to the client's reply queue) implement it.
 */
import type { TaskState } from '../protocol/states.ts';
import type { ChordPart, ChordProgress } from './types.ts';

/** What Celery stores under `celery-task-meta-<id>` (`celery/backends/base.py`). */
export interface TaskMeta {
  status: TaskState;
  result: unknown;
  traceback: string | null;
  children: unknown[];
  date_done: string | null;
  group_id?: string;
  parent_id?: string;
  task_id: string;
  [extended: string]: unknown;
}

export interface StoreOptions {
  traceback?: string | null;
  groupId?: string | null;
  parentId?: string | null;
  children?: unknown[];
  /** result_extended fields: name, args, kwargs, worker, retries, queue. */
  extended?: Record<string, unknown>;
  /** The request's `reply_to` (the sending client's oid): where `rpc://` sends the state. */
  replyTo?: string | null;
  /** The request's `correlation_id` (default: the task id), sent with the state by `rpc://`. */
  correlationId?: string | null;
}

export interface ResultBackend {
  /** For banners and logs (password masked where there is one). */
  readonly url: string;

  storeResult(taskId: string, result: unknown, state: TaskState, opts?: StoreOptions): Promise<void>;
  /** Optional: send the results stored in this turn now rather than at its end. */
  flushWrites?(): void;
  /** The error is the backend being unreachable for now (it may pass), not a bad request. */
  isUnavailable?(err: unknown): boolean;
  getTaskMeta(taskId: string): Promise<TaskMeta>;
  /** Several metas at once (PENDING for the unknown ones). */
  getTaskMetas(taskIds: readonly string[]): Promise<TaskMeta[]>;
  /**
   * Wait until the task is ready; resolves with its meta, or with the last meta seen at `timeoutMs`.
   * `justSent`: this client sent the task moments ago, so it is almost surely not ready yet.
   */
  waitForReady(taskId: string, timeoutMs: number, signal?: AbortSignal, justSent?: boolean): Promise<TaskMeta>;
  forget(taskId: string): Promise<void>;

  /**
   * Called by the client before it sends a task whose result it wants, replies going to `replyTo`
   * (Celery's `on_task_call`): `rpc://` declares and consumes its reply queue there.
   */
  onTaskCall?(replyTo: string): Promise<void>;

  /** Revokes, for transports without broadcast: a mark the worker checks before starting a task. */
  markRevoked(taskId: string, ttlSeconds?: number): Promise<void>;
  revokedAmong(taskIds: readonly string[]): Promise<Set<string>>;
  /**
   * Optional: the tasks marked revoked at or after `since` (null: every live mark), and the
   * `since` of the next call. With it a worker follows the marks instead of reading them per batch.
   */
  revokedSince?(since: number | null): Promise<{ ids: string[]; next: number }>;

  /** Throws when the backend cannot join chords (Celery's `ensure_chords_allowed`). */
  ensureChordsAllowed(): void;
  saveGroup(groupId: string, tuple: unknown): Promise<void>;
  restoreGroup(groupId: string): Promise<unknown>;
  deleteGroup(groupId: string): Promise<void>;
  setChordSize(groupId: string, size: number): Promise<void>;
  /**
   * One more part for a chord whose header is running (Celery's `add_to_chord`: INCRBY 1 of
   * `celery-taskset-meta-<gid>.t`, added to the size when parts are counted).
   */
  addToChord(groupId: string): Promise<void>;
  addChordPart(groupId: string, part: ChordPart): Promise<ChordProgress>;
  chordParts(groupId: string): Promise<string[]>;
  deleteChord(groupId: string): Promise<void>;

  close(): Promise<void>;
}

export function pendingMeta(taskId: string): TaskMeta {
  return { status: 'PENDING', result: null, traceback: null, children: [], date_done: null, task_id: taskId };
}
