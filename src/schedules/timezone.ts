/**
 * Wall-clock time in an IANA time zone, from the platform's time-zone data (Intl), for crontabs
 * matched in the app's `timezone`. A wall time is held as a Date whose UTC fields are the
 * zone's wall-clock fields.
 */
import { ConfigurationError } from '../errors.ts';

const formats = new Map<string, Intl.DateTimeFormat>();

function format(tz: string): Intl.DateTimeFormat {
  let f = formats.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
    });
    formats.set(tz, f);
  }
  return f;
}

/** True for `UTC` and its aliases: no conversion needed. */
export function isUtc(tz: string | undefined): boolean {
  return tz === undefined || tz === 'UTC' || tz === 'Etc/UTC' || tz === 'Etc/GMT' || tz === 'GMT' || tz === 'Z';
}

/** The zone's canonical name, or a ConfigurationError naming the setting. */
export function checkTimezone(tz: string, where: string): string {
  try {
    return format(tz).resolvedOptions().timeZone;
  } catch {
    throw new ConfigurationError(`${where} ${JSON.stringify(tz)} is not a time zone this platform knows; use an IANA name such as "Europe/Paris" or "UTC"`);
  }
}

/** The system's own time zone (Celery's local time, with enable_utc off and no timezone). */
export function systemTimezone(): string {
  return new Intl.DateTimeFormat().resolvedOptions().timeZone;
}

/** The wall-clock time of `instant` in `tz`. */
export function toWall(instant: Date, tz: string): Date {
  if (isUtc(tz)) return instant;
  const p: Record<string, number> = {};
  for (const { type, value } of format(tz).formatToParts(instant)) if (type !== 'literal') p[type] = Number(value);
  const wall = Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!, p.second!);
  return new Date(wall + (((instant.getTime() % 1000) + 1000) % 1000));
}

/**
 * The instant at which `tz` shows the wall time `wall`. A time that occurs twice (clocks go back)
 * gives its first occurrence; one the clocks skip (they go forward) gives the moment of the change,
 * as cron and Celery run it (02:30 on the spring-forward day in Paris → 03:00 CEST).
 */
export function fromWall(wall: Date, tz: string): Date {
  if (isUtc(tz)) return wall;
  const w = wall.getTime();
  const offset = (t: number) => toWall(new Date(t), tz).getTime() - t;
  const oldOffset = offset(w - 86_400_000);
  const newOffset = offset(w + 86_400_000);
  const early = w - oldOffset;
  const late = w - newOffset;
  const fits = (t: number) => toWall(new Date(t), tz).getTime() === w;
  if (fits(early) && fits(late)) return new Date(Math.min(early, late));
  if (fits(early)) return new Date(early);
  if (fits(late)) return new Date(late);
  // In the gap: the change is between `late` (still the old offset) and `early` (already the new one).
  let [lo, hi] = [Math.min(early, late), Math.max(early, late)];
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (offset(mid) === newOffset) hi = mid;
    else lo = mid;
  }
  return new Date(hi);
}

/** Celery's `app.timezone`: the `timezone` setting, else UTC with `enable_utc` (the default), else the system's zone. */
export function appTimezone(conf: { timezone: string | null; enableUtc: boolean }): string {
  return conf.timezone ?? (conf.enableUtc ? 'UTC' : systemTimezone());
}
