/**
 * Parity tests: one scenario on a Python Celery 5.2 worker and on a celeriac worker, on the same
 * broker, compared. The broker is a private redis-server with a password on a spare port, started
 * by the test, so replies that must not show the password can be checked.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { PYTHON, spawnCeleryWorker, stopChild } from '../helpers/python-worker.ts';
import { sparePort } from '../redis/helpers.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, '..', '..');
export const PASSWORD = 's3cret-parity';

export interface Parity {
  port: number;
  broker: string;
  backend: string;
  env: NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

export async function startBroker(): Promise<Parity> {
  const port = await sparePort();
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--requirepass', PASSWORD], { stdio: 'ignore' });
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = new Redis({ port, password: PASSWORD, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    r.on('error', () => undefined);
    try {
      await r.connect();
      if ((await r.ping()) === 'PONG') break;
    } catch {
      if (Date.now() > deadline) throw new Error(`private redis on ${port} did not start`);
      await new Promise((res) => setTimeout(res, 50));
    } finally {
      r.disconnect();
    }
  }
  const broker = `redis://:${PASSWORD}@127.0.0.1:${port}/0`;
  const backend = `redis://:${PASSWORD}@127.0.0.1:${port}/1`;
  return {
    port,
    broker,
    backend,
    env: { ...process.env, PARITY_BROKER: broker, PARITY_BACKEND: backend, PYTHONPATH: path.join(here, 'py') },
    async stop() {
      if (proc.exitCode !== null) return;
      const exited = new Promise((res) => proc.once('exit', res));
      proc.kill('SIGTERM');
      await exited;
    },
  };
}

export interface Worker {
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

export async function startPython(p: Parity, node: string, queue: string, extra: string[] = []): Promise<Worker> {
  let out = '';
  const { child, ready } = spawnCeleryWorker(['-A', 'parityapp', 'worker', '-P', 'solo', '-n', node, '-Q', queue, '-l', 'INFO', '--without-mingle', '--without-gossip', ...extra], {
    cwd: path.join(here, 'py'), env: p.env, onOutput: (t) => (out += t),
  });
  await ready;
  return { child, output: () => out, stop: () => stopChild(child) };
}

export async function startCeleriac(p: Parity, node: string, queue: string, extra: string[] = []): Promise<Worker> {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'celeriac.js'), '-A', './test/parity/app.ts:app', 'worker', '-n', node, '-Q', queue, '-l', 'INFO', ...extra], {
    cwd: ROOT, env: p.env, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      if (/ ready\./.test(out)) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`celeriac worker exited (${code}):\n${out}`)));
  });
  return { child, output: () => out, stop: () => stopChild(child) };
}

function run(cmd: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv }): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { ...opts, timeout: 60_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${args.filter((a) => !a.includes('://')).join(' ')} failed (exit ${String(err.code)}):\n${stdout}\n${stderr}`)) : resolve(stdout + stderr),
    ),
  );
}

/** `celery -A parityapp <args>` (the Python command line). */
export const celeryCli = (p: Parity, args: string[]) => run(PYTHON, ['-m', 'celery', '-A', 'parityapp', ...args], { cwd: path.join(here, 'py'), env: p.env });

/** `celeriac -A test/parity/app.ts:app <args>`. */
export const celeriacCli = (p: Parity, args: string[]) => run(process.execPath, [path.join(ROOT, 'bin', 'celeriac.js'), '-A', './test/parity/app.ts:app', ...args], { cwd: ROOT, env: p.env });

/** `celery inspect <cmd> --json` from Python, the replies of the given nodes. */
export async function pyInspect(p: Parity, cmd: string, nodes: string[], extra: string[] = []): Promise<Record<string, unknown>> {
  const out = await celeryCli(p, ['inspect', cmd, ...extra, '--json', '-t', '5', '-d', nodes.join(',')]);
  const line = out.split('\n').find((l) => l.startsWith('{'));
  if (!line) throw new Error(`no JSON in the output of celery inspect ${cmd}:\n${out}`);
  return JSON.parse(line) as Record<string, unknown>;
}

/** Send from the Python client; `call` waits for the result. */
export async function pyClient(p: Parity, cmd: 'call' | 'send', task: string, queue: string, options: Record<string, unknown> = {}): Promise<unknown> {
  const out = await run(PYTHON, [path.join(here, 'py', 'client.py'), cmd, task, queue, JSON.stringify(options)], { cwd: path.join(here, 'py'), env: p.env });
  return JSON.parse(out.trim().split('\n').pop()!);
}
