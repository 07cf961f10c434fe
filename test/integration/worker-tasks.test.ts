/**
 * A worker process running tasks sent from this process (SQLite broker and result store):
 * results, failures, retries, canvas (task-behaviours.ts), on the default async pool.
 */
import { afterAll, beforeAll, vi } from 'vitest';
import { createSandbox, type Sandbox, startWorker, type WorkerProcess } from './helpers.ts';
import { taskBehaviours } from './task-behaviours.ts';

vi.setConfig({ testTimeout: 30_000, hookTimeout: 40_000 });

let sb: Sandbox;
let worker: WorkerProcess;

beforeAll(async () => {
  sb = await createSandbox('tasks');
  worker = await startWorker(sb, ['-c', '4']);
});

afterAll(async () => {
  await sb?.cleanup();
});

taskBehaviours(() => ({ sb, worker }));
