import type { Celery } from '../../app/celery.ts';

/** Who a pool child is, as its start-up hook sees it. */
export interface ChildInfo {
  pool: 'processes' | 'threads';
  /** 1-based, as Celery's ForkPoolWorker-N. */
  index: number;
  pid: number;
  threadId: number;
}

/**
 * Called once in every pool child (process or thread), after it has loaded the app and before
 * it takes its first task: the place for Celery's `worker_process_init`. An error thrown here is
 * the child's start-up error.
 */
export async function workerProcessInit(_app: Celery, _info: ChildInfo): Promise<void> {}
