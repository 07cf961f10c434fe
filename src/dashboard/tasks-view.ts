import type { TaskMeta } from '../backend/result-backend.ts';
import { parsePythonDate } from '../protocol/json.ts';
import { pyRepr } from '../protocol/repr.ts';
import { type DashboardStore, TASK_FIELDS, type TaskRow } from './store.ts';

/**
 * Celery's `Task.as_dict()` as Flower answers it (`/api/tasks`, `/api/task/info`): every field of
 * `Task._fields`, `worker` as the hostname, `root`/`parent` as ids, `children` as a list of ids.
 */
export function flowerTask(row: TaskRow, children: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of TASK_FIELDS) {
    out[f] = row[f] ?? null;
    if (f === 'root_id') out.root = row.root_id ?? null;
    if (f === 'parent_id') out.parent = row.parent_id ?? null;
  }
  out.children = children;
  return out;
}

/** A task the events never showed, from its stored result (`result_extended` adds name, args, worker). */
export function taskFromMeta(meta: TaskMeta): Record<string, unknown> | null {
  if (meta.status === 'PENDING' && meta.date_done === null) return null;
  const row: Record<string, unknown> = Object.fromEntries(TASK_FIELDS.map((f) => [f, null]));
  const done = meta.date_done ? (parsePythonDate(meta.date_done)?.getTime() ?? NaN) / 1000 : null;
  const failed = meta.status === 'FAILURE';
  Object.assign(row, {
    uuid: meta.task_id,
    name: meta.name ?? null,
    state: meta.status,
    args: meta.args !== undefined && meta.args !== null ? pyRepr(meta.args) : null,
    kwargs: meta.kwargs !== undefined && meta.kwargs !== null ? pyRepr(meta.kwargs) : null,
    worker: meta.worker ?? null,
    retries: meta.retries ?? null,
    result: failed ? null : pyRepr(meta.result),
    exception: failed ? exceptionText(meta.result) : null,
    traceback: meta.traceback ?? null,
    timestamp: Number.isFinite(done) ? done : null,
    parent_id: meta.parent_id ?? null,
    routing_key: meta.queue ?? null,
  });
  if (meta.status === 'SUCCESS') row.succeeded = row.timestamp;
  if (failed) row.failed = row.timestamp;
  row.root = null;
  row.parent = row.parent_id;
  row.children = childIds(meta.children);
  return row;
}

/** `ExcType('message')`, as Celery's events show an exception. */
export function exceptionText(result: unknown): string {
  if (result && typeof result === 'object' && 'exc_type' in result) {
    const r = result as { exc_type: unknown; exc_message: unknown };
    const msg = Array.isArray(r.exc_message) ? r.exc_message.map((m) => pyRepr(m)).join(', ') : pyRepr(r.exc_message);
    return `${String(r.exc_type)}(${msg})`;
  }
  return pyRepr(result);
}

function childIds(children: unknown): string[] {
  const ids: string[] = [];
  const walk = (c: unknown): void => {
    if (Array.isArray(c)) {
      if (typeof c[0]?.[0] === 'string') ids.push(c[0][0] as string);
      else c.forEach(walk);
    }
  };
  if (Array.isArray(children)) children.forEach(walk);
  return ids;
}

/** Rows with their children, one query per 500 rows. */
export function withChildren(store: DashboardStore, rows: TaskRow[]): Record<string, unknown>[] {
  const kids = new Map<string, string[]>();
  for (let i = 0; i < rows.length; i += 500) {
    const ids = rows.slice(i, i + 500).map((r) => r.uuid);
    const found = store.db.prepare(`SELECT parent_id, uuid FROM tasks WHERE parent_id IN (${ids.map(() => '?').join(',')}) ORDER BY seen`).all(...ids) as { parent_id: string; uuid: string }[];
    for (const f of found) kids.set(f.parent_id, [...(kids.get(f.parent_id) ?? []), f.uuid]);
  }
  return rows.map((r) => flowerTask(r, kids.get(r.uuid) ?? []));
}
