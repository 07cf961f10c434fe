/**
 * The benchmark: `npm run bench [-- --quick] [--rounds R] [--n N] [--only a,b] [--skip a,b]`.
 * See bench/README.md for what each metric means and how completion is detected.
 *
 * Order: R rounds; in each, first the publish metrics of every client (no worker running), then
 * for each system in turn: start its worker, idle memory, round trips, steady state, drain with
 * results ignored, drain with results stored, stop its worker. Systems thus alternate within
 * every round, and the figure reported is the median over the rounds.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { AMQP_URL, BROKER_DB, LARGE_PAYLOAD_BYTES, QUEUE, REDIS_BROKER_URL, RESULTS_DB } from './lib/config.ts';
import { loadSince, loadSnapshot } from './lib/load.ts';
import { killAllNow, stopAll } from './lib/proc.ts';
import { closeAmqp } from './lib/amqp.ts';
import { buildNodeProcesses } from './lib/build.ts';
import { brokerDb, closeRedis, flushBenchDbs } from './lib/redis.ts';
import { fmt, fmtRatio, median, percentile, table } from './stats.ts';
import { BULLMQ_VERSION, bullmqSystems } from './systems/bullmq.ts';
import { celeriacSystems, probeCeleriac } from './systems/celeriac.ts';
import { CELERY_PUBLISH_THREADS, celerySystems, probeCelery, pythonHas } from './systems/celery.ts';
import type { BenchSystem, DrainResult, MemoryResult, PublishMode, SteadyResult } from './systems/types.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));

// ---- settings ---------------------------------------------------------------------------------

interface Profile {
  mode: 'quick' | 'full';
  rounds: number;
  /** Tasks prefilled per drain. */
  n: number;
  /** Stop timing a drain after this many seconds (slow systems): rate = executed / elapsed. */
  drainCap: number;
  publishSeconds: number;
  publishMax: number;
  inflight: number;
  steadySeconds: number;
  steadyWarmup: number;
  backlog: number;
  rtN: number;
  rtWarmup: number;
  /** Seconds between a worker's first task and the idle RSS reading. */
  idleSettle: number;
  celeriacConcurrency: number;
  bullmqConcurrency: number[];
  /** Also celeriac on Redis with 2 worker processes, BullMQ with 2 worker processes and BullMQ at concurrency 1000. */
  extended: boolean;
  /** Tasks per large-message drain (LARGE_PAYLOAD_BYTES argument and result), and its time cap. */
  largeN: number;
  largeCap: number;
}

const PROFILES: Record<'quick' | 'full', Profile> = {
  quick: {
    mode: 'quick', rounds: 1, n: 5000, drainCap: 2.5, publishSeconds: 0.5, publishMax: 200_000, inflight: 100,
    steadySeconds: 1, steadyWarmup: 0.5, backlog: 2000, rtN: 150, rtWarmup: 10, idleSettle: 0.5,
    celeriacConcurrency: 100, bullmqConcurrency: [200], extended: false, largeN: 500, largeCap: 10,
  },
  full: {
    mode: 'full', rounds: 3, n: 20_000, drainCap: 10, publishSeconds: 1.5, publishMax: 500_000, inflight: 100,
    steadySeconds: 3, steadyWarmup: 1, backlog: 2000, rtN: 2000, rtWarmup: 20, idleSettle: 1.5,
    celeriacConcurrency: 100, bullmqConcurrency: [200, 50], extended: false, largeN: 2000, largeCap: 30,
  },
};

interface Args {
  profile: Profile;
  only: string[];
  skip: string[];
  metrics: Set<Metric>;
  cpuProfDir: string | undefined;
}

function parseArgs(argv: string[]): Args {
  const args = [...argv];
  let metrics = new Set<Metric>(METRICS);
  let cpuProfDir: string | undefined;
  let profile = { ...PROFILES.full };
  const only: string[] = [];
  const skip: string[] = [];
  const take = (flag: string): string => {
    const v = args.shift();
    if (v === undefined) throw new Error(`${flag} needs a value`);
    return v;
  };
  const num = (flag: string): number => {
    const v = Number(take(flag));
    if (!Number.isFinite(v) || v <= 0) throw new Error(`${flag} needs a positive number`);
    return v;
  };
  if (args.includes('--quick')) profile = { ...PROFILES.quick };
  if (args.includes('--extended')) profile.bullmqConcurrency = [...profile.bullmqConcurrency, 1000];
  while (args.length) {
    const a = args.shift()!;
    if (a === '--quick' || a === '--full') continue;
    else if (a === '--rounds') profile.rounds = Math.round(num(a));
    else if (a === '--n') profile.n = Math.round(num(a));
    else if (a === '--drain-cap') profile.drainCap = num(a);
    else if (a === '--celeriac-c') profile.celeriacConcurrency = Math.round(num(a));
    else if (a === '--bullmq-c') profile.bullmqConcurrency = take(a).split(',').map(Number);
    else if (a === '--publish-seconds') profile.publishSeconds = num(a);
    else if (a === '--steady-seconds') profile.steadySeconds = num(a);
    else if (a === '--rt') profile.rtN = Math.round(num(a));
    else if (a === '--extended') profile.extended = true;
    else if (a === '--metrics') {
      const list = take(a).split(',');
      for (const m of list) if (!(METRICS as readonly string[]).includes(m)) throw new Error(`--metrics: unknown metric ${m} (${METRICS.join(', ')})`);
      metrics = new Set(list as Metric[]);
    } else if (a === '--cpu-prof') cpuProfDir = path.resolve(take(a));
    else if (a === '--only') only.push(...take(a).split(','));
    else if (a === '--skip') skip.push(...take(a).split(','));
    else if (a === '--help' || a === '-h') {
      process.stdout.write(fs.readFileSync(path.join(HERE, 'README.md'), 'utf8'));
      process.exit(0);
    } else throw new Error(`unknown option ${a} (see bench/README.md)`);
  }
  return { profile, only, skip, metrics, cpuProfDir };
}

// ---- raw results ------------------------------------------------------------------------------

interface Raw {
  publish: Partial<Record<PublishMode, number[]>>;
  drainIgnored: DrainResult[];
  drainStored: DrainResult[];
  /** Echo tasks of a LARGE_PAYLOAD_BYTES string, results stored. */
  drainLarge: DrainResult[];
  steady: SteadyResult[];
  /** Per round; `ms`: every call of the round, for the distribution over the whole run. */
  roundtrip: { p50: number; p95: number; p99: number; mean: number; n: number; ms?: number[] }[];
  memoryIdle: MemoryResult[];
  memoryLoadKb: number[];
  errors: string[];
}

const newRaw = (): Raw => ({ publish: {}, drainIgnored: [], drainStored: [], drainLarge: [], steady: [], roundtrip: [], memoryIdle: [], memoryLoadKb: [], errors: [] });

const log = (msg: string): void => void process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

// ---- cleanup ----------------------------------------------------------------------------------

let systems: BenchSystem[] = [];
let cleaning: Promise<void> | undefined;
/** Set by a signal: measure nothing more. */
let aborted = false;

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const s of systems) await s.teardown().catch((err: Error) => log(`teardown ${s.id}: ${err.message}`));
    await stopAll(5000);
    await flushBenchDbs().catch(() => undefined);
    closeRedis();
    await closeAmqp();
  })();
  return cleaning;
}

function installSignalHandlers(): void {
  let interrupted = 0;
  const onSignal = (sig: NodeJS.Signals, code: number) => {
    if (++interrupted > 1) {
      killAllNow();
      process.exit(code);
    }
    aborted = true;
    log(`${sig}: stopping every process and removing the benchmark's keys…`);
    void cleanup().finally(() => process.exit(code));
  };
  process.on('SIGINT', () => onSignal('SIGINT', 130));
  process.on('SIGTERM', () => onSignal('SIGTERM', 143));
  process.on('SIGHUP', () => onSignal('SIGHUP', 129));
  process.on('exit', () => killAllNow());
}

// ---- environment ------------------------------------------------------------------------------

function machine(): Record<string, string | number> {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown';
  return { cores: os.cpus().length, cpu: model, memoryGiB: Math.round(os.totalmem() / 2 ** 30), kernel: os.release(), platform: `${os.platform()} ${os.arch()}` };
}

async function redisVersion(): Promise<string> {
  const info = await brokerDb().info('server');
  return /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
}

function packageVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(HERE, '..', 'package.json'), 'utf8')) as { version: string }).version;
}

// ---- measurement ------------------------------------------------------------------------------

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function publishPhase(s: BenchSystem, p: Profile, raw: Raw): Promise<void> {
  await s.setup();
  for (const mode of ['single', 'concurrent', 'bulk'] as const) {
    const r = await s.publish(mode, { seconds: p.publishSeconds, max: p.publishMax, inflight: p.inflight });
    if (r) (raw.publish[mode] ??= []).push(r.count / r.seconds);
    log(`  ${s.id} publish ${mode}: ${r ? `${fmt(r.count / r.seconds)}/s` : 'n/a'}`);
  }
}

const METRICS = ['publish', 'memory', 'roundtrip', 'steady', 'drain', 'drain-ignored', 'drain-stored', 'large'] as const;
type Metric = (typeof METRICS)[number];

async function workerPhase(s: BenchSystem, p: Profile, raw: Raw, metrics: Set<Metric>): Promise<void> {
  await s.setup();
  const t0 = performance.now();
  await s.startWorker();
  try {
    const parts: string[] = [];
    log(`  ${s.id} worker ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    if (metrics.has('memory')) {
      await sleep(p.idleSettle * 1000);
      const mem = await s.memory();
      raw.memoryIdle.push(mem);
      parts.push(`idle ${(mem.rssKb / 1024).toFixed(0)} MB`);
    }
    if (metrics.has('roundtrip')) {
      const ms = await s.roundtrip(p.rtN, p.rtWarmup);
      const rt = { p50: percentile(ms, 50), p95: percentile(ms, 95), p99: percentile(ms, 99), mean: ms.reduce((a, b) => a + b, 0) / ms.length, n: ms.length, ms: ms.map((x) => Math.round(x * 1000) / 1000) };
      raw.roundtrip.push(rt);
      parts.push(`rt p50 ${rt.p50.toFixed(2)} ms p99 ${rt.p99.toFixed(2)} ms`);
    }
    if (metrics.has('steady')) {
      const st = await s.steady({ seconds: p.steadySeconds, warmup: p.steadyWarmup, backlog: p.backlog });
      raw.steady.push(st);
      parts.push(`steady ${fmt(st.executed / st.seconds)}/s`);
    }
    const rate = (d: DrainResult) => `${fmt(d.executed / d.seconds)}/s${d.complete ? '' : ` (capped: ${d.executed}/${d.n} in ${d.seconds.toFixed(1)} s)`}`;
    let peak = 0;
    if (metrics.has('drain') || metrics.has('drain-ignored')) {
      const d = await s.drain({ n: p.n, stored: false, maxSeconds: p.drainCap });
      raw.drainIgnored.push(d);
      peak = Math.max(peak, d.peakRssKb);
      parts.push(`drain ignored ${rate(d)}`);
    }
    if (metrics.has('drain') || metrics.has('drain-stored')) {
      const d = await s.drain({ n: p.n, stored: true, maxSeconds: p.drainCap });
      raw.drainStored.push(d);
      peak = Math.max(peak, d.peakRssKb);
      parts.push(`drain stored ${rate(d)}`);
    }
    if (peak > 0) {
      raw.memoryLoadKb.push(peak);
      parts.push(`load ${(peak / 1024).toFixed(0)} MB`);
    }
    if (metrics.has('large')) {
      const d = await s.drain({ n: p.largeN, stored: true, maxSeconds: p.largeCap, payloadBytes: LARGE_PAYLOAD_BYTES });
      raw.drainLarge.push(d);
      parts.push(`100 KB drain ${rate(d)}, ${(d.peakRssKb / 1024).toFixed(0)} MB`);
    }
    log(`  ${s.id}: ${parts.join(', ')}`);
  } finally {
    await s.stopWorker();
  }
}

// ---- report -----------------------------------------------------------------------------------

interface Summary {
  publishSingle: number;
  publishConcurrent: number;
  publishBulk: number;
  drainIgnored: number;
  drainStored: number;
  drainLarge: number;
  steady: number;
  rtP50: number;
  rtP95: number;
  rtP99: number;
  rssIdleMB: number;
  rssLoadMB: number;
  rssLargeMB: number;
}

type Column = { key: keyof Summary; head: [string, string]; higherIsBetter: boolean };
const COLUMNS: Column[] = [
  { key: 'publishSingle', head: ['publish', '1 by 1/s'], higherIsBetter: true },
  { key: 'publishConcurrent', head: ['publish', '100 conc/s'], higherIsBetter: true },
  { key: 'publishBulk', head: ['publish', 'bulk/s'], higherIsBetter: true },
  { key: 'drainIgnored', head: ['drain/s', 'no results'], higherIsBetter: true },
  { key: 'drainStored', head: ['drain/s', 'results'], higherIsBetter: true },
  { key: 'drainLarge', head: ['100 KB', 'drain/s'], higherIsBetter: true },
  { key: 'steady', head: ['steady', 'tasks/s'], higherIsBetter: true },
  { key: 'rtP50', head: ['rt p50', 'ms'], higherIsBetter: false },
  { key: 'rtP95', head: ['rt p95', 'ms'], higherIsBetter: false },
  { key: 'rtP99', head: ['rt p99', 'ms'], higherIsBetter: false },
  { key: 'rssIdleMB', head: ['RSS idle', 'MB'], higherIsBetter: false },
  { key: 'rssLoadMB', head: ['RSS load', 'MB'], higherIsBetter: false },
  { key: 'rssLargeMB', head: ['RSS 100KB', 'MB'], higherIsBetter: false },
];

function summarize(raw: Raw): Summary {
  const rates = (ds: DrainResult[]) => median(ds.map((d) => d.executed / d.seconds));
  return {
    publishSingle: median(raw.publish.single ?? []),
    publishConcurrent: median(raw.publish.concurrent ?? []),
    publishBulk: median(raw.publish.bulk ?? []),
    drainIgnored: rates(raw.drainIgnored),
    drainStored: rates(raw.drainStored),
    drainLarge: rates(raw.drainLarge),
    steady: median(raw.steady.map((s) => s.executed / s.seconds)),
    rtP50: median(raw.roundtrip.map((r) => r.p50)),
    rtP95: median(raw.roundtrip.map((r) => r.p95)),
    rtP99: median(raw.roundtrip.map((r) => r.p99)),
    rssIdleMB: median(raw.memoryIdle.map((m) => m.rssKb)) / 1024,
    rssLoadMB: median(raw.memoryLoadKb) / 1024,
    rssLargeMB: median(raw.drainLarge.map((d) => d.peakRssKb)) / 1024,
  };
}

/** Best value of a column among systems (max or min), with the system that has it. */
function best(sums: Map<BenchSystem, Summary>, pick: (s: BenchSystem) => boolean, col: Column): { value: number; system?: BenchSystem } {
  let out: { value: number; system?: BenchSystem } = { value: Number.NaN };
  for (const [s, sum] of sums) {
    const v = sum[col.key];
    if (!pick(s) || !Number.isFinite(v)) continue;
    if (Number.isNaN(out.value) || (col.higherIsBetter ? v > out.value : v < out.value)) out = { value: v, system: s };
  }
  return out;
}

/** The value of `system` for a column; publish figures come from the variant that measured them. */
function valueOf(sums: Map<BenchSystem, Summary>, system: BenchSystem | undefined, col: Column): number {
  if (!system) return Number.NaN;
  if (col.key.startsWith('publish') && !system.publisher) {
    const pub = [...sums.keys()].find((s) => s.publisher && s.family === system.family && s.broker === system.broker);
    return pub ? sums.get(pub)![col.key] : Number.NaN;
  }
  return sums.get(system)?.[col.key] ?? Number.NaN;
}

// ---- main -------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const { profile: p, only, skip, metrics, cpuProfDir } = parseArgs(process.argv.slice(2));
  installSignalHandlers();
  const started = Date.now();
  const loadStart = loadSnapshot();

  try {
    await brokerDb().ping();
  } catch (err) {
    throw new Error(`Redis is not reachable at ${REDIS_BROKER_URL} (${(err as Error).message}); the benchmark needs it for every system`);
  }
  await flushBenchDbs();
  log('building celeriac (dist/) and bundling the Node processes (bench/.build/)');
  await buildNodeProcesses();

  const mach = machine();
  const versions: Record<string, string> = {
    node: process.version,
    celeriac: packageVersion(),
    bullmq: BULLMQ_VERSION,
    redis: await redisVersion(),
    sqlite: (new Database(':memory:').prepare('SELECT sqlite_version() AS v').get() as { v: string }).v,
  };
  const unavailable: Record<string, string> = {};

  log(`${p.mode} run: ${p.rounds} round(s), drains of ${p.n} tasks (timing capped at ${p.drainCap} s), ${mach.cores} cores, ${mach.cpu}`);
  const wantedId = (id: string) => (only.length === 0 || only.some((o) => id.includes(o))) && !skip.some((k) => id.includes(k));
  const celeriacRedis = wantedId('celeriac-redis-1p') || wantedId('celeriac-redis-2p') ? await probeCeleriac('redis') : null;
  if (celeriacRedis) unavailable['celeriac-redis'] = `not available: ${celeriacRedis}`;
  const celeriacAmqp = wantedId('celeriac-amqp-1p') ? await probeCeleriac('amqp') : null;
  if (celeriacAmqp) unavailable['celeriac-amqp'] = `not available: ${celeriacAmqp}`;
  const gevent = pythonHas('gevent');
  if (!gevent) unavailable['celery-*-gevent'] = 'not available: /usr/bin/python3 cannot import gevent (Debian package python3-gevent is not installed)';
  const celeryBrokers: ('redis' | 'amqp')[] = [];
  for (const broker of ['redis', 'amqp'] as const) {
    if (!['prefork', 'threads', 'gevent'].some((pool) => wantedId(`celery-${broker}-${pool}`))) continue;
    const probe = await probeCelery(broker);
    if (probe.reason) {
      unavailable[`celery-${broker}-*`] = `not available: ${probe.reason}`;
      continue;
    }
    celeryBrokers.push(broker);
    versions.python ??= probe.versions!.python!;
    versions.celery ??= probe.versions!.celery!;
    versions.kombu ??= probe.versions!.kombu!;
    if (broker === 'amqp') versions.rabbitmq = probe.versions!.server!.replace(/^RabbitMQ /, '');
  }

  systems = [
    ...celeriacSystems({ concurrency: p.celeriacConcurrency, redis2p: p.extended, redis: !celeriacRedis, amqp: !celeriacAmqp, cpuProfDir }),
    ...celerySystems(celeryBrokers, gevent),
    ...bullmqSystems(p.bullmqConcurrency, p.extended),
  ];
  const dropped = systems.filter((s) => !wantedId(s.id));
  for (const s of dropped) await s.teardown();
  systems = systems.filter((s) => wantedId(s.id));
  for (const [id, why] of Object.entries(unavailable)) log(`${id}: ${why}`);

  const raws = new Map<BenchSystem, Raw>(systems.map((s) => [s, newRaw()]));
  for (let round = 1; round <= p.rounds; round++) {
    log(`round ${round}/${p.rounds}: publish`);
    for (const s of systems.filter((x) => x.publisher && metrics.has('publish'))) {
      if (aborted) return;
      try {
        await publishPhase(s, p, raws.get(s)!);
      } catch (err) {
        raws.get(s)!.errors.push(`round ${round} publish: ${(err as Error).message}`);
        log(`  ${s.id} publish FAILED: ${(err as Error).message}`);
      }
    }
    log(`round ${round}/${p.rounds}: workers`);
    for (const s of systems) {
      if (aborted) return;
      try {
        if (metrics.size > (metrics.has('publish') ? 1 : 0)) await workerPhase(s, p, raws.get(s)!, metrics);
      } catch (err) {
        raws.get(s)!.errors.push(`round ${round}: ${(err as Error).message}`);
        log(`  ${s.id} FAILED: ${(err as Error).message}`);
      }
    }
  }
  // Stop everything before reporting, so that the CPU accounting includes every child process.
  await cleanup();
  const load = loadSince(loadStart);
  const elapsed = (Date.now() - started) / 1000;

  // ---- table ----
  const sums = new Map<BenchSystem, Summary>([...raws].map(([s, r]) => [s, summarize(r)]));
  const capped = new Set<string>();
  const rows: string[][] = [];
  for (const s of systems) {
    const sum = sums.get(s)!;
    const raw = raws.get(s)!;
    rows.push([
      s.label,
      ...COLUMNS.map((c) => {
        if (c.key.startsWith('publish') && !s.publisher) return '·';
        let v = fmt(sum[c.key]);
        if (c.key === 'publishBulk' && s.publisher && Number.isNaN(sum[c.key]) && (raw.publish.single?.length ?? 0) > 0) v = 'n/a';
        const drains = c.key === 'drainIgnored' ? raw.drainIgnored : c.key === 'drainStored' ? raw.drainStored : c.key === 'drainLarge' ? raw.drainLarge : [];
        if (drains.some((d) => !d.complete)) {
          v += '*';
          capped.add(s.label);
        }
        if (raw.errors.length > 0 && v === '–') v = 'ERR';
        return v;
      }),
    ]);
  }
  const celeriacRef = systems.find((s) => s.id === 'celeriac-redis-1p');
  const refLabel = celeriacRef ? 'celeriac Redis 1p' : 'celeriac (best)';
  const ref = (col: Column) => (celeriacRef ? valueOf(sums, celeriacRef, col) : best(sums, (s) => s.family === 'celeriac', col).value);
  const ratioRow = (name: string, family: 'celery' | 'bullmq') => [
    `${refLabel} ÷ ${name} best`,
    ...COLUMNS.map((c) => {
      const b = best(sums, (s) => s.family === family && (s.publisher || !c.key.startsWith('publish')), c);
      return fmtRatio(ref(c) / b.value);
    }),
  ];
  rows.push([]);
  if (systems.some((s) => s.family === 'celery')) rows.push(ratioRow('Celery', 'celery'));
  if (systems.some((s) => s.family === 'bullmq')) rows.push(ratioRow('BullMQ', 'bullmq'));
  const celeriacAmqpRef = systems.find((s) => s.id === 'celeriac-amqp-1p');
  if (celeriacAmqpRef && systems.some((s) => s.family === 'celery' && s.broker === 'amqp')) {
    rows.push([
      'celeriac RabbitMQ 1p ÷ Celery RabbitMQ best',
      ...COLUMNS.map((c) => fmtRatio(valueOf(sums, celeriacAmqpRef, c) / best(sums, (s) => s.family === 'celery' && s.broker === 'amqp' && (s.publisher || !c.key.startsWith('publish')), c).value)),
    ]);
  }

  const header = [['system', ...COLUMNS.map((c) => c.head[0])], ['', ...COLUMNS.map((c) => c.head[1])]];

  // What one drained task costs, and which process is saturated (cores = CPU seconds ÷ elapsed).
  const costCells = (ds: DrainResult[], serverBroker: boolean) => {
    const ok = ds.filter((d) => d.workerCpuSeconds !== undefined && d.executed > 0);
    if (ok.length === 0) return ['–', '–', '–', '–'];
    return [
      fmt(median(ok.map((d) => (1e6 * d.workerCpuSeconds!) / d.executed))),
      fmt(median(ok.map((d) => d.workerCpuSeconds! / d.seconds))),
      serverBroker ? fmt(median(ok.map((d) => (1e6 * (d.brokerCpuSeconds ?? Number.NaN)) / d.executed))) : 'none',
      serverBroker ? fmt(median(ok.map((d) => (d.brokerCpuSeconds ?? Number.NaN) / d.seconds))) : 'none',
    ];
  };
  const costRows = systems.filter((s) => raws.get(s)!.drainIgnored.length + raws.get(s)!.drainStored.length + raws.get(s)!.drainLarge.length > 0)
    .map((s) => [s.label, ...[raws.get(s)!.drainIgnored, raws.get(s)!.drainStored, raws.get(s)!.drainLarge].flatMap((ds) => costCells(ds, s.broker !== 'sqlite'))]);
  // Round trips: every call of every round together, so the tail is read from the whole run, not one round.
  const RT_BUCKETS = [1, 2, 5, 10];
  const rtRows = systems.filter((s) => raws.get(s)!.roundtrip.some((r) => r.ms?.length)).map((s) => {
    const ms = raws.get(s)!.roundtrip.flatMap((r) => r.ms ?? []);
    const share = (lo: number, hi: number) => `${((100 * ms.filter((x) => x >= lo && x < hi).length) / ms.length).toFixed(1)}%`;
    const edges = [0, ...RT_BUCKETS, Infinity];
    return [s.label, String(ms.length), ...[50, 90, 99, 99.9].map((q) => percentile(ms, q).toFixed(2)), Math.max(...ms).toFixed(1),
      ...edges.slice(1).map((hi, i) => share(edges[i]!, hi))];
  });
  const rtHeader = [
    ['round trips, all calls', 'calls', 'p50', 'p90', 'p99', 'p99.9', 'max', '< 1', '1–2', '2–5', '5–10', '≥ 10'],
    ['', '', 'ms', 'ms', 'ms', 'ms', 'ms', 'ms', 'ms', 'ms', 'ms', 'ms'],
  ];
  const costHeader = [
    ['drain cost', 'no results', '', '', '', 'results', '', '', '', '100 KB', '', '', ''],
    ['', ...Array.from({ length: 3 }, () => ['worker µs/task', 'worker cores', 'broker µs/task', 'broker cores']).flat()],
  ];
  const bestLines = (['celery', 'bullmq'] as const).filter((f) => systems.some((s) => s.family === f)).map((f) =>
    `  best ${f === 'celery' ? 'Celery' : 'BullMQ'}: ` + COLUMNS.map((c) => {
      const b = best(sums, (s) => s.family === f && (s.publisher || !c.key.startsWith('publish')), c);
      return `${c.head[0]} ${c.head[1]} = ${b.system ? b.system.label.replace(/^(Celery|BullMQ) /, '') : '–'}`;
    }).join('; '));

  // ---- targets ----
  const col = (k: keyof Summary) => COLUMNS.find((c) => c.key === k)!;
  const get = (id: string, k: keyof Summary) => valueOf(sums, systems.find((s) => s.id === id), col(k));
  const bull = (k: keyof Summary) => best(sums, (s) => s.family === 'bullmq' && (s.publisher || !k.startsWith('publish')), col(k)).value;
  const bullAdd = Math.max(bull('publishSingle'), bull('publishConcurrent'), bull('publishBulk'));
  const bullAddNoBulk = Math.max(bull('publishSingle'), bull('publishConcurrent'));
  const publishBest = (id: string) => Math.max(get(id, 'publishSingle'), get(id, 'publishConcurrent'));
  const largeBull = best(sums, (s) => s.family === 'bullmq', col('drainLarge')).system;
  const largeRssBull = largeBull ? sums.get(largeBull)!.rssLargeMB : Number.NaN;
  const idle = systems.filter((s) => s.family === 'celeriac').map((s) => sums.get(s)!.rssIdleMB).filter(Number.isFinite);
  // Both cores: 2 worker processes each (--extended).
  function twoProcessTargets() {
    const ours = get('celeriac-redis-2p', 'drainIgnored');
    const theirs = get('bullmq-2p-c200', 'drainIgnored');
    if (!Number.isFinite(ours) || !Number.isFinite(theirs)) return [];
    return [{ name: 'Redis drain, 2 worker processes, results ignored ≥ 1.5× BullMQ with 2 worker processes', value: `${fmt(ours)}/s`, target: `≥ ${fmt(1.5 * theirs)}/s`, pass: ours >= 1.5 * theirs }];
  }
  // Issue targets for RabbitMQ: against Celery on the same broker.
  function amqpTargets() {
    const celery = (k: keyof Summary) => best(sums, (s) => s.family === 'celery' && s.broker === 'amqp' && (s.publisher || !k.startsWith('publish')), col(k)).value;
    const drain = get('celeriac-amqp-1p', 'drainIgnored');
    const publish = publishBest('celeriac-amqp-1p');
    const celeryPublish = Math.max(celery('publishSingle'), celery('publishConcurrent'));
    return [
      { name: 'RabbitMQ drain, results ignored ≥ 5× Celery best pool on RabbitMQ', value: `${fmt(drain)}/s`, target: `≥ ${fmt(5 * celery('drainIgnored'))}/s`, pass: drain >= 5 * celery('drainIgnored') },
      { name: 'RabbitMQ publish (confirms on) ≥ 10× Celery apply_async (best of 1 thread, 8 threads)', value: `${fmt(publish)}/s`, target: `≥ ${fmt(10 * celeryPublish)}/s`, pass: publish >= 10 * celeryPublish },
    ];
  }
  const targets: { name: string; value: string; target: string; pass: boolean | null }[] = [
    { name: 'Redis drain, results ignored ≥ 1.5× BullMQ best', value: `${fmt(get('celeriac-redis-1p', 'drainIgnored'))}/s`, target: `≥ ${fmt(1.5 * bull('drainIgnored'))}/s`, pass: get('celeriac-redis-1p', 'drainIgnored') >= 1.5 * bull('drainIgnored') },
    { name: 'Redis drain, results stored ≥ 1.2× BullMQ best (jobs kept)', value: `${fmt(get('celeriac-redis-1p', 'drainStored'))}/s`, target: `≥ ${fmt(1.2 * bull('drainStored'))}/s`, pass: get('celeriac-redis-1p', 'drainStored') >= 1.2 * bull('drainStored') },
    { name: 'SQLite drain with 2 worker processes ≥ 5,000/s (ignored; stored)', value: `${fmt(get('celeriac-sqlite-2p', 'drainIgnored'))}/s; ${fmt(get('celeriac-sqlite-2p', 'drainStored'))}/s`, target: '≥ 5,000/s', pass: get('celeriac-sqlite-2p', 'drainIgnored') >= 5000 && get('celeriac-sqlite-2p', 'drainStored') >= 5000 },
    { name: 'publish (Redis; SQLite) ≥ BullMQ best add rate (addBulk; add)', value: `${fmt(publishBest('celeriac-redis-1p'))}/s; ${fmt(publishBest('celeriac-sqlite-1p'))}/s`, target: `≥ ${fmt(bullAdd)}/s; ${fmt(bullAddNoBulk)}/s`, pass: publishBest('celeriac-redis-1p') >= bullAdd },
    { name: 'Redis drain of 100 KB tasks (results stored) ≥ BullMQ best', value: `${fmt(get('celeriac-redis-1p', 'drainLarge'))}/s`, target: `≥ ${fmt(bull('drainLarge'))}/s`, pass: get('celeriac-redis-1p', 'drainLarge') >= bull('drainLarge') },
    { name: 'worker peak RSS in that drain ≤ BullMQ\'s (the same BullMQ variant)', value: `${fmt(get('celeriac-redis-1p', 'rssLargeMB'))} MB`, target: `≤ ${fmt(largeRssBull)} MB`, pass: get('celeriac-redis-1p', 'rssLargeMB') <= largeRssBull },
    { name: 'Redis round trip p50 ≤ BullMQ best p50', value: `${fmt(get('celeriac-redis-1p', 'rtP50'))} ms`, target: `≤ ${fmt(bull('rtP50'))} ms`, pass: get('celeriac-redis-1p', 'rtP50') <= bull('rtP50') },
    { name: 'Redis round trip p99 ≤ BullMQ best p99', value: `${fmt(get('celeriac-redis-1p', 'rtP99'))} ms`, target: `≤ ${fmt(bull('rtP99'))} ms`, pass: get('celeriac-redis-1p', 'rtP99') <= bull('rtP99') },
    { name: 'round trip p99 ≤ 5 ms (Redis; SQLite)', value: `${fmt(get('celeriac-redis-1p', 'rtP99'))} ms; ${fmt(get('celeriac-sqlite-1p', 'rtP99'))} ms`, target: '≤ 5 ms', pass: get('celeriac-redis-1p', 'rtP99') <= 5 },
    ...twoProcessTargets(),
    ...amqpTargets(),
    { name: 'worker RSS idle ≤ 80 MB (highest celeriac variant)', value: `${fmt(Math.max(...idle))} MB`, target: '≤ 80 MB', pass: idle.length ? Math.max(...idle) <= 80 : null },
  ];
  for (const t of targets) if (/–/.test(t.value) || /–/.test(t.target)) t.pass = null;

  const out: string[] = [];
  out.push(`celeriac benchmark — ${p.mode}, ${p.rounds} round(s), medians; ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${elapsed.toFixed(0)} s`);
  out.push(`machine: ${mach.cores} cores, ${mach.cpu}, ${mach.memoryGiB} GiB, Linux ${mach.kernel}`);
  out.push(`versions: node ${versions.node}, celeriac ${versions.celeriac}, Python Celery ${versions.celery ?? '–'} (kombu ${versions.kombu ?? '–'}, Python ${versions.python ?? '–'}), BullMQ ${versions.bullmq}, Redis ${versions.redis}, RabbitMQ ${versions.rabbitmq ?? '–'}, SQLite ${versions.sqlite}`);
  out.push(`CPU during the run (cores, average): ${load.totalCores.toFixed(2)} busy = benchmark ${load.benchmarkCores.toFixed(2)} + Redis/RabbitMQ servers ${load.brokerCores.toFixed(2)} + other load ${load.otherCores.toFixed(2)}` +
    (load.otherCores > 0.2 ? '  ← the machine was shared: figures are noisier than usual' : ''));
  out.push(`drains: ${p.n.toLocaleString('en-US')} no-op tasks prefilled (100 KB: ${p.largeN.toLocaleString('en-US')} echo tasks of a ${LARGE_PAYLOAD_BYTES / 1024} KiB string, results stored); round trips: ${p.rtN} sequential calls; steady: ${p.steadySeconds} s; publish: ${p.publishSeconds} s per mode, 100 in flight for "100 conc" (Celery: ${CELERY_PUBLISH_THREADS} threads)`);
  out.push('');
  out.push(table(header, rows));
  out.push('');
  out.push(...bestLines);
  out.push('  · publish is measured once per client library and broker (first row of each); n/a: no bulk API; ratios > 1 mean celeriac is higher (better for rates, worse for ms and MB)');
  if (capped.size) out.push(`  * drain timing capped at ${p.drainCap} s before the queue was empty; the rate is tasks executed ÷ elapsed (${[...capped].join(', ')})`);
  for (const [id, why] of Object.entries(unavailable)) out.push(`  ${id}: ${why}`);
  for (const s of systems) for (const e of raws.get(s)!.errors) out.push(`  ERROR ${s.id}: ${e.split('\n')[0]}`);
  if (costRows.length) {
    out.push('');
    out.push(table(costHeader, costRows));
    out.push('  CPU seconds of the worker processes (prefork: parent + children) and of the broker servers (redis-server, beam.smp: shared with any other user) during the drain, ÷ tasks and ÷ elapsed;');
    out.push('  SQLite has no server: its work is in the worker figures. Worker cores well under 1 per process mean the worker waits (locks, I/O, or CPU taken by other load).');
  }
  if (rtRows.length) {
    out.push('');
    out.push(table(rtHeader, rtRows));
    out.push('  every round trip of every round pooled (the main table shows the median of the per-round percentiles); shares of calls per latency band');
  }
  out.push('');
  out.push('targets:');
  for (const t of targets) out.push(`  ${t.pass === null ? 'n/a ' : t.pass ? 'PASS' : 'MISS'}  ${t.name}: ${t.value} (target ${t.target})`);
  process.stdout.write(out.join('\n') + '\n');

  // ---- JSON ----
  const stamp = new Date().toISOString().slice(0, 19).replace(/:/g, '');
  const partial = only.length > 0 || skip.length > 0 || metrics.size < METRICS.length ? '-partial' : '';
  const file = path.join(HERE, 'results', `${stamp}-${p.mode}${partial}.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify({
    date: new Date().toISOString(),
    mode: p.mode,
    profile: p,
    selection: { only, skip, metrics: [...metrics] },
    elapsedSeconds: elapsed,
    machine: mach,
    load,
    versions,
    setup: { queue: QUEUE, redisBrokerDb: BROKER_DB, redisResultsDb: RESULTS_DB, amqp: AMQP_URL.replace(/:[^:@/]*@/, ':****@'), celeryPublishThreads: CELERY_PUBLISH_THREADS },
    unavailable,
    systems: systems.map((s) => ({ id: s.id, label: s.label, family: s.family, broker: s.broker, worker: s.workerDescription, publisher: s.publisher, summary: sums.get(s), raw: raws.get(s) })),
    targets,
  }, null, 2) + '\n');
  process.stdout.write(`\nraw figures: ${path.relative(process.cwd(), file)}\n`);
  if (cpuProfDir) process.stdout.write(`CPU profiles of the celeriac workers: ${cpuProfDir} (summary: node --import tsx bench/tools/cpuprofile-summary.ts ${path.relative(process.cwd(), cpuProfDir)})\n`);
}

let exitCode = 0;
try {
  await main();
} catch (err) {
  log(`failed: ${(err as Error).stack ?? String(err)}`);
  exitCode = 1;
} finally {
  await cleanup();
}
process.exit(aborted ? 130 : exitCode);
