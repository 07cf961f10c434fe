import fs from 'node:fs';
import type { LamportClock } from '../events/clock.ts';
import type { RevokedSet } from './revoked-set.ts';

/**
 * `--statedb`: revoked ids and the logical clock survive restarts (Celery's Persistent state).
 * Monotonic timestamps mean nothing after a reboot, so ids are stored without them and restart
 * their expiry on load.
 */
export function loadState(file: string, revoked: RevokedSet, clock: LamportClock): void {
  let data: { revoked?: unknown; clock?: unknown };
  try {
    data = JSON.parse(fs.readFileSync(file, 'utf8')) as typeof data;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new Error(`--statedb ${file} is not a celeriac state file: ${(err as Error).message}`);
  }
  if (Array.isArray(data.revoked)) revoked.update(data.revoked);
  clock.adjust(data.clock);
}

export function saveState(file: string, revoked: RevokedSet, clock: LamportClock): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify({ revoked: revoked.ids(), clock: clock.value }));
  fs.renameSync(tmp, file);
}
