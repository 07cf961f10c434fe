/** Canvas: Celery's workflow primitives, wire-compatible with Python Celery 5.2. */
export { Signature, signature, chordSizeOf, type ApplyOptions, type SigLike, type AnySignature, type FreezeOptions, type ResultLike, type ResultOf } from './signature.ts';
export type { SignatureOptions, SigOptions } from './options.ts';
export { Chain, chain, prepareSteps } from './chain.ts';
export { Group, group } from './group.ts';
export { Chord, chord } from './chord.ts';
export { XMap, XStarmap, Chunks, xmap, xstarmap, chunks } from './map.ts';
export { GroupResult, resultFromTuple, type AnyResult } from './result-group.ts';
export { ChordError } from './errors.ts';
export { chordPartOf, onChordPartReturn } from './chord-part.ts';
export { callErrbacks } from './errbacks.ts';
export { replaceTask } from './replace.ts';
export { addToChord } from './add-to-chord.ts';
import './extend-app.ts';
