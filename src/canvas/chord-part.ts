/**
 * The worker side of chords (`celery/backends/redis.py: on_chord_part_return`, `base.py:
 * chord_error_from_stack`): each header task, once its result is stored, records its part; the
 * part that completes the chord sends the body with the header results in header order, then
 * deletes the bookkeeping. A failed part fails the chord: the body is stored as FAILURE with a
 * ChordError and its errbacks are called.
 */
import type { Celery } from '../app/celery.ts';
import type { ResultBackend } from '../backend/result-backend.ts';
import { TaskError } from '../errors.ts';
import { formatTraceback, serializeException } from '../protocol/exceptions.ts';
import { dumps, loads } from '../protocol/json.ts';
import { PROPAGATE_STATES } from '../protocol/states.ts';
import type { SignatureDict, TaskRequest } from '../protocol/task-message.ts';
import { callErrbacks } from './errbacks.ts';
import { ChordError, excRepr } from './errors.ts';
import { GroupResult } from './result-group.ts';
import { type AnySignature, Signature, type SigLike } from './signature.ts';

/** What a chord part needs to know about the task that finished. */
export interface ChordPartRequest {
  id: string;
  group: string | null;
  groupIndex: number | null;
  /** The chord body (`embed.chord`). */
  chord: SignatureDict | null;
}

export function chordPartOf(req: TaskRequest): ChordPartRequest {
  return { id: req.id, group: req.group, groupIndex: req.groupIndex, chord: req.embed.chord };
}

/** Seconds to wait for saved (nested) header results (Celery's `result_chord_join_timeout`). */
const JOIN_TIMEOUT = 3;

/** Record a finished header part (`result` as stored: a serialized exception for failures); send the body when complete. */
export async function onChordPartReturn(app: Celery, backend: ResultBackend, req: ChordPartRequest, state: string, result: unknown): Promise<void> {
  if (!req.group || !req.id || !req.chord) return;
  const groupId = req.group;
  const member = dumps([1, req.id, state, result]);
  const { count, total } = await backend.addChordPart(groupId, { taskId: req.id, groupIndex: req.groupIndex, member });
  if (total === null || count !== total) return;
  const body = Signature.fromDict(req.chord, app);
  try {
    let values: unknown[];
    try {
      values = await joinHeader(app, backend, groupId);
    } catch (err) {
      await chordError(app, backend, body, err instanceof ChordError ? err : new ChordError(`Join error: ${excRepr(err)}`));
      return;
    }
    try {
      await body.applyAsync([values]);
    } catch (err) {
      await chordError(app, backend, body, new ChordError(`Callback error: ${excRepr(err)}`));
    }
  } finally {
    await backend.deleteChord(groupId);
  }
}

/** The header results in order: from a saved GroupResult (nested groups), else from the recorded parts. */
async function joinHeader(app: Celery, backend: ResultBackend, groupId: string): Promise<unknown[]> {
  const saved = await GroupResult.restore(app, groupId);
  if (saved) {
    try {
      return await saved.join({ timeout: JOIN_TIMEOUT, propagate: true });
    } catch (err) {
      if (err instanceof TaskError) throw new ChordError(`Dependency ${err.taskId} raised ${excRepr(serializeException(err))}`);
      throw err;
    }
  }
  return (await backend.chordParts(groupId)).map((m) => {
    const [, taskId, state, value] = loads(m) as [number, string, string, unknown];
    if (PROPAGATE_STATES.has(state)) throw new ChordError(`Dependency ${taskId} raised ${excRepr(value)}`);
    return value;
  });
}

/** Celery's `chord_error_from_stack`: call the body's errbacks, then store it (every task it stands for) as FAILURE. */
export async function chordError(app: Celery, backend: ResultBackend, body: AnySignature, error: ChordError): Promise<void> {
  const errbacks = body.options.link_error;
  const list = (Array.isArray(errbacks) ? errbacks : errbacks ? [errbacks] : []) as SigLike[];
  if (list.length > 0 && body.id) await callErrbacks(app, { id: body.id, rootId: null }, list, error, null);
  await failSignature(app, backend, body, error);
}

/** Store FAILURE for what a signature would have produced (a chain's or group's tasks, a chord's body). */
async function failSignature(app: Celery, backend: ResultBackend, sig: AnySignature, error: Error): Promise<void> {
  const nested = sig.subtaskType === 'chain' || sig.subtaskType === 'group' ? (sig.kwargs.tasks as SigLike[]) : sig.subtaskType === 'chord' ? [sig.kwargs.body as SigLike] : null;
  if (nested) {
    for (const t of nested) await failSignature(app, backend, Signature.fromDict(t, app), error);
    return;
  }
  if (!sig.id) return;
  const exc = serializeException(error);
  await backend.storeResult(sig.id, exc, 'FAILURE', { traceback: formatTraceback(error) });
  // A body that is itself part of an enclosing chord must still complete it.
  const o = sig.options;
  if (o.chord && typeof o.group_id === 'string') {
    const index = typeof o.group_index === 'number' ? o.group_index : null;
    const chord = (o.chord as { toJSON?: () => SignatureDict }).toJSON?.() ?? (o.chord as SignatureDict);
    await onChordPartReturn(app, backend, { id: sig.id, group: o.group_id, groupIndex: index, chord }, 'FAILURE', exc);
  }
}
