/**
 * The pool conformance suite: the worker behaviours of task-behaviours.ts (results, failures,
 * kwargs, retries, autoretry, canvas) on every pool besides the default async one, which
 * worker-tasks.test.ts covers.
 */
import { afterAll, beforeAll, describe, vi } from 'vitest';
import { createSandbox, type Sandbox, startWorker, type WorkerProcess } from './helpers.ts';
import { taskBehaviours } from './task-behaviours.ts';

vi.setConfig({ testTimeout: 40_000, hookTimeout: 60_000 });

let sb: Sandbox;

beforeAll(async () => {
  sb = await createSandbox('pool-conformance');
});

afterAll(async () => {
  await sb?.cleanup();
});

for (const pool of ['processes', 'threads', 'solo']) {
  describe(`-P ${pool}`, () => {
    let worker: WorkerProcess;
    beforeAll(async () => {
      worker = await startWorker(sb, ['-P', pool, '-c', '2']);
    });
    afterAll(async () => {
      await worker?.stop();
    });
    taskBehaviours(() => ({ sb, worker }));
  });
}
