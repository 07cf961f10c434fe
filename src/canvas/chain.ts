/**
 * Chains (`celery/canvas.py: _chain`): only the first task is published; the rest travel in its
 * `embed.chain`, reversed (the worker pops the next step from the end), each step getting the
 * previous result as its first argument. A group followed by a step becomes a chord with that
 * step as body; a chain inside a chain is spliced.
 */
import type { Celery } from '../app/celery.ts';
import type { AsyncResult } from '../app/result.ts';
import { ConfigurationError } from '../errors.ts';
import { Chord } from './chord.ts';
import { Group } from './group.ts';
import { GroupResult } from './result-group.ts';
import { normalizeOptions, type SigOptions, type SignatureOptions } from './options.ts';
import {
  type AnySignature, type ApplyOptions, type FreezeOptions, type HandleOf, maybeUnrollGroup, primitives, type ResultLike, type ResultOf, Signature, type SigLike,
} from './signature.ts';

/** The result of a chain is its last step's (a GroupResult when the last step is a group). */
export class Chain<R = unknown> extends Signature<R, AsyncResult<R>> {
  constructor(tasks: SigLike[], options: SigOptions = {}, app?: Celery) {
    super('celery.chain', [], { tasks: tasks.map((t) => Signature.fromDict(t, app)) }, options, { subtaskType: 'chain', app });
  }

  get tasks(): AnySignature[] {
    return this.kwargs.tasks as AnySignature[];
  }

  override resolveApp(): Celery | undefined {
    return this.app ?? this.tasks.find((t) => t.resolveApp())?.resolveApp();
  }

  /** chain | group → chain; chain | chain → spliced; chain ending in a group | task → chord; else appended. */
  override pipe<S extends AnySignature>(other: S): Signature<ResultOf<S>, HandleOf<S>> {
    const app = this.resolveApp();
    if (other instanceof Group) {
      const tasks = this.unchainTasks();
      const next = maybeUnrollGroup(other);
      return (tasks.length === 0 ? next : new Chain([...tasks, next], {}, app)) as never;
    }
    if (other instanceof Chain) return new Chain([...this.unchainTasks(), ...other.unchainTasks()], {}, app) as never;
    const last = this.tasks[this.tasks.length - 1];
    if (last instanceof Group) {
      const sig = this.clone();
      sig.tasks[sig.tasks.length - 1] = new Chord(sig.tasks[sig.tasks.length - 1] as Group, other, {}, app);
      return sig as never;
    }
    if (last instanceof Chord) {
      const sig = this.clone();
      const chord = sig.tasks[sig.tasks.length - 1] as Chord;
      chord.body = chord.body.pipe(other);
      return sig as never;
    }
    return new Chain([...this.unchainTasks(), other], {}, app) as never;
  }

  /** Copies of the steps, each given the chain's own errbacks. */
  unchainTasks(): AnySignature[] {
    const tasks = this.tasks.map((t) => t.clone());
    const errbacks = this.options.link_error;
    for (const eb of (Array.isArray(errbacks) ? errbacks : errbacks ? [errbacks] : []) as SigLike[]) for (const t of tasks) t.linkError(eb);
    return tasks;
  }

  override freeze(f: FreezeOptions = {}): AsyncResult<R> {
    const [, results] = prepareSteps(this.requireApp(), this.args, this.kwargs, this.tasks, {
      rootId: f.rootId, parentId: f.parentId, lastTaskId: f.id, groupId: f.groupId, chordBody: f.chord, groupIndex: f.groupIndex, clone: false,
    });
    return results[0] as never;
  }

  override async applyAsync(args: unknown[] = [], kwargs: Record<string, unknown> = {}, options: SignatureOptions = {}): Promise<AsyncResult<R>> {
    const opts = { ...this.options, ...normalizeOptions(options) };
    if (this.requireApp().conf.taskAlwaysEager) return this.applyEager(args, kwargs) as never;
    return this.run(args, kwargs, opts) as never;
  }

  /** Celery's `_chain.run`: freeze every step, publish the first with the rest in `chain`. */
  private async run(args: unknown[], kwargs: Record<string, unknown>, options: SigOptions): Promise<ResultLike> {
    const { group_id, chord, task_id, link, link_error, root_id, parent_id, group_index, ...rest } = options;
    const partial = args.length > 0 && !this.immutable ? [...args, ...this.args] : this.args;
    const [tasks, results] = prepareSteps(this.requireApp(), partial, kwargs, this.tasks, {
      rootId: root_id as string | undefined, parentId: parent_id as string | undefined,
      linkError: (Array.isArray(link_error) ? link_error : link_error ? [link_error] : []) as SigLike[],
      lastTaskId: task_id as string | undefined, groupId: group_id as string | undefined, chordBody: chord as SigLike | undefined,
      groupIndex: group_index as number | undefined,
    });
    if (tasks.length === 0) throw new ConfigurationError('cannot apply an empty chain');
    if (link) tasks[0]!.extendListOption('link', link as SigLike | SigLike[]);
    const first = tasks.pop()!;
    // A chain applied as a step of another chain runs before the outer chain's remaining steps.
    const chainOption = Array.isArray(rest.chain) ? [...(rest.chain as SigLike[]), ...tasks] : tasks;
    const applied = await first.applyAsync([], {}, { ...rest, chain: chainOption });
    return tasks.length === 0 ? applied : results[0]!;
  }

  /**
   * Run the steps one after the other in this process (Celery's `_chain.apply`): each step's
   * `apply()` gets the previous result as first argument; returns the last step's result, whose
   * `parent` is the previous one's. The chain's options go to every step, its id to the last.
   */
  override async apply(args: unknown[] = [], kwargs: Record<string, unknown> = {}, options: ApplyOptions = {}): Promise<AsyncResult<R>> {
    const { task_id: taskId, link, ...opts } = { ...this.options, ...normalizeOptions(options) };
    const partial = args.length > 0 && !this.immutable ? [...args, ...this.args] : this.args;
    if (this.tasks.length === 0) throw new ConfigurationError('cannot apply an empty chain');
    let last: (ResultLike & { get(): Promise<unknown> }) | undefined;
    for (const [i, t] of this.tasks.entries()) {
      const step = i === 0 ? Signature.fromDict(t, this.app).clone(partial, kwargs) : Signature.fromDict(t, this.app).clone();
      const isLast = i === this.tasks.length - 1;
      const stepOptions = isLast ? { ...opts, ...(taskId !== undefined ? { task_id: taskId } : {}), ...(link !== undefined ? { link } : {}) } : opts;
      const res = (await step.apply(last ? [await last.get()] : [], {}, stepOptions)) as typeof last & ResultLike;
      res.parent = last;
      last = res;
    }
    return last as never;
  }

  /** task_always_eager: run the steps one after the other in this process. */
  private async applyEager(args: unknown[], kwargs: Record<string, unknown>): Promise<ResultLike> {
    let last: (ResultLike & { get(): Promise<unknown> }) | undefined;
    let first = true;
    for (const t of this.tasks) {
      const step = first ? t.clone(args, kwargs) : t.clone();
      const res = (await step.applyAsync(last ? [await last.get()] : [])) as typeof last & ResultLike;
      res.parent = last;
      last = res;
      first = false;
    }
    if (!last) throw new ConfigurationError('cannot apply an empty chain');
    return last;
  }
}

interface StepOptions {
  rootId?: string;
  parentId?: string;
  linkError?: SigLike[];
  lastTaskId?: string;
  groupId?: string;
  chordBody?: SigLike;
  groupIndex?: number | null;
  clone?: boolean;
}

/**
 * Celery's `prepare_steps`: walk the steps from the last, freezing each (the last one gets the
 * chain's id and its place in an enclosing group/chord), upgrading `group | step` to a chord and
 * linking each result to its parent. Returns the steps and results, last step first.
 */
export function prepareSteps(app: Celery, args: unknown[], kwargs: Record<string, unknown>, steps0: SigLike[], p: StepOptions): [AnySignature[], ResultLike[]] {
  const steps = [...steps0];
  const tasks: AnySignature[] = [];
  const results: ResultLike[] = [];
  let prevTask: AnySignature | undefined;
  let prevRes: ResultLike | undefined;
  let i = 0;
  while (steps.length > 0) {
    let task = Signature.fromDict(steps.pop()!, app);
    const isFirst = steps.length === 0;
    const isLast = i === 0;
    if (task instanceof Group) task = maybeUnrollGroup(task);
    if (p.clone !== false) task = isFirst ? task.clone(args, kwargs) : task.clone();
    else if (isFirst) task.args = [...args, ...task.args];
    if (task instanceof Chain) {
      steps.push(...task.tasks);
      continue;
    }
    if (task instanceof Group && prevTask) {
      tasks.pop();
      results.pop();
      // A GroupResult has no task id: the chord then gets none (Celery issues #5467, #3585).
      const options: SigOptions = prevRes && !(prevRes instanceof GroupResult) ? { task_id: prevRes.id } : {};
      if (p.rootId) options.root_id = p.rootId;
      task = new Chord(task, prevTask, options, app);
    }
    const res = isLast
      ? task.freeze({ id: p.lastTaskId, rootId: p.rootId, groupId: p.groupId, chord: p.chordBody, groupIndex: p.groupIndex })
      : task.freeze({ rootId: p.rootId });
    i++;
    if (prevTask && prevRes && !prevRes.parent) prevRes.parent = res;
    for (const eb of p.linkError ?? []) task.linkError(eb);
    tasks.push(task);
    results.push(res);
    prevTask = task;
    prevRes = res;
    if (task instanceof Chord) {
      // The step before a chord is the parent of its header, not of its body.
      let node: ResultLike = res;
      while (node.parent) node = node.parent;
      prevRes = node;
    }
  }
  return [tasks, results];
}

/** `chain(a, b, c)` (or `chain([a, b, c])`): each result is the first argument of the next step. */
export function chain<T extends AnySignature[]>(...tasks: T | [T]): Chain<ResultOf<Last<T>>> {
  const list = (tasks.length === 1 && Array.isArray(tasks[0]) ? tasks[0] : tasks) as AnySignature[];
  const app = list.find((t) => t.resolveApp())?.resolveApp();
  // As Celery: reduce with `|`, so groups followed by a step become chords at construction.
  return list.reduce<AnySignature>((acc, t) => acc.pipe(t), new Chain([], {}, app)) as Chain<ResultOf<Last<T>>>;
}

type Last<T extends unknown[]> = T extends [...unknown[], infer L] ? L : T extends (infer E)[] ? E : never;

primitives.chain = (tasks, app) => new Chain(tasks, {}, app);

Signature.TYPES.set('chain', (d, app) => {
  const tasks = (d.kwargs?.tasks as SigLike[] | undefined) ?? [];
  const c = new Chain(tasks.map((t) => Signature.fromDict(t, app)), { ...(d.options ?? {}) }, app);
  c.args = [...(d.args ?? [])];
  c.immutable = d.immutable === true;
  return c;
});
