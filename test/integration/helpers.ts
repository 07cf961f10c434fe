/**
 * Integration test helpers: a private SQLite broker per test file, worker child processes
 * (`node bin/celeriac.js -A <fixture app> worker ...`) with their output collected line by line,
 * and polling with a deadline.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import type { TaskEvent } from '../fixtures/worker-app/tasks.ts';

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const APP_SPEC = './test/fixtures/worker-app/tasks.ts:app';
const BIN = path.join(projectRoot, 'bin', 'celeriac.js');

export type FixtureModule = typeof import('../fixtures/worker-app/tasks.ts');

export interface Sandbox {
  /** Temp folder: the broker file, events.log and gate files. */
  dir: string;
  dbFile: string;
  brokerUrl: string;
  /** Environment for child processes (worker and CLI). */
  env: NodeJS.ProcessEnv;
  /** The fixture task module, imported in this process with this sandbox's broker. */
  tasks: FixtureModule;
  /** Close the client app, kill leftover workers, delete the folder. */
  cleanup(): Promise<void>;
}

/**
 * A temp folder with its own broker database, and the fixture module loaded against it. Call once
 * per test file (the module reads CELERIAC_TEST_BROKER when first imported).
 */
export async function createSandbox(name: string, brokerQuery = ''): Promise<Sandbox> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `celeriac-it-${name}-`));
  const dbFile = path.join(dir, 'broker.db');
  const brokerUrl = `sqlite:///${dbFile}${brokerQuery}`;
  process.env.CELERIAC_TEST_BROKER = brokerUrl;
  process.env.CELERIAC_TEST_DIR = dir;
  const tasks: FixtureModule = await import('../fixtures/worker-app/tasks.ts');
  if (tasks.app.conf.broker !== brokerUrl) throw new Error(`fixture module was loaded earlier with broker ${tasks.app.conf.broker}`);
  const env = { ...process.env, CELERIAC_TEST_BROKER: brokerUrl, CELERIAC_TEST_DIR: dir };
  return {
    dir,
    dbFile,
    brokerUrl,
    env,
    tasks,
    async cleanup() {
      await stopAllWorkers();
      await tasks.app.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface WorkerProcess {
  child: ChildProcess;
  pid: number;
  /** Every line written so far, stdout and stderr interleaved in arrival order. */
  lines: string[];
  /** Resolves when the process has exited. */
  exited: Promise<ExitStatus>;
  /** Exit status once exited, else undefined. */
  status: ExitStatus | undefined;
  /** All output so far as one string (for failure messages and `toContain`). */
  output(): string;
  /** Wait until a line matches, among the lines from index `from` on (default: all, including those already seen). */
  waitForLine(pattern: RegExp | string, timeoutMs?: number, from?: number): Promise<string>;
  /** Send a signal without waiting. */
  signal(sig: NodeJS.Signals): void;
  /** Send a signal and wait for the exit. */
  stop(sig?: NodeJS.Signals, timeoutMs?: number): Promise<ExitStatus>;
}

const live = new Set<WorkerProcess>();
// Last resort if the test runner exits without running the hooks: never leave a worker behind.
process.once('exit', () => {
  for (const p of live) p.child.kill('SIGKILL');
});

/** Start `celeriac -A <fixture> <verb> ...args` as a child process, in the project root. */
export function startProcess(sandbox: Sandbox, args: string[]): WorkerProcess {
  const child = spawn(process.execPath, [BIN, '-A', APP_SPEC, ...args], {
    cwd: projectRoot,
    env: sandbox.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const listeners = new Set<() => void>();
  const collect = (stream: NodeJS.ReadableStream) => {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      lines.push(...parts);
      for (const l of [...listeners]) l();
    });
    stream.on('end', () => {
      if (partial) lines.push(partial);
      partial = '';
      for (const l of [...listeners]) l();
    });
  };
  collect(child.stdout!);
  collect(child.stderr!);
  const proc: WorkerProcess = {
    child,
    pid: child.pid!,
    lines,
    status: undefined,
    exited: new Promise<ExitStatus>((resolve) => {
      child.once('close', (code, signal) => {
        proc.status = { code, signal };
        live.delete(proc);
        for (const l of [...listeners]) l();
        resolve(proc.status);
      });
    }),
    output: () => lines.join('\n'),
    waitForLine(pattern, timeoutMs = 15_000, from = 0) {
      const test = (l: string) => (typeof pattern === 'string' ? l.includes(pattern) : pattern.test(l));
      return new Promise<string>((resolve, reject) => {
        const check = () => {
          const hit = lines.slice(from).find(test);
          if (hit !== undefined) return done(() => resolve(hit));
          if (proc.status) return done(() => reject(new Error(`process exited (${JSON.stringify(proc.status)}) before printing ${pattern}; output:\n${proc.output()}`)));
        };
        const timer = setTimeout(() => done(() => reject(new Error(`no line matching ${pattern} after ${timeoutMs} ms; output:\n${proc.output()}`))), timeoutMs);
        const done = (settle: () => void) => {
          clearTimeout(timer);
          listeners.delete(check);
          settle();
        };
        listeners.add(check);
        check();
      });
    },
    signal(sig) {
      if (!proc.status) child.kill(sig);
    },
    async stop(sig = 'SIGTERM', timeoutMs = 15_000) {
      proc.signal(sig);
      const timer = setTimeout(() => proc.signal('SIGKILL'), timeoutMs);
      try {
        return await proc.exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
  live.add(proc);
  return proc;
}

/** Start a worker and wait for its "ready." line (logged at INFO: `-l INFO` is added unless a level is given). */
export async function startWorker(sandbox: Sandbox, args: string[] = []): Promise<WorkerProcess> {
  const proc = startProcess(sandbox, ['worker', ...(args.some((a) => a === '-l' || a === '--loglevel') ? [] : ['-l', 'INFO']), ...args]);
  await proc.waitForLine(/ready\.$/, 30_000);
  return proc;
}

/** Run a CLI command to completion; returns its output and exit status. */
export async function runCli(sandbox: Sandbox, args: string[], opts: { appSpec?: string | null } = {}): Promise<{ stdout: string; stderr: string; code: number | null }> {
  const full = opts.appSpec === null ? args : ['-A', opts.appSpec ?? APP_SPEC, ...args];
  const child = spawn(process.execPath, [BIN, ...full], { cwd: projectRoot, env: sandbox.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  clearTimeout(timer);
  return { stdout, stderr, code };
}

/** SIGKILL every worker still running and wait for them to exit (for afterEach/afterAll). */
export async function stopAllWorkers(): Promise<void> {
  const procs = [...live];
  for (const p of procs) p.signal('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
}

/** The error a promise rejects with (fails the test when it resolves instead). */
export async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection, but the promise resolved');
}

/** Poll `check` until it returns a truthy value; throws with `what` after the deadline. */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 10_000, intervalMs = 25): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}` + (last ? ` (last error: ${String(last)})` : ''));
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** The start/end lines the gated tasks wrote to <dir>/events.log. */
export function readEvents(sandbox: Sandbox): TaskEvent[] {
  let text: string;
  try {
    text = readFileSync(path.join(sandbox.dir, 'events.log'), 'utf8');
  } catch {
    return [];
  }
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as TaskEvent);
}

/** Let gated tasks waiting on `gate` finish. */
export function openGate(sandbox: Sandbox, gate: string): void {
  writeFileSync(path.join(sandbox.dir, gate), '');
}

/** Ready (not locked, not delayed) plus scheduled messages of a queue, read from the broker file. */
export function queueSize(sandbox: Sandbox, queue = 'celery'): number {
  return withDb(sandbox, (db) => (db.prepare(
    'SELECT count(*) AS n FROM celeriac_messages WHERE queue = ? AND owner IS NULL',
  ).get(queue) as { n: number }).n);
}

export interface DeadLetter {
  queue: string;
  envelope: string;
  reason: string | null;
}

export function deadLetters(sandbox: Sandbox): DeadLetter[] {
  return withDb(sandbox, (db) => db.prepare('SELECT queue, envelope, reason FROM celeriac_dead_letters ORDER BY id').all() as DeadLetter[]);
}

/** Open the broker file with a separate connection (as an operator would), run `fn`, close. */
export function withDb<T>(sandbox: Sandbox, fn: (db: Database.Database) => T): T {
  const db = new Database(sandbox.dbFile);
  try {
    db.pragma('busy_timeout = 10000');
    return fn(db);
  } finally {
    db.close();
  }
}

/** Whether a process with this pid exists. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
