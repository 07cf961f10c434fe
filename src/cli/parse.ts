import { InvalidArgumentError, type OptionValues } from 'commander';
import { ConfigurationError } from '../errors.ts';
import { createLogger, type LogFormat, type Logger, type LogLevel, parseLogLevel } from '../worker/log.ts';

export function positiveInt(flag: string, min = 1): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${flag} must be an integer ≥ ${min}, got ${JSON.stringify(value)}`);
    return n;
  };
}

export function jsonArg<T>(flag: string, check: (v: unknown) => v is T, expected: string): (value: string) => T {
  return (value) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch {
      throw new InvalidArgumentError(`${flag} must be JSON (${expected}), got ${value}`);
    }
    if (!check(parsed)) throw new InvalidArgumentError(`${flag} must be ${expected}, got ${value}`);
    return parsed;
  };
}

export function nonNegativeNumber(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${flag} must be a number ≥ 0, got ${JSON.stringify(value)}`);
    return n;
  };
}

/** The logger of a long-running command (worker, beat) from its -l and --log-format options; `write`: to a --logfile. */
export function commandLogger(opts: OptionValues, write?: (line: string) => void): { logger: Logger; format: LogFormat } {
  const format = opts.logFormat as LogFormat;
  if (format !== 'text' && format !== 'json') throw new ConfigurationError(`--log-format must be text or json, got ${JSON.stringify(format)}`);
  let level: LogLevel;
  try {
    level = parseLogLevel(String(opts.loglevel));
  } catch (err) {
    throw new ConfigurationError(`-l/--loglevel: ${(err as Error).message}`);
  }
  return { logger: createLogger({ level, format, write }), format };
}
