import { dumps, loads, naiveUtcIso, plainLongString } from '../protocol/json.ts';
import { READY_STATES, type TaskState } from '../protocol/states.ts';
import { pendingMeta, type ResultBackend, type StoreOptions, type TaskMeta } from './result-backend.ts';
import type { ChordPart, ChordProgress, KeyValueStore } from './types.ts';

export { pendingMeta, type StoreOptions, type TaskMeta };

const TASK_PREFIX = 'celery-task-meta-';
const GROUP_PREFIX = 'celery-taskset-meta-';
const REVOKED_PREFIX = 'celeriac-revoked-';
/** The marks in the order they were made, where the store keeps such an index (Redis). */
const REVOKES_INDEX = 'celeriac-revokes';
/** Celery's revoked set: 50,000 ids, three hours. */
const REVOKES_KEPT = 50_000;
const REVOKE_TTL_S = 10_800;
/** Generic chord join: parts without a group_index are kept after every indexed one (Celery's `+inf` score). */
const UNINDEXED = 1_000_000_000;

/**
 * A string result from this length on goes to a store that takes bytes (setBytes) written into the
 * meta's bytes as it is, not joined to the rest first: the joined text would be copied whole once
 * more (V8 flattens it) before the store encodes it, a copy per result that a 100 KB drain pays in
 * collection time.
 */
const LONG_RESULT = 16 * 1024;

/** `head + "<plain>" + tail` as UTF-8; `plain` is ASCII needing no escape (plainLongString), so written byte for byte. */
function utf8Of(head: string, plain: string, tail: string): Buffer {
  const headBytes = Buffer.byteLength(head);
  const out = Buffer.allocUnsafe(headBytes + plain.length + Buffer.byteLength(tail));
  out.write(head, 0, 'utf8');
  out.write(plain, headBytes, 'latin1');
  out.write(tail, headBytes + plain.length, 'utf8');
  return out;
}

/** Celery's result bookkeeping, written once over any KeyValueStore. */
export class KeyValueBackend implements ResultBackend {
  constructor(
    readonly store: KeyValueStore,
    /** Seconds a result is kept (`result_expires`); null keeps it forever. */
    readonly expires: number | null = 86_400,
  ) {
    const indexed = store.indexedSince?.bind(store);
    if (indexed) {
      this.revokedSince = async (since) => {
        const { members, next } = await indexed(REVOKES_INDEX, since, REVOKE_TTL_S * 1000, REVOKES_KEPT);
        return { ids: members, next };
      };
    }
  }

  /** Where the store keeps its marks in order (Redis): what was marked since. */
  readonly revokedSince?: (since: number | null) => Promise<{ ids: string[]; next: number }>;

  isUnavailable(err: unknown): boolean {
    return this.store.isTransient?.(err) ?? false;
  }

  get url(): string {
    return this.store.url;
  }

  key(taskId: string): string {
    return TASK_PREFIX + taskId;
  }

  storeResult(taskId: string, result: unknown, state: TaskState, opts: StoreOptions = {}): Promise<void> {
    if (state !== 'SUCCESS') return this.storeUnlessDone(taskId, result, state, opts);
    // Not async: the hot path makes no promise of its own. What cannot be encoded still rejects.
    try {
      return this.writeResult(taskId, result, state, opts);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  flushWrites(): void {
    this.store.flushWrites?.();
  }

  /** Celery never overwrites a SUCCESS (a late duplicate delivery must not undo it). */
  private async storeUnlessDone(taskId: string, result: unknown, state: TaskState, opts: StoreOptions): Promise<void> {
    const current = await this.store.get(this.key(taskId));
    if (current && (loads(current) as TaskMeta).status === 'SUCCESS') return;
    await this.writeResult(taskId, result, state, opts);
  }

  /**
   * Celery's meta, written as dumps() writes the object {status, result, traceback, children,
   * date_done, group_id?, parent_id?, ...extended, task_id}, without building it: this runs for
   * every result stored. The extended fields (name, args, …) share no name with the others.
   */
  private writeResult(taskId: string, result: unknown, state: TaskState, opts: StoreOptions): Promise<void> {
    // A long result needing no escape goes between the meta's two halves as bytes (utf8Of).
    const plain = this.store.setBytes && typeof result === 'string' && result.length >= LONG_RESULT && plainLongString(result) ? result : undefined;
    let head = '{"status": ' + dumps(state);
    if (plain !== undefined) head += ', "result": "';
    else if (result !== undefined) head += ', "result": ' + dumps(result);
    let tail = (plain === undefined ? '' : '"') + ', "traceback": ' + dumps(opts.traceback ?? null) + ', "children": ' + dumps(opts.children ?? []) +
      ', "date_done": ' + dumps(READY_STATES.has(state) ? naiveUtcIso(new Date()) : null);
    if (opts.groupId) tail += ', "group_id": ' + dumps(opts.groupId);
    if (opts.parentId) tail += ', "parent_id": ' + dumps(opts.parentId);
    const { extended } = opts;
    if (extended) {
      for (const k in extended) {
        const v = extended[k];
        if (v !== undefined && Object.hasOwn(extended, k)) tail += ', ' + dumps(k) + ': ' + dumps(v);
      }
    }
    tail += ', "task_id": ' + dumps(taskId) + '}';
    if (plain !== undefined && this.store.setBytes) return this.store.setBytes(this.key(taskId), utf8Of(head, plain, tail), this.expires);
    return this.store.set(this.key(taskId), head + tail, this.expires);
  }

  async getTaskMeta(taskId: string): Promise<TaskMeta> {
    return this.parseMeta(taskId, await this.store.get(this.key(taskId)));
  }

  private parseMeta(taskId: string, raw: string | null): TaskMeta {
    return raw === null ? pendingMeta(taskId) : (loads(raw) as TaskMeta);
  }

  /** Several metas in one read (PENDING for the missing ones). */
  async getTaskMetas(taskIds: readonly string[]): Promise<TaskMeta[]> {
    const raws = await this.store.mget(taskIds.map((id) => this.key(id)));
    return taskIds.map((id, i) => this.parseMeta(id, raws[i] ?? null));
  }

  /** Every key-value store can join chords (natively on Redis, generically elsewhere). */
  ensureChordsAllowed(): void {}

  /** `celery-taskset-meta-<gid>` plus a chord suffix (`.s` size, `.t` extra, `.j` join). */
  groupKey(groupId: string, suffix = ''): string {
    return GROUP_PREFIX + groupId + suffix;
  }

  /** GroupResult.save(): `{"result": <as_tuple>}`, as Celery stores it. */
  async saveGroup(groupId: string, tuple: unknown): Promise<void> {
    await this.store.set(this.groupKey(groupId), dumps({ result: tuple }), this.expires);
  }

  /** The tuple a saved group was stored with, or null. */
  async restoreGroup(groupId: string): Promise<unknown> {
    const raw = await this.store.get(this.groupKey(groupId));
    return raw === null ? null : (loads(raw) as { result: unknown }).result;
  }

  async deleteGroup(groupId: string): Promise<void> {
    await this.store.delete(this.groupKey(groupId));
  }

  /** Set by the client before the last header task is sent (Celery's `set_chord_size`). */
  async setChordSize(groupId: string, size: number): Promise<void> {
    await this.store.set(this.groupKey(groupId, '.s'), String(size), this.expires);
  }

  /** `self.addToChord(sig)`: the chord's total is its size (`.s`) plus this counter (`.t`). */
  async addToChord(groupId: string): Promise<void> {
    if (this.store.addToChord) return this.store.addToChord(groupId);
    await this.store.incr(this.groupKey(groupId, '.t'), 1, this.expires);
  }

  /**
   * Record a finished chord header part. Exactly one part sees `count === total`: the one that
   * completes the chord. Natively on Redis (Celery's zset); here generically: the part is written
   * before an atomic counter is incremented, so whoever reaches the total can read every part.
   */
  async addChordPart(groupId: string, part: ChordPart): Promise<ChordProgress> {
    if (this.store.addChordPart) return this.store.addChordPart(groupId, part, this.expires);
    const k = (suffix: string) => this.groupKey(groupId, suffix);
    // A redelivered part must not count twice.
    if ((await this.store.incr(k(`.d.${part.taskId}`), 1, this.expires)) !== 1) return { count: 0, total: null };
    let index = part.groupIndex;
    // Tasks added with addToChord share the group_index of the part that added them (as Celery):
    // the first of them to finish keeps the index, the others go after every indexed part.
    if (index !== null && Number((await this.store.get(k('.t'))) ?? 0) > 0 && (await this.store.incr(k(`.x.${index}`), 1, this.expires)) > 1) index = null;
    const slot = index ?? UNINDEXED + (await this.store.incr(k('.n'), 1, this.expires)) - 1;
    await this.store.set(k(`.j.${slot}`), part.member, this.expires);
    const count = await this.store.incr(k('.c'), 1, this.expires);
    const [size, extra] = await this.store.mget([k('.s'), k('.t')]);
    return { count, total: size === null || size === undefined ? null : Number(size) + Number(extra ?? 0) };
  }

  /** The recorded parts of a chord, in group_index order. */
  async chordParts(groupId: string): Promise<string[]> {
    if (this.store.chordParts) return this.store.chordParts(groupId);
    const slots = await this.chordSlots(groupId);
    const parts = await this.store.mget(slots.map((s) => this.groupKey(groupId, `.j.${s}`)));
    return parts.filter((p): p is string => p !== null);
  }

  /** Delete a chord's bookkeeping keys once its body is sent. */
  async deleteChord(groupId: string): Promise<void> {
    if (this.store.deleteChord) return this.store.deleteChord(groupId);
    const taskIds = (await this.chordParts(groupId)).map((m) => (loads(m) as unknown[])[1] as string);
    const slots = await this.chordSlots(groupId);
    const added = Number((await this.store.get(this.groupKey(groupId, '.t'))) ?? 0) > 0;
    const suffixes = ['.s', '.t', '.c', '.n', ...slots.map((s) => `.j.${s}`), ...taskIds.map((id) => `.d.${id}`)];
    if (added) suffixes.push(...slots.filter((s) => s < UNINDEXED).map((s) => `.x.${s}`));
    for (const suffix of suffixes) await this.store.delete(this.groupKey(groupId, suffix));
  }

  private async chordSlots(groupId: string): Promise<number[]> {
    const [count, unindexed] = (await this.store.mget([this.groupKey(groupId, '.c'), this.groupKey(groupId, '.n')])).map((v) => Number(v ?? 0)) as [number, number];
    return [...Array.from({ length: Math.max(0, count - unindexed) }, (_, i) => i), ...Array.from({ length: unindexed }, (_, i) => UNINDEXED + i)];
  }

  /**
   * Wait until the task is ready; resolves with its meta, or with the last meta seen at `timeoutMs`.
   * A store error that may pass (an outage) is waited out until then; others reject.
   */
  async waitForReady(taskId: string, timeoutMs: number, signal?: AbortSignal, justSent = false): Promise<TaskMeta> {
    const deadline = Date.now() + timeoutMs;
    const key = this.key(taskId);
    const release = this.store.listenEarly?.(key);
    try {
      // A task just sent is not ready yet: read once the change feed is live, and that one read does.
      const listening = justSent && release !== undefined && this.store.listening !== undefined
        && (await within(this.store.listening(key), timeoutMs, signal)) === true;
      return await this.readUntilReady(taskId, key, deadline, signal, listening);
    } finally {
      release?.();
    }
  }

  /** `listening`: the store's change feed for `key` is live, held until the end (no read again before each wait). */
  private async readUntilReady(taskId: string, key: string, deadline: number, signal: AbortSignal | undefined, listening: boolean): Promise<TaskMeta> {
    // A message that came with the SUBSCRIBE's confirmation (a slow client, a fast worker) is the value: no read.
    let raw: string | null | undefined = listening ? this.store.received?.(key) : undefined;
    let known = raw !== undefined;
    for (let pause = 100; ; ) {
      try {
        if (!known) raw = await this.store.get(key);
      } catch (err) {
        const left = deadline - Date.now();
        if (!this.store.isTransient?.(err)) throw err;
        listening = false; // the feed may have dropped with the connection
        if (left <= 0 || signal?.aborted) return this.parseMeta(taskId, raw ?? null);
        await new Promise((r) => setTimeout(r, Math.min(left, pause)));
        pause = Math.min(pause * 2, 1000);
        continue;
      }
      pause = 100;
      const seen = raw ?? null;
      const meta = this.parseMeta(taskId, seen);
      const left = deadline - Date.now();
      if (READY_STATES.has(meta.status) || left <= 0 || signal?.aborted) return meta;
      const changed = await this.store.waitForChange(key, left, signal, seen, listening);
      known = typeof changed === 'string';
      if (known) raw = changed as string;
      else listening = false; // a timeout, an abort, or the feed's connection lost: read again from now on
    }
  }

  async forget(taskId: string): Promise<void> {
    await this.store.delete(this.key(taskId));
  }

  /** Revokes, for workers that were not listening to the broadcast: a mark checked before a task starts. */
  async markRevoked(taskId: string, ttlSeconds = REVOKE_TTL_S): Promise<void> {
    if (this.store.setIndexed) await this.store.setIndexed(REVOKED_PREFIX + taskId, '1', ttlSeconds, REVOKES_INDEX, taskId);
    else await this.store.set(REVOKED_PREFIX + taskId, '1', ttlSeconds);
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

/** `promise`'s value, or undefined after `ms` or on abort. */
function within<T>(promise: Promise<T>, ms: number, signal?: AbortSignal): Promise<T | undefined> {
  if (signal?.aborted) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const done = (value?: T) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', aborted);
      resolve(value);
    };
    const aborted = () => done();
    const timer = setTimeout(done, Math.min(ms, 2 ** 31 - 1));
    signal?.addEventListener('abort', aborted, { once: true });
    promise.then(done, () => done());
  });
}
