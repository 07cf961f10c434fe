/** What a worker builds and holds for large task values. */
import { afterEach, describe, expect, it } from 'vitest';
import type { Worker } from '../src/index.ts';
import { createTestApp, startTestWorker } from '../src/testing.ts';

let worker: Worker | undefined;
afterEach(async () => {
  await worker?.shutdown();
  worker = undefined;
});

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(check()).toBe(true);
}

describe('task event payloads', () => {
  for (const taskEvents of [false, true]) {
    it(`are built ${taskEvents ? 'when task events are on (-E)' : 'only when task events are on: never without -E'}`, async () => {
      const app = createTestApp(`events-${taskEvents}`, { taskIgnoreResult: true });
      let reads = 0;
      const big = app.task('big', () => ({
        get payload() {
          reads++;
          return 'x'.repeat(1000);
        },
      }));
      worker = await startTestWorker(app, { taskEvents });
      await big.delay();
      await until(() => worker!.stats().processed.big === 1);
      await new Promise((r) => setImmediate(r));
      // The succeeded event's `result` field is the result's repr: the only reader of the value here.
      expect(reads).toBe(taskEvents ? 1 : 0);
    });
  }
});
