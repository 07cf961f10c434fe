import type { ResultBackend } from '../backend/result-backend.ts';
import type { RevokedSet } from './revoked-set.ts';

/**
 * Answers "is this task revoked?" for the worker: from the revokes it was told about, else from
 * the backend's revoke marks, batching the questions asked in one tick into one read.
 */
export class RevokeChecker {
  private pending: Array<{ id: string; resolve: (revoked: boolean) => void }> = [];

  constructor(
    private readonly backend: ResultBackend | undefined,
    /** Revokes received by remote control and mingle. */
    readonly known: RevokedSet,
  ) {}

  isRevoked(taskId: string): Promise<boolean> {
    if (this.known.has(taskId)) return Promise.resolve(true);
    if (!this.backend) return Promise.resolve(false);
    return new Promise((resolve) => {
      if (this.pending.push({ id: taskId, resolve }) === 1) queueMicrotask(() => void this.flush());
    });
  }

  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    let revoked = new Set<string>();
    try {
      revoked = await this.backend!.revokedAmong(batch.map((b) => b.id));
    } catch {
      // The backend is unreachable: run the task rather than hold it; storing its result will report the outage.
    }
    for (const b of batch) b.resolve(revoked.has(b.id));
  }
}
