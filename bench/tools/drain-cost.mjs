#!/usr/bin/env node
// What one drained no-op task costs, celeriac vs BullMQ, in the independent harness's style: prefill
// once, start the worker, copy the tasks into its queue (BullMQ: addBulk, then start the worker),
// time until all ran. Prints per round: rate, worker CPU and redis-server CPU per task (from /proc),
// and Redis' own time per task for each command (INFO commandstats); for celeriac, how long the worker's
// main thread ran and how long it was ready to run but waited for a core (/proc/<pid>/task/<pid>/schedstat).
// From the project's root after `npm run build`:
//   node bench/tools/drain-cost.mjs [N=20000] [ROUNDS=3] [celeriac,bullmq] [-- extra worker args]
// WORKER_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' passes options to the worker's node.
// Uses Redis DB 13 (flushed at start and end). CELERIAC_STORE=1 stores results; QUEUE=name drains another queue.
// PAYLOAD_KB=100: each task is an echo of a string of that many KiB, its result stored (the benchmark's 100 KB drain).
// The independent harness's own choices, each switchable to see what it weighs:
//   STAGE=1       celeriac's tasks are copied to a staging list before the clock starts, and the timed step is a
//                 RENAME into the queue (O(1)); by default the timed step is the COPY itself, as in that harness.
//   BULL_FRESH=1  BullMQ's worker runs in a process of its own, new each round, as celeriac's does; by default it
//                 runs in this process, whose code is compiled from the second round on, as in that harness.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const dash = process.argv.indexOf('--');
const argv = dash < 0 ? process.argv.slice(2) : process.argv.slice(2, dash);
const extra = dash < 0 ? [] : process.argv.slice(dash + 1);
const N = Number(argv[0] ?? 20000);
const ROUNDS = Number(argv[1] ?? 3);
const systems = (argv[2] ?? 'celeriac,bullmq').split(',');
const payloadKb = Number(process.env.PAYLOAD_KB ?? 0);
const payload = 'x'.repeat(payloadKb * 1024);
const store = process.env.CELERIAC_STORE === '1' || payloadKb > 0;
const QUEUE = process.env.QUEUE ?? 'celery'; // the worker's queue (-Q)
const root = process.cwd();
const req = createRequire(path.join(root, 'package.json'));
const { Redis } = await import(pathToFileURL(req.resolve('ioredis')).href);
const { Queue, Worker } = await import(pathToFileURL(req.resolve('bullmq')).href);
const bin = path.join(root, req('./package.json').bin.celeriac);
const URL = 'redis://127.0.0.1:6379/13';
const dir = mkdtempSync(path.join(os.tmpdir(), 'drain-cost-'));
writeFileSync(path.join(dir, 'package.json'), '{"type":"module"}');
writeFileSync(path.join(dir, 'tasks.mjs'), `import { Celery } from ${JSON.stringify(pathToFileURL(path.join(root, 'dist', 'index.js')).href)};
export const app = new Celery('drain', { broker: '${URL}', backend: '${URL}' });
export const noop = app.task({ name: 'drain.noop', ignoreResult: ${!store} }, (value) => value ?? ${store ? "'ok'" : 'undefined'});
`);
const r = new Redis(URL);
const sleep = (ms) => new Promise((res) => setTimeout(res, ms));
const tick = 1e6 / 100; // µs per clock tick (CLK_TCK 100)
const cpuOf = (pid, which = 'both') => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((which === 'sys' ? 0 : Number(f[11])) + (which === 'user' ? 0 : Number(f[12]))) * tick;
};
/** The main thread's time on a core and runnable but waiting for one, in ms (the kernel's schedstat, ns). */
const mainThreadOf = (pid) => {
  const [ran, waited] = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ').map(Number);
  return { ran: ran / 1e6, waited: waited / 1e6 };
};
const redisPid = Number(execFileSync('pgrep', ['-f', 'redis-server.*:6379']).toString().trim().split('\n')[0]);
const stats = async () => {
  const out = new Map();
  for (const line of (await r.info('commandstats')).split('\n')) {
    const m = /^cmdstat_(\w+(?:\|\w+)?):calls=(\d+),usec=(\d+)/.exec(line);
    if (m) out.set(m[1], { calls: Number(m[2]), usec: Number(m[3]) });
  }
  return out;
};
const statDiff = (a, b) => [...b].map(([k, v]) => [k, v.calls - (a.get(k)?.calls ?? 0), v.usec - (a.get(k)?.usec ?? 0)])
  .filter(([, c]) => c > 0).sort((x, y) => y[2] - x[2]).slice(0, 6)
  .map(([k, c, u]) => `${k} ${c < N / 10 ? `${c} calls` : `${(c / N).toFixed(2)}/task`} ${(u / N).toFixed(1)}µs`).join(', ');

async function measure(run) {
  const s0 = await stats();
  const res = await run();
  const s1 = await stats();
  return { ...res, cmds: statDiff(s0, s1) };
}

async function prefill() {
  const { noop } = await import(pathToFileURL(path.join(dir, 'tasks.mjs')).href);
  const inflight = [];
  for (let i = 0; i < N; i++) {
    inflight.push(noop.applyAsync(payloadKb ? [payload] : [], {}, { queue: 'drain_src' }));
    if (inflight.length >= 200) { await Promise.all(inflight); inflight.length = 0; }
  }
  await Promise.all(inflight);
}

async function drainOnce(w, keys0 = 0) {
  if (process.env.STAGE === '1') await r.rename('drain_staged', QUEUE);
  else await r.copy('drain_src', QUEUE);
  for (;;) {
    const [[, l], [, u], [, k]] = await r.multi().llen(QUEUE).hlen('unacked').dbsize().exec();
    if (l === 0 && u === 0 && (!store || k - keys0 >= N)) break;
    if (w.exitCode !== null) throw new Error('celeriac worker exited');
    await sleep(5);
  }
}

async function celeriacRound() {
  const nodeArgs = process.env.WORKER_NODE_ARGS ? process.env.WORKER_NODE_ARGS.split(' ') : [];
  const w = spawn(process.execPath, [...nodeArgs, bin, 'worker', '-A', './tasks.mjs:app', '-c', '100', '--without-mingle',
    '--without-gossip', '--without-heartbeat', '-l', 'error', '-Q', QUEUE, ...extra], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  await sleep(3000);
  await r.del(QUEUE, 'unacked', 'unacked_index');
  const stage = () => (process.env.STAGE === '1' ? r.copy('drain_src', 'drain_staged', 'REPLACE') : undefined);
  // WARM=1: one untimed drain first, so that V8 has compiled the hot path (as in a long-running worker).
  if (process.env.WARM === '1') {
    await stage();
    await drainOnce(w);
  }
  await stage();
  const keys0 = await r.dbsize();
  const c0 = cpuOf(w.pid), s0 = cpuOf(w.pid, 'sys'), rc0 = cpuOf(redisPid), m0 = mainThreadOf(w.pid), t0 = performance.now();
  await drainOnce(w, keys0);
  const ms = performance.now() - t0;
  const m1 = mainThreadOf(w.pid);
  const res = {
    rate: N / (ms / 1000), worker: (cpuOf(w.pid) - c0) / N, sys: (cpuOf(w.pid, 'sys') - s0) / N, redis: (cpuOf(redisPid) - rc0) / N,
    main: `main thread ${(m1.ran - m0.ran).toFixed(0)} ms on a core, ${(m1.waited - m0.waited).toFixed(0)} ms waiting for one, of ${ms.toFixed(0)} ms`,
  };
  w.kill('SIGTERM');
  await new Promise((res) => w.once('exit', res));
  if (store) await r.eval("for _,k in ipairs(redis.call('KEYS','celery-task-meta-*')) do redis.call('DEL',k) end", 0);
  return res;
}

async function bullRound() {
  const connection = { host: '127.0.0.1', port: 6379, db: 13, maxRetriesPerRequest: null };
  const q = new Queue('drain_bull', { connection, prefix: 'draincost' });
  await q.obliterate({ force: true });
  for (let i = 0; i < N; i += 1000) {
    await q.addBulk(Array.from({ length: Math.min(1000, N - i) }, (_, j) => ({ name: 'noop', data: payloadKb ? { value: payload } : { i: i + j }, opts: { removeOnComplete: !store } })));
  }
  if (process.env.BULL_FRESH === '1') return freshBullRound(q);
  let done = 0;
  const w = new Worker('drain_bull', async (job) => job.data.value ?? (store ? 'ok' : undefined), { connection, prefix: 'draincost', concurrency: 200, autorun: false });
  await w.waitUntilReady();
  const finished = new Promise((res) => w.on('completed', () => { if (++done === N) res(); }));
  const u0 = process.cpuUsage(), rc0 = cpuOf(redisPid), t0 = performance.now();
  void w.run();
  await finished;
  const ms = performance.now() - t0;
  const u = process.cpuUsage(u0);
  const res = { rate: N / (ms / 1000), worker: (u.user + u.system) / N, redis: (cpuOf(redisPid) - rc0) / N };
  await w.close();
  await q.obliterate({ force: true });
  await q.close();
  return res;
}

/** The same drain, its worker in a new process: started, connected, then timed from run() to the Nth completion. */
async function freshBullRound(q) {
  const child = spawn(process.execPath, ['--input-type=module', '-e', `
    const { Worker } = await import(${JSON.stringify(pathToFileURL(req.resolve('bullmq')).href)});
    const connection = { host: '127.0.0.1', port: 6379, db: 13, maxRetriesPerRequest: null };
    let done = 0;
    const w = new Worker('drain_bull', async (job) => job.data.value ?? (${store} ? 'ok' : undefined), { connection, prefix: 'draincost', concurrency: 200, autorun: false });
    await w.waitUntilReady();
    process.stdout.write('ready\\n');
    await new Promise((res) => process.stdin.once('data', res));
    const finished = new Promise((res) => w.on('completed', () => { if (++done === ${N}) res(); }));
    const u0 = process.cpuUsage(), t0 = performance.now();
    void w.run();
    await finished;
    const ms = performance.now() - t0, u = process.cpuUsage(u0);
    process.stdout.write(JSON.stringify({ ms, cpu: u.user + u.system }) + '\\n');
    await w.close();
    process.exit(0);
  `], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = (async function* () {
    let buf = '';
    for await (const chunk of child.stdout) {
      buf += chunk;
      for (let i; (i = buf.indexOf('\n')) >= 0; buf = buf.slice(i + 1)) yield buf.slice(0, i);
    }
  })();
  await lines.next();
  const rc0 = cpuOf(redisPid);
  child.stdin.write('go\n');
  const { ms, cpu } = JSON.parse((await lines.next()).value);
  const res = { rate: N / (ms / 1000), worker: cpu / N, redis: (cpuOf(redisPid) - rc0) / N };
  await new Promise((res) => (child.exitCode !== null ? res() : child.once('exit', res)));
  await q.obliterate({ force: true });
  await q.close();
  return res;
}

try {
  await r.flushdb();
  if (systems.includes('celeriac')) await prefill();
  for (let i = 0; i < ROUNDS; i++) {
    for (const s of systems) {
      const m = await measure(s === 'celeriac' ? celeriacRound : bullRound);
      console.log(`round ${i + 1} ${s.padEnd(8)} ${m.rate.toFixed(0).padStart(6)}/s  worker ${m.worker.toFixed(1)} µs/task${m.sys === undefined ? '' : ` (kernel ${m.sys.toFixed(1)})`}  redis ${m.redis.toFixed(1)} µs/task  | ${m.cmds}${m.main ? `\n        ${m.main}` : ''}`);
    }
  }
} finally {
  await r.flushdb();
  r.disconnect();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
