import { ConfigurationError } from '../errors.ts';

/** Celery's rate strings: `10` or `10/s`, `100/m`, `1000/h`; 0 or empty means no limit. Returns tasks per second. */
export function parseRate(rate: string | number | null | undefined): number {
  if (rate === null || rate === undefined || rate === '' || rate === 0) return 0;
  if (typeof rate === 'number') return rate;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:\/\s*([smh]))?\s*$/.exec(rate);
  if (!m) throw new ConfigurationError(`Invalid rate limit string: ${JSON.stringify(rate)}; use e.g. "10/s", "100/m" or "1000/h"`);
  const per = { s: 1, m: 60, h: 3600 }[(m[2] ?? 's') as 's' | 'm' | 'h'];
  return Number(m[1]) / per;
}
