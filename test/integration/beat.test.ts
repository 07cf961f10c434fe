/**
 * `celeriac beat` and `celeriac worker -B` on a SQLite broker: periodic entries reach a worker
 * repeatedly, calling options pass through, the schedule file records each entry's last run, and
 * a restarted beat continues from it instead of sending again early.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Tick } from '../fixtures/beat-app/app.ts';
import { createSandbox, queueSize, type Sandbox, startProcess, waitFor } from './helpers.ts';

vi.setConfig({ testTimeout: 30_000, hookTimeout: 40_000 });

const BEAT_APP = './test/fixtures/beat-app/app.ts:app';

let sb: Sandbox;

beforeAll(async () => {
  sb = await createSandbox('beat');
});

afterAll(async () => {
  await sb?.cleanup();
});

function ticks(label?: string): Tick[] {
  let text = '';
  try {
    text = readFileSync(path.join(sb.dir, 'ticks.log'), 'utf8');
  } catch {
    return [];
  }
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Tick).filter((t) => label === undefined || t.label === label);
}

interface StoredEntry {
  task: string;
  lastRunAt: string;
  totalRunCount: number;
}
function scheduleFile(file: string): { entries: Record<string, StoredEntry> } {
  return JSON.parse(readFileSync(file, 'utf8'));
}

/** `-A` after the verb overrides the helpers' default fixture app. */
const beatArgs = (...more: string[]) => ['beat', '-A', BEAT_APP, '-l', 'INFO', ...more];

describe('celeriac beat', () => {
  it('sends due entries to a worker, records them in the schedule file, and a restart continues from it', async () => {
    const file = path.join(sb.dir, 'celerybeat-schedule.json');
    // A schedule left by an earlier configuration: its entry is dropped.
    writeFileSync(file, JSON.stringify({ __version__: 'x', tz: 'UTC', utcEnabled: true, entries: { gone: { task: 'beat.old', schedule: '', lastRunAt: new Date().toISOString(), totalRunCount: 7 } } }));

    const worker = startProcess(sb, ['worker', '-A', BEAT_APP, '-l', 'INFO', '-c', '4']);
    await worker.waitForLine(/ready\.$/, 30_000);

    const beat = startProcess(sb, beatArgs());
    await beat.waitForLine('Scheduler: Sending due task tick-every-half-second (beat.tick)');
    // The worker runs the half-second entry several times, about every half second.
    const half = await waitFor('4 half-second runs', () => (ticks('half').length >= 4 ? ticks('half') : null), 10_000);
    expect(half.every((t) => t.pid === worker.pid)).toBe(true);
    const gaps = half.slice(1).map((t, i) => t.at - half[i]!.at);
    expect(Math.min(...gaps)).toBeGreaterThan(200); // not a burst: one run per half second
    // Options pass through: this entry goes to a queue the worker does not consume.
    expect(queueSize(sb, 'beatq')).toBeGreaterThan(0);
    expect(ticks('elsewhere')).toEqual([]);

    // The 3 s entry first runs 3 s after beat first saw it, then beat stops right after sending it.
    const sentLine = await beat.waitForLine('Scheduler: Sending due task tick-every-3s (beat.tick)', 10_000);
    expect(sentLine).toMatch(/INFO\/MainProcess/);
    expect(await beat.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    const saved = scheduleFile(file);
    expect(Object.keys(saved.entries).sort()).toEqual(['hourly', 'tick-every-3s', 'tick-every-half-second', 'to-other-queue']);
    expect(saved.entries['tick-every-3s']!.totalRunCount).toBe(1);
    expect(saved.entries['tick-every-half-second']!.totalRunCount).toBeGreaterThanOrEqual(4);
    expect(saved.entries.hourly!.totalRunCount).toBe(0);
    const slowAt = Date.parse(saved.entries['tick-every-3s']!.lastRunAt);
    expect(Date.now() - slowAt).toBeLessThan(3000);

    // Restarted at once: the 3 s entry is not sent again before 3 s after its last run.
    const again = startProcess(sb, beatArgs());
    const from = again.lines.length;
    await again.waitForLine('Scheduler: Sending due task tick-every-3s (beat.tick)', 10_000, from);
    const sentAgainAt = Date.now();
    expect(sentAgainAt - slowAt).toBeGreaterThanOrEqual(2900);
    expect(await again.stop('SIGINT')).toEqual({ code: 0, signal: null });
    const after = scheduleFile(file);
    expect(after.entries['tick-every-3s']!.totalRunCount).toBe(2);
    expect(after.entries['tick-every-half-second']!.totalRunCount).toBeGreaterThan(saved.entries['tick-every-half-second']!.totalRunCount);
    expect(Date.parse(after.entries['tick-every-3s']!.lastRunAt) - slowAt).toBeGreaterThanOrEqual(2900);
    await waitFor('the second slow run', () => ticks('slow').length === 2);
    await worker.stop('SIGTERM');
  });

  it('a bad beatSchedule entry is refused with a clear error', async () => {
    const { Celery } = await import('../../src/index.ts');
    expect(() => new Celery('x', { broker: 'memory://', beatSchedule: { a: { task: 'beat.tick', schedule: -1 } } })).toThrow(/beatSchedule\["a"\]\.schedule must be a positive number of seconds/);
    expect(() => new Celery('x', { broker: 'memory://', beatSchedule: { a: { task: 'beat.tick', schedule: 5, options: { routing_key: 'x' } as never } } })).toThrow(/unknown calling option "routing_key"; did you mean "routingKey"\?/);
  });
});

describe('celeriac worker -B', () => {
  it('runs the scheduler inside the worker, and stops warm on SIGTERM', async () => {
    const file = path.join(sb.dir, 'embedded-schedule.json');
    const before = ticks('half').length;
    const worker = startProcess(sb, ['worker', '-A', BEAT_APP, '-l', 'INFO', '-B', '-s', file]);
    await worker.waitForLine(/ready\.$/, 30_000);
    await worker.waitForLine('beat: Starting...');
    const runs = await waitFor('3 half-second runs in the -B worker', () => {
      const mine = ticks('half').slice(before).filter((t) => t.pid === worker.pid);
      return mine.length >= 3 ? mine : null;
    }, 10_000);
    expect(runs.length).toBeGreaterThanOrEqual(3);
    expect(await worker.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(worker.output()).toContain('Warm shutdown');
    expect(scheduleFile(file).entries['tick-every-half-second']!.totalRunCount).toBeGreaterThanOrEqual(3);
  });
});
