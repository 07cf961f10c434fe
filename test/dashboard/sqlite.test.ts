/**
 * The quickstart's dashboard: the SQLite default (broker and results in one file, no server) with
 * two celeriac worker processes, in Debian's headless Chromium: both workers listed, a task live
 * without a reload, a failure's traceback, retry and revoke checked in the result backend, a
 * `<script>` argument as text, basic auth.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Celery } from '../../src/index.ts';
import { type Dashboard, startDashboard } from '../../src/dashboard/index.ts';
import { launchChromium } from '../helpers/browser.ts';
import { ROOT } from '../cluster/helpers.ts';
import { revokeFromPage, until } from './helpers.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'celeriac-dashboard-sqlite-'));
const URL_ = `sqlite:///${path.join(dir, 'celeriac.db')}`;
const env = { ...process.env, CELERIAC_TEST_BROKER: URL_, CELERIAC_TEST_BACKEND: URL_, CELERIAC_TEST_QUEUE: 'celery', CELERIAC_TEST_PREFIX: '' };
const workers: ChildProcess[] = [];
let app: Celery;
let dashboard: Dashboard;
let chromium: Awaited<ReturnType<typeof launchChromium>>;
let page: Page;

function startWorker(name: string): Promise<void> {
  const child = spawn(process.execPath, ['bin/celeriac.js', '-A', './test/cluster/tasks.ts:app', 'worker', '-n', name, '-E', '--heartbeat-interval', '1', '-l', 'INFO'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  workers.push(child);
  let out = '';
  return new Promise((resolve, reject) => {
    const on = (b: Buffer) => {
      out += b.toString();
      if (/ ready\./.test(out)) resolve();
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.once('exit', (code) => reject(new Error(`worker ${name} exited (${code}):\n${out}`)));
  });
}

const stateOf = async (id: string) => (await (await app.backend()).getTaskMeta(id)).status;
const info = async (id: string) => {
  const r = await fetch(`${dashboard.url}/api/task/info/${id}`);
  return r.ok ? ((await r.json()) as { state: string }) : undefined;
};

beforeAll(async () => {
  app = new Celery('dashboard-sqlite-test', { broker: URL_, backend: URL_ });
  await Promise.all([startWorker('one@sqlite'), startWorker('two@sqlite')]);
  dashboard = await startDashboard(app, { port: 0, db: path.join(dir, 'history.db') });
  chromium = await launchChromium();
  page = await chromium.context.newPage();
}, 90_000);

afterAll(async () => {
  await chromium?.close();
  await dashboard?.close();
  for (const w of workers) w.kill('SIGKILL');
  await app?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('dashboard on the SQLite default, two celeriac workers, in Chromium', () => {
  it('lists both workers, online', async () => {
    await page.goto(`${dashboard.url}/workers`);
    await page.locator('tr[data-worker="one@sqlite"] .online').waitFor({ timeout: 20_000 });
    await page.locator('tr[data-worker="two@sqlite"] .online').waitFor({ timeout: 20_000 });
  });

  it('shows a task sent without a reload, then its failure\'s traceback', async () => {
    await page.goto(`${dashboard.url}/tasks`);
    await page.locator('#tasks').waitFor();
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 7));
    const ok = await app.sendTask('cluster.ts_echo', ['<script>window.pwned = 1</script>']);
    const row = page.locator(`tr[data-task="${ok.id}"]`);
    await row.locator('.state.SUCCESS').waitFor({ timeout: 10_000 });
    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(7);
    expect(await row.textContent()).toContain('<script>window.pwned = 1</script>');
    expect(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned)).toBeUndefined();

    const bad = await app.sendTask('cluster.ts_fail', ['boom on sqlite']);
    await until('the failure', async () => (await stateOf(bad.id)) === 'FAILURE');
    await page.goto(`${dashboard.url}/task/${bad.id}`);
    await page.locator('#traceback').waitFor({ timeout: 10_000 });
    expect(await page.locator('#traceback').textContent()).toContain('boom on sqlite');

    await page.locator('#retry').click();
    await page.waitForURL((u) => u.pathname.startsWith('/task/') && !u.pathname.endsWith(bad.id));
    const again = decodeURIComponent(new URL(page.url()).pathname.split('/').pop()!);
    await until('the retried task', async () => (await stateOf(again)) === 'FAILURE');
    expect(JSON.stringify((await (await app.backend()).getTaskMeta(again)).result)).toContain('boom on sqlite');
  });

  it('revoke and terminate stops a running task: REVOKED in the result backend', async () => {
    const running = await app.sendTask('cluster.ts_sleep', [60]);
    await until('the task to start', async () => (await info(running.id))?.state === 'STARTED');
    await revokeFromPage(page, dashboard.url, running.id, '#terminate', stateOf);
  });

  it('with --basic-auth, a request without credentials is turned away', async () => {
    const locked = await startDashboard(app, { port: 0, db: ':memory:', basicAuth: ['admin:s3cret'] });
    try {
      expect((await fetch(`${locked.url}/workers`)).status).toBe(401);
      const other = await chromium.context.newPage();
      await expect(other.goto(`${locked.url}/workers`)).rejects.toThrow(/ERR_INVALID_AUTH_CREDENTIALS/);
      await other.close();
    } finally {
      await locked.close();
    }
  });
});
