/**
 * The only Redis databases the test suite touches on the shared server (127.0.0.1:6379), chosen
 * here and nowhere else. `CELERIAC_TEST_REDIS_DB=N` moves them to N and N+1, `=N,M` to N and M.
 *
 * - TEST_DB (default 10): brokers and everything else a test writes, always under a key prefix
 *   unique to the test file and run (runPrefix; kombu's and celeriac's `global_keyprefix` prefix
 *   pub/sub channels too), deleted by that prefix when the file ends.
 * - RESULTS_DB (default 11): Redis result backends. Celery 5.2's has no key prefix, so its keys
 *   are per task id (`celery-task-meta-<id>`, …): a test deletes the ids it created
 *   (trackResults). Anything found here after a run is a leak.
 *
 * No test may empty a database: other programs, and other test runs, share these.
 */
import { Redis } from 'ioredis';

function parseDbs(value: string | undefined): [number, number] {
  if (!value) return [10, 11];
  const dbs = value.split(',').map((s) => Number(s.trim()));
  if (dbs.length > 2 || dbs.some((n) => !Number.isInteger(n) || n < 0)) {
    throw new Error(`CELERIAC_TEST_REDIS_DB=${JSON.stringify(value)}: expected a database number or two, e.g. 10 or 10,11`);
  }
  return [dbs[0]!, dbs[1] ?? dbs[0]! + 1];
}

export const [TEST_DB, RESULTS_DB] = parseDbs(process.env.CELERIAC_TEST_REDIS_DB);
export const REDIS_HOST = '127.0.0.1:6379';
export const TEST_REDIS_URL = `redis://${REDIS_HOST}/${TEST_DB}`;
export const RESULTS_REDIS_URL = `redis://${REDIS_HOST}/${RESULTS_DB}`;

/** The prefix of every key a test writes in TEST_DB (.ci/run checks none is left). */
export const TEST_KEY_PREFIX = 'celeriac-test-';

/** A prefix no other run shares. */
export function runPrefix(name: string): string {
  return `${TEST_KEY_PREFIX}${name}-${process.pid}-${Date.now().toString(36)}:`;
}

export function redisClient(db: number): Redis {
  return new Redis({ host: '127.0.0.1', port: 6379, db, lazyConnect: true, maxRetriesPerRequest: 2 });
}

/** Delete every key starting with `prefix` in `db`. */
export async function deleteByPrefix(db: number, prefix: string): Promise<void> {
  const r = redisClient(db);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`, 'COUNT', 1000);
      if (keys.length > 0) await r.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    r.disconnect();
  }
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;

/** Anything that names task or group ids: an id, a result (`.id`, `.parent`, `.results`), or a list of them. */
export type HasIds = string | null | undefined | { id?: unknown; parent?: unknown; results?: unknown } | HasIds[];

/**
 * The result keys of the tasks and groups a test created in RESULTS_DB. `add` takes ids or
 * results (with their parents and group members); `cleanup` also follows every id named in
 * the stored metas (children, chord bodies, groups), then deletes them all.
 */
export function trackResults(db = RESULTS_DB) {
  const ids = new Set<string>();
  const add = (...items: HasIds[]): void => {
    for (const item of items) {
      if (!item) continue;
      if (typeof item === 'string') {
        for (const id of item.match(UUID) ?? []) ids.add(id);
      } else if (Array.isArray(item)) {
        add(...item);
      } else {
        if (typeof item.id === 'string') ids.add(item.id);
        add(item.parent as HasIds, item.results as HasIds);
      }
    }
  };
  const cleanup = async (): Promise<void> => {
    const r = redisClient(db);
    try {
      const done = new Set<string>();
      for (let todo = [...ids]; todo.length > 0; todo = [...ids].filter((id) => !done.has(id))) {
        for (const id of todo) done.add(id);
        const metas = await r.mget(...todo.flatMap((id) => [`celery-task-meta-${id}`, `celery-taskset-meta-${id}`]));
        for (const meta of metas) if (meta) add(meta);
      }
      const keys = [...done].flatMap((id) => [`celery-task-meta-${id}`, `celery-taskset-meta-${id}`,
        `celery-taskset-meta-${id}.j`, `celery-taskset-meta-${id}.t`, `celery-taskset-meta-${id}.s`, `chord-unlock-${id}`]);
      for (let i = 0; i < keys.length; i += 1000) await r.del(...keys.slice(i, i + 1000));
    } finally {
      r.disconnect();
    }
  };
  return { ids, add, cleanup };
}
