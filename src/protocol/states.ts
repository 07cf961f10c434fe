/** Task states, as Celery names and stores them (`celery/states.py`). */
export const STATES = ['PENDING', 'RECEIVED', 'STARTED', 'SUCCESS', 'FAILURE', 'REVOKED', 'REJECTED', 'RETRY', 'IGNORED'] as const;

export type BuiltinState = (typeof STATES)[number];
/** Custom states from `updateState` are plain strings. */
export type TaskState = BuiltinState | (string & {});

export const READY_STATES: ReadonlySet<string> = new Set(['SUCCESS', 'FAILURE', 'REVOKED']);
export const EXCEPTION_STATES: ReadonlySet<string> = new Set(['RETRY', 'FAILURE', 'REVOKED']);
export const PROPAGATE_STATES: ReadonlySet<string> = new Set(['FAILURE', 'REVOKED']);
