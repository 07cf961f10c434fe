/**
 * celeriac: workers are `node bin/celeriac.js -A ./bench/.build/tasks.mjs:app worker -c <c> -l WARNING`
 * processes; the client is bench/agents/client.ts. Variants: the embedded SQLite broker (a file
 * in a temp dir, results in the same file) with 1 or 2 worker processes, Redis
 * (broker DB 14, results DB 15), and RabbitMQ (results in Redis DB 15, as Celery's RabbitMQ rows).
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { readyCount } from '../lib/amqp.ts';
import { TASKS_MODULE } from '../lib/build.ts';
import { AMQP_URL, QUEUE, REDIS_BROKER_URL, REDIS_RESULTS_URL } from '../lib/config.ts';
import { ROOT, startNodeAgent, waitExecuted } from '../lib/node-agent.ts';
import { alive, processTree, spawnTracked, stopProcess } from '../lib/proc.ts';
import { brokerDb, executedCount, resultsDb } from '../lib/redis.ts';
import type { Agent } from '../lib/rpc.ts';
import { AgentSystem } from './agent-system.ts';
import type { BenchSystem } from './types.ts';

type Broker = 'sqlite' | 'redis' | 'amqp';

const BROKER_URL: Record<Exclude<Broker, 'sqlite'>, string> = { redis: REDIS_BROKER_URL, amqp: AMQP_URL };
const BROKER_LABEL: Record<Broker, string> = { sqlite: 'SQLite', redis: 'Redis', amqp: 'RabbitMQ' };

/** One client agent (and for SQLite one database file) per broker, shared by the variants. */
interface Shared {
  agent: Promise<Agent> | undefined;
  env: Record<string, string>;
  dir?: string;
  db?: Database.Database;
  rw?: Database.Database;
}
const shared = new Map<Broker, Shared>();

function sharedFor(broker: Broker): Shared {
  let s = shared.get(broker);
  if (!s) {
    if (broker === 'sqlite') {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'celeriac-bench-'));
      s = { agent: undefined, dir, env: { BENCH_BROKER: `sqlite:///${path.join(dir, 'bench.db')}`, BENCH_COUNTER_URL: REDIS_BROKER_URL } };
    } else {
      s = { agent: undefined, env: { BENCH_BROKER: BROKER_URL[broker], BENCH_BACKEND: REDIS_RESULTS_URL, BENCH_COUNTER_URL: REDIS_BROKER_URL } };
    }
    shared.set(broker, s);
  }
  return s;
}

/** Whether celeriac can create a transport for this broker URL; null when it can, else why not. */
export async function probeCeleriac(broker: Broker): Promise<string | null> {
  if (broker === 'sqlite') return null;
  try {
    const { Celery } = await import('../../src/index.ts');
    const app = new Celery('b', { broker: BROKER_URL[broker], backend: REDIS_RESULTS_URL });
    try {
      const t = await app.transport();
      await t.size(QUEUE);
      await (await app.backend()).getTaskMeta('celeriac-bench-probe');
    } finally {
      await app.close().catch(() => undefined);
    }
    return null;
  } catch (err) {
    return (err as Error).message.split('\n')[0] ?? String(err);
  }
}

class CeleriacSystem extends AgentSystem implements BenchSystem {
  readonly family = 'celeriac' as const;
  readonly id: string;
  readonly label: string;
  readonly workerDescription: string;
  private workers: ChildProcess[] = [];
  private stderr = '';

  constructor(
    readonly broker: Broker,
    readonly processes: number,
    readonly concurrency: number,
    readonly publisher: boolean,
    /** Write a V8 CPU profile of each worker process here (node --cpu-prof). */
    readonly cpuProfDir?: string,
  ) {
    super();
    this.id = `celeriac-${broker}-${processes}p`;
    this.label = `celeriac ${BROKER_LABEL[broker]} ${processes}p`;
    this.workerDescription = `${processes} worker process${processes > 1 ? 'es' : ''}, -c ${concurrency} each (prefetch ×4)`;
  }

  private get shared(): Shared {
    return sharedFor(this.broker);
  }

  protected agent(): Promise<Agent> {
    const s = this.shared;
    s.agent ??= startNodeAgent(`celeriac ${this.broker} client`, 'celeriac', s.env);
    return s.agent;
  }

  async startWorker(): Promise<void> {
    const agent = await this.agent();
    this.stderr = '';
    for (let i = 0; i < this.processes; i++) {
      // One folder per worker: node writes one profile per thread (main and module loader).
      const prof = this.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', path.join(this.cpuProfDir, `${this.id}-w${i + 1}-${Date.now()}`)] : [];
      const w = spawnTracked(process.execPath, [
        ...prof,
        path.join(ROOT, 'bin', 'celeriac.js'), '-A', TASKS_MODULE, 'worker',
        '-c', String(this.concurrency), '-l', 'WARNING', '-Q', QUEUE, '-n', `bench${i + 1}-${process.pid}@%h`,
      ], { cwd: ROOT, env: { ...process.env, ...this.shared.env }, stdio: ['ignore', 'ignore', 'pipe'] });
      w.stderr!.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
      this.workers.push(w);
    }
    const base = await executedCount();
    await agent.call('send', { stored: false });
    await waitExecuted(executedCount, base + 1, 60_000, () => this.check());
    // A worker on celeriac's build has no child process; one on its sources has the loader's esbuild.
    const onSources = this.workers.filter((w) => processTree(w.pid!).length > 1);
    if (onSources.length) throw new Error('celeriac worker runs on the sources with a TypeScript loader, not on dist/: src/ changed after the build; leave src/ alone during a run');
  }

  protected check(): void {
    const dead = this.workers.find((w) => !alive(w));
    if (dead) throw new Error(`celeriac worker exited (${dead.signalCode ?? dead.exitCode})${this.stderr ? `:\n${this.stderr.trim()}` : ''}`);
  }

  protected instances(): number[][] {
    return this.workers.map((w) => processTree(w.pid!));
  }

  protected drainHooks() {
    return {
      pending: () => this.pending(),
      results: () => this.results(),
      quiesced: this.broker === 'sqlite' ? () => this.writable() : undefined,
    };
  }

  private sqlite(): Database.Database {
    const s = this.shared;
    s.db ??= new Database(path.join(s.dir!, 'bench.db'), { readonly: true, fileMustExist: true, timeout: 10_000 });
    return s.db;
  }

  /** Can a writer start now, or does a (stopped) worker hold SQLite's write lock? */
  private writable(): boolean {
    const s = this.shared;
    s.rw ??= new Database(path.join(s.dir!, 'bench.db'), { fileMustExist: true, timeout: 0 });
    try {
      s.rw.exec('BEGIN IMMEDIATE');
      s.rw.exec('ROLLBACK');
      return true;
    } catch {
      return false;
    }
  }

  private async pending(): Promise<number> {
    if (this.broker === 'sqlite') {
      return (this.sqlite().prepare('SELECT count(*) AS n FROM celeriac_messages WHERE queue = ?').get(QUEUE) as { n: number }).n;
    }
    // As for Celery on RabbitMQ: ready messages only; the worker acknowledges before it runs a task.
    if (this.broker === 'amqp') return readyCount(QUEUE);
    const [[, len], [, unacked]] = (await brokerDb().pipeline().llen(QUEUE).hlen('unacked').exec()) as [[null, number], [null, number]];
    return len + unacked;
  }

  private async results(): Promise<number> {
    if (this.broker === 'sqlite') {
      return (this.sqlite().prepare("SELECT count(*) AS n FROM celeriac_kv WHERE key LIKE 'celery-task-meta-%'").get() as { n: number }).n;
    }
    return resultsDb().dbsize();
  }

  async stopWorker(): Promise<void> {
    const workers = this.workers;
    this.workers = [];
    await Promise.all(workers.map((w) => stopProcess(w, 15_000)));
  }

  async teardown(): Promise<void> {
    await this.stopWorker();
    const s = shared.get(this.broker);
    if (!s) return;
    shared.delete(this.broker);
    const agent = await s.agent?.catch(() => undefined);
    await agent?.close();
    s.db?.close();
    s.rw?.close();
    if (s.dir) fs.rmSync(s.dir, { recursive: true, force: true });
  }
}

export function celeriacSystems(opts: { concurrency: number; redis2p: boolean; redis: boolean; amqp: boolean; cpuProfDir?: string }): BenchSystem[] {
  const out: BenchSystem[] = [
    new CeleriacSystem('sqlite', 1, opts.concurrency, true, opts.cpuProfDir),
    new CeleriacSystem('sqlite', 2, opts.concurrency, false, opts.cpuProfDir),
  ];
  if (opts.redis) {
    out.push(new CeleriacSystem('redis', 1, opts.concurrency, true, opts.cpuProfDir));
    if (opts.redis2p) out.push(new CeleriacSystem('redis', 2, opts.concurrency, false, opts.cpuProfDir));
  }
  if (opts.amqp) out.push(new CeleriacSystem('amqp', 1, opts.concurrency, true, opts.cpuProfDir));
  return out;
}
