/** What a worker builds and holds for large task values. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/app/config.ts';
import { Celery, MessageTooLarge, type Worker } from '../src/index.ts';
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

describe('brokerMaxMessageSize', () => {
  it('refuses a message over the limit before anything is written, and says what to do', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'celeriac-maxsize-'));
    const app = new Celery('maxsize', { broker: `sqlite:///${path.join(dir, 'b.db')}`, brokerMaxMessageSize: 1024 * 1024 });
    try {
      const echo = app.task('echo', (s: string) => s.length);
      const err = await echo.delay('x'.repeat(2 * 1024 * 1024)).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(MessageTooLarge);
      expect(String(err)).toMatch(/task echo\[[0-9a-f-]{36}\] not sent: its message is 2\.0 MiB \(\d+ bytes\), over brokerMaxMessageSize \(1\.0 MiB \(1048576 bytes\)\)\. Pass a reference/);
      const transport = await app.transport();
      expect(await transport.size('celery')).toBe(0);
      await echo.delay('x'.repeat(1000));
      expect(await transport.size('celery')).toBe(1);
      expect(resolveConfig({}).brokerMaxMessageSize).toBe(64 * 1024 * 1024);
      expect(() => resolveConfig({ brokerMaxMessageSize: -1 })).toThrow('brokerMaxMessageSize');
    } finally {
      await app.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('workerPrefetchBytes', () => {
  it('bounds the bytes of messages a worker holds under a burst of large ones, and still runs them all', async () => {
    const size = 100_000;
    const app = createTestApp('prefetch-bytes', { workerPrefetchBytes: Math.floor(3.5 * size) });
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const echo = app.task('echo', async (s: string) => {
      await gate;
      return s.length;
    });
    worker = await startTestWorker(app, { concurrency: 10, prefetchMultiplier: 4 });
    const results = await Promise.all(Array.from({ length: 20 }, () => echo.delay('x'.repeat(size))));
    let most = 0;
    try {
      for (let i = 0; i < 50; i++) {
        most = Math.max(most, worker.heldRequests().length);
        await new Promise((r) => setTimeout(r, 10));
      }
    } finally {
      open();
    }
    // 3 bodies fit in 3.5 of them; without the limit the worker would hold all 20.
    expect(most).toBe(3);
    expect(await Promise.all(results.map((r) => r.get({ timeout: 20 })))).toEqual(Array(20).fill(size));
  });

  it('a message bigger than the whole budget still runs, alone', async () => {
    const app = createTestApp('prefetch-bytes-big', { workerPrefetchBytes: 1000 });
    const len = app.task('len', (s: string) => s.length);
    worker = await startTestWorker(app);
    const results = await Promise.all([len.delay('y'.repeat(50_000)), len.delay('z'.repeat(60_000))]);
    expect(await Promise.all(results.map((r) => r.get({ timeout: 20 })))).toEqual([50_000, 60_000]);
  });
});
