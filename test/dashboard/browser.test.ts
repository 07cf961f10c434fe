/**
 * The dashboard in a real browser (Debian's headless Chromium) on Redis, with a celeriac worker
 * and a Python Celery 5.2 worker: the pages, the live list, the actions checked in the result
 * backend, escaping, basic auth. Takes the README's screenshots (docs/dashboard/).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Celery, chain, group, signature } from '../../src/index.ts';
import { type Dashboard, startDashboard } from '../../src/dashboard/index.ts';
import { launchChromium } from '../helpers/browser.ts';
import { BACKEND, BROKER, celeriacWorker, cleanup, PREFIX, type Proc, pythonWorker, results, ROOT } from '../cluster/helpers.ts';
import { revokeFromPage, until } from './helpers.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'celeriac-dashboard-'));
// Screenshots go to the README's folder only when asked (CELERIAC_SCREENSHOTS=1), so a test run leaves the tree clean.
const SHOTS = process.env.CELERIAC_SCREENSHOTS === '1' ? path.join(ROOT, 'docs', 'dashboard') : path.join(dir, 'shots');
const procs: Proc[] = [];
let app: Celery;
let dashboard: Dashboard;
let chromium: Awaited<ReturnType<typeof launchChromium>>;
let page: Page;

const send = async (name: string, args: unknown[], queue: string, options: Record<string, unknown> = {}) => {
  const r = await app.sendTask(name, args, {}, { queue, ...options });
  results.add(r);
  return r;
};
/** The dashboard's record of a task (Flower's /api/task/info), or undefined while it has none. */
const info = async (id: string) => {
  const r = await fetch(`${dashboard.url}/api/task/info/${id}`);
  return r.ok ? ((await r.json()) as { state: string }) : undefined;
};
const stateOf = async (id: string) => (await (await app.backend()).getTaskMeta(id)).status;
const shot = (name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });

beforeAll(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  app = new Celery('dashboard-test', { broker: BROKER, backend: BACKEND, brokerTransportOptions: { global_keyprefix: PREFIX } });
  procs.push(
    celeriacWorker('ts@dash', ['-Q', 'ts', '-E', '--heartbeat-interval', '1']),
    // Not -P threads: Celery 5.2 buffers task events and schedules their flush on its event loop from the
    // pool thread that finished the task, unsafely; a task-succeeded can then wait for the worker's next task event.
    pythonWorker('py@dash', ['-Q', 'py', '-E', '--heartbeat-interval', '1', '-P', 'prefork', '-c', '2']),
  );
  dashboard = await startDashboard(app, { port: 0, db: path.join(dir, 'history.db') });
  chromium = await launchChromium();
  page = await chromium.context.newPage();
  await Promise.all(procs.map((p) => p.waitFor(/ready\./, 60_000)));
}, 90_000);

afterAll(async () => {
  await chromium?.close();
  await dashboard?.close();
  await Promise.all(procs.map((p) => p.stop('SIGKILL')));
  await app?.close();
  await cleanup();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('dashboard in Chromium, Redis, a celeriac and a Python worker', () => {
  it('the workers page lists both workers, online, with their software', async () => {
    await page.goto(`${dashboard.url}/workers`);
    const ts = page.locator('tr[data-worker="ts@dash"]');
    const py = page.locator('tr[data-worker="py@dash"]');
    await ts.locator('.online').waitFor({ timeout: 20_000 });
    await py.locator('.online').waitFor({ timeout: 20_000 });
    expect(await ts.textContent()).toContain('celeriac');
    expect(await py.textContent()).toContain('py-celery');
    // the queues come from inspect, refreshed when a worker comes online
    await until('the queues of both workers', async () => {
      await page.reload();
      return (await ts.textContent())?.includes('ts') && (await py.locator('td').nth(5).textContent()) === 'py';
    });
    await shot('workers');
    await page.locator('a', { hasText: 'py@dash' }).click();
    await page.locator('h2', { hasText: 'Registered' }).waitFor();
    await until('the registered tasks', async () => (await page.locator('pre').first().textContent())?.includes('cluster.py_fail'));
    await shot('worker');
  });

  it('a task sent shows in the list without a reload, and its state follows', async () => {
    await page.goto(`${dashboard.url}/tasks`);
    await page.locator('#tasks').waitFor();
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));
    const r = await send('cluster.py_echo', ['live'], 'py');
    const row = page.locator(`tr[data-task="${r.id}"]`);
    await row.locator('.state.SUCCESS').waitFor({ timeout: 10_000 }).catch(async (err: Error) => {
      // Which step fell behind: the worker, the dashboard's record, or the page.
      const shown = (await row.count()) ? await row.textContent() : 'no row';
      throw new Error(`${err.message}; result backend: ${await stateOf(r.id)}; dashboard: ${JSON.stringify(await info(r.id))}; ` +
        `page row: ${shown}; live channel: ${await page.locator('#live').textContent()}`);
    });
    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(42); // same document: no reload
    expect(await row.textContent()).toContain('py@dash');
  });

  it('a failed task shows its traceback, for each kind of worker', async () => {
    // Python's traceback names the exception (its threads pool reports ExceptionWithTraceback() in the event itself)
    for (const [name, queue, where, kind] of [['cluster.py_fail', 'py', '#traceback', 'ValueError: boom from py'], ['cluster.ts_fail', 'ts', '#fields', "Error('boom from ts')"]] as const) {
      const r = await send(name, [`boom from ${queue}`], queue);
      await until('the failure', async () => (await stateOf(r.id)) === 'FAILURE');
      await page.goto(`${dashboard.url}/task/${r.id}`);
      const tb = page.locator('#traceback');
      await tb.waitFor({ timeout: 10_000 });
      expect(await tb.textContent()).toContain(`boom from ${queue}`);
      expect(await page.locator(where).textContent()).toContain(kind);
      if (queue === 'py') await shot('task');
    }
  });

  it('the retry button sends a failed task again with its arguments (checked in the result backend)', async () => {
    const r = await send('cluster.ts_fail', ['again', ], 'ts');
    await until('the failure', async () => (await stateOf(r.id)) === 'FAILURE');
    await page.goto(`${dashboard.url}/task/${r.id}`);
    await page.locator('#traceback').waitFor({ timeout: 10_000 });
    await page.locator('#retry').click();
    await page.waitForURL((u) => u.pathname.startsWith('/task/') && !u.pathname.endsWith(r.id));
    const newId = decodeURIComponent(new URL(page.url()).pathname.split('/').pop()!);
    results.add(newId);
    await until('the retried task', async () => (await stateOf(newId)) === 'FAILURE');
    const meta = await (await app.backend()).getTaskMeta(newId);
    expect(JSON.stringify(meta.result)).toContain('again');
  });

  it('revoke and terminate stops a running task (REVOKED in the result backend); revoke drops a waiting one', async () => {
    const running = await send('cluster.ts_sleep', [60], 'ts');
    let seen: unknown;
    await until('the task to start', async () => (seen = await info(running.id)) && (seen as { state: string }).state === 'STARTED').catch((err: Error) => {
      throw new Error(`${err.message}; the dashboard has ${JSON.stringify(seen)}`);
    });
    await revokeFromPage(page, dashboard.url, running.id, '#terminate', stateOf);

    const waiting = await send('cluster.py_echo', ['never'], 'py', { countdown: 3 });
    await until('the task to be received', async () => (await info(waiting.id))?.state === 'RECEIVED');
    await revokeFromPage(page, dashboard.url, waiting.id, '#revoke', stateOf);
  });

  it('an argument <script> is shown as text and never runs', async () => {
    const payload = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">';
    const r = await send('cluster.ts_echo', [payload], 'ts');
    await until('the success', async () => (await stateOf(r.id)) === 'SUCCESS');
    await page.goto(`${dashboard.url}/tasks`);
    const row = page.locator(`tr[data-task="${r.id}"]`);
    await row.locator('.state.SUCCESS').waitFor({ timeout: 10_000 });
    expect(await row.textContent()).toContain('<script>window.pwned = 1</script>');
    await shot('tasks');
    await page.goto(`${dashboard.url}/task/${r.id}`);
    await page.locator('#fields').waitFor();
    expect(await page.locator('#fields').textContent()).toContain('<img src=x');
    expect(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned)).toBeUndefined();
    expect(await page.locator('#fields img, #fields script').count()).toBe(0);
  });

  it('a workflow shows as a graph: a chain into a group, with parent, root and children', async () => {
    const echo = (...args: unknown[]) => signature('cluster.ts_echo', args, {}, { queue: 'ts' }, app);
    const marker = `start-${Date.now()}`;
    results.add((await chain(echo(marker), group(echo('left'), echo('right'))).applyAsync()) as never);
    type Row = { uuid: string; root_id: string | null; parent_id: string | null; args: string };
    const rows = async () => Object.values((await (await fetch(`${dashboard.url}/api/tasks?limit=200`)).json()) as Record<string, Row>);
    const [first, members] = await until('the workflow in the dashboard', async () => {
      const all = await rows();
      const head = all.find((t) => t.args === `('${marker}',)`); // the group's members get it too, as the chain's result
      const under = head ? all.filter((t) => t.root_id === head.uuid && t.uuid !== head.uuid) : [];
      return head && under.length >= 2 && under.every((t) => t.parent_id === head.uuid) && ([head.uuid, under] as const);
    });
    results.add(first, ...members.map((m) => m.uuid));
    await page.goto(`${dashboard.url}/task/${first}`);
    const graph = page.locator('#graph');
    await graph.waitFor();
    expect(await graph.locator('rect').count()).toBe(1 + members.length);
    expect(await page.locator('#fields').textContent()).toContain(members[0]!.uuid); // children
    expect(await graph.textContent()).toContain('cluster.ts_echo');
    await shot('workflow');
  });

  it('the queues page shows the waiting messages per queue and the dead letters with their reasons', async () => {
    const unknown = await send('cluster.no_such_task', [], 'ts'); // the worker rejects it into the dead letters
    await page.goto(`${dashboard.url}/queues`);
    const table = page.locator('#queues');
    await table.waitFor();
    expect(await table.textContent()).toContain('py');
    expect(await table.textContent()).toContain('ts');
    const dead = page.locator('#dead');
    await until('the dead letter', async () => {
      await page.reload();
      return (await dead.count()) > 0 && (await dead.textContent())?.includes(unknown.id);
    });
    expect(await dead.textContent()).toMatch(/cluster\.no_such_task.*unregistered|not registered/i);
    await shot('queues');
  });

  it('with --basic-auth, a request without credentials is turned away', async () => {
    const locked = await startDashboard(app, { port: 0, db: ':memory:', basicAuth: ['admin:s3cret'] });
    try {
      const other = await chromium.context.newPage();
      // Chromium answers the 401's basic-auth challenge, having no credentials, by failing the navigation
      await expect(other.goto(`${locked.url}/workers`)).rejects.toThrow(/ERR_INVALID_AUTH_CREDENTIALS/);
      expect((await other.request.get(`${locked.url}/api/workers`)).status()).toBe(401);
      await other.setExtraHTTPHeaders({ authorization: `Basic ${Buffer.from('admin:s3cret').toString('base64')}` });
      const allowed = await other.goto(`${locked.url}/workers`);
      expect(allowed?.status()).toBe(200);
      await other.locator('#workers').waitFor();
      await other.close();
    } finally {
      await locked.close();
    }
  });
});
