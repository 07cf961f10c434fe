/**
 * `self.addToChord(sig)` in a bound task (Celery's `Task.add_to_chord`): the signature joins the
 * chord the running task is a header part of. It gets the task's group id, group_index, chord body
 * and root id, the backend counts one more part (Redis: INCRBY `celery-taskset-meta-<gid>.t` 1, the
 * "extra" every part adds to the chord size), and it is sent (unless lazy), so the body runs only
 * once it has finished too, with its result among the header's. Like Celery, the added task shares
 * the adding task's group_index: on Redis (Celery's zset) the two are ordered by task id; the
 * generic join (SQLite, memory) puts all but the first of them after the indexed parts.
 */
import type { Celery } from '../app/celery.ts';
import type { AsyncResult } from '../app/result.ts';
import { ConfigurationError } from '../errors.ts';
import type { TaskRequest } from '../protocol/task-message.ts';
import { type AnySignature, Signature, type SigLike } from './signature.ts';

declare module '../app/context.ts' {
  interface TaskContext {
    /**
     * Add a signature to the chord this task is a header part of; the chord body waits for it
     * and gets its result too. Sends it and returns its result handle, or with `lazy` only
     * prepares it (the caller must `delay()` it). Throws when the task is not part of a chord.
     */
    addToChord(sig: SigLike): Promise<AsyncResult>;
    addToChord(sig: SigLike, lazy: true): Promise<AnySignature>;
    addToChord(sig: SigLike, lazy?: boolean): Promise<AsyncResult | AnySignature>;
  }
}

export async function addToChord(app: Celery, req: TaskRequest, sig: SigLike, lazy = false): Promise<AsyncResult | AnySignature> {
  if (!req.embed.chord || !req.group) throw new ConfigurationError('Current task is not member of any chord');
  const s = Signature.fromDict(sig, app);
  s.set({ group_id: req.group, group_index: req.groupIndex ?? undefined, chord: req.embed.chord, root_id: req.rootId ?? undefined });
  s.freeze();
  await (await app.backend()).addToChord(req.group);
  return lazy ? s : ((await s.delay()) as AsyncResult);
}

