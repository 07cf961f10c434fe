import { censorText } from './censor.ts';
import { ConfigurationError } from '../errors.ts';
/** Log lines that read like Celery's, or one JSON object per line for machines. */
export const LEVELS = { DEBUG: 10, INFO: 20, WARNING: 30, ERROR: 40, CRITICAL: 50 } as const;
export type LogLevel = keyof typeof LEVELS;
export type LogFormat = 'text' | 'json';

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warning(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  critical(msg: string, fields?: Record<string, unknown>): void;
  readonly level: LogLevel;
}

/** Celery's -l choices (any case); FATAL is CRITICAL, as in Python's logging. */
export const LEVEL_NAMES = ['DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL', 'FATAL'] as const;

export function parseLogLevel(value: string): LogLevel {
  const upper = value.toUpperCase();
  if (upper === 'WARN') return 'WARNING';
  if (upper === 'FATAL') return 'CRITICAL';
  if (upper in LEVELS) return upper as LogLevel;
  throw new ConfigurationError(`invalid log level ${JSON.stringify(value)}: use one of ${LEVEL_NAMES.join(', ')}`);
}

/** `processName` is Celery's (MainProcess, ForkPoolWorker-1, ...). */
export function createLogger(opts: { level?: LogLevel; format?: LogFormat; write?: (line: string) => void; processName?: string } = {}): Logger {
  const level = opts.level ?? 'INFO';
  const format = opts.format ?? 'text';
  const write = opts.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const min = LEVELS[level];
  const processName = opts.processName ?? 'MainProcess';
  const emit = (lvl: LogLevel) => (text: string, fields?: Record<string, unknown>) => {
    if (LEVELS[lvl] < min) return;
    const msg = censorText(text);
    const now = new Date();
    if (format === 'json') {
      write(JSON.stringify({ time: now.toISOString(), level: lvl, pid: process.pid, message: msg, ...fields }));
    } else {
      write(`[${celeryTime(now)}: ${lvl}/${processName}] ${msg}`);
    }
  };
  return { level, debug: emit('DEBUG'), info: emit('INFO'), warning: emit('WARNING'), error: emit('ERROR'), critical: emit('CRITICAL') };
}

/** `2026-11-25 14:00:00,123` in local time, as Python's logging writes it. */
function celeryTime(d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())},${p(d.getMilliseconds(), 3)}`;
}
