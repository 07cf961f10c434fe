/** Helpers for the canvas tests: id normalisation, Python's canvas dicts, messages on a memory broker. */
import { execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Celery } from '../../src/app/celery.ts';
import { celeryPython } from '../redis/helpers.ts';
import { decodeBody } from '../../src/protocol/serializers.ts';
import { decodeTaskMessage, type TaskRequest } from '../../src/protocol/task-message.ts';

export const here = path.dirname(fileURLToPath(import.meta.url));
export const projectRoot = path.resolve(here, '..', '..');
/** The interpreter with Celery 5.2 (the system one first; CELERIAC_TEST_PYTHON overrides). */
export const PYTHON = celeryPython();

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Replace every uuid by `<id N>`, numbered in the order met walking the value with sorted keys,
 * so that two structures built with different random ids compare equal when their shape is.
 */
export function normalizeIds(value: unknown, ids = new Map<string, string>()): unknown {
  if (typeof value === 'string') {
    if (!UUID.test(value)) return value;
    if (!ids.has(value)) ids.set(value, `<id ${ids.size}>`);
    return ids.get(value);
  }
  if (Array.isArray(value)) return value.map((v) => normalizeIds(v, ids));
  if (value === null || typeof value !== 'object') return value;
  const plain = JSON.parse(JSON.stringify(value)) as Record<string, unknown>;
  return Object.fromEntries(Object.keys(plain).sort().map((k) => [k, normalizeIds(plain[k], ids)]));
}

/** Celery's dict form of the canvases in py/canvas_dicts.py, keyed by case name. */
export function pythonCanvasDicts(): Record<string, unknown> {
  const out = execFileSync(PYTHON, [path.join(here, 'py', 'canvas_dicts.py')], { encoding: 'utf8', timeout: 60_000 });
  return JSON.parse(out) as Record<string, unknown>;
}

export interface Sent {
  request: TaskRequest;
  headers: Record<string, unknown>;
  properties: Record<string, unknown>;
  body: unknown;
  queue: string;
}

/** Take every message waiting in `queues` of the app's (memory) broker, in publish order. */
export async function drain(app: Celery, queues = ['celery']): Promise<Sent[]> {
  const transport = await app.transport();
  const out: Sent[] = [];
  for (;;) {
    const batch = await transport.fetch(queues, 100, 50);
    if (batch.length === 0) return out;
    for (const d of batch) {
      out.push({ request: decodeTaskMessage(d.message), headers: d.message.headers, properties: d.message.properties, body: decodeBody(d.message), queue: d.queue });
      await d.ack();
    }
  }
}

export interface ChildWorker {
  pid: number;
  output(): string;
  stop(): Promise<void>;
}

/** Start `celeriac -A <appSpec> worker ...args` and wait for its "ready." line. */
export function startWorkerProcess(appSpec: string, env: NodeJS.ProcessEnv, args: string[] = []): Promise<ChildWorker> {
  const child = spawn(process.execPath, [path.join(projectRoot, 'bin', 'celeriac.js'), '-A', appSpec, 'worker', '-l', 'INFO', ...args], {
    cwd: projectRoot, env, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const worker: ChildWorker = {
    pid: child.pid!,
    output: () => log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker not ready after 30 s:\n${log}`)), 30_000);
    const onData = (chunk: Buffer) => {
      log += chunk.toString();
      if (/ready\.$/m.test(log)) {
        clearTimeout(timer);
        resolve(worker);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('close', (code) => reject(new Error(`worker exited (${code}) before it was ready:\n${log}`)));
  });
}
