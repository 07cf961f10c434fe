/**
 * Groups (`celery/canvas.py: group`): one message per member, all with the same `group` header
 * and `group_index: null` (chord headers get 0..n-1, set when a chord freezes its header). Nested
 * groups are flattened. Returns a GroupResult.
 */
import { randomUUID } from 'node:crypto';
import type { Celery } from '../app/celery.ts';
import { currentTask } from '../app/publish.ts';
import { normalizeOptions, type SigOptions, type SignatureOptions } from './options.ts';
import { type AnyResult, GroupResult } from './result-group.ts';
import { type AnySignature, type ApplyOptions, chordSizeOf, type FreezeOptions, type HandleOf, primitives, type ResultOf, Signature, type SigLike } from './signature.ts';

export class Group<R extends unknown[] = unknown[]> extends Signature<R, GroupResult<R>> {
  constructor(tasks: SigLike[], options: SigOptions = {}, app?: Celery) {
    super('celery.group', [], { tasks: tasks.map((t) => Signature.fromDict(t, app)) }, options, { subtaskType: 'group', app });
  }

  get tasks(): AnySignature[] {
    return this.kwargs.tasks as AnySignature[];
  }

  set tasks(tasks: AnySignature[]) {
    this.kwargs.tasks = tasks;
  }

  override resolveApp(): Celery | undefined {
    return this.app ?? this.tasks.find((t) => t.resolveApp())?.resolveApp();
  }

  /** group | task → chord with the task as body. */
  override pipe<S extends AnySignature>(other: S): Signature<ResultOf<S>, HandleOf<S>> {
    return primitives.chord(this, other, {}, this.resolveApp()) as never;
  }

  /**
   * Linked to the first member only, made immutable: it cannot get the other members' results
   * (as Celery; use a chord to run something after all of them).
   */
  override link<S extends SigLike>(callback: S): S {
    this.tasks[0]?.link(Signature.fromDict(callback, this.resolveApp()).clone().set({ immutable: true }));
    return callback;
  }

  /** Every member gets the errback (so it may run more than once). */
  override linkError<S extends SigLike>(errback: S): S {
    for (const t of this.tasks) t.linkError(errback);
    return errback;
  }

  override setImmutable(immutable: boolean): void {
    for (const t of this.tasks) t.setImmutable(immutable);
  }

  override freeze(f: FreezeOptions = {}): GroupResult<R> {
    const [gid, results] = this.freezeGroupTasks(f);
    return new GroupResult<R>(gid, results, this.requireApp(), undefined);
  }

  /**
   * Celery's `_freeze_group_tasks`: fix the group id and every member's id and place (group_index
   * 0..n-1, the chord body when it is a chord header); nested groups are flattened in order.
   */
  freezeGroupTasks(f: FreezeOptions): [string, AnyResult[]] {
    const app = this.resolveApp();
    const o = this.options;
    if (typeof o.task_id !== 'string') o.task_id = f.groupId ?? randomUUID();
    if (f.groupId) o.group_id = f.groupId;
    if (f.chord) o.chord = f.chord;
    if (f.groupIndex !== undefined && f.groupIndex !== null) o.group_index = f.groupIndex;
    if (!('root_id' in o)) o.root_id = f.rootId ?? null;
    if (!('parent_id' in o)) o.parent_id = f.parentId ?? null;
    const rootId = (o.root_id as string | null) ?? undefined;
    const parentId = (o.parent_id as string | null) ?? undefined;
    const members: AnySignature[] = [];
    const results: AnyResult[] = [];
    const stack = [...this.tasks];
    while (stack.length > 0) {
      const task = Signature.fromDict(stack.shift()!, app).clone();
      if (task instanceof Group) {
        stack.unshift(...task.tasks);
        continue;
      }
      results.push(task.freeze({ groupId: f.groupId, chord: f.chord, rootId, parentId, groupIndex: members.length }) as AnyResult);
      members.push(task);
    }
    this.tasks = members;
    return [o.task_id as string, results];
  }

  /**
   * Increasing countdowns for the members: `start`, `start + step`, … up to `stop` (then `stop`
   * again), exactly as Celery's `group.skew` (kombu's `fxrange` with repeatlast). Returns the group.
   */
  skew(start = 1.0, stop: number | null = null, step = 1.0): this {
    let cur = start;
    for (const task of this.tasks) {
      // As fxrange: `not stop` means no end (so a stop of 0 does too).
      if (!stop || cur <= stop) {
        task.set({ countdown: cur });
        cur += step;
      } else {
        task.set({ countdown: cur - step });
      }
    }
    return this;
  }

  /**
   * Run every member in this process, one after the other (Celery's `group.apply`): a GroupResult
   * of their EagerResults (chains and chords in the group give their own results).
   */
  override async apply(args: unknown[] = [], kwargs: Record<string, unknown> = {}, options: ApplyOptions = {}): Promise<GroupResult<R>> {
    const app = this.requireApp();
    if (this.tasks.length === 0) return this.freeze();
    const { task_id: taskId, ...rest } = { ...this.options, ...normalizeOptions(options) };
    const gid = typeof taskId === 'string' ? taskId : randomUUID();
    rest.group_id = gid;
    const results: AnyResult[] = [];
    for (const [sig] of this.prepared(this.tasks, gid, (rest.root_id as string | null) ?? undefined)) results.push((await sig.apply(args, kwargs, rest)) as AnyResult);
    return new GroupResult<R>(gid, results, app);
  }

  override async applyAsync(args: unknown[] = [], kwargs: Record<string, unknown> = {}, options: SignatureOptions = {}): Promise<GroupResult<R>> {
    const opts = normalizeOptions(options);
    if (opts.link !== undefined) throw new TypeError('Cannot add link to group: use a chord');
    if (opts.link_error !== undefined) throw new TypeError('Cannot add link to group: do that on individual tasks');
    const app = this.requireApp();
    if (this.tasks.length === 0) return this.freeze();
    const { add_to_parent: addToParent, task_id: taskId, ...rest } = { ...this.options, ...opts };
    const gid = typeof taskId === 'string' ? taskId : randomUUID();
    rest.group_id = gid;
    const prepared = this.prepared(this.tasks, gid, (rest.root_id as string | null) ?? undefined);
    const results = app.conf.taskAlwaysEager
      ? await Promise.all(prepared.map(([sig]) => sig.applyAsync(args, kwargs, rest) as Promise<AnyResult>))
      : await this.applyTasks(app, prepared, gid, args, kwargs, rest);
    let result = new GroupResult<R>(gid, results, app);
    // A group of one chain ending in a group is that group's result.
    if (results.length === 1 && results[0] instanceof GroupResult) result = results[0] as GroupResult<R>;
    if (addToParent !== false) currentTask.getStore()?.children.push(result.asTuple());
    return result;
  }

  /** Copies of the members frozen with the group id, nested groups flattened. */
  private prepared(tasks: AnySignature[], gid: string, rootId: string | undefined): [AnySignature, AnyResult][] {
    const out: [AnySignature, AnyResult][] = [];
    for (const t of tasks) {
      const task = Signature.fromDict(t, this.resolveApp()).clone();
      if (task instanceof Group) out.push(...this.prepared(task.tasks, gid, rootId));
      else out.push([task, task.freeze({ groupId: gid, rootId }) as AnyResult]);
    }
    return out;
  }

  /**
   * Publish the members. For a chord header the chord size is set just before the last member is
   * sent (as Celery's `_apply_tasks`): every part that completes after it sees the size.
   */
  private async applyTasks(app: Celery, prepared: [AnySignature, AnyResult][], gid: string, args: unknown[], kwargs: Record<string, unknown>, options: SigOptions): Promise<AnyResult[]> {
    const results: AnyResult[] = [];
    let size = 0;
    for (const [i, [sig, res]] of prepared.entries()) {
      const chord = options.chord ?? sig.options.chord;
      size += chordSizeOf(sig);
      if (chord && i === prepared.length - 1) await (await app.backend()).setChordSize(gid, size);
      await sig.applyAsync(args, kwargs, { ...options, add_to_parent: false, ...(chord ? { chord } : {}) });
      results.push(res);
    }
    return results;
  }
}

type Results<T extends unknown[]> = { -readonly [K in keyof T]: ResultOf<T[K]> };

/** `group(a, b, c)` (or `group([a, b, c])`): run in parallel; `get()` gives the results in order. */
export function group<T extends AnySignature[]>(...tasks: T | [T]): Group<Results<T>> {
  const list = (tasks.length === 1 && Array.isArray(tasks[0]) ? tasks[0] : tasks) as AnySignature[];
  return new Group<Results<T>>(list, {}, list.find((t) => t.resolveApp())?.resolveApp());
}

Signature.TYPES.set('group', (d, app) => {
  const tasks = (d.kwargs?.tasks as SigLike[] | undefined) ?? [];
  return new Group(tasks.map((t) => Signature.fromDict(t, app)), { ...(d.options ?? {}) }, app);
});
