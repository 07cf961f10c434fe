import type { ResultBackend } from '../backend/result-backend.ts';
import { chordPartOf, onChordPartReturn } from './chord-part.ts';
import { callErrbacks } from './errbacks.ts';
import { Group } from './group.ts';
import { Signature } from './signature.ts';
import type { SignatureDict, TaskRequest } from '../protocol/task-message.ts';
import type { Celery } from '../app/celery.ts';

/**
 * After a success, before the result is stored (so that it lists them as children), as Celery's
 * tracer: `link` callbacks get the result prepended to their args (several are sent as one
 * group), and the next chain step is applied with the rest of the chain (`embed.chain` is
 * reversed on the wire: the next step is the last element). Steps may be any canvas primitive.
 */
export async function applyCallbacks(app: Celery, req: TaskRequest, result: unknown): Promise<void> {
  const lineage = { parent_id: req.id, root_id: req.rootId ?? req.id };
  const callbacks = (req.embed.callbacks ?? []).map((d) => Signature.fromDict(d, app));
  if (callbacks.length === 1) {
    await callbacks[0]!.applyAsync([result], {}, lineage);
  } else if (callbacks.length > 1) {
    for (const g of callbacks.filter((s) => s instanceof Group)) await g.applyAsync([result], {}, lineage);
    const plain = callbacks.filter((s) => !(s instanceof Group));
    if (plain.length > 0) await new Group(plain, {}, app).applyAsync([result], {}, lineage);
  }
  const chain = req.embed.chain;
  if (chain && chain.length > 0) {
    const rest = chain.slice(0, -1);
    await Signature.fromDict(chain[chain.length - 1]!, app).applyAsync([result], {}, { ...lineage, chain: rest });
  }
}

/**
 * After a failure has been stored (Celery's `mark_as_failure`): the chord part is recorded, the
 * remaining chain steps are stored as failed with the same error (so waiting on the chain's
 * result fails at once, and a chain in a chord header still completes the chord), then errbacks.
 */
export async function applyFailure(app: Celery, backend: ResultBackend | undefined, req: TaskRequest, exc: unknown, error: unknown, traceback: string, store: boolean): Promise<void> {
  if (backend) {
    if (req.embed.chord) await onChordPartReturn(app, backend, chordPartOf(req), 'FAILURE', exc);
    for (const step of req.embed.chain ?? []) {
      const o = step.options ?? {};
      const id = typeof o.task_id === 'string' ? o.task_id : null;
      const group = typeof o.group_id === 'string' ? o.group_id : null;
      if (store && id) await backend.storeResult(id, exc, 'FAILURE', { traceback, groupId: group, parentId: typeof o.parent_id === 'string' ? o.parent_id : null, replyTo: typeof o.reply_to === 'string' ? o.reply_to : null });
      if (id && o.chord) {
        const chord = o.chord as SignatureDict;
        await onChordPartReturn(app, backend, { id, group, groupIndex: typeof o.group_index === 'number' ? o.group_index : null, chord }, 'FAILURE', exc);
      }
    }
  }
  if (req.embed.errbacks) await callErrbacks(app, { ...req, rootId: req.rootId }, req.embed.errbacks, error, traceback);
}
