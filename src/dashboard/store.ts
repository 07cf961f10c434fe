import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { ConfigurationError } from '../errors.ts';
import { READY_STATES } from '../protocol/states.ts';

/**
 * The dashboard's history: one row per task, one per worker, in a SQLite file, so a restart
 * keeps what was seen (Flower keeps it in memory). Columns are Celery's `Task._fields`;
 * `seen` (first sighting, never changes) orders the list so live updates do not reshuffle it.
 */
export const TASK_FIELDS = [
  'uuid', 'name', 'state', 'received', 'sent', 'started', 'rejected', 'succeeded', 'failed', 'retried', 'revoked',
  'args', 'kwargs', 'eta', 'expires', 'retries', 'worker', 'result', 'exception', 'timestamp', 'runtime', 'traceback',
  'exchange', 'routing_key', 'clock', 'client', 'root_id', 'parent_id',
] as const;
export type TaskField = (typeof TASK_FIELDS)[number];
export type TaskRow = { [K in TaskField]: K extends 'uuid' ? string : unknown } & { seen: number };

const SCHEMA = `
CREATE TABLE IF NOT EXISTS tasks (
  ${TASK_FIELDS.map((f) => (f === 'uuid' ? 'uuid TEXT PRIMARY KEY' : `${f}`)).join(',\n  ')},
  seen REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_seen ON tasks (seen);
CREATE INDEX IF NOT EXISTS tasks_state ON tasks (state, seen);
CREATE INDEX IF NOT EXISTS tasks_name ON tasks (name, seen);
CREATE INDEX IF NOT EXISTS tasks_worker ON tasks (worker, seen);
CREATE INDEX IF NOT EXISTS tasks_parent ON tasks (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS tasks_root ON tasks (root_id) WHERE root_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS workers (hostname TEXT PRIMARY KEY, info TEXT NOT NULL);
`;

const COLS = [...TASK_FIELDS, 'seen'];
const UPDATABLE = COLS.filter((c) => c !== 'uuid' && c !== 'seen' && c !== 'state');
const READY_LIST = [...READY_STATES].map((s) => `'${s}'`).join(', ');
const UPSERT = `INSERT INTO tasks (${COLS.join(', ')}) VALUES (${COLS.map((c) => '@' + c).join(', ')})
  ON CONFLICT (uuid) DO UPDATE SET
  ${UPDATABLE.map((c) => `${c} = coalesce(excluded.${c}, ${c})`).join(',\n  ')},
  state = CASE WHEN excluded.state IS NULL OR (excluded.state = 'PENDING' AND state IS NOT NULL) THEN state
               WHEN state IN (${READY_LIST}) AND excluded.state NOT IN (${READY_LIST}) THEN state
               ELSE excluded.state END`;

/**
 * Which state wins when two arrive for one task, whatever their order (the client's task-sent
 * and the worker's events travel apart): PENDING never replaces another state, and a finished
 * task never goes back to running.
 */
export function mergeState(current: unknown, incoming: unknown): unknown {
  if (incoming === null || incoming === undefined) return current;
  if (incoming === 'PENDING' && current !== null && current !== undefined) return current;
  if (READY_STATES.has(String(current)) && !READY_STATES.has(String(incoming))) return current;
  return incoming;
}

export const SORT_KEYS = new Set(['name', 'state', 'received', 'started', 'seen', 'runtime']);

export interface TaskQuery {
  limit?: number;
  offset?: number;
  /** A SORT_KEYS column, `-` first for descending; default newest first. */
  sortBy?: string;
  state?: string;
  name?: string;
  worker?: string;
  /** Unix seconds, on `received` (Flower's received_start/received_end). */
  receivedStart?: number;
  receivedEnd?: number;
  /** A task id (or its start), or text found in args, kwargs, result or exception. */
  search?: string;
}

export interface StoreOptions {
  /** Tasks kept at most (oldest dropped first). */
  maxTasks: number;
  /** Hours a task is kept after it was first seen; 0 keeps them until maxTasks. */
  retentionHours: number;
}

export class DashboardStore {
  readonly db: Database.Database;
  private readonly upsert: Database.Statement;
  private readonly putWorker: Database.Statement;

  constructor(
    readonly file: string,
    readonly options: StoreOptions,
  ) {
    if (file !== ':memory:' && !fs.existsSync(path.dirname(path.resolve(file)))) {
      throw new ConfigurationError(`--db ${file}: directory ${path.dirname(path.resolve(file))} does not exist; create it or choose another file`);
    }
    if (file !== ':memory:') fs.closeSync(fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600)); // it holds task arguments
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
    this.upsert = this.db.prepare(UPSERT);
    this.putWorker = this.db.prepare('INSERT INTO workers (hostname, info) VALUES (?, ?) ON CONFLICT (hostname) DO UPDATE SET info = excluded.info');
  }

  /** Write a batch of merged task partials and worker records in one transaction. */
  write(tasks: Iterable<Partial<TaskRow> & { uuid: string; seen: number }>, workers: Iterable<{ hostname: string; info: unknown }> = []): void {
    this.db.transaction(() => {
      for (const t of tasks) {
        const row: Record<string, unknown> = {};
        for (const c of COLS) row[c] = sqlValue((t as Record<string, unknown>)[c]);
        this.upsert.run(row);
      }
      for (const w of workers) this.putWorker.run(w.hostname, JSON.stringify(w.info));
    })();
  }

  task(uuid: string): TaskRow | undefined {
    return this.db.prepare('SELECT * FROM tasks WHERE uuid = ?').get(uuid) as TaskRow | undefined;
  }

  children(uuid: string): string[] {
    return (this.db.prepare('SELECT uuid FROM tasks WHERE parent_id = ? ORDER BY seen').all(uuid) as { uuid: string }[]).map((r) => r.uuid);
  }

  /** Every task of a workflow (same root), for its graph; bounded. */
  workflow(rootId: string, limit = 500): TaskRow[] {
    return this.db.prepare('SELECT * FROM tasks WHERE root_id = ? OR uuid = ? ORDER BY seen LIMIT ?').all(rootId, rootId, limit) as TaskRow[];
  }

  query(q: TaskQuery): { total: number; tasks: TaskRow[] } {
    const where: string[] = [];
    const params: unknown[] = [];
    const eq = (col: string, v: string | undefined) => {
      if (v !== undefined && v !== '' && v !== 'All') {
        where.push(`${col} = ?`);
        params.push(v);
      }
    };
    eq('state', q.state);
    eq('name', q.name);
    eq('worker', q.worker);
    if (q.receivedStart !== undefined) {
      where.push('received >= ?');
      params.push(q.receivedStart);
    }
    if (q.receivedEnd !== undefined) {
      where.push('received <= ?');
      params.push(q.receivedEnd);
    }
    if (q.search) {
      const like = '%' + q.search.replace(/[\\%_]/g, '\\$&') + '%';
      where.push("(uuid LIKE ? ESCAPE '\\' OR args LIKE ? ESCAPE '\\' OR kwargs LIKE ? ESCAPE '\\' OR result LIKE ? ESCAPE '\\' OR exception LIKE ? ESCAPE '\\')");
      params.push(q.search.replace(/[\\%_]/g, '\\$&') + '%', like, like, like, like);
    }
    const filter = where.length ? `WHERE ${where.join(' AND ')}` : '';
    let sort = q.sortBy ?? '-seen';
    const desc = sort.startsWith('-');
    sort = sort.replace(/^-/, '');
    if (!SORT_KEYS.has(sort)) throw new ConfigurationError(`sort_by must be one of ${[...SORT_KEYS].join(', ')} (with - first for descending), got ${JSON.stringify(q.sortBy)}`);
    const page = [q.limit ?? -1, Math.max(0, q.offset ?? 0)];
    const count = () => (this.db.prepare(`SELECT count(*) AS n FROM tasks ${filter}`).get(...params) as { n: number }).n;
    if (q.search) {
      // A text search reads every row: once, in table order, counting and sorting only the rows
      // found (`+` keeps SQLite off the index, which would look each row up apart: 5× slower).
      const rows = this.db.prepare(`SELECT *, count(*) OVER () AS found FROM tasks ${filter} ORDER BY +${sort} ${desc ? 'DESC' : 'ASC'}, seen ${desc ? 'DESC' : 'ASC'} LIMIT ? OFFSET ?`)
        .all(...params, ...page) as (TaskRow & { found?: number })[];
      const total = rows[0]?.found ?? count();
      for (const r of rows) delete r.found;
      return { total, tasks: rows };
    }
    const order = `ORDER BY ${sort} ${desc ? 'DESC' : 'ASC'}${sort === 'seen' ? '' : `, seen ${desc ? 'DESC' : 'ASC'}`}`;
    const tasks = this.db.prepare(`SELECT * FROM tasks ${filter} ${order} LIMIT ? OFFSET ?`).all(...params, ...page) as TaskRow[];
    return { total: count(), tasks };
  }

  taskNames(): string[] {
    return (this.db.prepare('SELECT DISTINCT name FROM tasks WHERE name IS NOT NULL ORDER BY name').all() as { name: string }[]).map((r) => r.name);
  }

  workers(): { hostname: string; info: Record<string, unknown> }[] {
    return (this.db.prepare('SELECT hostname, info FROM workers').all() as { hostname: string; info: string }[]).map((r) => ({ hostname: r.hostname, info: JSON.parse(r.info) as Record<string, unknown> }));
  }

  count(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM tasks').get() as { n: number }).n;
  }

  /** Drop what the retention settings no longer keep; returns how many tasks went. */
  prune(now = Date.now() / 1000): number {
    let n = 0;
    if (this.options.retentionHours > 0) n += this.db.prepare('DELETE FROM tasks WHERE seen < ?').run(now - this.options.retentionHours * 3600).changes;
    const over = this.count() - this.options.maxTasks;
    if (over > 0) n += this.db.prepare('DELETE FROM tasks WHERE uuid IN (SELECT uuid FROM tasks ORDER BY seen LIMIT ?)').run(over).changes;
    return n;
  }

  close(): void {
    this.db.close();
  }
}

/** SQLite takes numbers, strings, null; anything else is kept as its JSON text. */
function sqlValue(v: unknown): unknown {
  if (v === undefined || v === null) return null;
  if (typeof v === 'number' || typeof v === 'string') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'bigint') return v.toString();
  return JSON.stringify(v);
}
