/**
 * `node --import tsx bench/dashboard.ts [--seconds S] [--rate TASKS_PER_S]`: the dashboard's two
 * figures. (1) Events ingested per second while a synthetic cluster runs RATE tasks/s (each task
 * a task-received, task-started and task-succeeded event, sent as workers send them: `task.multi`
 * batches on celeryev), from a publisher in another process; with the events sent, the events
 * ingested, the tasks stored, and the dashboard process's CPU. (2) The task-list request time
 * with 100,000 tasks stored: median and p95 of 30 requests per query.
 * Uses Redis DB 14 (the benchmark's) under its own key prefix; pub/sub leaves no keys.
 */
import { fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Celery } from '../src/index.ts';
import { startDashboard } from '../src/dashboard/index.ts';
import { DashboardStore } from '../src/dashboard/store.ts';
import { EVENT_EXCHANGE, eventMessage } from '../src/events/event.ts';

const BROKER = 'redis://127.0.0.1:6379/14';
const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};

if (process.argv[2] === '--publisher') await publisher(process.argv[3]!, Number(process.argv[4]), Number(process.argv[5]));
else await main();

/** The synthetic cluster: RATE tasks/s for SECONDS, in batches every 10 ms. */
async function publisher(prefix: string, rate: number, seconds: number): Promise<void> {
  const app = new Celery('bench-events', { broker: BROKER, brokerTransportOptions: { global_keyprefix: prefix } });
  const broadcast = (await app.transport()).broadcast!;
  const start = Date.now();
  let sentTasks = 0;
  let events = 0;
  while (Date.now() - start < seconds * 1000) {
    const due = Math.floor(((Date.now() - start) / 1000) * rate);
    const batch: Record<string, unknown>[] = [];
    for (; sentTasks < due; sentTasks++) {
      const uuid = `bench-${sentTasks}`;
      const t = Date.now() / 1000;
      const base = { hostname: `w${sentTasks % 4}@bench`, pid: 1, clock: sentTasks, utcoffset: 0 };
      batch.push({ ...base, type: 'task-received', uuid, name: 'bench.add', args: `(${sentTasks}, 1)`, kwargs: '{}', root_id: uuid, parent_id: null, retries: 0, eta: null, expires: null, timestamp: t });
      batch.push({ ...base, type: 'task-started', uuid, timestamp: t });
      batch.push({ ...base, type: 'task-succeeded', uuid, result: String(sentTasks + 1), runtime: 0.0001, timestamp: t });
    }
    const sends: Promise<void>[] = [];
    for (let i = 0; i < batch.length; i += 72) { // 24 tasks of 3 events: a worker's task.multi flush
      sends.push(broadcast.publishExchange(EVENT_EXCHANGE, 'task.multi', eventMessage(batch.slice(i, i + 72), 'w@bench')));
      events += Math.min(72, batch.length - i);
    }
    await Promise.all(sends);
    await new Promise((r) => setTimeout(r, 10));
  }
  process.send!({ tasks: sentTasks, events, seconds: (Date.now() - start) / 1000 });
  await app.close();
}

async function main(): Promise<void> {
  const seconds = arg('--seconds', 10);
  const rate = arg('--rate', 10_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'celeriac-bench-dashboard-'));
  const prefix = `celeriac-bench-dashboard-${process.pid}:`;
  const app = new Celery('bench-dashboard', { broker: BROKER, brokerTransportOptions: { global_keyprefix: prefix } });
  const dashboard = await startDashboard(app, { port: 0, db: path.join(dir, 'events.db'), enableEvents: false });
  try {
    // (1) ingestion
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const child = fork(fileURLToPath(import.meta.url), ['--publisher', prefix, String(rate), String(seconds)], { execArgv: ['--import', 'tsx'] });
    const sent = await new Promise<{ tasks: number; events: number; seconds: number }>((resolve, reject) => {
      child.once('message', (m) => resolve(m as never));
      child.once('exit', (code) => code !== 0 && reject(new Error(`publisher exited ${code}`)));
    });
    const ingest = dashboard.context.ingest;
    const deadline = Date.now() + 10_000;
    while (ingest.ingested < sent.events && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    ingest.flush();
    const wall = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const stored = dashboard.context.store.count();
    const ingestion = {
      rateAsked: rate, tasksSent: sent.tasks, eventsSent: sent.events, eventsIngested: ingest.ingested, tasksStored: stored,
      eventsPerSecond: Math.round(ingest.ingested / sent.seconds), dropped: sent.events - ingest.ingested,
      dashboardCpuCores: Number(((cpu.user + cpu.system) / 1e6 / wall).toFixed(2)),
    };
    console.log('ingestion', ingestion);

    // (2) task list over 100,000 stored tasks
    const big = new DashboardStore(path.join(dir, 'list.db'), { maxTasks: 100_000, retentionHours: 0 });
    const now = Date.now() / 1000;
    big.write(Array.from({ length: 100_000 }, (_, i) => ({
      uuid: `task-${i}`, name: `tasks.t${i % 7}`, state: ['SUCCESS', 'FAILURE', 'STARTED'][i % 3], worker: `w${i % 3}@bench`,
      args: `(${i},)`, kwargs: '{}', result: String(i), received: now - 100_000 + i, started: now - 100_000 + i, succeeded: now - 100_000 + i, runtime: 0.01, seen: now - 100_000 + i,
    })));
    big.close();
    await dashboard.close();
    const listing = await startDashboard(app, { port: 0, db: path.join(dir, 'list.db'), enableEvents: false });
    const queries: Record<string, string> = {
      'page 1': '/api/dashboard/tasks?limit=25',
      'page 2,000 (offset 49,975)': '/api/dashboard/tasks?limit=25&offset=49975',
      'state=FAILURE, name filter': '/api/dashboard/tasks?limit=25&state=FAILURE&taskname=tasks.t3',
      'search text in args': '/api/dashboard/tasks?limit=25&search=99999',
      "Flower's /api/tasks?limit=25": '/api/tasks?limit=25',
    };
    const list: Record<string, { medianMs: number; p95Ms: number }> = {};
    for (const [label, q] of Object.entries(queries)) {
      const times: number[] = [];
      for (let i = 0; i < 30; i++) {
        const s = performance.now();
        const r = await fetch(listing.url + q);
        await r.text();
        times.push(performance.now() - s);
      }
      times.sort((a, b) => a - b);
      list[label] = { medianMs: Number(times[15]!.toFixed(1)), p95Ms: Number(times[28]!.toFixed(1)) };
    }
    console.log('task list, 100,000 tasks stored', list);
    await listing.close();
    const out = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results', `${new Date().toISOString().replace(/[:.]/g, '').slice(0, 15)}-dashboard.json`);
    fs.writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), loadavg: os.loadavg(), cpus: os.cpus().length, ingestion, list }, null, 2) + '\n');
    console.log(`written ${out}`);
  } finally {
    await dashboard.close().catch(() => undefined);
    await app.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
