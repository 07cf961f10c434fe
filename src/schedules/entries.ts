/**
 * `beatSchedule` entries (Celery's `beat_schedule`): `{ name: { task, schedule, args?, kwargs?, options? } }`.
 */
import type { CallOptions } from '../protocol/call-options.ts';
import { didYouMean } from '../common/did-you-mean.ts';
import { ConfigurationError } from '../errors.ts';
import { type Schedule, schedule, toSchedule } from './schedules.ts';

export interface BeatEntryConfig {
  /** The task name, as registered (or as another worker knows it: it is sent by name). */
  task: string;
  /** Seconds between runs, `schedule(seconds)` or `crontab({...})`. */
  schedule: number | Schedule;
  args?: unknown[];
  kwargs?: Record<string, unknown>;
  /** Calling options for each run: queue, expires (seconds from the send), priority, … */
  options?: BeatCallOptions;
  /** Celery's `relative`: with a number of seconds, round the next run time to the interval's resolution. */
  relative?: boolean;
}

/** The calling options that make sense for a periodic send (no eta, taskId). */
export type BeatCallOptions = Omit<CallOptions, 'eta' | 'taskId'>;

const ENTRY_KEYS = ['task', 'schedule', 'args', 'kwargs', 'options', 'relative'];
const OPTION_KEYS = [
  'countdown', 'expires', 'queue', 'routingKey', 'exchange', 'priority', 'headers', 'ignoreResult', 'timeLimit',
  'softTimeLimit', 'shadow', 'retry', 'retryPolicy', 'link', 'linkError',
];

export interface NormalizedEntry {
  name: string;
  task: string;
  schedule: Schedule;
  args: unknown[];
  kwargs: Record<string, unknown>;
  options: BeatCallOptions;
}

const snakeToCamel = (s: string) => s.toLowerCase().replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Check one entry and turn it into its working form; errors name the entry and the fix. */
export function normalizeEntry(name: string, raw: unknown): NormalizedEntry {
  const where = `beatSchedule[${JSON.stringify(name)}]`;
  if (!isObject(raw)) throw new ConfigurationError(`${where} must be an object { task, schedule, args?, kwargs?, options? }, got ${JSON.stringify(raw)}`);
  for (const key of Object.keys(raw)) {
    if (!ENTRY_KEYS.includes(key)) {
      const hint = didYouMean(key, ENTRY_KEYS);
      throw new ConfigurationError(`${where}: unknown key ${JSON.stringify(key)}` + (hint ? `; did you mean ${JSON.stringify(hint)}?` : '') + ` (keys: task, schedule, args, kwargs, options)`);
    }
  }
  if (typeof raw.task !== 'string' || !raw.task) throw new ConfigurationError(`${where}.task must be the task name, e.g. 'tasks.add', got ${JSON.stringify(raw.task)}`);
  if (raw.schedule === undefined) throw new ConfigurationError(`${where}.schedule is missing: give seconds (30), schedule(30) or crontab({ minute: '*/15' })`);
  if (raw.relative !== undefined && typeof raw.relative !== 'boolean') throw new ConfigurationError(`${where}.relative must be true or false, got ${JSON.stringify(raw.relative)}`);
  let sched = toSchedule(raw.schedule as number | Schedule, `${where}.schedule`);
  // Celery's maybe_schedule(s, relative): only a plain number of seconds takes `relative`.
  if (raw.relative === true && typeof raw.schedule === 'number') sched = schedule(raw.schedule, { relative: true });
  const args = raw.args ?? [];
  if (!Array.isArray(args)) throw new ConfigurationError(`${where}.args must be a list of positional arguments, got ${JSON.stringify(args)}`);
  const kwargs = raw.kwargs ?? {};
  if (!isObject(kwargs)) throw new ConfigurationError(`${where}.kwargs must be an object of keyword arguments, got ${JSON.stringify(kwargs)}`);
  const options = raw.options ?? {};
  if (!isObject(options)) throw new ConfigurationError(`${where}.options must be an object of calling options ({ queue, expires, priority, … }), got ${JSON.stringify(options)}`);
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.includes(key)) {
      const hint = OPTION_KEYS.includes(snakeToCamel(key)) ? snakeToCamel(key) : didYouMean(key, OPTION_KEYS);
      throw new ConfigurationError(
        `${where}.options: unknown calling option ${JSON.stringify(key)}` + (hint ? `; did you mean ${JSON.stringify(hint)}?` : '') +
          ` (celeriac uses Celery's apply_async options in camelCase: ${OPTION_KEYS.join(', ')})`,
      );
    }
  }
  return { name, task: raw.task, schedule: sched, args, kwargs, options: options as BeatCallOptions };
}

/** Validate a whole `beatSchedule` (used by the configuration table). */
export function validateBeatSchedule(value: unknown): Record<string, BeatEntryConfig> {
  if (!isObject(value)) throw new ConfigurationError(`configuration beatSchedule (Celery's beat_schedule) must be an object { name: { task, schedule, … } }, got ${JSON.stringify(value)}`);
  for (const [name, entry] of Object.entries(value)) normalizeEntry(name, entry);
  return value as Record<string, BeatEntryConfig>;
}
