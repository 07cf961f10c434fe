import { ConfigurationError } from '../errors.ts';

/** A rate string longer than this is refused before it is looked at (it may come over remote control). */
export const MAX_RATE_LENGTH = 64;

const PER_UNIT: Record<string, number> = { s: 1, m: 60, h: 3600 };

/**
 * Celery's rate strings (`celery.utils.time.rate`): `10` or `10/s`, `100/m`, `1000/h`; 0 or empty
 * means no limit. Returns tasks per second. Linear in the length, which is bounded.
 */
export function parseRate(rate: string | number | null | undefined): number {
  if (rate === null || rate === undefined || rate === '' || rate === 0) return 0;
  if (typeof rate === 'number') {
    if (!Number.isFinite(rate) || rate < 0) throw invalid(String(rate));
    return rate;
  }
  if (typeof rate !== 'string') throw invalid(JSON.stringify(rate) ?? String(rate));
  if (rate.length > MAX_RATE_LENGTH) {
    throw new ConfigurationError(`Invalid rate limit string: ${rate.length} characters (at most ${MAX_RATE_LENGTH}); use e.g. "10/s", "100/m" or "1000/h"`);
  }
  const slash = rate.indexOf('/');
  const amount = (slash < 0 ? rate : rate.slice(0, slash)).trim();
  const unit = slash < 0 ? 's' : rate.slice(slash + 1).trim();
  // One optional fraction: no two quantifiers compete for the same characters.
  if (!/^\d+(?:\.\d+)?$/.test(amount) || !Object.hasOwn(PER_UNIT, unit)) throw invalid(JSON.stringify(rate));
  return Number(amount) / PER_UNIT[unit]!;
}

function invalid(shown: string): ConfigurationError {
  return new ConfigurationError(`Invalid rate limit string: ${shown}; use e.g. "10/s", "100/m" or "1000/h"`);
}
