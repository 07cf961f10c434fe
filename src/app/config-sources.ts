/**
 * Configuration as Celery users keep it: an object or module (config_from_object, with its
 * `namespace`), and environment variables with a prefix (`CELERY_BROKER_URL`, …).
 */
import { ConfigurationError } from '../errors.ts';
import { type Kind, isSettingKey, resolveConfig, type ResolvedConfig, settingByCeleryName } from './config.ts';
import { CELERY_SETTINGS } from './celery-settings.ts';
import { didYouMean } from './did-you-mean.ts';

export interface ConfigFromObjectOptions {
  /** Only keys starting with `<namespace>_` are read, the prefix removed (`CELERY_BROKER_URL` → broker_url), as Celery's namespace. */
  namespace?: string;
}

/**
 * celeriac's settings from an object whose keys are celeriac's (`taskAcksLate`) or Celery's
 * (`task_acks_late`, `TASK_ACKS_LATE`); validated, every problem at once.
 */
export function settingsFromObject(obj: Record<string, unknown>, opts: ConfigFromObjectOptions = {}): Partial<ResolvedConfig> {
  const prefix = opts.namespace ? `${opts.namespace}_` : '';
  const input: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(obj)) {
    if (value === undefined || name === 'default' || name.startsWith('_')) continue;
    if (prefix && !name.startsWith(prefix)) continue;
    const bare = name.slice(prefix.length);
    const key = isSettingKey(bare) ? bare : (settingByCeleryName(/[a-z]/.test(bare) ? bare : bare.toLowerCase())?.key ?? bare);
    input[key] = value;
  }
  return pick(resolveConfig(input), Object.keys(input));
}

/** A module namespace as a config object: its named exports, or its default export when it has only that. */
export function moduleAsObject(ns: Record<string, unknown>): Record<string, unknown> {
  const named = Object.keys(ns).filter((k) => k !== 'default' && k !== 'module.exports');
  const def = ns['default'];
  if (named.length === 0 && def !== null && typeof def === 'object') return def as Record<string, unknown>;
  return Object.fromEntries(named.map((k) => [k, ns[k]]));
}

/** Celery's own variables under CELERY_ that are not settings (read by the CLI or by Python tooling). */
const NOT_SETTINGS = new Set(['APP', 'CONFIG_MODULE', 'LOADER', 'LOG_FILE', 'LOG_LEVEL', 'LOG_REDIRECT', 'LOG_REDIRECT_LEVEL',
  'RDB_HOST', 'RDB_PORT', 'TRACE_APP', 'BENCH', 'BENCH_EVERY', 'CUSTOM_WORKER_POOL']);

export interface EnvOptions {
  /** Default `CELERY_`. */
  prefix?: string;
  env?: NodeJS.ProcessEnv;
  /** Told about variables naming Celery settings celeriac does not read (a Python service may share them). */
  onIgnored?: (message: string) => void;
}

/**
 * Settings from environment variables: `<prefix><CELERY SETTING NAME IN CAPITALS>`, the value
 * parsed for the setting's type. Unknown names and bad values fail, all at once, naming the variable.
 */
export function settingsFromEnv(opts: EnvOptions = {}): Partial<ResolvedConfig> {
  const prefix = opts.prefix ?? 'CELERY_';
  const env = opts.env ?? process.env;
  const input: Record<string, unknown> = {};
  const problems: string[] = [];
  const names = Object.keys(env).filter((n) => n.startsWith(prefix)).sort();
  for (const variable of names) {
    const raw = env[variable];
    const bare = variable.slice(prefix.length);
    if (raw === undefined || NOT_SETTINGS.has(bare)) continue;
    const celery = bare.toLowerCase();
    const setting = settingByCeleryName(celery);
    if (!setting) {
      if (CELERY_SETTINGS.has(celery)) {
        opts.onIgnored?.(`${variable}: Celery's ${celery} is not supported by celeriac; ignored`);
        continue;
      }
      const all = [...CELERY_SETTINGS].map((s) => prefix + s.toUpperCase());
      const hint = didYouMean(variable, all);
      problems.push(`environment variable ${variable}: no Celery setting is named ${celery}` + (hint ? `; did you mean ${hint}?` : ''));
      continue;
    }
    try {
      const value = parseEnvValue(raw, setting.kind, setting.nullable);
      input[setting.key] = value;
      resolveConfig({ [setting.key]: value });
    } catch (err) {
      if (!(err instanceof ConfigurationError)) throw err;
      problems.push(`environment variable ${variable}=${JSON.stringify(raw)}: ${err.message}`);
    }
  }
  if (problems.length === 1) throw new ConfigurationError(problems[0]!);
  if (problems.length > 1) throw new ConfigurationError(`${problems.length} configuration problems:\n  - ${problems.join('\n  - ')}`);
  return pick(resolveConfig(input), Object.keys(input));
}

/** Python Celery reads these two from the environment before its configuration, whatever the app says. */
export function celeryEnvOverrides(env: NodeJS.ProcessEnv = process.env): Partial<ResolvedConfig> {
  const out: Partial<ResolvedConfig> = {};
  if (env['CELERY_BROKER_URL']) out.broker = env['CELERY_BROKER_URL'];
  if (env['CELERY_RESULT_BACKEND']) out.backend = env['CELERY_RESULT_BACKEND'];
  return out;
}

const TRUE = ['true', '1', 'yes', 'on'];
const FALSE = ['false', '0', 'no', 'off'];

function parseEnvValue(raw: string, kind: Kind, nullable: boolean): unknown {
  const text = raw.trim();
  if (nullable && ['null', 'none', ''].includes(text.toLowerCase()) && kind !== 'string') return null;
  const json = (what: string) => {
    try {
      return JSON.parse(text);
    } catch {
      throw new ConfigurationError(`must be ${what} in JSON`);
    }
  };
  switch (kind) {
    case 'string':
    case 'timezone':
      return raw;
    case 'number': {
      const n = Number(text);
      if (text === '' || !Number.isFinite(n)) throw new ConfigurationError('must be a number');
      return n;
    }
    case 'boolean':
      if (TRUE.includes(text.toLowerCase())) return true;
      if (FALSE.includes(text.toLowerCase())) return false;
      throw new ConfigurationError(`must be one of ${[...TRUE, ...FALSE].join(', ')}`);
    case 'string[]':
      return text.startsWith('[') ? json('a list of strings') : text.split(',').map((s) => s.trim()).filter(Boolean);
    case 'brokerSsl':
      if (TRUE.includes(text.toLowerCase())) return true;
      if (FALSE.includes(text.toLowerCase())) return false;
      return json('true, false or an object');
    case 'object':
    case 'beatSchedule':
      return json('an object');
  }
}

function pick(conf: ResolvedConfig, keys: string[]): Partial<ResolvedConfig> {
  return Object.fromEntries(keys.map((k) => [k, (conf as Record<string, unknown>)[k]])) as Partial<ResolvedConfig>;
}
