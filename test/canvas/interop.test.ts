/**
 * Canvas across languages on one Redis (broker DB 7, results DB 8, flushed before and after): a
 * real Python Celery 5.2 worker runs py.* tasks (queue `py`, test/canvas/py/pycanvas.py), an
 * in-process celeriac worker runs js.* tasks (queue `js`). Chains hand results over both ways,
 * chord parts from both languages join in the same `.j` zset, and workflows built in Python
 * (test/canvas/py/pyclient.py) run on celeriac.
 */
import { spawnCeleryWorker, stopChild } from '../helpers/python-worker.ts';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Celery, chain, chord, GroupResult, group, signature, TaskError, type Worker } from '../../src/index.ts';
import { startTestWorker } from '../../src/testing.ts';
import { loadFixture } from '../helpers/fixtures.ts';
import { here, PYTHON } from './helpers.ts';

const BROKER = 'redis://127.0.0.1:6379/7';
const BACKEND = 'redis://127.0.0.1:6379/8';
const PY_DIR = path.join(here, 'py');
const env = { ...process.env, PYTHONPATH: PY_DIR, CANVAS_BROKER: BROKER, CANVAS_BACKEND: BACKEND };
const ROUTES = { 'py.*': { queue: 'py' }, 'js.*': { queue: 'js' } };
const TIMEOUT = { timeout: 30 };

const app = new Celery('jscanvas', { broker: BROKER, backend: BACKEND, taskRoutes: ROUTES });
const add = app.task('js.add', (x: number, y: number) => x + y);
const mul = app.task('js.mul', (x: number, y: number) => x * y);
const xsum = app.task('js.xsum', (values: number[]) => values.reduce((s, v) => s + v, 0));
const collect = app.task('js.collect', (values: unknown[]) => values);
const fail = app.task('js.fail', (what: unknown) => {
  throw new RangeError(`bad ${String(what)}`);
});
const py = (name: string, ...args: unknown[]) => signature(`py.${name}`, args, {}, {}, app);

let worker: Worker | undefined;
let python: ChildProcess | undefined;
let pythonLog = '';

async function flush(): Promise<void> {
  for (const db of [7, 8]) {
    const r = new Redis({ host: '127.0.0.1', port: 6379, db, lazyConnect: true, maxRetriesPerRequest: 2 });
    await r.flushdb();
    r.disconnect();
  }
}

function startPythonWorker(): Promise<void> {
  const args = ['-A', 'pycanvas', 'worker', '-P', 'solo', '-l', 'INFO', '-Q', 'py', '-n', `pycanvas${process.pid}@%h`,
    '--without-mingle', '--without-gossip', '--without-heartbeat'];
  const { child, ready } = spawnCeleryWorker(args, { cwd: PY_DIR, env, onOutput: (text) => (pythonLog += text) });
  python = child;
  return ready;
}

function stopPythonWorker(): Promise<void> {
  return stopChild(python);
}

/** Run py/pyclient.py; resolves with its JSON answer. */
function pythonClient(...args: string[]): Promise<Record<string, { id: string; value: unknown }>> {
  return new Promise((resolve, reject) => {
    execFile(PYTHON, [path.join(PY_DIR, 'pyclient.py'), ...args], { env, cwd: PY_DIR, timeout: 90_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`pyclient.py ${args.join(' ')} failed: ${err.message}\n${stderr}\nworker log:\n${pythonLog.slice(-3000)}`));
      resolve(JSON.parse(stdout) as Record<string, { id: string; value: unknown }>);
    });
  });
}

/** Python's view of a stored result: its exception class when it failed. */
function pythonReadsError(taskId: string): Promise<string> {
  const code = 'import sys\nfrom pycanvas import app\nr = app.AsyncResult(sys.argv[1]).get(timeout=30, propagate=False)\n' +
    'print(type(r).__module__ + "." + type(r).__name__ + ": " + str(r))';
  return new Promise((resolve, reject) => {
    execFile(PYTHON, ['-c', code, taskId], { env, cwd: PY_DIR, timeout: 60_000 }, (err, stdout, stderr) => (err ? reject(new Error(stderr)) : resolve(stdout.trim())));
  });
}

beforeAll(async () => {
  await flush();
  worker = await startTestWorker(app, { queues: ['js'], concurrency: 20 });
  await startPythonWorker();
}, 60_000);

afterAll(async () => {
  await stopPythonWorker();
  await worker?.shutdown();
  await flush();
}, 60_000);

describe('canvas between Python Celery and celeriac on Redis', () => {
  it('celeriac alone: sends on Redis and its worker runs the task', async () => {
    expect(await (await add.delay(1, 2)).get(TIMEOUT)).toBe(3);
  });

  it('a chain built in celeriac over Python tasks', async () => {
    const r = await chain(py('add', 1, 2), py('add', 3), py('mul', 4)).applyAsync();
    expect(await r.get(TIMEOUT)).toBe(24);
    expect(await app.AsyncResult(r.parent!.id).get(TIMEOUT)).toBe(6);
  });

  it('a chain handing results back and forth between the languages', async () => {
    const r = await chain(py('add', 1, 1), mul.s(3), py('add', 1), mul.s(2)).applyAsync();
    expect(await r.get(TIMEOUT)).toBe(14);
  });

  it('a chord whose header runs on Python and body on celeriac', async () => {
    const r = await chord(Array.from({ length: 10 }, (_, i) => py('add', i, i)), collect.s()).applyAsync();
    expect(await r.get(TIMEOUT)).toEqual(Array.from({ length: 10 }, (_, i) => 2 * i));
  });

  it('a chord whose header runs on celeriac and body on Python', async () => {
    const r = await chord(Array.from({ length: 10 }, (_, i) => add.s(i, i)), py('xsum')).applyAsync();
    expect(await r.get(TIMEOUT)).toBe(90);
    const backend = new Redis({ host: '127.0.0.1', port: 6379, db: 8, lazyConnect: true });
    const gid = r.parent!.id;
    expect(await backend.exists(`celery-taskset-meta-${gid}.j`, `celery-taskset-meta-${gid}.s`)).toBe(0);
    backend.disconnect();
  });

  it('one chord, header parts from both languages joined in the same zset, in header order', async () => {
    const header = Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? py('mul', i, 10) : mul.s(i, 10)));
    expect(await (await chord(header, collect.s()).applyAsync()).get(TIMEOUT)).toEqual(Array.from({ length: 12 }, (_, i) => 10 * i));
    expect(await (await chord(header, py('collect')).applyAsync()).get(TIMEOUT)).toEqual(Array.from({ length: 12 }, (_, i) => 10 * i));
  });

  it('celeriac records chord parts with the same Redis commands as Celery (redis-monitor-chord.json)', async () => {
    type Cmd = string[];
    // Command, key (gid abstracted), arguments; ZADD's score and member are checked apart.
    const shape = (cmds: Cmd[], gid: string) =>
      cmds.map(([name, key, ...rest]) => [name!.toUpperCase(), key!.replace(gid, '<gid>'), ...(name!.toUpperCase() === 'ZADD' ? [] : rest)].join(' '));
    const captured = (loadFixture('redis-monitor-chord').commands as { cmd: Cmd }[]).map((c) => c.cmd).filter((c) => c[1]?.startsWith('celery-taskset-meta-'));
    const pyGid = /celery-taskset-meta-([0-9a-f-]{36})/.exec(captured[0]![1]!)![1]!;
    const monitor = await new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true }).monitor();
    const seen: Cmd[] = [];
    monitor.on('monitor', (_time: string, args: string[], _source: string, database: string) => {
      if (database === '8' && args[1]?.startsWith('celery-taskset-meta-')) seen.push(args);
    });
    let r;
    try {
      r = await chord([0, 1, 2].map((i) => add.s(i, i)), py('xsum')).applyAsync();
      expect(await r.get(TIMEOUT)).toBe(6);
      await new Promise((res) => setTimeout(res, 200));
    } finally {
      monitor.disconnect();
    }
    const gid = r.parent!.id;
    const ours = seen.filter((c) => c[1]!.includes(gid));
    // The size is set just before the last header task is sent, so parts that finish earlier
    // may be recorded before it (the capture happened to have it first).
    const setSize = (l: string[]) => l.filter((x) => /^(SETEX|PUBLISH) \S+\.s /.test(x));
    const rest = (l: string[]) => l.filter((x) => !/^(SETEX|PUBLISH) \S+\.s /.test(x));
    expect(setSize(shape(ours, gid))).toEqual(setSize(shape(captured, pyGid)));
    expect(rest(shape(ours, gid))).toEqual(rest(shape(captured, pyGid)));
    // Members as Celery encodes them, scored by group_index.
    const ids = (r.parent as GroupResult).results.map((x) => x.id);
    const zadds = ours.filter((c) => c[0]!.toUpperCase() === 'ZADD').map((c) => [c[2], c[3]]).sort();
    expect(zadds).toEqual([0, 1, 2].map((i) => [String(i), `[1, "${ids[i]}", "SUCCESS", ${2 * i}]`]));
    expect(captured.filter((c) => c[0] === 'ZADD').map((c) => c[3])).toEqual(
      captured.filter((c) => c[0] === 'ZADD').map((c) => { const m = JSON.parse(c[3]!) as unknown[]; return `[1, "${m[1]}", "SUCCESS", ${m[3]}]`; }));
  });

  it('a Python header failure fails the celeriac body with a ChordError', async () => {
    const r = await chord([py('add', 1, 1), py('fail', 'x')], xsum.s()).applyAsync();
    const err = await r.get(TIMEOUT).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskError);
    expect((err as TaskError).excType).toBe('ChordError');
    const failed = (r.parent as GroupResult).results[1]!.id;
    expect((err as TaskError).message).toBe(`Dependency ${failed} raised ValueError('bad x')`);
  });

  it('a celeriac header failure fails the Python body with a ChordError Python rebuilds', async () => {
    const r = await chord([add.s(1, 1), fail.s('y')], py('xsum')).applyAsync();
    await expect(r.get(TIMEOUT)).rejects.toThrow(/Dependency .* raised ValueError\('bad y'\)/);
    expect(await pythonReadsError(r.id)).toMatch(/^celery\.exceptions\.ChordError: Dependency .* raised ValueError\('bad y'\)$/);
  });

  it('workflows built in Python (apply_async) run on celeriac, nested ones included', async () => {
    const out = await pythonClient('workflows');
    expect(out.chain!.value).toBe(13);
    expect(out.chord!.value).toBe(20);
    expect(out['chord-in-chain']!.value).toBe(70);
    expect(out['group-then-task']!.value).toEqual([3, 4]);
    expect(out['group-of-chains']!.value).toEqual([4, 12]);
    const saved = await GroupResult.restore(app, out['group-of-chains']!.id);
    expect(await saved!.get(TIMEOUT)).toEqual([4, 12]);
  }, 120_000);

  it('a group saved by celeriac is restored by Python', async () => {
    const r = await group(add.s(1, 1), py('add', 2, 2)).applyAsync();
    await r.save();
    const out = await pythonClient('restore', r.id);
    expect(out.restore).toEqual({ id: r.id, value: [2, 4] });
  });
});
