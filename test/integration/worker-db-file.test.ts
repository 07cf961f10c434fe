/**
 * The SQLite broker file deleted or replaced under a running worker and client: both stop with a
 * clear error instead of going on with a file nobody else uses (tasks PENDING forever).
 */
import fs from 'node:fs';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { createSandbox, rejection, type Sandbox, startWorker } from './helpers.ts';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 40_000 });

let sb: Sandbox;
beforeAll(async () => {
  sb = await createSandbox('dbfile');
});
afterAll(async () => {
  await sb?.cleanup();
});

it('a worker whose broker file is deleted stops with a clear error and a non-zero exit', async () => {
  const worker = await startWorker(sb, ['-c', '1']);
  expect(await (await sb.tasks.add.delay(1, 2)).get({ timeout: 15 })).toBe(3);
  const waiting = rejection(sb.tasks.app.AsyncResult('never-sent').get({ timeout: 30 }));
  for (const f of [sb.dbFile, `${sb.dbFile}-wal`, `${sb.dbFile}-shm`]) fs.rmSync(f, { force: true });

  const status = await worker.exited;
  expect(status.code).toBe(1);
  expect(worker.output()).toContain(`the SQLite broker file ${sb.dbFile} was deleted while in use`);
  expect(worker.output()).toContain('Stopping the worker');
  // The client that still has the old file open is told too, both when sending and when waiting.
  expect(String(await rejection(sb.tasks.add.delay(3, 4)))).toContain('was deleted while in use');
  expect(String(await waiting)).toContain(`the SQLite result file ${sb.dbFile} was deleted while in use`);
});
