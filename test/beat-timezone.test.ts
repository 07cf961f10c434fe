/**
 * Crontabs in the app's `timezone` (Celery's timezone / enable_utc): fields follow the zone's wall
 * clock across both DST changes, from the platform's time-zone data, and the runs beat makes tick
 * by tick are the ones Python Celery 5.2 makes with timezone='Europe/Paris' (/usr/bin/python3).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Beat } from '../src/beat/beat.ts';
import { crontab, type CrontabSpec } from '../src/index.ts';
import { createTestApp } from '../src/testing.ts';
import { createLogger } from '../src/common/log.ts';

const PARIS = 'Europe/Paris';
const T = (iso: string) => new Date(iso);
/** The wall-clock time in Paris of an instant, e.g. "2024-03-31 03:00 CEST". */
const PARIS_FORMAT = new Intl.DateTimeFormat('en-GB', {
  timeZone: PARIS, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZoneName: 'short',
});
const paris = (d: Date) => {
  const p = Object.fromEntries(PARIS_FORMAT.formatToParts(d).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute} ${p.timeZoneName}`;
};

/** Successive runs from `start`, each computed from the previous one. */
function runs(spec: CrontabSpec, start: string, n: number, tz?: string): Date[] {
  const c = crontab(spec);
  const out: Date[] = [];
  let last = T(start);
  for (let i = 0; i < n; i++) out.push((last = c.nextRunAt(last, last, tz)));
  return out;
}

describe('crontab on the wall clock of the app timezone', () => {
  it('03:00 every day in Europe/Paris stays at 03:00 Paris across the March change (UTC+1 → UTC+2)', () => {
    const r = runs({ hour: 3, minute: 0 }, '2024-03-29T12:00:00Z', 4, PARIS);
    expect(r.map(paris)).toEqual(['2024-03-30 03:00 CET', '2024-03-31 03:00 CEST', '2024-04-01 03:00 CEST', '2024-04-02 03:00 CEST']);
    expect(r.map((d) => d.toISOString())).toEqual(['2024-03-30T02:00:00.000Z', '2024-03-31T01:00:00.000Z', '2024-04-01T01:00:00.000Z', '2024-04-02T01:00:00.000Z']);
  });

  it('03:00 every day in Europe/Paris stays at 03:00 Paris across the October change (UTC+2 → UTC+1)', () => {
    const r = runs({ hour: 3, minute: 0 }, '2024-10-25T12:00:00Z', 4, PARIS);
    expect(r.map(paris)).toEqual(['2024-10-26 03:00 CEST', '2024-10-27 03:00 CET', '2024-10-28 03:00 CET', '2024-10-29 03:00 CET']);
    expect(r.map((d) => d.toISOString())).toEqual(['2024-10-26T01:00:00.000Z', '2024-10-27T02:00:00.000Z', '2024-10-28T02:00:00.000Z', '2024-10-29T02:00:00.000Z']);
  });

  it('a time the clocks skip runs at the change; a time they repeat runs once', () => {
    // 2024-03-31 02:30 does not exist in Paris: it runs at 03:00 CEST, then daily at 02:30 again
    expect(runs({ hour: 2, minute: 30 }, '2024-03-30T12:00:00Z', 2, PARIS).map(paris)).toEqual(['2024-03-31 03:00 CEST', '2024-04-01 02:30 CEST']);
    // 2024-10-27 02:30 happens twice: one run, at the first
    expect(runs({ hour: 2, minute: 30 }, '2024-10-26T12:00:00Z', 2, PARIS).map((d) => d.toISOString())).toEqual(['2024-10-27T00:30:00.000Z', '2024-10-28T01:30:00.000Z']);
  });

  it('without a timezone (or with UTC) fields stay on the UTC clock', () => {
    expect(runs({ hour: 3, minute: 0 }, '2024-03-30T12:00:00Z', 2).map((d) => d.toISOString())).toEqual(['2024-03-31T03:00:00.000Z', '2024-04-01T03:00:00.000Z']);
    expect(runs({ hour: 3, minute: 0 }, '2024-03-30T12:00:00Z', 1, 'UTC')[0]!.toISOString()).toBe('2024-03-31T03:00:00.000Z');
  });
});

// Beat's loop, one check a minute, in Python Celery and in celeriac: the instants each one sends at.
const PY_SIM = String.raw`
import json, sys
from datetime import datetime
from celery import Celery
from celery.schedules import crontab

req = json.load(sys.stdin)
app = Celery(set_as_current=False)
app.conf.timezone = req['tz']
snake = {'minute': 'minute', 'hour': 'hour', 'dayOfWeek': 'day_of_week', 'dayOfMonth': 'day_of_month', 'monthOfYear': 'month_of_year'}
out = []
for case in req['cases']:
    clock = {}
    c = crontab(app=app, nowfun=lambda: clock['now'], **{snake[k]: v for k, v in case['spec'].items()})
    t = case['from']
    last = datetime.fromtimestamp(t / 1000, tz=app.timezone)
    fired = []
    while t <= case['to']:
        clock['now'] = datetime.fromtimestamp(t / 1000, tz=app.timezone)
        if c.is_due(last).is_due:
            fired.append(t)
            last = clock['now']
        t += 60000
    out.append(fired)
json.dump(out, sys.stdout)
`;

function simulate(spec: CrontabSpec, from: number, to: number, tz: string): number[] {
  const c = crontab(spec);
  const fired: number[] = [];
  let last = new Date(from);
  for (let t = from; t <= to; t += 60_000) {
    if (c.isDue(last, new Date(t), tz).isDue) {
      fired.push(t);
      last = new Date(t);
    }
  }
  return fired;
}

describe('beat runs crontabs in Europe/Paris when Python Celery 5.2 does', () => {
  const specs: CrontabSpec[] = [
    { hour: 3, minute: 0 },
    { hour: 2, minute: 30 },
    { minute: 0 },
    { minute: '*/20', hour: '0-4' },
    { hour: '1,2,3', minute: 15 },
    { minute: 45, hour: 1, dayOfWeek: 'sun' },
  ];
  const windows = [
    ['2024-03-29T20:00:00Z', '2024-04-01T06:00:00Z'], // spring forward, 2024-03-31 02:00 → 03:00
    ['2024-10-25T20:00:00Z', '2024-10-28T06:00:00Z'], // fall back, 2024-10-27 03:00 → 02:00
  ];
  const cases = windows.flatMap(([from, to]) => specs.map((spec) => ({ spec, from: Date.parse(from!), to: Date.parse(to!) })));

  it(`${cases.length} schedules over both DST changes, checked every minute`, () => {
    const py = JSON.parse(execFileSync('/usr/bin/python3', ['-c', PY_SIM], { input: JSON.stringify({ tz: PARIS, cases }), encoding: 'utf8' })) as number[][];
    const show = (ts: number[]) => ts.map((t) => `${new Date(t).toISOString()} (${paris(new Date(t))})`);
    cases.forEach((c, i) => {
      const ours = simulate(c.spec, c.from, c.to, PARIS);
      expect(ours.length, JSON.stringify(c.spec)).toBeGreaterThan(0);
      expect(show(ours), `${JSON.stringify(c.spec)} from ${new Date(c.from).toISOString()}`).toEqual(show(py[i]!));
    });
  }, 60_000);
});

describe('Beat uses the app timezone', () => {
  it('sends a Europe/Paris 03:00 crontab at 01:00 UTC in summer and keeps the zone in its file', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'celeriac-beat-tz-'));
    const app = createTestApp('tz', { timezone: PARIS, beatSchedule: { nightly: { task: 't.nightly', schedule: crontab({ hour: 3, minute: 0 }) } } });
    let now = T('2024-06-30T12:00:00Z');
    const beat = new Beat(app, { scheduleFilename: path.join(dir, 'schedule.json'), now: () => now, logger: createLogger({ level: 'CRITICAL' }) });
    try {
      expect(beat.timezone).toBe(PARIS);
      beat.setup();
      const transport = await app.transport();
      now = T('2024-07-01T00:59:00Z'); // 02:59 in Paris
      const wait = await beat.tick();
      expect(await transport.size('celery')).toBe(0);
      expect(wait).toBe(60);
      now = T('2024-07-01T01:00:00Z'); // 03:00 in Paris
      await beat.tick();
      expect(await transport.size('celery')).toBe(1);
      beat.sync();
      expect(JSON.parse(readFileSync(path.join(dir, 'schedule.json'), 'utf8'))).toMatchObject({ tz: PARIS, utcEnabled: true });
    } finally {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('follows UTC by default, the system zone with enableUtc: false, and resets a schedule file kept for another zone', async () => {
    expect(new Beat(createTestApp('utc')).timezone).toBe('UTC');
    expect(new Beat(createTestApp('local', { enableUtc: false })).timezone).toBe(new Intl.DateTimeFormat().resolvedOptions().timeZone);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'celeriac-beat-tz-'));
    const file = path.join(dir, 'schedule.json');
    const entry = { task: 't.every', schedule: 60 };
    const warnings: string[] = [];
    const logger = createLogger({ level: 'WARNING', write: (line) => warnings.push(line) });
    try {
      const first = new Beat(createTestApp('a', { beatSchedule: { every: entry } }), { scheduleFilename: file, now: () => T('2024-06-30T12:00:00Z'), logger });
      first.setup();
      const second = new Beat(createTestApp('b', { timezone: PARIS, beatSchedule: { every: entry } }), { scheduleFilename: file, now: () => T('2024-06-30T13:00:00Z'), logger });
      second.setup();
      expect(warnings.join('\n')).toContain('Reset: Timezone changed from "UTC" to "Europe/Paris"');
      expect(JSON.parse(readFileSync(file, 'utf8')).entries.every.lastRunAt).toBe('2024-06-30T13:00:00.000Z');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
