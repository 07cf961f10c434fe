/**
 * The client's view of its reply queue: the latest state received for each task id, and who is
 * waiting for one. States arrive for any task this client sent, in any order, before or after
 * anyone asks for them (Celery's pending-messages buffer), so every one is kept, up to a bound.
 */
import { dumps, loads } from '../../protocol/json.ts';
import type { Message } from '../../protocol/message.ts';
import { READY_STATES, type TaskState } from '../../protocol/states.ts';
import { pendingMeta, type StoreOptions, type TaskMeta } from '../result-backend.ts';
import { bodyText } from '../../protocol/serializers.ts';

/** States kept at most; the oldest goes first beyond it. */
export const MAX_KEPT = 65_536;

/** Called with each state received for its task; `done` ends the wait whatever the state. */
type Waiter = (meta: TaskMeta, done?: boolean) => void;

export class Replies {
  private readonly metas = new Map<string, TaskMeta>();
  private readonly waiters = new Map<string, Set<Waiter>>();

  get(taskId: string): TaskMeta | undefined {
    return this.metas.get(taskId);
  }

  forget(taskId: string): void {
    this.metas.delete(taskId);
  }

  /** Record a state message; a SUCCESS is never replaced (a late duplicate delivery must not undo it). */
  received(meta: TaskMeta): void {
    const id = meta.task_id;
    const current = this.metas.get(id);
    if (current?.status === 'SUCCESS' && meta.status !== 'SUCCESS') return;
    this.metas.delete(id);
    this.metas.set(id, meta);
    if (this.metas.size > MAX_KEPT) this.metas.delete(this.metas.keys().next().value as string);
    for (const w of [...(this.waiters.get(id) ?? [])]) w(meta);
  }

  /** Resolves with the task's meta once it is ready, or with what is known at `timeoutMs` / abort. */
  waitForReady(taskId: string, timeoutMs: number, signal?: AbortSignal): Promise<TaskMeta> {
    const known = this.metas.get(taskId);
    if ((known && READY_STATES.has(known.status)) || timeoutMs <= 0 || signal?.aborted) return Promise.resolve(known ?? pendingMeta(taskId));
    return new Promise((resolve) => {
      const set = this.waiters.get(taskId) ?? new Set<Waiter>();
      this.waiters.set(taskId, set);
      const finish = (meta: TaskMeta) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        set.delete(waiter);
        if (set.size === 0 && this.waiters.get(taskId) === set) this.waiters.delete(taskId);
        resolve(meta);
      };
      const latest = () => this.metas.get(taskId) ?? pendingMeta(taskId);
      const waiter: Waiter = (meta, done) => {
        if (done || READY_STATES.has(meta.status)) finish(meta);
      };
      const onAbort = () => finish(latest());
      const timer = setTimeout(() => finish(latest()), timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      set.add(waiter);
    });
  }

  /** End every wait with what is known (the backend closes). */
  wakeAll(): void {
    for (const [id, set] of [...this.waiters]) for (const w of [...set]) w(this.metas.get(id) ?? pendingMeta(id), true);
  }
}

/**
 * The state message a worker sends (`RPCBackend._to_result`): exactly these five fields, no
 * date_done; published with correlation_id = the request's correlation id (or the task id).
 */
export function replyMessage(taskId: string, result: unknown, state: TaskState, opts: StoreOptions): Message {
  const body = { task_id: taskId, status: state, result, traceback: opts.traceback ?? null, children: opts.children ?? [] };
  return {
    headers: {},
    // result_persistent is off by default in Celery: delivery_mode 1 (transient).
    properties: { correlation_id: opts.correlationId ?? taskId, delivery_mode: 1, priority: 0 },
    contentType: 'application/json',
    contentEncoding: 'utf-8',
    body: Buffer.from(dumps(body), 'utf8'),
  };
}

/** A received state message as a TaskMeta; null when it is not one (wrong encoding, no task id or status). */
export function metaFromReply(message: Message): TaskMeta | null {
  if (!/json/.test(message.contentType)) return null;
  let body: Record<string, unknown>;
  try {
    body = loads(bodyText(message)) as Record<string, unknown>;
  } catch {
    return null;
  }
  if (body === null || typeof body !== 'object') return null;
  // The consumer keys by the body's task_id (Celery's on_state_change); old peers only set correlation_id.
  const taskId = typeof body.task_id === 'string' ? body.task_id : message.properties.correlation_id;
  if (typeof taskId !== 'string' || typeof body.status !== 'string') return null;
  return {
    ...body,
    status: body.status,
    result: body.result ?? null,
    traceback: typeof body.traceback === 'string' ? body.traceback : null,
    children: Array.isArray(body.children) ? body.children : [],
    date_done: typeof body.date_done === 'string' ? body.date_done : null,
    task_id: taskId,
  };
}
