import type { ResultBackend } from '../backend/result-backend.ts';
import type { RevokedSet } from './revoked-set.ts';

const NONE: ReadonlySet<string> = new Set();

/**
 * Answers "is this task revoked?" for the worker: from the revokes it was told about (remote
 * control, mingle, the state db), and from the backend's revoke marks, read for a batch of tasks
 * at once.
 */
export class RevokeChecker {
  constructor(
    private readonly backend: ResultBackend | undefined,
    /** Revokes received by remote control and mingle. */
    readonly known: RevokedSet,
  ) {}

  /** The backend's marks among these tasks, in one read; undefined without a backend. Never rejects. */
  marked(taskIds: string[]): Promise<ReadonlySet<string>> | undefined {
    if (!this.backend || taskIds.length === 0) return undefined;
    // The backend is unreachable: run the task rather than hold it; storing its result will report the outage.
    return this.backend.revokedAmong(taskIds).catch(() => NONE);
  }

  isRevoked(taskId: string, marks: ReadonlySet<string> | undefined): boolean {
    return this.known.has(taskId) || (marks?.has(taskId) ?? false);
  }
}
