/**
 * Chords (`celery/canvas.py: _chord`): a group (the header) whose results, in header order, are
 * the one list argument of the body. The client sets the chord size in the backend; each header
 * message carries `group`, `group_index` 0..n-1 and `embed.chord` = the body. The worker that
 * stores the last header result publishes the body (src/canvas/chord-part.ts).
 */
import { randomUUID } from 'node:crypto';
import type { Celery } from '../app/celery.ts';
import type { AsyncResult } from '../app/result.ts';
import { Group } from './group.ts';
import { normalizeOptions, type SigOptions, type SignatureOptions } from './options.ts';
import { GroupResult } from './result-group.ts';
import { type AnySignature, type ApplyOptions, type FreezeOptions, type HandleOf, primitives, type ResultLike, type ResultOf, Signature, type SigLike } from './signature.ts';

export class Chord<R = unknown> extends Signature<R, AsyncResult<R>> {
  constructor(header: SigLike[] | SigLike, body: SigLike | null, options: SigOptions = {}, app?: Celery) {
    super('celery.chord', [], { kwargs: {}, header: headerTasks(header, app), body: body ? Signature.fromDict(body, app) : null }, options, { subtaskType: 'chord', app });
  }

  /** The header: a list of signatures, or the Group it becomes once frozen. */
  get header(): AnySignature[] | Group {
    return this.kwargs.header as AnySignature[] | Group;
  }

  set header(header: AnySignature[] | Group) {
    this.kwargs.header = header;
  }

  get body(): AnySignature {
    return this.kwargs.body as AnySignature;
  }

  set body(body: AnySignature) {
    this.kwargs.body = body;
  }

  private get headerList(): AnySignature[] {
    return this.header instanceof Group ? this.header.tasks : this.header;
  }

  override resolveApp(): Celery | undefined {
    return this.app ?? this.headerList.find((t) => t.resolveApp())?.resolveApp() ?? this.body?.resolveApp();
  }

  /** chord | task → the task is appended to the body; chord | group/chain → a chain. */
  override pipe<S extends AnySignature>(other: S): Signature<ResultOf<S>, HandleOf<S>> {
    if (other.subtaskType !== 'group' && other.subtaskType !== 'chain') {
      const sig = this.clone();
      sig.body = sig.body.pipe(other);
      return sig as never;
    }
    return super.pipe(other);
  }

  override link<S extends SigLike>(callback: S): S {
    return this.body.link(callback);
  }

  override linkError<S extends SigLike>(errback: S): S {
    return this.body.linkError(errback);
  }

  override setImmutable(immutable: boolean): void {
    for (const t of this.headerList) t.setImmutable(immutable);
  }

  override freeze(f: FreezeOptions = {}): AsyncResult<R> {
    const app = this.resolveApp();
    if (!(this.header instanceof Group)) this.header = new Group(this.header, {}, app);
    const header = this.header as Group;
    const headerResult = header.freeze({ parentId: f.parentId, rootId: f.rootId, chord: this.body });
    const bodyResult = this.body.freeze({ id: f.id, rootId: f.rootId, chord: f.chord, groupId: f.groupId, groupIndex: f.groupIndex }) as ResultLike;
    // The body may be a chain: the header is the parent of its first step.
    const seen = new Set<string>();
    for (let node: ResultLike | undefined = bodyResult; node; node = node.parent) {
      if (seen.has(node.id)) throw new Error('Recursive result parents');
      seen.add(node.id);
      if (!node.parent) {
        node.parent = headerResult;
        break;
      }
    }
    this.options.task_id = header.options.task_id;
    return bodyResult as AsyncResult<R>;
  }

  override async applyAsync(args: unknown[] = [], kwargs: Record<string, unknown> = {}, options: SignatureOptions = {}): Promise<AsyncResult<R>> {
    const opts = normalizeOptions(options);
    const app = this.requireApp();
    const partial = args.length > 0 && !this.immutable ? [...args, ...this.args] : this.args;
    const body = Signature.fromDict((kwargs.body as SigLike | undefined) ?? this.body, app).clone([], {}, opts);
    const header = this.header instanceof Group ? this.header.clone() : new Group(this.header, {}, app);
    if (app.conf.taskAlwaysEager) {
      const values = await (await header.applyAsync(partial)).get();
      return (await body.applyAsync([values])) as AsyncResult<R>;
    }
    const { task_id: taskId, ...merged } = { ...this.options, ...opts };
    return this.run(app, header, body, partial, taskId as string | undefined, merged);
  }

  /**
   * Run in this process (Celery's `_chord.apply`): the header's `apply()`, then the body's with the
   * list of header results (`propagate: false` passes a failed part's error on instead of throwing).
   */
  override async apply(args: unknown[] = [], kwargs: Record<string, unknown> = {}, options: ApplyOptions & { propagate?: boolean } = {}): Promise<AsyncResult<R>> {
    const app = this.requireApp();
    const partial = args.length > 0 && !this.immutable ? [...args, ...this.args] : this.args;
    const body = Signature.fromDict((kwargs.body as SigLike | undefined) ?? this.body, app).clone();
    const header = this.header instanceof Group ? this.header.clone() : new Group(this.header, {}, app);
    const passed = options.throw === undefined ? {} : { throw: options.throw };
    const headerResult = await header.apply(partial, {}, passed);
    const values = await headerResult.get({ propagate: options.propagate ?? true });
    const bodyResult = (await body.apply([values], {}, passed)) as ResultLike;
    let node: ResultLike = bodyResult;
    while (node.parent) node = node.parent;
    node.parent = headerResult;
    return bodyResult as AsyncResult<R>;
  }

  /** Celery's `_chord.run`. */
  private async run(app: Celery, header: Group, body: AnySignature, partialArgs: unknown[], taskId: string | undefined, options: SigOptions): Promise<AsyncResult<R>> {
    // Before anything is sent: rpc:// cannot join a chord (Celery's ensure_chords_allowed).
    if (app.backendUrl()) (await app.backend()).ensureChordsAllowed();
    const gid = typeof header.options.task_id === 'string' ? header.options.task_id : randomUUID();
    const rootId = typeof body.options.root_id === 'string' ? body.options.root_id : undefined;
    // The chord's own options (queue, link, a chain to continue with, …) go to the body.
    Object.assign(body.options, options);
    const bodyResult = body.freeze({ id: taskId, rootId }) as ResultLike;
    // Header members must not inherit the chain or an enclosing chord (nested chords).
    const { chain: _chain, chord: _chord, ...headerOptions } = options;
    const [, results] = header.freezeGroupTasks({ groupId: gid, chord: body, rootId });
    let headerResult: ResultLike;
    if (header.tasks.length > 0) {
      // Nested groups in the header: keep their structure for the body (Redis `apply_chord`).
      if (results.some((r) => r instanceof GroupResult)) await new GroupResult(gid, results, app).save();
      headerResult = await header.applyAsync(partialArgs, {}, { ...headerOptions, task_id: gid });
    } else {
      // No header task will ever complete the chord: run the body now.
      await body.delay([]);
      headerResult = new GroupResult(gid, results, app);
    }
    bodyResult.parent = headerResult;
    return bodyResult as AsyncResult<R>;
  }
}

/** `chord(header, body)`: the body gets one argument, the list of the header's results in order. */
export function chord<B extends AnySignature>(header: AnySignature[] | Group, body: B): Chord<ResultOf<B>> {
  return new Chord<ResultOf<B>>(header, body, {}, undefined);
}

/** Celery's `_maybe_group`: a group (or chain) gives its tasks, a signature a list of one. */
function headerTasks(header: SigLike[] | SigLike, app: Celery | undefined): AnySignature[] | Group {
  if (Array.isArray(header)) return header.map((t) => Signature.fromDict(t, app));
  const sig = Signature.fromDict(header, app);
  if (sig.subtaskType === 'group' || sig.subtaskType === 'chain') return [...(sig.kwargs.tasks as AnySignature[])];
  return [sig];
}

primitives.chord = (header, body, options, app) => new Chord(header, body, options, app);

Signature.TYPES.set('chord', (d, app) => {
  const kw = d.kwargs ?? {};
  const c = new Chord((kw.header ?? []) as SigLike[], (kw.body ?? null) as SigLike | null, { ...(d.options ?? {}) }, app);
  c.args = [...(d.args ?? [])];
  c.immutable = d.immutable === true;
  return c;
});
