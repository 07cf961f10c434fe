/**
 * Schedules of periodic tasks against Python Celery 5.2's own (celery/schedules.py), computed at
 * test time by /usr/bin/python3 with a fixed `nowfun`: crontab field expansion, `remaining_estimate`
 * and `is_due` of crontab and interval schedules.
 */
import { execFileSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigurationError, crontab, type CrontabSpec, schedule } from '../src/index.ts';

const PYTHON = '/usr/bin/python3';

const PY_SCRIPT = String.raw`
import json, sys
from datetime import datetime, timezone
from celery import Celery
from celery.schedules import crontab, schedule

app = Celery(set_as_current=False)
req = json.load(sys.stdin)
snake = {'minute': 'minute', 'hour': 'hour', 'dayOfWeek': 'day_of_week', 'dayOfMonth': 'day_of_month', 'monthOfYear': 'month_of_year'}

def dt(ms):
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)

def cron(spec, now=None):
    kw = {snake[k]: v for k, v in spec.items()}
    return crontab(app=app, nowfun=(lambda: now) if now else None, **kw)

out = {'fields': [], 'cron': [], 'interval': []}
for spec in req['fields']:
    c = cron(spec)
    out['fields'].append({k: sorted(getattr(c, snake[k])) for k in snake})
for case in req['cron']:
    now = dt(case['now'])
    c = cron(case['spec'], now)
    last = dt(case['last'])
    due = c.is_due(last)
    out['cron'].append({'remaining': c.remaining_estimate(last).total_seconds(), 'isDue': due.is_due, 'next': due.next})
for case in req['interval']:
    now = dt(case['now'])
    s = schedule(case['seconds'], relative=case['relative'], app=app, nowfun=lambda: now)
    due = s.is_due(dt(case['last']))
    out['interval'].append({'remaining': s.remaining_estimate(dt(case['last'])).total_seconds(), 'isDue': due.is_due, 'next': due.next})
json.dump(out, sys.stdout)
`;

const FIELD_SPECS: CrontabSpec[] = [
  {},
  { minute: '*/15' },
  { minute: '1-30/5', hour: '*/4' },
  { minute: '1,13,30-45,50-59/2', hour: '0,8-17/2' },
  { dayOfWeek: 'mon-fri' },
  { dayOfWeek: 'fri-mon' },
  { dayOfWeek: 'sunday,Wed' },
  { dayOfWeek: '*/2', dayOfMonth: '2-30/2', monthOfYear: '2-12/2' },
  { dayOfMonth: '*/3', monthOfYear: '*/2' },
  { dayOfMonth: '1-7,15-21', monthOfYear: '11-2' },
  { minute: [0, 30], hour: 7, dayOfWeek: 0 },
  { minute: '59', hour: '23', dayOfMonth: '31', monthOfYear: '12' },
];

const T = (iso: string) => Date.parse(iso);
const CRON_CASES: { spec: CrontabSpec; last: number; now: number }[] = [];
const CRON_SPECS: CrontabSpec[] = [
  { minute: '*/15' },
  {},
  { minute: 0, hour: '*/3' },
  { minute: 30, hour: 7, dayOfWeek: 'mon' },
  { minute: 0, hour: '9-17', dayOfWeek: 'mon-fri' },
  { minute: '1-30/5', hour: '22-2' },
  { minute: 0, hour: 0, dayOfWeek: 'sat,sun' },
  { minute: 0, hour: 0, dayOfWeek: 'fri-mon' },
  { minute: 0, hour: 4, dayOfMonth: 1 },
  { minute: 15, hour: 12, dayOfMonth: 31 },
  { minute: 0, hour: 0, dayOfMonth: 29, monthOfYear: 2 },
  { minute: 0, hour: 9, dayOfMonth: '1-7', dayOfWeek: 'mon', monthOfYear: '*/3' },
  { minute: 59, hour: 23, dayOfMonth: 31, monthOfYear: 12 },
  { minute: [0, 30], hour: [6, 18] },
];
const LASTS = [
  '2026-01-31T23:46:00Z', // end of January, a Saturday
  '2026-02-28T23:59:30Z', // end of February (not a leap year)
  '2028-02-28T12:00:00Z', // leap year
  '2026-11-25T18:07:13.250Z', // a Wednesday, mid-hour, with milliseconds
  '2026-12-31T23:59:00Z', // end of the year
  '2026-03-02T09:00:00Z', // a Monday, on the hour
  '2026-06-30T23:00:00Z',
];
const OFFSETS_S = [0, 59, 60 * 14 + 30, 3600 * 2, 86400 * 1.5, 86400 * 40];
for (const spec of CRON_SPECS) {
  for (const last of LASTS) {
    for (const off of OFFSETS_S) CRON_CASES.push({ spec, last: T(last), now: T(last) + off * 1000 });
  }
}

const INTERVAL_CASES: { seconds: number; relative: boolean; last: number; now: number }[] = [];
for (const seconds of [0.5, 30, 90, 3600, 86400 * 2]) {
  for (const relative of [false, true]) {
    for (const off of [0, 0.25, 0.5, 29.999, 30, 89, 3599, 3600.5, 86400 * 2 + 1]) {
      INTERVAL_CASES.push({ seconds, relative, last: T('2026-11-25T18:07:13.250Z'), now: T('2026-11-25T18:07:13.250Z') + off * 1000 });
    }
  }
}

interface PyState { remaining: number; isDue: boolean; next: number }
let py: { fields: Record<string, number[]>[]; cron: PyState[]; interval: PyState[] };

beforeAll(() => {
  const input = JSON.stringify({ fields: FIELD_SPECS, cron: CRON_CASES, interval: INTERVAL_CASES });
  py = JSON.parse(execFileSync(PYTHON, ['-c', PY_SCRIPT], { input, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }));
}, 60_000);

const show = (spec: CrontabSpec) => JSON.stringify(spec);

describe('crontab fields expand as Celery\'s crontab_parser', () => {
  it.each(FIELD_SPECS.map((s, i) => [show(s), i] as const))('%s', (_name, i) => {
    const c = crontab(FIELD_SPECS[i]);
    expect({ minute: c.minute, hour: c.hour, dayOfWeek: c.dayOfWeek, dayOfMonth: c.dayOfMonth, monthOfYear: c.monthOfYear }).toEqual(py.fields[i]);
  });
});

describe('crontab remaining_estimate and is_due match Celery', () => {
  it(`${CRON_CASES.length} cases over ${CRON_SPECS.length} expressions, month and year boundaries, leap years`, () => {
    const mismatches: string[] = [];
    CRON_CASES.forEach((c, i) => {
      const s = crontab(c.spec);
      const last = new Date(c.last);
      const now = new Date(c.now);
      const got = { remaining: s.remainingEstimate(last, now), ...(({ isDue, nextSeconds }) => ({ isDue, next: nextSeconds }))(s.isDue(last, now)) };
      const want = py.cron[i]!;
      const close = (a: number, b: number) => Math.abs(a - b) < 1e-6;
      if (!close(got.remaining, want.remaining) || got.isDue !== want.isDue || !close(got.next, want.next)) {
        mismatches.push(`${show(c.spec)} last=${last.toISOString()} now=${now.toISOString()}: got ${JSON.stringify(got)}, Celery ${JSON.stringify(want)}`);
      }
    });
    expect(mismatches).toEqual([]);
  });

  it('*/15: due at the quarter, next check in 15 minutes', () => {
    const s = crontab({ minute: '*/15' });
    expect(s.isDue(new Date('2026-01-01T10:14:00Z'), new Date('2026-01-01T10:15:00Z'))).toEqual({ isDue: true, nextSeconds: 900 });
    expect(s.isDue(new Date('2026-01-01T10:15:00Z'), new Date('2026-01-01T10:20:00Z'))).toEqual({ isDue: false, nextSeconds: 600 });
    expect(s.nextRunAt(new Date('2026-01-01T23:50:00Z'), new Date('2026-01-01T23:50:00Z')).toISOString()).toBe('2026-01-02T00:00:00.000Z');
  });

  it('first Monday of a quarter rolls over months and years', () => {
    const s = crontab({ minute: 0, hour: 9, dayOfMonth: '1-7', dayOfWeek: 'mon', monthOfYear: '*/3' });
    const last = new Date('2026-11-25T00:00:00Z');
    expect(s.nextRunAt(last, last).toISOString()).toBe('2027-01-04T09:00:00.000Z');
  });
});

describe('schedule(seconds) matches Celery\'s schedule.is_due', () => {
  it(`${INTERVAL_CASES.length} cases, relative and not`, () => {
    const mismatches: string[] = [];
    INTERVAL_CASES.forEach((c, i) => {
      const s = schedule(c.seconds, { relative: c.relative });
      const last = new Date(c.last);
      const now = new Date(c.now);
      const st = s.isDue(last, now);
      const got = { remaining: s.remainingEstimate(last, now), isDue: st.isDue, next: st.nextSeconds };
      const want = py.interval[i]!;
      const close = (a: number, b: number) => Math.abs(a - b) < 1e-6;
      if (!close(got.remaining, want.remaining) || got.isDue !== want.isDue || !close(got.next, want.next)) {
        mismatches.push(`schedule(${c.seconds}, relative=${c.relative}) now=+${(c.now - c.last) / 1000}s: got ${JSON.stringify(got)}, Celery ${JSON.stringify(want)}`);
      }
    });
    expect(mismatches).toEqual([]);
  });

  it('reads like Celery\'s repr', () => {
    expect([0.5, 1, 3, 90, 3600, 172800].map((n) => String(schedule(n)))).toEqual([
      '<freq: now>', '<freq: 1.00 second>', '<freq: 3.00 seconds>', '<freq: 1.50 minutes>', '<freq: 1.00 hour>', '<freq: 2.00 days>',
    ]);
    expect(String(crontab({ minute: '*/15', dayOfWeek: 'mon-fri' }))).toBe('<crontab: */15 * mon-fri * * (m/h/d/dM/MY)>');
  });

  it('a 0.5 s interval: not due after 0.25 s, due after 0.5 s', () => {
    const s = schedule(0.5);
    const last = new Date('2026-01-01T00:00:00Z');
    expect(s.isDue(last, new Date(last.getTime() + 250))).toEqual({ isDue: false, nextSeconds: 0.25 });
    expect(s.isDue(last, new Date(last.getTime() + 500))).toEqual({ isDue: true, nextSeconds: 0.5 });
  });
});

describe('bad expressions fail with a clear error', () => {
  const cases: [CrontabSpec, RegExp][] = [
    [{ minute: '60' }, /crontab minute \(Celery's minute\) "60": 60 is out of range \(more than 59\); use values 0-59/],
    [{ hour: '25' }, /crontab hour .*25 is out of range.*use values 0-23/],
    [{ dayOfWeek: 'funday' }, /crontab dayOfWeek .*"funday" is not a day name \(sun, mon/],
    [{ dayOfWeek: 7 }, /Celery counts Sunday as 0: use 0 or 'sun'/],
    [{ dayOfMonth: 0 }, /crontab dayOfMonth .*0 is out of range \(less than 1\); use values 1-31/],
    [{ monthOfYear: '13' }, /crontab monthOfYear .*use values 1-12/],
    [{ minute: '*/0' }, /a step of 0 is not allowed/],
    [{ minute: '*/' }, /a step \("\/"\) needs a number after it/],
    [{ minute: '1,,2' }, /empty part \(check for a stray comma\)/],
    [{ minute: '-5' }, /negative numbers are not supported/],
    [{ minute: 'mon' }, /"mon" is not a number; use values 0-59/],
    [{ minute: '5/15' }, /cannot parse "5\/15"|is not a number/],
    [{ hour: [1, 2.5] }, /2.5 is not a whole number/],
    [{ dayOfMonth: 31, monthOfYear: '2,4' }, /dayOfMonth 31 never occurs in monthOfYear "2,4"/],
    [{ day_of_week: 'mon' } as unknown as CrontabSpec, /unknown field "day_of_week"; did you mean "dayOfWeek"\?/],
  ];
  it.each(cases.map(([spec, re]) => [show(spec), spec, re] as const))('%s', (_name, spec, re) => {
    let err: unknown;
    try {
      crontab(spec);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigurationError);
    expect((err as Error).message).toMatch(re);
  });

  it('schedule() needs a positive interval', () => {
    expect(() => schedule(0)).toThrow(ConfigurationError);
    expect(() => schedule(-1)).toThrow(/positive number of seconds/);
  });

  it('Celery rejects the same expressions', () => {
    const script = `
from celery import Celery
from celery.schedules import crontab
app = Celery(set_as_current=False)
bad = [dict(minute='60'), dict(hour='25'), dict(day_of_week='funday'), dict(day_of_week=7), dict(day_of_month=0), dict(month_of_year='13'), dict(minute='1,,2'), dict(minute='-5'), dict(minute='5/15')]
n = 0
for kw in bad:
    try:
        crontab(app=app, **kw)
    except Exception:
        n += 1
print(n, len(bad))
`;
    expect(execFileSync(PYTHON, ['-c', script], { encoding: 'utf8' }).trim()).toBe('9 9');
  });
});
