import { ConfigurationError } from '../errors.ts';
import { dumps } from '../protocol/json.ts';
import { type BeatEntryConfig, validateBeatSchedule } from '../schedules/entries.ts';
import { type BrokerSslConfig, validateBrokerSsl } from './broker-ssl.ts';
import { checkTimezone } from '../schedules/timezone.ts';
import { CELERY_SETTINGS } from './celery-settings.ts';
import { didYouMean } from '../common/did-you-mean.ts';

export type Kind = 'string' | 'number' | 'boolean' | 'object' | 'string[]' | 'beatSchedule' | 'brokerSsl' | 'timezone';

interface Setting {
  kind: Kind;
  /** Celery's own setting name, for error messages and docs. */
  celery: string;
  min?: number;
  integer?: boolean;
  nullable?: boolean;
  oneOf?: readonly string[];
}

/**
 * Every configuration key celeriac reads: Celery's setting names in camelCase.
 * One table; types, defaults and validation derive from it.
 */
const SETTINGS = {
  broker: { kind: 'string', celery: 'broker_url' },
  backend: { kind: 'string', celery: 'result_backend', nullable: true },
  brokerTransportOptions: { kind: 'object', celery: 'broker_transport_options' },
  brokerUseSsl: { kind: 'brokerSsl', celery: 'broker_use_ssl' },
  brokerConnectionTimeout: { kind: 'number', celery: 'broker_connection_timeout', min: 0 },
  brokerConnectionRetry: { kind: 'boolean', celery: 'broker_connection_retry' },
  brokerConnectionRetryOnStartup: { kind: 'boolean', celery: 'broker_connection_retry_on_startup', nullable: true },
  brokerConnectionMaxRetries: { kind: 'number', celery: 'broker_connection_max_retries', min: 0, integer: true, nullable: true },
  resultExpires: { kind: 'number', celery: 'result_expires', min: 0, nullable: true },
  resultBackendTransportOptions: { kind: 'object', celery: 'result_backend_transport_options' },
  redisBackendUseSsl: { kind: 'brokerSsl', celery: 'redis_backend_use_ssl' },
  resultExtended: { kind: 'boolean', celery: 'result_extended' },
  taskAlwaysEager: { kind: 'boolean', celery: 'task_always_eager' },
  taskEagerPropagates: { kind: 'boolean', celery: 'task_eager_propagates' },
  taskStoreEagerResult: { kind: 'boolean', celery: 'task_store_eager_result' },
  taskDefaultQueue: { kind: 'string', celery: 'task_default_queue' },
  taskDefaultPriority: { kind: 'number', celery: 'task_default_priority', min: 0, integer: true, nullable: true },
  taskRoutes: { kind: 'object', celery: 'task_routes' },
  taskSerializer: { kind: 'string', celery: 'task_serializer', oneOf: ['json', 'auth'] },
  resultSerializer: { kind: 'string', celery: 'result_serializer', oneOf: ['json'] },
  taskCompression: { kind: 'string', celery: 'task_compression', nullable: true, oneOf: ['zlib', 'gzip', 'brotli', 'application/x-gzip', 'application/x-brotli'] },
  acceptContent: { kind: 'string[]', celery: 'accept_content' },
  securityKey: { kind: 'string', celery: 'security_key', nullable: true },
  securityCertificate: { kind: 'string', celery: 'security_certificate', nullable: true },
  securityCertStore: { kind: 'string', celery: 'security_cert_store', nullable: true },
  securityDigest: { kind: 'string', celery: 'security_digest' },
  taskAcksLate: { kind: 'boolean', celery: 'task_acks_late' },
  taskRejectOnWorkerLost: { kind: 'boolean', celery: 'task_reject_on_worker_lost' },
  taskTrackStarted: { kind: 'boolean', celery: 'task_track_started' },
  taskIgnoreResult: { kind: 'boolean', celery: 'task_ignore_result' },
  taskTimeLimit: { kind: 'number', celery: 'task_time_limit', min: 0, nullable: true },
  taskSoftTimeLimit: { kind: 'number', celery: 'task_soft_time_limit', min: 0, nullable: true },
  taskPublishRetry: { kind: 'boolean', celery: 'task_publish_retry' },
  taskPublishRetryPolicy: { kind: 'object', celery: 'task_publish_retry_policy' },
  taskSendSentEvent: { kind: 'boolean', celery: 'task_send_sent_event' },
  workerSendTaskEvents: { kind: 'boolean', celery: 'worker_send_task_events' },
  workerConcurrency: { kind: 'number', celery: 'worker_concurrency', min: 1, integer: true },
  workerPrefetchMultiplier: { kind: 'number', celery: 'worker_prefetch_multiplier', min: 0, integer: true },
  workerRestoreLost: { kind: 'boolean', celery: 'worker_restore_lost (celeriac)' },
  workerPool: { kind: 'string', celery: 'worker_pool', oneOf: ['async', 'threads', 'processes', 'solo', 'prefork', 'gevent', 'eventlet'] },
  workerMaxTasksPerChild: { kind: 'number', celery: 'worker_max_tasks_per_child', min: 1, integer: true, nullable: true },
  workerMaxMemoryPerChild: { kind: 'number', celery: 'worker_max_memory_per_child', min: 1, integer: true, nullable: true },
  workerPoolRestarts: { kind: 'boolean', celery: 'worker_pool_restarts' },
  // celeriac's own (no Celery equivalent): sizes in bytes, 0 = no limit.
  brokerMaxMessageSize: { kind: 'number', celery: 'broker_max_message_size', min: 0, integer: true },
  workerPrefetchBytes: { kind: 'number', celery: 'worker_prefetch_bytes', min: 0, integer: true },
  beatSchedule: { kind: 'beatSchedule', celery: 'beat_schedule' },
  beatScheduleFilename: { kind: 'string', celery: 'beat_schedule_filename' },
  beatMaxLoopInterval: { kind: 'number', celery: 'beat_max_loop_interval', min: 0 },
  timezone: { kind: 'timezone', celery: 'timezone', nullable: true },
  enableUtc: { kind: 'boolean', celery: 'enable_utc' },
  imports: { kind: 'string[]', celery: 'imports' },
  include: { kind: 'string[]', celery: 'include' },
} as const satisfies Record<string, Setting>;

type SettingKey = keyof typeof SETTINGS;
type ValueOf<S extends Setting> = (S['kind'] extends 'string' | 'timezone'
  ? string
  : S['kind'] extends 'number'
    ? number
    : S['kind'] extends 'boolean'
      ? boolean
      : S['kind'] extends 'string[]'
        ? string[]
        : S['kind'] extends 'beatSchedule'
          ? Record<string, BeatEntryConfig>
          : S['kind'] extends 'brokerSsl'
            ? boolean | BrokerSslConfig
            : Record<string, unknown>) | (S extends { nullable: true } ? null : never);

/** The configuration an app is created with; every key optional. */
export type CeleryConfig = { [K in SettingKey]?: ValueOf<(typeof SETTINGS)[K]> };

export interface RetryPolicy {
  maxRetries: number;
  intervalStart: number;
  intervalStep: number;
  intervalMax: number;
}

export const DEFAULTS = {
  broker: 'sqlite://celeriac.db',
  backend: undefined as string | null | undefined,
  brokerTransportOptions: {} as Record<string, unknown>,
  brokerUseSsl: false as boolean | BrokerSslConfig,
  /** Seconds to wait for the broker before a call fails (Celery's default). */
  brokerConnectionTimeout: 4,
  brokerConnectionRetry: true,
  /** null: as brokerConnectionRetry (Celery 5.3's rule). */
  brokerConnectionRetryOnStartup: null as boolean | null,
  /** Retries at worker start before giving up; null or 0: for ever, as Celery's. */
  brokerConnectionMaxRetries: 100 as number | null,
  resultExpires: 86_400 as number | null,
  resultBackendTransportOptions: {} as Record<string, unknown>,
  redisBackendUseSsl: false as boolean | BrokerSslConfig,
  resultExtended: false,
  taskAlwaysEager: false,
  taskEagerPropagates: false,
  taskStoreEagerResult: false,
  taskDefaultQueue: 'celery',
  taskDefaultPriority: null as number | null,
  taskRoutes: {} as Record<string, unknown>,
  taskSerializer: 'json',
  resultSerializer: 'json',
  taskCompression: null as string | null,
  acceptContent: ['json'],
  securityKey: null as string | null,
  securityCertificate: null as string | null,
  securityCertStore: null as string | null,
  securityDigest: 'sha256',
  taskAcksLate: false,
  taskRejectOnWorkerLost: false,
  taskTrackStarted: false,
  taskIgnoreResult: false,
  taskTimeLimit: null as number | null,
  taskSoftTimeLimit: null as number | null,
  taskPublishRetry: true,
  taskPublishRetryPolicy: { maxRetries: 3, intervalStart: 0, intervalStep: 0.2, intervalMax: 0.2 } as Record<string, unknown>,
  taskSendSentEvent: false,
  workerSendTaskEvents: false,
  workerConcurrency: 10,
  workerPrefetchMultiplier: 4,
  /** celeriac only: restore at once the Redis messages of a celeriac worker whose heartbeats stopped. */
  workerRestoreLost: false,
  /** async: tasks are promises on the worker's event loop (Node's counterpart of gevent/eventlet). */
  workerPool: 'async',
  workerMaxTasksPerChild: null as number | null,
  /** KiB, as Celery's. */
  workerMaxMemoryPerChild: null as number | null,
  workerPoolRestarts: false,
  /** Under RabbitMQ's own limit (128 MiB), and a message is held several times over while sent. */
  brokerMaxMessageSize: 64 * 1024 * 1024,
  /** Bytes of message bodies a worker reserves beyond the one it must take to make progress. */
  workerPrefetchBytes: 16 * 1024 * 1024,
  beatSchedule: {} as Record<string, BeatEntryConfig>,
  /** Celery's default is `celerybeat-schedule`, a Python shelve file; celeriac keeps JSON under its own name. */
  beatScheduleFilename: 'celerybeat-schedule.json',
  /** Seconds beat sleeps at most between checks; 0 means Celery's scheduler default, 300. */
  beatMaxLoopInterval: 300,
  /** An IANA name (`Europe/Paris`) whose wall clock crontabs follow; null: UTC, or the system's zone without enableUtc. */
  timezone: null as string | null,
  enableUtc: true,
  /** Modules a worker imports at start (task modules the app module does not import), as Celery's. */
  imports: [] as string[],
  include: [] as string[],
};

export type ResolvedConfig = typeof DEFAULTS;

/**
 * Validate user configuration: unknown keys and bad values fail with a message that says what to
 * do, every problem at once.
 */
export function resolveConfig(input: Record<string, unknown>): ResolvedConfig {
  const out: Record<string, unknown> = { ...DEFAULTS };
  const problems: string[] = [];
  for (const [key, value] of Object.entries(input)) {
    if (value === undefined) continue;
    const setting = (SETTINGS as Record<string, Setting>)[key];
    if (!setting) {
      problems.push(unknownKey(key));
      continue;
    }
    try {
      out[key] = validate(key, setting, value);
    } catch (err) {
      if (!(err instanceof ConfigurationError)) throw err;
      problems.push(err.message);
    }
  }
  if (problems.length === 1) throw new ConfigurationError(problems[0]!);
  if (problems.length > 1) throw new ConfigurationError(`${problems.length} configuration problems:\n  - ${problems.join('\n  - ')}`);
  return out as ResolvedConfig;
}

const CAMEL_HINT = " (celeriac uses Celery's setting names in camelCase, e.g. task_acks_late → taskAcksLate)";

/** Why a key is not accepted: Celery's name in snake_case, a Celery setting not supported yet, or a typo. */
function unknownKey(key: string): string {
  const keys = Object.keys(SETTINGS);
  const byCelery = new Map(Object.entries(SETTINGS as Record<string, Setting>).map(([k, s]) => [s.celery, k]));
  const snake = camelToSnake(key);
  const known = byCelery.get(snake);
  if (known) return `unknown configuration key ${JSON.stringify(key)}; did you mean ${JSON.stringify(known)}? (celeriac's name for Celery's ${snake})`;
  if (CELERY_SETTINGS.has(snake)) {
    return `configuration key ${JSON.stringify(key)} (Celery's ${snake}) is a Celery setting that is not supported yet by celeriac; remove it`;
  }
  const hint = didYouMean(key, keys) ?? didYouMean(snakeToCamel(key), keys);
  return `unknown configuration key ${JSON.stringify(key)}` + (hint ? `; did you mean ${JSON.stringify(hint)}?` : '') + CAMEL_HINT;
}

/** celeriac's key and kind of Celery's setting `name` (`broker_url` → broker, string). */
export function settingByCeleryName(name: string): { key: string; kind: Kind; nullable: boolean } | undefined {
  for (const [key, s] of Object.entries(SETTINGS as Record<string, Setting>)) {
    if (s.celery === name) return { key, kind: s.kind, nullable: s.nullable === true };
  }
  return undefined;
}

export function isSettingKey(key: string): boolean {
  return Object.hasOwn(SETTINGS, key);
}

/** `taskAcksLate` and `task_acks_late` → `task_acks_late`. */
function camelToSnake(s: string): string {
  return s.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase()).replace(/^_/, '');
}

function validate(key: string, s: Setting, value: unknown): unknown {
  const bad = (expected: string) =>
    new ConfigurationError(`configuration ${key} (Celery's ${s.celery}) must be ${expected}, got ${JSON.stringify(value)}`);
  if (value === null) {
    if (s.nullable) return null;
    throw bad(`a ${s.kind}`);
  }
  switch (s.kind) {
    case 'string':
      if (typeof value !== 'string') throw bad('a string');
      if (s.oneOf && !s.oneOf.includes(value)) throw bad(`one of ${s.oneOf.join(', ')}`);
      return value;
    case 'boolean':
      if (typeof value !== 'boolean') throw bad('true or false');
      return value;
    case 'number':
      if (typeof value !== 'number' || Number.isNaN(value)) throw bad('a number');
      if (s.integer && !Number.isInteger(value)) throw bad('an integer');
      if (s.min !== undefined && value < s.min) throw bad(`at least ${s.min}`);
      return value;
    case 'string[]':
      if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) throw bad('a list of strings');
      return value;
    case 'object':
      if (typeof value !== 'object' || Array.isArray(value)) throw bad('an object');
      return value;
    case 'beatSchedule':
      return validateBeatSchedule(value);
    case 'brokerSsl':
      return validateBrokerSsl(value, key, s.celery);
    case 'timezone':
      if (typeof value !== 'string') throw bad('an IANA time zone name such as "Europe/Paris"');
      return checkTimezone(value, `configuration ${key} (Celery's ${s.celery})`);
  }
}

function snakeToCamel(s: string): string {
  return s.toLowerCase().replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

export function retryPolicy(p: Record<string, unknown>): RetryPolicy {
  const n = (k: string, d: number) => (typeof p[k] === 'number' ? (p[k] as number) : d);
  return { maxRetries: n('maxRetries', 3), intervalStart: n('intervalStart', 0), intervalStep: n('intervalStep', 0.2), intervalMax: n('intervalMax', 0.2) };
}

/**
 * The configuration under Celery's setting names (`broker_url`, `task_acks_late`, …), as
 * `app.conf.table()`: only what differs from the defaults unless `withDefaults`. Not censored:
 * pass it through `filterHiddenSettings` (censor.ts) before it leaves the process.
 */
export function celeryTable(conf: ResolvedConfig, withDefaults = false): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, setting] of Object.entries(SETTINGS) as [SettingKey, Setting][]) {
    const value = (conf as Record<string, unknown>)[key];
    if (value === undefined) continue;
    if (!withDefaults && sameValue(value, (DEFAULTS as Record<string, unknown>)[key])) continue;
    out[setting.celery] = value;
  }
  return out;
}

function sameValue(a: unknown, b: unknown): boolean {
  return a === b || (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null && dumps(a) === dumps(b));
}
