import type { Celery } from '../../app/celery.ts';
import { signals } from '../../app/signals.ts';

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
 * it takes its first task: Celery's `worker_process_init` fires here (receivers connected by the
 * task module, which the child has imported). Receivers' errors are logged, as for every signal.
 */
export async function workerProcessInit(_app: Celery, _info: ChildInfo): Promise<void> {
  await signals.workerProcessInit.send({ sender: null });
}
