import { InvalidArgumentError } from 'commander';

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
