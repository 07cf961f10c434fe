import type { ResultBackend } from '../backend/result-backend.ts';
import type { Logger } from '../common/log.ts';
import type { RevokedSet } from './revoked-set.ts';

const NONE: ReadonlySet<string> = new Set();
/** How often a worker that follows the backend's revoke marks reads the new ones. */
const FOLLOW_EVERY_MS = 1_000;

/**
 * Answers "is this task revoked?" for the worker: from the revokes it was told about (remote
 * control, mingle, the state db), and from the revoke marks `revoke()` leaves in the result backend.
 *
 * Where revokes are broadcast and the backend lists its marks in order (Redis), the marks only
 * matter to a worker that was not listening: it reads them all before consuming and then the new
 * ones every second, so no task waits on a read of its own before it starts. Otherwise the marks
 * of each batch of tasks are read before the batch runs.
 */
export class RevokeChecker {
  private since: number | null = null;
  private following = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly backend: ResultBackend | undefined,
    /** Revokes received by remote control and mingle. */
    readonly known: RevokedSet,
    private readonly broadcast: boolean,
    private readonly log: Logger,
  ) {}

  /** Before consuming: read every live mark, when following them. */
  async start(): Promise<void> {
    if (!this.broadcast || !this.backend?.revokedSince) return;
    try {
      await this.follow();
    } catch (err) {
      this.log.warning(`Could not read the revoke marks of the result backend (${(err as Error).message}): each batch of tasks reads them until it can.`);
    }
    this.timer = setInterval(() => void this.follow().catch(() => undefined), FOLLOW_EVERY_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The backend's marks among these tasks, in one read; undefined when none is needed. Never rejects. */
  marked(taskIds: string[]): Promise<ReadonlySet<string>> | undefined {
    if (this.following || !this.backend || taskIds.length === 0) return undefined;
    // The backend is unreachable: run the task rather than hold it; storing its result will report the outage.
    return this.backend.revokedAmong(taskIds).catch(() => NONE);
  }

  isRevoked(taskId: string, marks: ReadonlySet<string> | undefined): boolean {
    return this.known.has(taskId) || (marks?.has(taskId) ?? false);
  }

  private async follow(): Promise<void> {
    const { ids, next } = await this.backend!.revokedSince!(this.since);
    for (const id of ids.reverse()) if (!this.known.has(id)) this.known.add(id); // oldest first, as they were made
    this.since = next;
    this.following = true;
  }
}
