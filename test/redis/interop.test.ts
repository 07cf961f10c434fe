/**
 * Wire compatibility with the real Python Celery 5.2 over Redis (broker in TEST_DB under a key
 * prefix unique to the run, results in RESULTS_DB): a Python worker (test/redis/py/pytasks.py) and Python
 * clients (test/redis/py/client.py) work with celeriac clients and an in-process celeriac Worker,
 * results and exceptions included, and a Python worker restores a message that a killed
 * celeriac consumer left in `unacked` once its visibility timeout (2 s on both sides) is over.
 */
import { spawnCeleryWorker, stopChild } from '../helpers/python-worker.ts';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Celery } from '../../src/index.ts';
import { TaskError } from '../../src/errors.ts';
import { dumps, loads } from '../../src/protocol/json.ts';
import { createLogger } from '../../src/common/log.ts';
import { Worker } from '../../src/worker/worker.ts';
import { celeryPython, deleteByPrefix, REDIS_HOST, RESULTS_DB, redisClient, runPrefix, TEST_DB, trackResults } from './helpers.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const PYTHON = celeryPython();
const prefix = runPrefix('interop');
const brokerBase = `redis://${REDIS_HOST}/${TEST_DB}`;
const backendUrl = `redis://${REDIS_HOST}/${RESULTS_DB}`;
const brokerUrl = `${brokerBase}?global_keyprefix=${encodeURIComponent(prefix)}&visibility_timeout=2`;
const env = { ...process.env, PYTHONPATH: path.join(here, 'py'), CELERIAC_TEST_BROKER: brokerBase, CELERIAC_TEST_BACKEND: backendUrl, CELERIAC_TEST_PREFIX: prefix };
const taskIds: string[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const app = new Celery('t', { broker: brokerUrl, backend: backendUrl });
app.task('jstasks.mul', (x: number, y: number) => x * y);
app.task('jstasks.echo', (...values: unknown[]) => values);
app.task('jstasks.fail', (message: string) => {
  throw new RangeError(message);
});

let python: ChildProcess | undefined;
let pythonLog = '';
let jsWorker: Worker | undefined;
let abandoned: { id: string; unackedAfterKill: string | null };

/** A Python Celery worker on queue `py`; resolves once it logs "ready.". */
function startPythonWorker(): Promise<void> {
  const args = ['-A', 'pytasks', 'worker', '-P', 'solo', '-l', 'INFO', '-Q', 'py', '-n', `py${process.pid}@%h`,
    '--without-mingle', '--without-gossip', '--without-heartbeat'];
  const { child, ready } = spawnCeleryWorker(args, { cwd: path.join(here, 'py'), env, onOutput: (text) => (pythonLog += text) });
  python = child;
  return ready;
}

function stopPythonWorker(): Promise<void> {
  return stopChild(python);
}

/** Run test/redis/py/client.py with a list of calls; returns its JSON answer. */
function pythonClient(calls: { task: string; args: unknown[]; queue: string }[]): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    execFile(PYTHON, [path.join(here, 'py', 'client.py'), dumps(calls)], { env, timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`client.py failed: ${err.message}\n${stderr}`));
      resolve(loads(stdout) as Record<string, unknown>[]); // Python's json: NaN, big integers
    });
  });
}

/** A celeriac consumer (child process) fetches the message and is killed with SIGKILL before settling it. */
function abandonOneDelivery(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'fetch-loop.ts'), brokerUrl, 'py', '1'], { cwd: path.resolve(here, '..', '..'), stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('exit', (_c, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`fetch-loop exited with ${_c}`))));
  });
}

beforeAll(async () => {
  // (d) first: the abandoned delivery must wait in `unacked` until a Python worker starts.
  const r = await app.sendTask('pytasks.add', [20, 22], {}, { queue: 'py' });
  taskIds.push(r.id);
  await abandonOneDelivery();
  const fetchedAt = Date.now();
  const raw = redisClient(TEST_DB);
  const tags = await raw.hkeys(`${prefix}unacked`);
  abandoned = { id: r.id, unackedAfterKill: tags.length === 1 ? await raw.hget(`${prefix}unacked`, tags[0]!) : null };
  raw.disconnect();
  await sleep(Math.max(0, fetchedAt + 2300 - Date.now())); // past the 2 s visibility timeout
  await startPythonWorker();
}, 30_000);

afterAll(async () => {
  await stopPythonWorker();
  if (jsWorker) await jsWorker.shutdown();
  else await app.close();
  await deleteByPrefix(TEST_DB, prefix);
  const results = trackResults();
  results.add(taskIds);
  await results.cleanup();
});

describe('celeriac and Python Celery 5.2 on one Redis', () => {
  it('(d) a Python worker restores a delivery a killed celeriac consumer left unacknowledged', async () => {
    expect(abandoned.unackedAfterKill).toMatch(/^\[\{"body": .*"task": "pytasks\.add".*\}, "", "py"\]$/);
    expect(await app.AsyncResult(abandoned.id).get({ timeout: 15 })).toBe(42);
    const raw = redisClient(TEST_DB);
    expect(await raw.hlen(`${prefix}unacked`)).toBe(0);
    raw.disconnect();
  });

  it('(b) celeriac client → Python worker → celeriac get()', async () => {
    const r = await app.sendTask('pytasks.add', [2, 3], {}, { queue: 'py' });
    taskIds.push(r.id);
    expect(await r.get({ timeout: 15 })).toBe(5);
  });

  it('(c) a Python exception reaches the celeriac client with type, message and traceback', async () => {
    const r = await app.sendTask('pytasks.fail', ['boom'], {}, { queue: 'py' });
    taskIds.push(r.id);
    const err = await r.get({ timeout: 15 }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(TaskError);
    expect(err).toMatchObject({ excType: 'ValueError', excModule: 'builtins', excMessage: ['boom', 42] });
    expect((err as TaskError).traceback).toMatch(/^Traceback \(most recent call last\):\n[\s\S]*raise ValueError\(message, 42\)\nValueError: \('boom', 42\)\n$/);
  });

  it('(a, c) Python client → celeriac worker → Python AsyncResult.get(): values and exceptions', async () => {
    jsWorker = new Worker(app, { queues: ['js'], logger: createLogger({ level: 'CRITICAL' }) });
    await jsWorker.start();
    const [ok, failed] = await pythonClient([
      { task: 'jstasks.mul', args: [6, 7], queue: 'js' },
      { task: 'jstasks.fail', args: ['bad range'], queue: 'js' },
    ]);
    taskIds.push(String(ok!.id), String(failed!.id));
    expect(ok).toMatchObject({ result: 42 });
    expect(failed).toMatchObject({ exc_type: 'ValueError', exc_module: 'builtins', exc_args: ['bad range'] });
    expect(failed!.traceback).toMatch(/^Traceback \(most recent call last\):\n[\s\S]*\nValueError: bad range\n$/);
  });

  it('integers beyond 2^53 and NaN/Infinity survive celeriac → Python worker → celeriac get()', async () => {
    const big = await app.sendTask('pytasks.add', [12345678901234567890n, 1], {}, { queue: 'py' });
    const nan = await app.sendTask('pytasks.add', [Infinity, -1.5], {}, { queue: 'py' });
    taskIds.push(big.id, nan.id);
    expect(await big.get({ timeout: 15 })).toBe(12345678901234567891n);
    expect(await nan.get({ timeout: 15 })).toBe(Infinity);
  });

  it('integers beyond 2^53 and NaN/Infinity survive Python client → celeriac worker → Python get()', async () => {
    if (!jsWorker) {
      jsWorker = new Worker(app, { queues: ['js'], logger: createLogger({ level: 'CRITICAL' }) });
      await jsWorker.start();
    }
    const values = [12345678901234567890n, -(2n ** 70n), 9007199254740993n, 2 ** 53 - 1, 0.30000000000000004, NaN, Infinity, -Infinity];
    const [echoed] = await pythonClient([{ task: 'jstasks.echo', args: values as unknown[], queue: 'js' }]);
    taskIds.push(String(echoed!.id));
    // client.py prints what Python's AsyncResult.get() returned, as Python's json writes it
    expect(echoed!.result).toEqual(values);
    expect(echoed!.types).toEqual(['int', 'int', 'int', 'int', 'float', 'float', 'float', 'float']);
  });
});
