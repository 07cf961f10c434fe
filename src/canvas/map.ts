/**
 * map, starmap, chunks (`celery/canvas.py: xmap, xstarmap, chunks`). A map is ONE message for the
 * builtin task `celery.map` (`celery.starmap`) with kwargs `{task, it}`: the worker calls the task
 * function on each item in process, one after the other; it is routed like the mapped task.
 * chunks(task, it, n) is a group of starmaps over slices of n items.
 */
import type { CallOptions } from '../protocol/call-options.ts';
import type { Celery } from '../app/celery.ts';
import { routeFor } from '../app/publish.ts';
import type { AsyncResult } from '../app/result.ts';
import type { SignatureDict } from '../protocol/task-message.ts';
import { Group } from './group.ts';
import { normalizeOptions, publishOptions, type SigOptions, type SignatureOptions } from './options.ts';
import type { GroupResult } from './result-group.ts';
import { type AnySignature, type ApplyOptions, Signature, type SigLike } from './signature.ts';

/*
 * Celery 5.2 registers these classes but does not set their subtask_type: their dicts say null,
 * so they come back as plain signatures of the builtin tasks, which is all a worker needs.
 */
abstract class BaseMap<R> extends Signature<R[]> {
  constructor(name: string, task: SigLike, it: unknown[], options: SigOptions, app?: Celery) {
    super(name, [], { task: Signature.fromDict(task, app), it: [...it] }, options, { immutable: true, app });
  }

  get mapped(): AnySignature {
    return this.kwargs.task as AnySignature;
  }

  override resolveApp(): Celery | undefined {
    return this.app ?? this.mapped.resolveApp();
  }

  /** One message; partial args are ignored (the items are the arguments). */
  override async applyAsync(_args: unknown[] = [], _kwargs: Record<string, unknown> = {}, options: SignatureOptions = {}): Promise<AsyncResult<R[]>> {
    const app = this.requireApp();
    const o = { ...this.options, ...normalizeOptions(options) };
    const inner = this.mapped.task;
    o.queue ??= routeFor(app, inner) ?? app.tasks.get(inner)?.options.queue;
    const kwargs = { task: this.mapped.toJSON(), it: this.kwargs.it };
    return app.sendTask<R[]>(this.task, [], kwargs, publishOptions(o) as CallOptions);
  }
}

/** `[task(x) for x in it]` in one worker, in one message. */
export class XMap<R = unknown> extends BaseMap<R> {
  constructor(task: SigLike, it: unknown[], options: SigOptions = {}, app?: Celery) {
    super('celery.map', task, it, options, app);
  }
}

/** `[task(*x) for x in it]` in one worker, in one message. */
export class XStarmap<R = unknown> extends BaseMap<R> {
  constructor(task: SigLike, it: unknown[][], options: SigOptions = {}, app?: Celery) {
    super('celery.starmap', task, it, options, app);
  }
}

/** Split `it` (argument lists) into parts of `n`: a group of starmaps, one message each. */
export class Chunks<R = unknown> extends Signature<R[][], GroupResult<R[][]>> {
  constructor(task: SigLike, it: unknown[][], n: number, options: SigOptions = {}, app?: Celery) {
    if (!(Number.isInteger(n) && n > 0)) throw new RangeError(`chunks: the chunk size must be a positive integer, got ${n}`);
    super('celery.chunks', [], { task: Signature.fromDict(task, app), it: [...it], n }, options, { immutable: true, app });
  }

  override resolveApp(): Celery | undefined {
    return this.app ?? (this.kwargs.task as AnySignature).resolveApp();
  }

  group(): Group<R[][]> {
    const it = this.kwargs.it as unknown[][];
    const n = this.kwargs.n as number;
    const parts: XStarmap[] = [];
    for (let i = 0; i < it.length; i += n) parts.push(new XStarmap(this.kwargs.task as AnySignature, it.slice(i, i + n), {}, this.resolveApp()));
    return new Group<R[][]>(parts, {}, this.resolveApp());
  }

  /** The group of starmaps, run in this process. */
  override apply(args: unknown[] = [], kwargs: Record<string, unknown> = {}, options: ApplyOptions = {}): Promise<GroupResult<R[][]>> {
    return this.group().apply(args, kwargs, { ...this.options, ...normalizeOptions(options) });
  }

  override applyAsync(args: unknown[] = [], kwargs: Record<string, unknown> = {}, options: SignatureOptions = {}): Promise<GroupResult<R[][]>> {
    return this.group().applyAsync(args, kwargs, { ...this.options, ...normalizeOptions(options) });
  }
}

export function xmap<R = unknown>(task: Signature<R>, it: unknown[]): XMap<R> {
  return new XMap<R>(task, it, {}, task.resolveApp());
}

export function xstarmap<R = unknown>(task: Signature<R>, it: unknown[][]): XStarmap<R> {
  return new XStarmap<R>(task, it, {}, task.resolveApp());
}

export function chunks<R = unknown>(task: Signature<R>, it: unknown[][], n: number): Chunks<R> {
  return new Chunks<R>(task, it, n, {}, task.resolveApp());
}

function fromKwargs<T>(make: (task: SignatureDict, it: unknown[], n: number, o: SigOptions, app?: Celery) => T) {
  return (d: SignatureDict, app?: Celery): T => make(d.kwargs.task as SignatureDict, (d.kwargs.it as unknown[]) ?? [], d.kwargs.n as number, { ...(d.options ?? {}) }, app);
}

Signature.BUILTINS.set('celery.map', fromKwargs((t, it, _n, o, app) => new XMap(t, it, o, app)));
Signature.BUILTINS.set('celery.starmap', fromKwargs((t, it, _n, o, app) => new XStarmap(t, it as unknown[][], o, app)));
Signature.BUILTINS.set('celery.chunks', fromKwargs((t, it, n, o, app) => new Chunks(t, it as unknown[][], n, o, app)));
for (const [type, task] of [['xmap', 'celery.map'], ['xstarmap', 'celery.starmap'], ['chunks', 'celery.chunks']] as const) {
  Signature.TYPES.set(type, Signature.BUILTINS.get(task)!);
}
