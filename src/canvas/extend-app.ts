/**
 * What the canvas adds to the app when it loads: the hooks a task run calls (callbacks, chord
 * parts, errbacks, builtin tasks), `replace` and `addToChord` on a bound task's `self`, group
 * results as task return values, and the task's signature methods.
 */
import { canvasHooks } from '../app/hooks.ts';
import { resultNodeClasses } from '../app/result.ts';
import { BoundContext } from '../app/trace.ts';
import type { SigLike } from './signature.ts';
import { addToChord } from './add-to-chord.ts';
import { builtinTask } from './builtins.ts';
import { applyCallbacks, applyFailure } from './callbacks.ts';
import { chordPartOf, onChordPartReturn } from './chord-part.ts';
import { replaceTask } from './replace.ts';
import { GroupResult, resultFromTuple } from './result-group.ts';
import './task-methods.ts';

canvasHooks.applyCallbacks.provide(applyCallbacks);
canvasHooks.chordPartDone.provide((app, backend, req, result) => onChordPartReturn(app, backend, chordPartOf(req), 'SUCCESS', result));
canvasHooks.applyFailure.provide(applyFailure);
canvasHooks.builtinTask.provide(builtinTask);
canvasHooks.resultFromTuple.provide(resultFromTuple);
resultNodeClasses.push(GroupResult);

Object.assign(BoundContext.prototype, {
  replace(this: BoundContext, sig: SigLike): Promise<never> {
    return replaceTask(this.app, this.req, this.env.eager, sig);
  },
  addToChord(this: BoundContext, sig: SigLike, lazy?: boolean) {
    return addToChord(this.app, this.req, sig, lazy);
  },
});
