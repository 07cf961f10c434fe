/**
 * The periodic task scheduler, Celery's `celery beat` (celery/beat.py: Scheduler and
 * PersistentScheduler): sends the app's `beatSchedule` entries when due and keeps when each
 * last ran in a schedule file, so a restart neither loses nor repeats runs.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Celery } from '../app/celery.ts';
import { signals } from '../app/signals.ts';
import { VERSION } from '../version.ts';
import { createLogger, type Logger } from '../common/log.ts';
import { type BeatCallOptions, normalizeEntry } from '../schedules/entries.ts';
import type { Schedule, ScheduleState } from '../schedules/schedules.ts';
import { appTimezone } from '../schedules/timezone.ts';

/** Celery's DEFAULT_MAX_INTERVAL: the longest sleep between two checks of the schedule. */
export const DEFAULT_MAX_INTERVAL = 300;

export interface BeatOptions {
  /** The schedule file (default: the app's beatScheduleFilename, `celerybeat-schedule.json`, relative to the working directory). */
  scheduleFilename?: string;
  /** Seconds to sleep at most between checks (default: the app's beatMaxLoopInterval, 300). */
  maxInterval?: number;
  logger?: Logger;
  /** The clock (default: the system's): instants; crontabs read them on the app's `timezone`. */
  now?: () => Date;
}

/** One periodic task, Celery's ScheduleEntry: its configuration plus when it last ran and how often. */
export class ScheduleEntry {
  constructor(
    readonly name: string,
    readonly task: string,
    readonly schedule: Schedule,
    readonly args: unknown[],
    readonly kwargs: Record<string, unknown>,
    readonly options: BeatCallOptions,
    /** When the task was last sent; for a new entry, when beat first saw it (Celery's default_now()). */
    public lastRunAt: Date,
    public totalRunCount: number,
  ) {}

  /** `tz`: the time zone whose wall clock a crontab follows (the app's `timezone`). */
  isDue(now: Date, tz?: string): ScheduleState {
    return this.schedule.isDue(this.lastRunAt, now, tz);
  }

  toString(): string {
    return `<ScheduleEntry: ${this.name} ${this.task}(${this.args.map((a) => JSON.stringify(a)).join(', ')}) ${this.schedule}>`;
  }
}

interface StoredEntry {
  task: string;
  schedule: string;
  lastRunAt: string;
  totalRunCount: number;
}

interface StoredSchedule {
  __version__: string;
  tz: string;
  utcEnabled: boolean;
  entries: Record<string, StoredEntry>;
}

/**
 * The scheduler. `await beat.start()` loads the schedule file, merges the app's `beatSchedule`
 * into it and runs in the background; `await beat.stop()` stops and saves.
 *
 * The schedule file is JSON, not the Python `shelve` database Celery's PersistentScheduler keeps
 * (`celerybeat-schedule`, in a dbm format Node cannot share), so a Python beat and a celeriac beat
 * each keep their own file. As in Celery, run only one beat per schedule: two would both send.
 */
export class Beat {
  readonly entries = new Map<string, ScheduleEntry>();
  readonly scheduleFilename: string;
  readonly maxInterval: number;
  readonly log: Logger;
  private readonly now: () => Date;
  private loop: Promise<void> | undefined;
  private stopped = false;
  private wake: (() => void) | undefined;
  private ready = false;
  /** Crontabs follow this zone's wall clock: Celery's app.timezone. */
  readonly timezone: string;

  constructor(
    readonly app: Celery,
    options: BeatOptions = {},
  ) {
    this.scheduleFilename = path.resolve(options.scheduleFilename ?? app.conf.beatScheduleFilename);
    this.maxInterval = options.maxInterval || app.conf.beatMaxLoopInterval || DEFAULT_MAX_INTERVAL;
    this.log = options.logger ?? createLogger();
    this.now = options.now ?? (() => new Date());
    this.timezone = appTimezone(app.conf);
  }

  /**
   * Load the schedule file and merge the configuration into it (Celery's setup_schedule and
   * merge_inplace): entries no longer configured are dropped, kept ones keep their lastRunAt and
   * totalRunCount, new ones start with lastRunAt = now (so an interval entry first runs one
   * interval after beat starts, a crontab one at its next time).
   */
  setup(): void {
    const stored = this.load();
    const now = this.now();
    this.entries.clear();
    for (const [name, raw] of Object.entries(this.app.conf.beatSchedule)) {
      const e = normalizeEntry(name, raw);
      const old = stored?.entries[name];
      const lastRunAt = old ? new Date(old.lastRunAt) : now;
      const valid = !Number.isNaN(lastRunAt.getTime());
      this.entries.set(name, new ScheduleEntry(name, e.task, e.schedule, e.args, e.kwargs, e.options, valid ? lastRunAt : now, valid ? (old?.totalRunCount ?? 0) : 0));
    }
    this.ready = true;
    this.sync();
    if (this.log.level === 'DEBUG') this.log.debug('Current schedule:\n' + [...this.entries.values()].map(String).join('\n'));
  }

  /** Set up and start sending; resolves once running. */
  async start(): Promise<void> {
    if (this.loop) return;
    this.stopped = false;
    this.log.info('beat: Starting...');
    this.setup();
    await signals.beatInit.send({ sender: this });
    this.loop = this.run();
  }

  /** Resolves when the scheduler has stopped. */
  async join(): Promise<void> {
    await this.loop;
  }

  /** Stop after the send in progress, if any, and save the schedule file. */
  async stop(): Promise<void> {
    if (this.stopped) return this.loop;
    this.stopped = true;
    this.wake?.();
    await this.loop;
    if (this.ready) this.sync();
  }

  /**
   * One round (Celery's tick): send every due entry, recording the run first, and return the
   * seconds until the next check: the nearest next run, at most maxInterval.
   */
  async tick(): Promise<number> {
    const due: ScheduleEntry[] = [];
    let next = this.maxInterval;
    const now = this.now();
    for (const entry of this.entries.values()) {
      const state = entry.isDue(now, this.timezone);
      if (state.isDue) {
        // Celery's reserve(): record the run before sending, so a failing send is not retried in a loop.
        entry.lastRunAt = now;
        entry.totalRunCount++;
        due.push(entry);
      }
      next = Math.min(next, state.nextSeconds);
    }
    if (due.length) {
      // Saved before sending: a beat killed mid-send does not send the same run again on restart.
      this.sync();
      for (const entry of due) await this.apply(entry);
    }
    return Math.max(next, 0);
  }

  private async apply(entry: ScheduleEntry): Promise<void> {
    this.log.info(`Scheduler: Sending due task ${entry.name} (${entry.task})`);
    try {
      const result = await this.app.sendTask(entry.task, entry.args, entry.kwargs, entry.options);
      this.log.debug(`${entry.task} sent. id->${result.id}`);
    } catch (err) {
      this.log.error(`Message Error: Couldn't apply scheduled task ${entry.name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      let interval: number;
      try {
        interval = await this.tick();
      } catch (err) {
        this.log.error(`beat: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
        interval = Math.min(this.maxInterval, 5);
      }
      if (this.stopped) break;
      if (interval > 0) {
        this.log.debug(`beat: Waking up in ${interval.toFixed(2)} seconds.`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            this.wake = undefined;
            resolve();
          }, Math.ceil(interval * 1000));
          this.wake = () => {
            clearTimeout(timer);
            this.wake = undefined;
            resolve();
          };
        });
      }
    }
  }

  private load(): StoredSchedule | undefined {
    if (!existsSync(this.scheduleFilename)) return undefined;
    try {
      const data = JSON.parse(readFileSync(this.scheduleFilename, 'utf8')) as StoredSchedule;
      if (typeof data !== 'object' || data === null || typeof data.entries !== 'object' || data.entries === null) throw new Error('no "entries" object');
      if (data.tz !== this.timezone) {
        this.log.warning(`Reset: Timezone changed from ${JSON.stringify(data.tz)} to ${JSON.stringify(this.timezone)}`);
        return undefined;
      }
      if (data.utcEnabled !== this.app.conf.enableUtc) {
        const word = (b: boolean) => (b ? 'enabled' : 'disabled');
        this.log.warning(`Reset: UTC changed from ${word(!this.app.conf.enableUtc)} to ${word(this.app.conf.enableUtc)}`);
        return undefined;
      }
      return data;
    } catch (err) {
      this.log.error(`Removing corrupted schedule file ${JSON.stringify(this.scheduleFilename)}: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    }
  }

  /** Write the schedule file (atomically: a temporary file renamed over it). */
  sync(): void {
    if (!this.ready) return;
    const data: StoredSchedule = { __version__: `celeriac ${VERSION}`, tz: this.timezone, utcEnabled: this.app.conf.enableUtc, entries: {} };
    for (const e of this.entries.values()) {
      data.entries[e.name] = { task: e.task, schedule: String(e.schedule), lastRunAt: e.lastRunAt.toISOString(), totalRunCount: e.totalRunCount };
    }
    const tmp = `${this.scheduleFilename}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(data, null, 2) + '\n');
    renameSync(tmp, this.scheduleFilename);
  }
}
