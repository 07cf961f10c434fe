import type { SignatureDict, TaskRequest } from '../protocol/task-message.ts';
import type { InternalCallOptions } from './call-options.ts';
import type { Celery } from './celery.ts';
import { publishTask } from './publish.ts';

/**
 * After a success: publish `link` callbacks with the result prepended to their args, and the next
 * step of a chain (`embed.chain` is reversed on the wire: the next step is the last element).
 */
export async function applyCallbacks(app: Celery, req: TaskRequest, result: unknown): Promise<void> {
  const lineage = { parentId: req.id, rootId: req.rootId ?? req.id };
  for (const sig of req.embed.callbacks ?? []) await applySignature(app, sig, result, lineage);
  const chain = req.embed.chain;
  if (chain && chain.length > 0) {
    const next = chain[chain.length - 1]!;
    const rest = chain.slice(0, -1);
    await applySignature(app, next, result, { ...lineage, chain: rest.length > 0 ? rest : null });
  }
}

/** After a failure: errbacks are sent the failed task's id, as Celery does for one-argument errbacks. */
export async function applyErrbacks(app: Celery, req: TaskRequest): Promise<void> {
  for (const sig of req.embed.errbacks ?? []) {
    await publishTask(app, sig.task, [req.id, ...sig.args], sig.kwargs, { ...signatureOptions(sig), parentId: req.id, rootId: req.rootId });
  }
}

async function applySignature(app: Celery, sig: SignatureDict, result: unknown, extra: InternalCallOptions): Promise<void> {
  const args = sig.immutable ? sig.args : [result, ...sig.args];
  await publishTask(app, sig.task, args, sig.kwargs, { ...signatureOptions(sig), ...extra });
}

/** The calling options a signature's `options` carry, in Celery's snake_case. */
function signatureOptions(sig: SignatureDict): InternalCallOptions {
  const o = sig.options ?? {};
  const pick = <T>(k: string, type: string): T | undefined => (typeof o[k] === type ? (o[k] as T) : undefined);
  return {
    taskId: pick<string>('task_id', 'string'),
    queue: pick<string>('queue', 'string'),
    priority: pick<number>('priority', 'number'),
    countdown: pick<number>('countdown', 'number'),
    link: (o.link as SignatureDict[] | undefined) ?? undefined,
    linkError: (o.link_error as SignatureDict[] | undefined) ?? undefined,
  };
}
