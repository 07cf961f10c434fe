import { Celery } from './app/celery.ts';
import type { CeleryConfig } from './app/config.ts';
import { createLogger } from './common/log.ts';
import { Worker, type WorkerOptions } from './worker/worker.ts';

let counter = 0;

/** An app on the in-process memory:// broker and backend, isolated from every other test app. */
export function createTestApp(main = 'test', config: CeleryConfig = {}): Celery {
  const url = `memory://test-${process.pid}-${++counter}`;
  return new Celery(main, { broker: url, backend: url, ...config });
}

/** Start an in-process worker for the app; stop it with `await worker.shutdown()`. */
export async function startTestWorker(app: Celery, options: WorkerOptions = {}): Promise<Worker> {
  const worker = new Worker(app, { logger: createLogger({ level: 'ERROR' }), ...options });
  await worker.start();
  return worker;
}
