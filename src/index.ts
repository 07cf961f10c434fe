export { Celery } from './app/celery.ts';
export type { CeleryConfig } from './app/config.ts';
export type { ConfigFromObjectOptions, EnvOptions } from './app/config-sources.ts';
export type { AutodiscoverOptions } from './app/config-load.ts';
export { Task } from './app/task.ts';
export type { TaskOptions, ParamSpec } from './app/task-options.ts';
export { currentSignal } from './app/publish.ts';
export type { CallOptions } from './app/call-options.ts';
export type { TaskContext, RequestContext, RetryOptions } from './app/context.ts';
export { AsyncResult, type GetOptions, type ResultNode } from './app/result.ts';
export {
  Signature, signature, Chain, chain, Group, group, Chord, chord, XMap, XStarmap, Chunks, xmap, xstarmap, chunks,
  GroupResult, ChordError, type SigLike, type AnySignature, type SignatureOptions, type AnyResult,
} from './canvas/index.ts';
export { EagerResult } from './app/eager.ts';
export { Worker, type WorkerOptions } from './worker/worker.ts';
export { createLogger, type Logger, type LogLevel, type LogFormat } from './worker/log.ts';
export { STATES, READY_STATES, type TaskState } from './protocol/states.ts';
export type { Transport, Delivery } from './transport/types.ts';
export type { KeyValueStore } from './backend/types.ts';
export * from './errors.ts';
export { VERSION } from './version.ts';
export { schedule, crontab, IntervalSchedule, Crontab, type Schedule, type ScheduleState, type CrontabSpec, type CronField } from './beat/schedules.ts';
export { Beat, ScheduleEntry, type BeatOptions } from './beat/beat.ts';
export type { BeatEntryConfig, BeatCallOptions } from './beat/entries.ts';
