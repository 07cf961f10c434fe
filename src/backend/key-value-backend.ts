import { dumps, loads, naiveUtcIso } from '../protocol/json.ts';
import { READY_STATES, type TaskState } from '../protocol/states.ts';
import type { KeyValueStore } from './types.ts';

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
}

const TASK_PREFIX = 'celery-task-meta-';
const REVOKED_PREFIX = 'celeriac-revoked-';

/** Celery's result bookkeeping, written once over any KeyValueStore. */
export class KeyValueBackend {
  constructor(
    readonly store: KeyValueStore,
    /** Seconds a result is kept (`result_expires`); null keeps it forever. */
    readonly expires: number | null = 86_400,
  ) {}

  get url(): string {
    return this.store.url;
  }

  key(taskId: string): string {
    return TASK_PREFIX + taskId;
  }

  async storeResult(taskId: string, result: unknown, state: TaskState, opts: StoreOptions = {}): Promise<void> {
    const key = this.key(taskId);
    if (state !== 'SUCCESS') {
      // Celery never overwrites a SUCCESS (a late duplicate delivery must not undo it).
      const current = await this.store.get(key);
      if (current && (loads(current) as TaskMeta).status === 'SUCCESS') return;
    }
    const meta: Record<string, unknown> = {
      status: state,
      result,
      traceback: opts.traceback ?? null,
      children: opts.children ?? [],
      date_done: READY_STATES.has(state) ? naiveUtcIso(new Date()) : null,
    };
    if (opts.groupId) meta.group_id = opts.groupId;
    if (opts.parentId) meta.parent_id = opts.parentId;
    Object.assign(meta, opts.extended);
    meta.task_id = taskId;
    await this.store.set(key, dumps(meta), this.expires);
  }

  async getTaskMeta(taskId: string): Promise<TaskMeta> {
    return this.parseMeta(taskId, await this.store.get(this.key(taskId)));
  }

  private parseMeta(taskId: string, raw: string | null): TaskMeta {
    return raw === null ? pendingMeta(taskId) : (loads(raw) as TaskMeta);
  }

  /** Wait until the task is ready; resolves with its meta, or with the last meta seen at `timeoutMs`. */
  async waitForReady(taskId: string, timeoutMs: number, signal?: AbortSignal): Promise<TaskMeta> {
    const deadline = Date.now() + timeoutMs;
    const key = this.key(taskId);
    for (;;) {
      const raw = await this.store.get(key);
      const meta = this.parseMeta(taskId, raw);
      const left = deadline - Date.now();
      if (READY_STATES.has(meta.status) || left <= 0 || signal?.aborted) return meta;
      await this.store.waitForChange(key, left, signal, raw);
    }
  }

  async forget(taskId: string): Promise<void> {
    await this.store.delete(this.key(taskId));
  }

  /** Revokes, for transports without broadcast: a mark the worker checks before starting a task. */
  async markRevoked(taskId: string, ttlSeconds = 10_800): Promise<void> {
    await this.store.set(REVOKED_PREFIX + taskId, '1', ttlSeconds);
  }

  /** Which of these tasks are marked revoked, in one round trip. */
  async revokedAmong(taskIds: readonly string[]): Promise<Set<string>> {
    const marks = await this.store.mget(taskIds.map((id) => REVOKED_PREFIX + id));
    return new Set(taskIds.filter((_, i) => marks[i] !== null));
  }

  close(): Promise<void> {
    return this.store.close();
  }
}

export function pendingMeta(taskId: string): TaskMeta {
  return { status: 'PENDING', result: null, traceback: null, children: [], date_done: null, task_id: taskId };
}
