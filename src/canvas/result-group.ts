/**
 * GroupResult (`celery/result.py: GroupResult`): the results of a group's tasks, in order, under
 * the group id. `save()` stores it as Celery does (`celery-taskset-meta-<gid>` =
 * `{"result": [[gid, parent], [[[tid, null], null], …]]}`), so a Python client can `restore` it.
 */
import type { Celery } from '../app/celery.ts';
import { AsyncResult, type GetOptions, type ResultNode, type ResultSource } from '../app/result.ts';
import { TimeoutError } from '../errors.ts';
import { READY_STATES } from '../protocol/states.ts';

export type AnyResult = AsyncResult | GroupResult;

export class GroupResult<R extends unknown[] = unknown[]> implements ResultNode {
  parent: ResultNode | undefined;

  constructor(
    readonly id: string,
    readonly results: AnyResult[],
    protected readonly source: ResultSource,
    parent?: ResultNode,
  ) {
    this.parent = parent;
  }

  get children(): AnyResult[] {
    return this.results;
  }

  get length(): number {
    return this.results.length;
  }

  [Symbol.iterator](): Iterator<AnyResult> {
    return this.results[Symbol.iterator]();
  }

  asTuple(): unknown {
    return [[this.id, this.parent ? this.parent.asTuple() : null], this.results.map((r) => r.asTuple())];
  }

  /** The results in order, waiting for each; throws the first failure met (unless propagate: false). */
  get(options: GetOptions = {}): Promise<R> {
    return this.join(options);
  }

  async join(options: GetOptions = {}): Promise<R> {
    const deadline = options.timeout === undefined ? undefined : Date.now() + options.timeout * 1000;
    const values: unknown[] = [];
    for (const r of this.results) {
      const timeout = deadline === undefined ? undefined : Math.max(0, deadline - Date.now()) / 1000;
      if (timeout === 0) throw new TimeoutError(`group ${this.id}: join timed out after ${options.timeout} s`);
      values.push(await r.get({ ...options, timeout }));
    }
    return values as R;
  }

  /** How many members succeeded. */
  async completedCount(): Promise<number> {
    return (await this.each((s) => s === 'SUCCESS', (g) => g.successful())).filter(Boolean).length;
  }

  async ready(): Promise<boolean> {
    return (await this.each((s) => READY_STATES.has(s), (g) => g.ready())).every(Boolean);
  }

  async successful(): Promise<boolean> {
    return (await this.each((s) => s === 'SUCCESS', (g) => g.successful())).every(Boolean);
  }

  async failed(): Promise<boolean> {
    return (await this.each((s) => s === 'FAILURE', (g) => g.failed())).some(Boolean);
  }

  /** Any member not ready yet. */
  async waiting(): Promise<boolean> {
    return !(await this.ready());
  }

  async revoke(): Promise<void> {
    for (const r of this.results) await r.revoke();
  }

  async forget(): Promise<void> {
    for (const r of this.results) await r.forget();
  }

  /** Store the group (ids only) so that `GroupResult.restore(app, id)` can rebuild it, in any language. */
  async save(): Promise<this> {
    await (await this.source.backend()).saveGroup(this.id, this.asTuple());
    return this;
  }

  async delete(): Promise<void> {
    await (await this.source.backend()).deleteGroup(this.id);
  }

  static async restore(app: Celery, id: string): Promise<GroupResult | null> {
    const tuple = await (await app.backend()).restoreGroup(id);
    if (tuple === null) return null;
    const r = resultFromTuple(tuple, app);
    return r instanceof GroupResult ? r : null;
  }

  toString(): string {
    return `<GroupResult: ${this.id} [${this.results.map((r) => r.id).join(', ')}]>`;
  }

  /** Evaluate every member: plain results from one batched read, nested groups recursively. */
  private async each(test: (state: string) => boolean, nested: (g: GroupResult) => Promise<boolean>): Promise<boolean[]> {
    const plain = this.results.filter((r): r is AsyncResult => r instanceof AsyncResult && r.constructor === AsyncResult);
    const states = new Map<string, string>();
    if (plain.length > 0) {
      const metas = await (await this.source.backend()).getTaskMetas(plain.map((r) => r.id));
      for (const m of metas) states.set(m.task_id, m.status);
    }
    return Promise.all(this.results.map(async (r) => {
      if (r instanceof GroupResult) return nested(r);
      return test(states.get(r.id) ?? (await r.state));
    }));
  }
}

/** Rebuild a result from Celery's tuple form `[[id, parent_tuple], children_or_null]` (`result_from_tuple`). */
export function resultFromTuple(t: unknown, source: ResultSource): AnyResult {
  const [res, nodes] = t as [unknown, unknown[] | null];
  const [id, parentTuple] = (Array.isArray(res) ? res : [res, null]) as [string, unknown];
  const parent = parentTuple ? resultFromTuple(parentTuple, source) : undefined;
  if (Array.isArray(nodes)) return new GroupResult(id, nodes.map((n) => resultFromTuple(n, source)), source, parent);
  const r = new AsyncResult(id, source);
  r.parent = parent;
  return r;
}
