/**
 * `npm run bench:pools`: the worker pools side by side, in one run, on Redis (DB 14, a queue and
 * counter keys of its own, deleted at the end; no FLUSHDB, so it may run beside `npm run bench`).
 *
 *   cpu       tasks of ~20 ms of CPU each, `-P processes -c 2` vs the async pool (-c 2)
 *   drain     no-op tasks prefilled, then drained: celeriac processes/threads -c 2 vs Celery
 *             prefork -c 2, BullMQ sandboxed processors (child processes, worker threads) at 2
 *   overhead  µs per no-op task at -c 1 on each pool, and what each adds to the async pool
 *   rss       idle resident memory of the main process and of each child (JavaScript task module)
 *
 * Timing starts at the first executed task (start-up excluded) and ends when the counter reaches N.
 * Options: --n N (drain tasks, default 3000), --cpu N (cpu tasks, default 60), --rounds R (default 1).
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { Celery } from '../src/index.ts';
import { buildNodeProcesses, TASKS_MODULE } from './lib/build.ts';
import { PYTHON, REDIS_BROKER_URL, REDIS_RESULTS_URL } from './lib/config.ts';
import { ROOT } from './lib/node-agent.ts';
import { killAllNow, processTree, spawnTracked, stopProcess } from './lib/proc.ts';
import { median } from './stats.ts';

const QUEUE = 'celeriac-bench-pools';
const COUNTER = 'celeriac-bench-pools:done';
const BULL_PREFIX = 'celeriac-bench-pools-bull';
const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const N = arg('n', 3000);
const CPU_N = arg('cpu', 60);
const ROUNDS = arg('rounds', 1);
const env = { ...process.env, BENCH_BROKER: REDIS_BROKER_URL, BENCH_BACKEND: REDIS_RESULTS_URL, BENCH_COUNTER_URL: REDIS_BROKER_URL, BENCH_COUNTER_KEY: COUNTER, BENCH_QUEUE: QUEUE };
const redis = new Redis(REDIS_BROKER_URL);
const client = new Celery('bench', { broker: REDIS_BROKER_URL });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const count = async () => Number((await redis.get(COUNTER)) ?? 0);

type Worker = { proc: ChildProcess; stderr: () => string };

function celeriac(pool: string, c: number): Worker {
  let err = '';
  const proc = spawnTracked(process.execPath, [path.join(ROOT, 'bin', 'celeriac.js'), '-A', TASKS_MODULE, 'worker', '-P', pool, '-c', String(c), '-l', 'WARNING', '-Q', QUEUE,
    '-n', `pools${process.pid}@%h`, '--without-mingle', '--without-gossip', '--without-heartbeat'], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
  proc.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  return { proc, stderr: () => err };
}

function celery(c: number): Worker {
  let err = '';
  const proc = spawnTracked(PYTHON, ['-m', 'celery', '-A', 'benchtasks', 'worker', '-P', 'prefork', '-c', String(c), '-l', 'WARNING', '-Q', QUEUE,
    '--without-gossip', '--without-mingle', '--without-heartbeat'], { cwd: path.join(ROOT, 'bench', 'py'), env: { ...env, PYTHONPATH: path.join(ROOT, 'bench', 'py') }, stdio: ['ignore', 'ignore', 'pipe'] });
  proc.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  return { proc, stderr: () => err };
}

function bullmq(kind: 'process' | 'thread', c: number): Worker {
  let err = '';
  const proc = spawnTracked(process.execPath, [path.join(ROOT, 'bench', 'agents', 'bullmq-pool-worker.mjs'), QUEUE, BULL_PREFIX, String(c), kind], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
  proc.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  return { proc, stderr: () => err };
}

async function prefill(n: number, task: 'bench.noop' | 'bench.cpu', bull: boolean): Promise<void> {
  if (bull) {
    const q = new Queue(QUEUE, { connection: new Redis(REDIS_BROKER_URL, { maxRetriesPerRequest: null }), prefix: BULL_PREFIX });
    for (let i = 0; i < n; i += 1000) await q.addBulk(Array.from({ length: Math.min(1000, n - i) }, () => ({ name: task, data: {}, opts: { removeOnComplete: true } })));
    await q.close();
    return;
  }
  const args = task === 'bench.cpu' ? [20] : [];
  for (let i = 0; i < n; i += 500) await Promise.all(Array.from({ length: Math.min(500, n - i) }, () => client.sendTask(task, args, {}, { queue: QUEUE, ignoreResult: true })));
}

async function waitCount(target: number, w: Worker, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if ((await count()) >= target) return performance.now();
    if (w.proc.exitCode !== null || w.proc.signalCode !== null) throw new Error(`worker exited: ${w.stderr()}`);
    if (Date.now() > deadline) throw new Error(`timed out at ${await count()}/${target}: ${w.stderr()}`);
    await sleep(2);
  }
}

/** Tasks per second from the first execution to the last. */
async function drain(start: () => Worker, n: number, task: 'bench.noop' | 'bench.cpu', bull = false): Promise<number> {
  await redis.del(COUNTER);
  await prefill(n, task, bull);
  const w = start();
  try {
    const t0 = await waitCount(1, w, 120_000);
    const t1 = await waitCount(n, w, 600_000);
    return ((n - 1) / (t1 - t0)) * 1000;
  } finally {
    await stopProcess(w.proc, 15_000);
  }
}

const rssKiB = (pid: number) => {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
};

/** Idle RSS (MB) of the main process and each child, after one task and a second of rest. */
async function idleRss(pool: string): Promise<{ main: number; children: number[] }> {
  await redis.del(COUNTER);
  const w = celeriac(pool, 2);
  try {
    await prefill(2, 'bench.noop', false);
    await waitCount(2, w, 120_000);
    await sleep(1500);
    const [main, ...children] = processTree(w.proc.pid!);
    return { main: rssKiB(main!) / 1024, children: children.map((p) => rssKiB(p) / 1024) };
  } finally {
    await stopProcess(w.proc, 15_000);
  }
}

async function cleanup(): Promise<void> {
  const keys = [COUNTER, QUEUE, ...(await redis.keys(`${BULL_PREFIX}:*`))];
  await redis.del(...keys);
}

async function main(): Promise<void> {
  await buildNodeProcesses();
  await cleanup();
  const rows: Array<[string, number[]]> = [];
  const measure = async (label: string, fn: () => Promise<number>) => {
    let row = rows.find((r) => r[0] === label);
    if (!row) rows.push((row = [label, []]));
    row[1].push(await fn());
    process.stderr.write(`${label}: ${row[1].at(-1)!.toFixed(1)}\n`);
  };
  for (let round = 0; round < ROUNDS; round++) {
    await measure('cpu 20 ms: celeriac processes -c 2 (tasks/s)', () => drain(() => celeriac('processes', 2), CPU_N, 'bench.cpu'));
    await measure('cpu 20 ms: celeriac async -c 2 (tasks/s)', () => drain(() => celeriac('async', 2), CPU_N, 'bench.cpu'));
    await measure('drain: celeriac processes -c 2', () => drain(() => celeriac('processes', 2), N, 'bench.noop'));
    await measure('drain: celeriac threads -c 2', () => drain(() => celeriac('threads', 2), N, 'bench.noop'));
    await measure('drain: celeriac async -c 100', () => drain(() => celeriac('async', 100), N, 'bench.noop'));
    await measure('drain: Celery prefork -c 2', () => drain(() => celery(2), N, 'bench.noop'));
    await measure('drain: BullMQ sandboxed processes, concurrency 2', () => drain(() => bullmq('process', 2), N, 'bench.noop', true));
    await measure('drain: BullMQ sandboxed worker threads, concurrency 2', () => drain(() => bullmq('thread', 2), N, 'bench.noop', true));
    for (const pool of ['async', 'solo', 'threads', 'processes']) await measure(`-c 1 ${pool} (tasks/s)`, () => drain(() => celeriac(pool, 1), Math.min(N, 2000), 'bench.noop'));
  }
  const med = new Map(rows.map(([label, v]) => [label, median(v)]));
  const get = (label: string) => med.get(label)!;
  const lines = [`pools bench, ${new Date().toISOString()}, ${os.cpus().length} CPUs, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} (a loaded machine: compare rows of one run, not runs)`, ''];
  for (const [label] of rows) lines.push(`${label.padEnd(58)} ${get(label).toFixed(1).padStart(10)}`);
  const ratio = (a: string, b: string) => (get(a) / get(b)).toFixed(2);
  lines.push('', `cpu: processes -c 2 / async            ${ratio('cpu 20 ms: celeriac processes -c 2 (tasks/s)', 'cpu 20 ms: celeriac async -c 2 (tasks/s)')}× (goal ≥ 1.8×)`);
  for (const pool of ['processes', 'threads']) {
    const mine = `drain: celeriac ${pool} -c 2`;
    lines.push(`drain: ${pool} -c 2 / Celery prefork -c 2    ${ratio(mine, 'drain: Celery prefork -c 2')}× (goal ≥ 10×)`);
    lines.push(`drain: ${pool} -c 2 / BullMQ sandboxed ${pool === 'processes' ? 'processes' : 'threads  '}  ${ratio(mine, `drain: BullMQ sandboxed ${pool === 'processes' ? 'processes' : 'worker threads'}, concurrency 2`)}× (goal ≥ 1.5×)`);
  }
  const perTask = (pool: string) => 1e6 / get(`-c 1 ${pool} (tasks/s)`);
  lines.push('', 'µs per no-op task at -c 1 (what the pool adds to async):');
  for (const pool of ['async', 'solo', 'threads', 'processes']) lines.push(`  ${pool.padEnd(10)} ${perTask(pool).toFixed(0).padStart(6)} µs  (+${(perTask(pool) - perTask('async')).toFixed(0)})`);
  lines.push('', 'idle RSS (MB), JavaScript task module:');
  for (const pool of ['async', 'threads', 'processes']) {
    const r = await idleRss(pool);
    lines.push(`  ${pool.padEnd(10)} main ${r.main.toFixed(1)}${r.children.length ? `, children ${r.children.map((c) => c.toFixed(1)).join(', ')} (goal ≤ 60 each)` : ''}`);
  }
  process.stdout.write(lines.join('\n') + '\n');
  const out = path.join(ROOT, 'bench', 'results', `${new Date().toISOString().replace(/[:.]/g, '').slice(0, 15)}-pools.txt`);
  fs.writeFileSync(out, lines.join('\n') + '\n');
  process.stderr.write(`written to ${path.relative(ROOT, out)}\n`);
}

process.on('SIGINT', () => {
  killAllNow();
  process.exit(130);
});
try {
  await main();
} finally {
  killAllNow();
  await cleanup().catch(() => undefined);
  redis.disconnect();
  await client.close();
}
