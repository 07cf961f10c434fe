import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { deleteByPrefix, REDIS_HOST, RESULTS_DB, runPrefix, TEST_DB, trackResults } from '../helpers/redis-db.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, '..', '..');
export const BROKER_DB = TEST_DB;
export const BACKEND_DB = RESULTS_DB;
export const BROKER = `redis://${REDIS_HOST}/${BROKER_DB}`;
export const BACKEND = `redis://${REDIS_HOST}/${BACKEND_DB}`;
/** Every broker key (and pub/sub channel) of the run's workers, CLIs and clients goes under it. */
export const PREFIX = runPrefix('cluster');
/** The results of the tasks the tests send (deleted by cleanup). */
export const results = trackResults();
export const PYTHON = '/usr/bin/python3';

export const env = (queue = 'celery') => ({ ...process.env, CELERIAC_TEST_BROKER: BROKER, CELERIAC_TEST_BACKEND: BACKEND, CELERIAC_TEST_QUEUE: queue, CELERIAC_TEST_PREFIX: PREFIX, PYTHONPATH: path.join(here, 'py') });

/** Delete the run's broker keys and the results it made. */
export async function cleanup(): Promise<void> {
  await results.cleanup();
  await deleteByPrefix(BROKER_DB, PREFIX);
}

export interface Proc {
  child: ChildProcess;
  output: string[];
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

export function spawnProc(cmd: string, args: string[], queue?: string): Proc {
  const child = spawn(cmd, args, { cwd: ROOT, env: env(queue), stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  const output: string[] = [];
  const waiters = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    output.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    for (const w of waiters) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => {
    running.delete(child);
    resolve(code);
  }));
  return {
    child,
    output,
    waitFor(re, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const line = output.find((l) => re.test(l));
          if (line) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(line);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no line matching ${re} within ${timeoutMs} ms; output:\n${output.slice(-40).join('\n')}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

export function pythonWorker(name: string, extra: string[] = [], queue?: string): Proc {
  return spawnProc(PYTHON, ['-m', 'celery', '-A', 'clustertasks', 'worker', '-n', name, '-P', 'solo', '-l', 'INFO', ...extra], queue);
}

export function celeriacWorker(name: string, extra: string[] = [], queue?: string): Proc {
  return spawnProc(process.execPath, ['bin/celeriac.js', '-A', './test/cluster/tasks.ts:app', 'worker', '-n', name, '-l', 'INFO', ...extra], queue);
}

/** Run a celery CLI command (the Python one) and return its stdout. */
export async function celeryCli(args: string[], timeoutMs = 20_000): Promise<string> {
  const p = spawnProc(PYTHON, ['-m', 'celery', '-A', 'clustertasks', ...args]);
  const timer = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs);
  await new Promise((resolve) => p.child.once('exit', resolve));
  clearTimeout(timer);
  return p.output.join('\n');
}

export async function celeriacCli(args: string[], timeoutMs = 20_000): Promise<string> {
  const p = spawnProc(process.execPath, ['bin/celeriac.js', '-A', './test/cluster/tasks.ts:app', ...args]);
  const timer = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs);
  await new Promise((resolve) => p.child.once('exit', resolve));
  clearTimeout(timer);
  return p.output.join('\n');
}
