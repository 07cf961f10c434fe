/**
 * Schedules of periodic tasks, as Celery 5.2's celery/schedules.py: `schedule(seconds)` (an
 * interval) and `crontab({ minute, hour, dayOfWeek, dayOfMonth, monthOfYear })`.
 *
 * A crontab's fields are matched against the wall clock of a time zone: the app's `timezone`
 * (beat passes it), UTC by default as Celery's with `enable_utc` and no `timezone`.
 */
import { ConfigurationError } from '../errors.ts';
import { fromWall, isUtc, toWall } from './timezone.ts';

/** Celery's `schedstate`: is the task due now, and in how many seconds to check (or run) next. */
export interface ScheduleState {
  isDue: boolean;
  nextSeconds: number;
}

/** What `beatSchedule` entries accept as `schedule` (besides a plain number of seconds). */
export interface Schedule {
  /**
   * Celery's `is_due(last_run_at)`. When due, `nextSeconds` is the time until the run after this
   * one; when not, the time until this one.
   */
  isDue(lastRunAt: Date, now?: Date, tz?: string): ScheduleState;
  /** Celery's `remaining_estimate(last_run_at)`, in seconds (negative when overdue). */
  remainingEstimate(lastRunAt: Date, now?: Date, tz?: string): number;
  /**
   * The next run time after `lastRunAt` (as Celery's `last_run_at + remaining_delta`). `tz`: the
   * IANA time zone whose wall clock a crontab follows (default UTC); intervals ignore it.
   */
  nextRunAt(lastRunAt: Date, now?: Date, tz?: string): Date;
  toString(): string;
}

const SCHEDULE_BRAND = Symbol.for('celeriac.schedule');

export function isSchedule(value: unknown): value is Schedule {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[SCHEDULE_BRAND] === true;
}

// ---------------------------------------------------------------------------------------------
// schedule: a fixed interval

/** An interval schedule, Celery's `schedule(run_every)`; `schedule(30)` runs every 30 seconds. */
export class IntervalSchedule implements Schedule {
  readonly [SCHEDULE_BRAND] = true;

  constructor(
    readonly seconds: number,
    /** Celery's `relative`: round the next run time to the interval's resolution (days, hours, minutes). */
    readonly relative = false,
  ) {
    if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds <= 0) {
      throw new ConfigurationError(`schedule(seconds): the interval must be a positive number of seconds, got ${JSON.stringify(seconds)} (e.g. schedule(30) runs every 30 seconds)`);
    }
  }

  nextRunAt(lastRunAt: Date): Date {
    let end = new Date(lastRunAt.getTime() + this.seconds * 1000);
    if (this.relative) end = deltaResolution(end, this.seconds);
    return end;
  }

  remainingEstimate(lastRunAt: Date, now: Date = new Date()): number {
    return (this.nextRunAt(lastRunAt).getTime() - now.getTime()) / 1000;
  }

  isDue(lastRunAt: Date, now: Date = new Date()): ScheduleState {
    const remaining = Math.max(this.remainingEstimate(lastRunAt, now), 0);
    if (remaining === 0) return { isDue: true, nextSeconds: this.seconds };
    return { isDue: false, nextSeconds: remaining };
  }

  toString(): string {
    return `<freq: ${humanizeSeconds(this.seconds)}>`;
  }
}

/** Celery's `delta_resolution`, also dropping microseconds as `remaining(relative=True)` does. */
function deltaResolution(d: Date, seconds: number): Date {
  const parts = [d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()];
  const keep = seconds / 86400 >= 1 ? 3 : seconds / 3600 >= 1 ? 4 : seconds / 60 >= 1 ? 5 : 6;
  const p = parts.slice(0, keep).concat([0, 0, 0].slice(0, 6 - keep));
  return new Date(Date.UTC(p[0]!, p[1]!, p[2]!, p[3]!, p[4]!, p[5]!));
}

/** Celery's `humanize_seconds` (e.g. `3.00 seconds`, `1.50 minutes`; under a second, `now`). */
function humanizeSeconds(secs: number): string {
  for (const [unit, size] of [['day', 86400], ['hour', 3600], ['minute', 60], ['second', 1]] as const) {
    if (secs >= size) {
      const n = secs / size;
      return `${n.toFixed(2)} ${unit}${n === 1 ? '' : 's'}`;
    }
  }
  return 'now';
}

/** Celery's `schedule(run_every, relative)`: run every `seconds`. */
export function schedule(seconds: number, opts: { relative?: boolean } = {}): IntervalSchedule {
  return new IntervalSchedule(seconds, opts.relative ?? false);
}

// ---------------------------------------------------------------------------------------------
// crontab

/** A crontab field: a pattern (`'*\/15'`, `'1-5'`, `'mon-fri'`), a number, or a list of numbers. */
export type CronField = string | number | readonly number[];

export interface CrontabSpec {
  /** 0-59 (default `*`). */
  minute?: CronField;
  /** 0-23 (default `*`). */
  hour?: CronField;
  /** 0-6 with Sunday = 0, or names `sun`..`sat` (default `*`). */
  dayOfWeek?: CronField;
  /** 1-31 (default `*`). */
  dayOfMonth?: CronField;
  /** 1-12 (default `*`). */
  monthOfYear?: CronField;
}

const FIELDS = {
  minute: { celery: 'minute', max: 60, min: 0, example: "'*/15' or '0,30'" },
  hour: { celery: 'hour', max: 24, min: 0, example: "'*/3' or '8-17'" },
  dayOfWeek: { celery: 'day_of_week', max: 7, min: 0, example: "'mon-fri' or '0,6' (Sunday is 0 or 'sun')" },
  dayOfMonth: { celery: 'day_of_month', max: 31, min: 1, example: "'1' or '1-7,15-21'" },
  monthOfYear: { celery: 'month_of_year', max: 12, min: 1, example: "'*/3' or '1,7'" },
} as const;
type FieldName = keyof typeof FIELDS;

/** Celery's `DAYNAMES`: a name's first three letters, Sunday first. */
const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

/**
 * Celery's `crontab_parser`: `*`, numbers, lists `1,5`, ranges `1-5` (wrapping past the maximum,
 * `fri-mon`), steps `*\/15` and `1-30/5`; day names (`mon`, `monday`) in the day-of-week field.
 * Returns the sorted set of values.
 */
export function parseCronField(field: FieldName, spec: CronField): number[] {
  const f = FIELDS[field];
  const maxVal = f.min + f.max - 1;
  const fail = (why: string): never => {
    throw new ConfigurationError(
      `crontab ${field} (Celery's ${f.celery}) ${JSON.stringify(spec)}: ${why}; use values ${f.min}-${maxVal}, e.g. ${f.example}`,
    );
  };
  const check = (n: number): number => {
    if (!Number.isInteger(n)) fail(`${n} is not a whole number`);
    if (n > maxVal) fail(field === 'dayOfWeek' && n === 7 ? `7 is out of range (Celery counts Sunday as 0: use 0 or 'sun')` : `${n} is out of range (more than ${maxVal})`);
    if (n < f.min) fail(`${n} is out of range (less than ${f.min})`);
    return n;
  };
  let values: number[];
  if (typeof spec === 'number') values = [check(spec)];
  else if (Array.isArray(spec)) values = spec.map((n) => (typeof n === 'number' ? check(n) : fail(`list items must be numbers, got ${JSON.stringify(n)}`)));
  else if (typeof spec === 'string') values = parsePattern(spec.trim(), f.min, f.max, field === 'dayOfWeek', check, fail);
  else return fail('must be a pattern string, a number or a list of numbers');
  if (values.length === 0) fail('matches no value');
  return [...new Set(values)].sort((a, b) => a - b);
}

function parsePattern(
  spec: string,
  min: number,
  max: number,
  names: boolean,
  check: (n: number) => number,
  fail: (why: string) => never,
): number[] {
  const number = (tok: string): number => {
    if (/^\d+$/.test(tok)) return check(Number(tok));
    if (tok.startsWith('-')) fail('negative numbers are not supported');
    if (names && /^[a-z]+$/i.test(tok)) {
      const day = WEEKDAYS.indexOf(tok.slice(0, 3).toLowerCase());
      if (day >= 0) return day;
      fail(`${JSON.stringify(tok)} is not a day name (sun, mon, tue, wed, thu, fri, sat)`);
    }
    return fail(`${JSON.stringify(tok)} is not a number${names ? ' or a day name' : ''}`);
  };
  const star = () => Array.from({ length: max }, (_, i) => i + min);
  const range = (from: string, to: string): number[] => {
    const a = number(from);
    const b = number(to);
    if (b < a) return [...Array.from({ length: min + max - a }, (_, i) => a + i), ...Array.from({ length: b - min + 1 }, (_, i) => min + i)];
    return Array.from({ length: b - a + 1 }, (_, i) => a + i);
  };
  const step = (values: number[], s: string | undefined): number[] => {
    if (!s) fail('a step ("/") needs a number after it');
    if (!/^\d+$/.test(s!)) fail(`step ${JSON.stringify(s)} is not a number`);
    const n = Number(s);
    if (n === 0) fail('a step of 0 is not allowed');
    return values.filter((_, i) => i % n === 0);
  };
  const out: number[] = [];
  for (const part of spec.split(',')) {
    const p = part.trim();
    if (!p) fail('empty part (check for a stray comma)');
    let m: RegExpMatchArray | null;
    if ((m = /^(\w+?)-(\w+)\/(\w*)$/.exec(p))) out.push(...step(range(m[1]!, m[2]!), m[3]));
    else if ((m = /^(\w+?)-(\w+)$/.exec(p))) out.push(...range(m[1]!, m[2]!));
    else if ((m = /^\*\/(\w*)$/.exec(p))) out.push(...step(star(), m[1]));
    else if (p === '*') out.push(...star());
    else if (/^[\w-]+$/.test(p)) out.push(number(p));
    else fail(`cannot parse ${JSON.stringify(p)}`);
  }
  return out;
}

interface Fields {
  year: number;
  month: number; // 1-12
  day: number;
  hour: number;
  minute: number;
  second: number;
  ms: number;
}

const fields = (d: Date): Fields => ({
  year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(),
  hour: d.getUTCHours(), minute: d.getUTCMinutes(), second: d.getUTCSeconds(), ms: d.getUTCMilliseconds(),
});
const daysInMonth = (year: number, month: number) => new Date(Date.UTC(year, month, 0)).getUTCDate();
const DAY_MS = 86_400_000;

/** Celery's `ffwd` (a relativedelta that only adds): set the given fields, then move to a weekday and add weeks. */
interface Ffwd {
  year?: number;
  month?: number;
  day?: number;
  hour?: number;
  minute?: number;
  weeks?: number;
  /** Monday = 0, as Python's `date.weekday()`. */
  weekday?: number;
}

function ffwdAdd(d: Date, f: Ffwd): Date {
  const o = fields(d);
  const year = f.year ?? o.year;
  const month = f.month ?? o.month;
  const day = Math.min(daysInMonth(year, month), f.day ?? o.day);
  // Every crontab ffwd sets second=0 and microsecond=0.
  let t = Date.UTC(year, month - 1, day, f.hour ?? o.hour, f.minute ?? o.minute, 0, 0);
  if (f.weekday !== undefined) {
    const pyWeekday = (new Date(t).getUTCDay() + 6) % 7;
    t += ((7 - pyWeekday + f.weekday) % 7) * DAY_MS;
  }
  return new Date(t + (f.weeks ?? 0) * 7 * DAY_MS);
}

/** Python's `bisect.bisect_right` / `bisect_left` on a sorted list. */
const bisectRight = (a: readonly number[], x: number) => a.filter((v) => v <= x).length;
const bisectLeft = (a: readonly number[], x: number) => a.filter((v) => v < x).length;

/** A crontab schedule, Celery's `crontab(minute, hour, day_of_week, day_of_month, month_of_year)`. */
export class Crontab implements Schedule {
  readonly [SCHEDULE_BRAND] = true;
  readonly minute: number[];
  readonly hour: number[];
  readonly dayOfWeek: number[];
  readonly dayOfMonth: number[];
  readonly monthOfYear: number[];
  private readonly orig: Required<CrontabSpec>;

  constructor(spec: CrontabSpec = {}) {
    if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
      throw new ConfigurationError(`crontab() takes an object such as { minute: '*/15', hour: '8-17' }, got ${JSON.stringify(spec)}`);
    }
    for (const key of Object.keys(spec)) {
      if (!(key in FIELDS)) {
        const camel = key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
        throw new ConfigurationError(
          `crontab: unknown field ${JSON.stringify(key)}` + (camel in FIELDS ? `; did you mean ${JSON.stringify(camel)}?` : '') +
            ` (fields: ${Object.keys(FIELDS).join(', ')})`,
        );
      }
    }
    this.orig = {
      minute: spec.minute ?? '*', hour: spec.hour ?? '*', dayOfWeek: spec.dayOfWeek ?? '*',
      dayOfMonth: spec.dayOfMonth ?? '*', monthOfYear: spec.monthOfYear ?? '*',
    };
    this.minute = parseCronField('minute', this.orig.minute);
    this.hour = parseCronField('hour', this.orig.hour);
    this.dayOfWeek = parseCronField('dayOfWeek', this.orig.dayOfWeek);
    this.dayOfMonth = parseCronField('dayOfMonth', this.orig.dayOfMonth);
    this.monthOfYear = parseCronField('monthOfYear', this.orig.monthOfYear);
    // Celery finds out only when it first computes the next run (a RuntimeError after 2000 tries).
    const possible = this.monthOfYear.some((m) => this.dayOfMonth.some((d) => d <= daysInMonth(2024, m)));
    if (!possible) {
      throw new ConfigurationError(
        `crontab dayOfMonth ${JSON.stringify(this.orig.dayOfMonth)} never occurs in monthOfYear ${JSON.stringify(this.orig.monthOfYear)}; pick days that exist in those months`,
      );
    }
  }

  private get allDomMoy(): boolean {
    return this.orig.dayOfMonth === '*' && this.orig.monthOfYear === '*';
  }

  /** Celery's `_delta_to_next`: the next day allowed by day of month, month and day of week. */
  private deltaToNext(last: Date, nextHour: number, nextMinute: number): Ffwd {
    const l = fields(last);
    const doms = this.dayOfMonth;
    const moys = this.monthOfYear;
    let year = l.year;
    let dom: number;
    let moy: number;
    const dayOutOfRange = (y: number, m: number, d: number) => d > daysInMonth(y, m);
    const beforeLastRun = (y: number, m: number, d: number) => Date.UTC(y, m - 1, d) < last.getTime();
    const rollOver = () => {
      for (let i = 0; i < 2000; i++) {
        const flag = dom === doms.length || dayOutOfRange(year, moys[moy]!, doms[dom]!) || beforeLastRun(year, moys[moy]!, doms[dom]!);
        if (!flag) return;
        dom = 0;
        moy++;
        if (moy === moys.length) {
          moy = 0;
          year++;
        }
      }
      throw new ConfigurationError(`crontab ${this.toString()}: unable to find the next run; the time specification is probably impossible`);
    };
    if (moys.includes(l.month)) {
      dom = bisectRight(doms, l.day);
      moy = bisectLeft(moys, l.month);
    } else {
      dom = 0;
      moy = bisectRight(moys, l.month);
      if (moy === moys.length) moy = 0;
    }
    rollOver();
    for (let i = 0; i < 20_000; i++) {
      const th = new Date(Date.UTC(year, moys[moy]! - 1, doms[dom]!));
      if (this.dayOfWeek.includes(th.getUTCDay())) {
        return { year, month: moys[moy]!, day: doms[dom]!, hour: nextHour, minute: nextMinute };
      }
      dom++;
      rollOver();
    }
    throw new ConfigurationError(`crontab ${this.toString()}: no day matches dayOfWeek, dayOfMonth and monthOfYear together`);
  }

  /**
   * Celery's `remaining_delta`: the next run time after `lastRunAt`, on the wall clock of `tz`
   * (a time the clocks skip runs at the change, a time they repeat runs once).
   */
  nextRunAt(lastRunAt: Date, now: Date = new Date(), tz?: string): Date {
    if (isUtc(tz)) return this.nextWall(lastRunAt, now);
    return fromWall(this.nextWall(toWall(lastRunAt, tz!), toWall(now, tz!)), tz!);
  }

  /** The next run on a wall clock: every Date here has the zone's wall-clock time in its UTC fields. */
  private nextWall(lastRunAt: Date, now: Date): Date {
    const l = fields(lastRunAt);
    const n = fields(now);
    const dowNum = lastRunAt.getUTCDay(); // Sunday is 0
    const maxMinute = this.minute[this.minute.length - 1]!;
    const maxHour = this.hour[this.hour.length - 1]!;
    const executeThisDate = this.monthOfYear.includes(l.month) && this.dayOfMonth.includes(l.day) && this.dayOfWeek.includes(dowNum);
    const executeThisHour = executeThisDate && l.day === n.day && l.month === n.month && l.year === n.year &&
      this.hour.includes(l.hour) && l.minute < maxMinute;
    let delta: Ffwd;
    if (executeThisHour) {
      delta = { minute: this.minute.find((m) => m > l.minute)! };
    } else {
      const nextMinute = this.minute[0]!;
      if (executeThisDate && l.hour < maxHour) {
        delta = { hour: this.hour.find((h) => h > l.hour)!, minute: nextMinute };
      } else {
        const nextHour = this.hour[0]!;
        if (this.allDomMoy) {
          const nextDay = this.dayOfWeek.find((d) => d > dowNum) ?? this.dayOfWeek[0]!;
          delta = { weeks: nextDay === dowNum ? 1 : 0, weekday: (nextDay + 6) % 7, hour: nextHour, minute: nextMinute };
        } else {
          delta = this.deltaToNext(lastRunAt, nextHour, nextMinute);
        }
      }
    }
    return ffwdAdd(lastRunAt, delta);
  }

  remainingEstimate(lastRunAt: Date, now: Date = new Date(), tz?: string): number {
    return (this.nextRunAt(lastRunAt, now, tz).getTime() - now.getTime()) / 1000;
  }

  isDue(lastRunAt: Date, now: Date = new Date(), tz?: string): ScheduleState {
    let rem = Math.max(this.remainingEstimate(lastRunAt, now, tz), 0);
    const due = rem === 0;
    if (due) rem = Math.max(this.remainingEstimate(now, now, tz), 0);
    return { isDue: due, nextSeconds: rem };
  }

  toString(): string {
    const s = (v: CronField) => (Array.isArray(v) ? v.join(',') : String(v));
    const o = this.orig;
    return `<crontab: ${s(o.minute)} ${s(o.hour)} ${s(o.dayOfWeek)} ${s(o.dayOfMonth)} ${s(o.monthOfYear)} (m/h/d/dM/MY)>`;
  }
}

/** Celery's `crontab(...)`: `crontab({ minute: 0, hour: '*\/3' })`, `crontab({ hour: 7, minute: 30, dayOfWeek: 'mon' })`. */
export function crontab(spec: CrontabSpec = {}): Crontab {
  return new Crontab(spec);
}

/** Celery's `maybe_schedule`: a number of seconds becomes `schedule(seconds)`. */
export function toSchedule(value: number | Schedule, where = 'schedule'): Schedule {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value <= 0) {
      throw new ConfigurationError(`${where} must be a positive number of seconds, schedule(seconds) or crontab({...}), got ${JSON.stringify(value)}`);
    }
    return schedule(value);
  }
  if (isSchedule(value)) return value;
  throw new ConfigurationError(`${where} must be a number of seconds, schedule(seconds) or crontab({...}) from celeriac, got ${JSON.stringify(value)}`);
}
