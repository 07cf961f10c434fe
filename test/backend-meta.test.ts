/**
 * The result meta as Celery's backends write it: the key-value backend writes the text without
 * building the object first, and that text must be what dumps() gives for the object Celery builds
 * ({status, result, traceback, children, date_done, group_id?, parent_id?, ...extended, task_id}).
 */
import { describe, expect, it } from 'vitest';
import { KeyValueBackend } from '../src/backend/key-value-backend.ts';
import { MemoryStore } from '../src/backend/memory/index.ts';
import type { StoreOptions } from '../src/backend/result-backend.ts';
import { dumps } from '../src/protocol/json.ts';
import { READY_STATES, type TaskState } from '../src/protocol/states.ts';

let seq = 0;

/** The memory store taking bytes as Redis' does (setBytes), so that long results are written as bytes. */
class BytesMemoryStore extends MemoryStore {
  setBytes(key: string, value: Buffer, ttlSeconds: number | null): Promise<void> {
    return this.set(key, value.toString('utf8'), ttlSeconds);
  }
}

/** The meta the way Celery's BaseKeyValueStoreBackend._store_result builds it. */
function celeryMeta(taskId: string, result: unknown, state: TaskState, opts: StoreOptions, dateDone: string | null): string {
  const meta: Record<string, unknown> = { status: state, result, traceback: opts.traceback ?? null, children: opts.children ?? [], date_done: dateDone };
  if (opts.groupId) meta.group_id = opts.groupId;
  if (opts.parentId) meta.parent_id = opts.parentId;
  Object.assign(meta, opts.extended);
  meta.task_id = taskId;
  return dumps(meta);
}

describe('stored result meta', () => {
  const cases: [string, unknown, TaskState, StoreOptions][] = [
    ['a plain success', 5, 'SUCCESS', {}],
    ['a success with nothing returned', undefined, 'SUCCESS', {}],
    ['a structured result, non-ASCII', { a: [1, 'é', null], b: new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6)) }, 'SUCCESS', {}],
    ['a failure with its traceback', { exc_type: 'ValueError', exc_message: ['boom'], exc_module: 'builtins' }, 'FAILURE', { traceback: 'Traceback (most recent call last):\n  ValueError: boom\n' }],
    ['a state that is not ready (no date)', { pid: 1 }, 'STARTED', {}],
    ['group, parent, children and extended fields', 'x', 'SUCCESS', {
      groupId: 'g-1', parentId: 'p-1', children: [[['c-1', null], null]],
      extended: { name: 'tasks.add', args: [1, 2], kwargs: {}, worker: 'w@h', retries: 0, queue: 'celery', skipped: undefined },
    }],
    // From 16 KiB on, a string that needs no escape is written into the bytes as it is.
    ['a long ASCII string, with group, parent and extended fields', 'abc '.repeat(8192), 'SUCCESS', {
      groupId: 'g-2', parentId: 'p-2', extended: { name: 'tasks.echo', args: ['é'], worker: 'w@h' },
    }],
    ['a long string with quotes and newlines', 'say "hi"\n'.repeat(4096), 'SUCCESS', {}],
    ['a long non-ASCII string', 'é'.repeat(20_000), 'SUCCESS', {}],
  ];
  for (const [what, result, state, opts] of cases) for (const Store of [MemoryStore, BytesMemoryStore]) {
    it(`${what}, stored as ${Store === MemoryStore ? 'text' : 'bytes'}: the text is dumps() of Celery's meta object, keys in Celery's order`, async () => {
      const store = new Store(new URL(`memory://meta-${seq++}`));
      const backend = new KeyValueBackend(store);
      const id = `task-${seq}`;
      await backend.storeResult(id, result, state, opts);
      const text = (await store.get(backend.key(id)))!;
      const dateDone = READY_STATES.has(state) ? (/"date_done": "([^"]+)"/.exec(text)?.[1] ?? 'missing') : null;
      expect(text).toBe(celeryMeta(id, result, state, opts, dateDone));
    });
  }
});
