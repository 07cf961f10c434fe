/**
 * `self.replace(sig)` in a bound task (Celery 5.2's `Task.replace`): the signature takes over the
 * task's id, callbacks, errbacks, chord membership and the rest of its chain, so whoever waits for
 * the task gets the replacement's result; the task itself ends without storing anything.
 */
import type { Celery } from '../app/celery.ts';
import { ConfigurationError, Ignore, ImproperlyConfigured } from '../errors.ts';
import type { TaskRequest } from '../protocol/task-message.ts';
import { Chain } from './chain.ts';
import { Group } from './group.ts';
import { type AnySignature, Signature, type SigLike } from './signature.ts';

declare module '../app/context.ts' {
  interface TaskContext {
    /**
     * Replace this task with a signature (task, chain, group, chord) that inherits its id,
     * callbacks and place in a workflow. Always rejects (the task stops): `return self.replace(sig)`.
     */
    replace(sig: SigLike): Promise<never>;
  }
}

export async function replaceTask(app: Celery, req: TaskRequest, eager: boolean, replacement: SigLike): Promise<never> {
  let sig: AnySignature = Signature.fromDict(replacement, app).clone();
  if (sig.options.chord) throw new ImproperlyConfigured('A signature replacing a task must not be part of a chord');
  if (sig instanceof Chain && sig.tasks.length === 0) throw new ImproperlyConfigured('Cannot replace with an empty chain');
  if (eager) throw new ConfigurationError(`task ${req.name}: replace() needs a worker; it is not supported for eager runs`);
  // A group becomes a chord, so that callbacks can be linked to its body (the list of results).
  if (sig instanceof Group) sig = sig.pipe(new Signature('celery.accumulate', [], { index: 0 }, {}, { app }));
  for (const cb of req.embed.callbacks ?? []) sig.link(cb);
  for (const eb of req.embed.errbacks ?? []) sig.linkError(eb);
  if (sig instanceof Chain && sig.options.link) {
    // Callbacks of a chain run after its last step.
    sig.tasks[sig.tasks.length - 1]!.extendListOption('link', sig.options.link as SigLike[]);
    delete sig.options.link;
  }
  sig.freeze({ id: req.id });
  const nesting = typeof req.headers.replaced_task_nesting === 'number' ? req.headers.replaced_task_nesting : 0;
  sig.set({ chord: req.embed.chord ?? undefined, group_id: req.group ?? undefined, group_index: req.groupIndex ?? undefined, root_id: req.rootId ?? undefined, replaced_task_nesting: nesting + 1 });
  for (const step of [...(req.embed.chain ?? [])].reverse()) sig = sig.pipe(Signature.fromDict(step, app));
  await sig.delay();
  throw new Ignore('Replaced by new task');
}
