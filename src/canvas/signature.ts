/**
 * Signatures (`celery/canvas.py: Signature`): a task name with arguments and calling options,
 * serialisable to Celery's dict form so that it can travel inside other messages (callbacks,
 * errbacks, chain steps, chord bodies) and be applied by any worker, Python or celeriac.
 */
import { randomUUID } from 'node:crypto';
import type { CallOptions } from '../protocol/call-options.ts';
import type { Celery } from '../app/celery.ts';
import type { EagerOptions } from '../app/eager.ts';
import { AsyncResult, type ResultNode } from '../app/result.ts';
import { ConfigurationError } from '../errors.ts';
import { pyRepr } from '../protocol/repr.ts';
import type { SignatureDict } from '../protocol/task-message.ts';
import type { Chain } from './chain.ts';
import { copyOptions, normalizeOptions, plainSignature, publishOptions, type SigOptions, type SignatureOptions } from './options.ts';

/** Options of `apply()`: the calling options, and `throw` (Celery's `Task.apply(throw=...)`). */
export type ApplyOptions = SignatureOptions & { throw?: boolean };

/** A signature object or its dict form. */
export type SigLike = AnySignature | SignatureDict;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnySignature = Signature<any, any>;

/** A handle on a result (AsyncResult or GroupResult), linked to its parent in a workflow. */
export type ResultLike = ResultNode;

export type ResultOf<S> = S extends Signature<infer R, ResultLike> ? R : unknown;
export type HandleOf<S> = S extends Signature<unknown, infer H> ? H : ResultLike;

/** Where a signature sits in a workflow, fixed by freezing (Celery's `freeze` arguments). */
export interface FreezeOptions {
  id?: string;
  groupId?: string;
  chord?: SigLike;
  rootId?: string;
  parentId?: string;
  groupIndex?: number | null;
}

export interface SignatureExtra {
  subtaskType?: string | null;
  immutable?: boolean;
  app?: Celery;
  chordSize?: number | null;
}

/** Constructors of the other primitives, registered by their modules (they import this one). */
export const primitives = {} as {
  chain(tasks: SigLike[], app?: Celery): Chain<unknown>;
  chord(header: SigLike[] | SigLike, body: SigLike, options: SigOptions, app?: Celery): AnySignature;
};

/** Options never overwritten by a merge once set (a task's place in its group). */
const IMMUTABLE_OPTIONS = new Set(['group_id']);

/** `Rest`: the arguments still to give when it is called (a task's signature knows them; untyped ones take any). */
export class Signature<R = unknown, H extends ResultLike = AsyncResult<R>, Rest extends unknown[] = unknown[]> {
  /** subtask_type → how to rebuild that primitive from its dict. */
  static readonly TYPES = new Map<string, (d: SignatureDict, app?: Celery) => AnySignature>();
  /** Builtin task name → its class, for dicts whose subtask_type Celery leaves null (map, starmap, chunks). */
  static readonly BUILTINS = new Map<string, (d: SignatureDict, app?: Celery) => AnySignature>();

  task: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  /** Calling options under Celery's snake_case names (task_id, reply_to, link, queue, …). */
  options: SigOptions;
  subtaskType: string | null;
  immutable: boolean;
  chordSize: number | null | undefined;
  app: Celery | undefined;

  /** Low-level: `options` are taken as given (snake_case). Prefer `task.s()` or `signature()`. */
  constructor(task: string, args: unknown[] = [], kwargs: Record<string, unknown> = {}, options: SigOptions = {}, extra: SignatureExtra = {}) {
    this.task = task;
    this.args = [...args];
    this.kwargs = { ...kwargs };
    this.options = options;
    this.subtaskType = extra.subtaskType ?? null;
    this.immutable = extra.immutable ?? false;
    this.app = extra.app;
    this.chordSize = extra.chordSize;
  }

  /** Rebuild a signature (or chain, group, chord, map, …) from its dict form; objects are returned as is. */
  static fromDict(d: SigLike, app?: Celery): AnySignature {
    if (d instanceof Signature) {
      if (app && !d.app) d.app = app;
      return d;
    }
    const factory = d.subtask_type ? Signature.TYPES.get(d.subtask_type) : Signature.BUILTINS.get(d.task);
    if (factory) return factory(d, app);
    return new Signature(d.task, d.args ?? [], d.kwargs ?? {}, { ...(d.options ?? {}) }, {
      subtaskType: d.subtask_type ?? null, immutable: d.immutable === true, app, chordSize: d.chord_size,
    });
  }

  get id(): string | undefined {
    return typeof this.options.task_id === 'string' ? this.options.task_id : undefined;
  }

  get name(): string {
    return this.task;
  }

  /** Celery's dict form, exactly as it goes on the wire. */
  toJSON(): SignatureDict {
    const d: SignatureDict = {
      task: this.task,
      args: plain(this.args) as unknown[],
      kwargs: plain(this.kwargs) as Record<string, unknown>,
      options: plain(this.options) as Record<string, unknown>,
      subtask_type: this.subtaskType,
      immutable: this.immutable,
    };
    if (this.chordSize !== undefined) d.chord_size = this.chordSize;
    return d;
  }

  /** A copy; partial args go in front of the stored ones (as a parent's result does), kwargs and options merge. */
  clone(args?: unknown[], kwargs?: Record<string, unknown>, options?: SignatureOptions): this {
    const opts = normalizeOptions(options);
    const [a, k, o] = hasAny(args, kwargs, opts) ? this.merge(args, kwargs, opts) : [this.args, this.kwargs, this.options];
    const d: SignatureDict = {
      task: this.task, args: [...a], kwargs: cloneNested(k) as Record<string, unknown>, options: copyOptions(o),
      subtask_type: this.subtaskType, immutable: this.immutable,
    };
    if (this.chordSize !== undefined) d.chord_size = this.chordSize;
    return Signature.fromDict(d, this.app) as this;
  }

  /** Set calling options (`countdown`, `queue`, `priority`, …, or `immutable`); returns this. */
  set(options: SignatureOptions & { immutable?: boolean }): this {
    const { immutable, ...rest } = options;
    if (immutable !== undefined) this.setImmutable(immutable);
    Object.assign(this.options, normalizeOptions(rest));
    return this;
  }

  setImmutable(immutable: boolean): void {
    this.immutable = immutable;
  }

  /** Apply `callback` with this task's result when it succeeds; returns the callback. */
  link<S extends SigLike>(callback: S): S {
    this.appendToListOption('link', callback);
    return callback;
  }

  /** Apply `errback` with this task's id when it fails; returns the errback. */
  linkError<S extends SigLike>(errback: S): S {
    this.appendToListOption('link_error', errback);
    return errback;
  }

  /** linkError that returns this signature, for chaining calls. */
  onError(errback: SigLike): this {
    this.linkError(errback);
    return this;
  }

  /** `this | other`: a chain whose steps get the previous result as first argument. */
  pipe<S extends AnySignature>(other: S): Signature<ResultOf<S>, HandleOf<S>> {
    const app = this.resolveApp();
    if (other.subtaskType === 'chain') return primitives.chain([this, ...(other as unknown as Chain).unchainTasks()], app) as never;
    return primitives.chain([this, maybeUnrollGroup(other)], app) as never;
  }

  /**
   * Fix the task id (and the workflow place given) without sending; returns the result handle
   * the task will have. Options already set (an id) are kept.
   */
  freeze(f: FreezeOptions = {}): H {
    const o = this.options;
    if (typeof o.task_id !== 'string') o.task_id = f.id ?? randomUUID();
    if (f.rootId) o.root_id = f.rootId;
    if (f.parentId) o.parent_id = f.parentId;
    const app = this.resolveApp();
    if (!('reply_to' in o) && app) o.reply_to = app.oid;
    if (f.groupId && !('group_id' in o)) o.group_id = f.groupId;
    if (f.chord) o.chord = f.chord;
    if (f.groupIndex !== undefined && f.groupIndex !== null) o.group_index = f.groupIndex;
    return new AsyncResult<R>(o.task_id as string, this.requireApp()) as unknown as H;
  }

  /** Send with star arguments (prepended to the stored ones). */
  delay(...args: Rest): Promise<H> {
    return this.applyAsync(args);
  }

  /** Send: partial args are prepended, kwargs and options merged (Celery's `apply_async`). */
  async applyAsync(args: unknown[] = [], kwargs: Record<string, unknown> = {}, options: SignatureOptions = {}): Promise<H> {
    const opts = normalizeOptions(options);
    const [a, k, o] = hasAny(args, kwargs, opts) ? this.merge(args, kwargs, opts) : [this.args, this.kwargs, this.options];
    const app = this.requireApp();
    // Signatures given as arguments travel as their dicts.
    return (await app.sendTask<R>(this.task, plain(a) as unknown[], plain(k) as Record<string, unknown>, publishOptions(o) as CallOptions)) as unknown as H;
  }

  /**
   * Run in this process and wait for it (Celery's `Signature.apply`, i.e. `task.apply()`): partial
   * args, kwargs and options merge as for applyAsync; the task must be registered in this app.
   * Options used: taskId (a frozen signature keeps its id), link, linkError, headers, time limits,
   * and `throw` (re-throw the task's error; default taskEagerPropagates). Returns an EagerResult.
   */
  async apply(args: unknown[] = [], kwargs: Record<string, unknown> = {}, options: ApplyOptions = {}): Promise<H> {
    const opts = normalizeOptions(options);
    const [a, k, o] = hasAny(args, kwargs, opts) ? this.merge(args, kwargs, opts) : [this.args, this.kwargs, this.options];
    const app = this.requireApp();
    const p = publishOptions(o);
    const eager: EagerOptions = {
      taskId: p.taskId, link: p.link, linkError: p.linkError, headers: p.headers, timeLimit: p.timeLimit, softTimeLimit: p.softTimeLimit,
      retries: p.retries, throw: typeof o.throw === 'boolean' ? o.throw : undefined,
    };
    return (await app.applyEager<R>(app.getTask(this.task), plain(a) as unknown[], plain(k) as Record<string, unknown>, eager)) as unknown as H;
  }

  /** Celery's `_merge`: immutable signatures ignore partial args and kwargs, never options. */
  merge(args: unknown[] = [], kwargs: Record<string, unknown> = {}, options?: SigOptions): [unknown[], Record<string, unknown>, SigOptions] {
    let o = this.options;
    if (options) {
      o = { ...this.options };
      for (const [k, v] of Object.entries(options)) if (!(IMMUTABLE_OPTIONS.has(k) && k in this.options)) o[k] = v;
    }
    if (this.immutable) return [this.args, this.kwargs, o];
    return [args.length > 0 ? [...args, ...this.args] : this.args, Object.keys(kwargs).length > 0 ? { ...this.kwargs, ...kwargs } : this.kwargs, o];
  }

  /** The app this signature is sent with: its own, else one found in the signatures it holds. */
  resolveApp(): Celery | undefined {
    return this.app;
  }

  requireApp(): Celery {
    const app = this.resolveApp();
    if (!app) throw new ConfigurationError(`signature ${this.toString()} has no app: create it with task.s(...) or signature(name, args, kwargs, options, app)`);
    return app;
  }

  extendListOption(key: string, values: SigLike | SigLike[]): void {
    this.listOption(key).push(...(Array.isArray(values) ? values : [values]));
  }

  protected appendToListOption(key: string, value: SigLike): void {
    const items = this.listOption(key);
    const text = JSON.stringify(plainSignature(value));
    if (!items.some((i) => JSON.stringify(plainSignature(i)) === text)) items.push(value);
  }

  private listOption(key: string): unknown[] {
    const items = this.options[key];
    if (Array.isArray(items)) return items;
    return (this.options[key] = items === undefined || items === null ? [] : [items]) as unknown[];
  }

  toString(): string {
    const parts = [...this.args.map((a) => pyRepr(a, 100)), ...Object.entries(this.kwargs).map(([k, v]) => `${k}=${pyRepr(v, 100)}`)];
    return `${this.task}(${parts.join(', ')})`;
  }
}

/** `signature(name, args, kwargs, options)`: options in camelCase or Celery's snake_case. */
export function signature<R = unknown>(
  name: string | SigLike,
  args: unknown[] = [],
  kwargs: Record<string, unknown> = {},
  options: SignatureOptions & { immutable?: boolean } = {},
  app?: Celery,
): Signature<R> {
  if (typeof name !== 'string') return Signature.fromDict(name, app).clone() as Signature<R>;
  const { immutable, ...rest } = options;
  return new Signature<R>(name, args, kwargs, normalizeOptions(rest), { immutable: immutable === true, app });
}

/** A one-task group is that task (Celery's `maybe_unroll_group`). */
export function maybeUnrollGroup(sig: AnySignature): AnySignature {
  const tasks = sig.subtaskType === 'group' ? (sig.kwargs.tasks as AnySignature[]) : undefined;
  return tasks && tasks.length === 1 ? tasks[0]! : sig;
}

/** How many header parts a signature completes in a chord (Celery's `_chord._descend`). */
export function chordSizeOf(sig: SigLike): number {
  const d = sig instanceof Signature ? sig.toJSON() : sig;
  const kw = d.kwargs ?? {};
  switch (d.subtask_type) {
    case 'group': {
      const tasks = kw.tasks as SignatureDict[] | SignatureDict;
      const list = Array.isArray(tasks) ? tasks : ((tasks?.kwargs?.tasks as SignatureDict[] | undefined) ?? []);
      return list.reduce((n, t) => n + chordSizeOf(t), 0);
    }
    case 'chain':
      for (const t of [...((kw.tasks as SignatureDict[]) ?? [])].reverse()) {
        const n = chordSizeOf(t);
        if (n > 0) return n;
      }
      return 0;
    case 'chord':
      return chordSizeOf(kw.body as SignatureDict);
    default:
      return 1;
  }
}

function hasAny(args: unknown[] | undefined, kwargs: Record<string, unknown> | undefined, options: SigOptions): boolean {
  return (args?.length ?? 0) > 0 || Object.keys(kwargs ?? {}).length > 0 || Object.keys(options).length > 0;
}

/** Plain JSON-able copy: nested signatures as their dicts. */
function plain(v: unknown): unknown {
  if (v instanceof Signature) return v.toJSON();
  if (Array.isArray(v)) return v.map(plain);
  if (v === null || typeof v !== 'object' || v instanceof Date) return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
}

/** Copy of kwargs in which nested signatures (chain steps, group members) are cloned, not shared. */
function cloneNested(v: unknown): unknown {
  if (v instanceof Signature) return v.clone();
  if (Array.isArray(v)) return v.map(cloneNested);
  if (v === null || typeof v !== 'object' || v instanceof Date) return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, cloneNested(x)]));
}
