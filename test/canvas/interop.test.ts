/**
 * Canvas across languages on one Redis (broker in TEST_DB under a key prefix unique to the run,
 * results in RESULTS_DB, every result this file made deleted at the end): a
 * real Python Celery 5.2 worker runs py.* tasks (queue `py`, test/canvas/py/pycanvas.py), an
 * in-process celeriac worker runs js.* tasks (queue `js`). Chains hand results over both ways,
 * chord parts from both languages join in the same `.j` zset, and workflows built in Python
 * (test/canvas/py/pyclient.py) run on celeriac.
 */
import { spawnCeleryWorker, stopChild } from '../helpers/python-worker.ts';
import { type ChildProcess, execFile } from 'node:child_process';
import path from 'node:path';
import { deleteByPrefix, type HasIds, REDIS_HOST, RESULTS_DB, redisClient, runPrefix, TEST_DB, trackResults } from '../helpers/redis-db.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Celery, chain, chord, GroupResult, group, signature, TaskError, type Worker } from '../../src/index.ts';
import { startTestWorker } from '../../src/testing.ts';
import { loadFixture } from '../helpers/fixtures.ts';
import { monitorRedis } from '../helpers/redis-monitor.ts';
import { here, PYTHON } from './helpers.ts';

const PREFIX = runPrefix('canvas');
const BROKER = `redis://${REDIS_HOST}/${TEST_DB}`;
const BACKEND = `redis://${REDIS_HOST}/${RESULTS_DB}`;
const OPTIONS = { brokerTransportOptions: { global_keyprefix: PREFIX } };
const PY_DIR = path.join(here, 'py');
const env = { ...process.env, PYTHONPATH: PY_DIR, CANVAS_BROKER: BROKER, CANVAS_BACKEND: BACKEND, CANVAS_PREFIX: PREFIX };
/** Every result this file makes: the ids it sends, the ids Python reports (see pycanvas.py), and those their metas name. */
const results = trackResults();
const track = <T>(r: T): T => {
  results.add(r as HasIds);
  return r;
};
const ROUTES = { 'py.*': { queue: 'py' }, 'js.*': { queue: 'js' } };
const TIMEOUT = { timeout: 30 };

const app = new Celery('jscanvas', { broker: BROKER, backend: BACKEND, taskRoutes: ROUTES, ...OPTIONS });
const add = app.task('js.add', (x: number, y: number) => x + y);
const mul = app.task('js.mul', (x: number, y: number) => x * y);
const xsum = app.task('js.xsum', (values: number[]) => values.reduce((s, v) => s + v, 0));
const collect = app.task('js.collect', (values: unknown[]) => values);
const fail = app.task('js.fail', (what: unknown) => {
  throw new RangeError(`bad ${String(what)}`);
});
const py = (name: string, ...args: unknown[]) => signature(`py.${name}`, args, {}, {}, app);
/** A chord part that adds `<lang>.add(v, 0)` to its chord for each [lang, v] (as py.extend). */
const extend = app.task({ name: 'js.extend', bind: true }, async (self, own: number, added: [string, number][]) => {
  for (const [lang, v] of added) await self.addToChord(signature(`${lang}.add`, [v, 0], {}, {}, app));
  return own;
});

// result_chord_ordered off (a result backend transport option, as in Celery): parts in completion order.
const unordered = new Celery('jscanvas-unordered', {
  broker: BROKER, backend: BACKEND, taskRoutes: { 'jsu.*': { queue: 'jsu' } }, resultBackendTransportOptions: { result_chord_ordered: false }, ...OPTIONS,
});
const slow = unordered.task('jsu.slow', async (x: number, ms: number) => {
  await new Promise((res) => setTimeout(res, ms));
  return x;
});
const uCollect = unordered.task('jsu.collect', (values: unknown[]) => values);
const uExtend = unordered.task({ name: 'jsu.extend', bind: true }, async (self, own: number, v: number) => {
  await self.addToChord(slow.s(v, 300));
  return own;
});
let unorderedWorker: Worker | undefined;

let worker: Worker | undefined;
let python: ChildProcess | undefined;
let pythonLog = '';

/** Delete what this file wrote: its prefix in TEST_DB (with the ids Python recorded there), its results. */
async function cleanup(): Promise<void> {
  const r = redisClient(TEST_DB);
  results.add(await r.smembers(`${PREFIX}ids`).catch(() => []));
  r.disconnect();
  await results.cleanup();
  await deleteByPrefix(TEST_DB, PREFIX);
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
      results.add(stdout); // every id it names
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
  worker = await startTestWorker(app, { queues: ['js'], concurrency: 20 });
  unorderedWorker = await startTestWorker(unordered, { queues: ['jsu'], concurrency: 10 });
  await startPythonWorker();
}, 60_000);

afterAll(async () => {
  await stopPythonWorker();
  await worker?.shutdown();
  await unorderedWorker?.shutdown();
  await cleanup();
}, 60_000);

describe('canvas between Python Celery and celeriac on Redis', () => {
  it('celeriac alone: sends on Redis and its worker runs the task', async () => {
    expect(await (await add.delay(1, 2).then(track)).get(TIMEOUT)).toBe(3);
  });

  it('a chain built in celeriac over Python tasks', async () => {
    const r = await chain(py('add', 1, 2), py('add', 3), py('mul', 4)).applyAsync().then(track);
    expect(await r.get(TIMEOUT)).toBe(24);
    expect(await app.AsyncResult(r.parent!.id).get(TIMEOUT)).toBe(6);
  });

  it('a chain handing results back and forth between the languages', async () => {
    const r = await chain(py('add', 1, 1), mul.s(3), py('add', 1), mul.s(2)).applyAsync().then(track);
    expect(await r.get(TIMEOUT)).toBe(14);
  });

  it('a chord whose header runs on Python and body on celeriac', async () => {
    const r = await chord(Array.from({ length: 10 }, (_, i) => py('add', i, i)), collect.s()).applyAsync().then(track);
    expect(await r.get(TIMEOUT)).toEqual(Array.from({ length: 10 }, (_, i) => 2 * i));
  });

  it('a chord whose header runs on celeriac and body on Python', async () => {
    const r = await chord(Array.from({ length: 10 }, (_, i) => add.s(i, i)), py('xsum')).applyAsync().then(track);
    expect(await r.get(TIMEOUT)).toBe(90);
    const backend = redisClient(RESULTS_DB);
    const gid = r.parent!.id;
    expect(await backend.exists(`celery-taskset-meta-${gid}.j`, `celery-taskset-meta-${gid}.s`)).toBe(0);
    backend.disconnect();
  });

  it('one chord, header parts from both languages joined in the same zset, in header order', async () => {
    const header = Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? py('mul', i, 10) : mul.s(i, 10)));
    expect(await (await chord(header, collect.s()).applyAsync().then(track)).get(TIMEOUT)).toEqual(Array.from({ length: 12 }, (_, i) => 10 * i));
    expect(await (await chord(header, py('collect')).applyAsync().then(track)).get(TIMEOUT)).toEqual(Array.from({ length: 12 }, (_, i) => 10 * i));
  });

  it('celeriac records chord parts with the same Redis commands as Celery (redis-monitor-chord.json)', async () => {
    type Cmd = string[];
    // Command, key (gid abstracted), arguments; ZADD's score and member are checked apart.
    const shape = (cmds: Cmd[], gid: string) =>
      cmds.map(([name, key, ...rest]) => [name!.toUpperCase(), key!.replace(gid, '<gid>'), ...(name!.toUpperCase() === 'ZADD' ? [] : rest)].join(' '));
    const captured = (loadFixture('redis-monitor-chord').commands as { cmd: Cmd }[]).map((c) => c.cmd).filter((c) => c[1]?.startsWith('celery-taskset-meta-'));
    const pyGid = /celery-taskset-meta-([0-9a-f-]{36})/.exec(captured[0]![1]!)![1]!;
    const seen: Cmd[] = [];
    const monitor = await monitorRedis('127.0.0.1', 6379, (args, database) => {
      if (database === String(RESULTS_DB) && args[1]?.startsWith('celery-taskset-meta-')) seen.push(args);
    });
    let r;
    try {
      r = await chord([0, 1, 2].map((i) => add.s(i, i)), py('xsum')).applyAsync().then(track);
      expect(await r.get(TIMEOUT)).toBe(6);
      await new Promise((res) => setTimeout(res, 200));
    } finally {
      monitor.close();
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
    const r = await chord([py('add', 1, 1), py('fail', 'x')], xsum.s()).applyAsync().then(track);
    const err = await r.get(TIMEOUT).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskError);
    expect((err as TaskError).excType).toBe('ChordError');
    const failed = (r.parent as GroupResult).results[1]!.id;
    expect((err as TaskError).message).toBe(`Dependency ${failed} raised ValueError('bad x')`);
  });

  it('a celeriac header failure fails the Python body with a ChordError Python rebuilds', async () => {
    const r = await chord([add.s(1, 1), fail.s('y')], py('xsum')).applyAsync().then(track);
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

  it('addToChord in a celeriac part adds celeriac and Python tasks; the body gets every result', async () => {
    const r = await chord([add.s(1, 1), extend.s(5, [['js', 10], ['py', 20]]), py('add', 2, 2)], collect.s()).applyAsync().then(track);
    const values = (await r.get(TIMEOUT)) as number[];
    // As Celery: the added tasks share the adding part's group_index (ordered by member in the zset).
    expect([values[0], values[4]]).toEqual([2, 4]);
    expect(values.slice(1, 4).sort((a, b) => a - b)).toEqual([5, 10, 20]);
    const backend = redisClient(RESULTS_DB);
    const gid = r.parent!.id;
    expect(await backend.exists(...['.j', '.s', '.t'].map((x) => `celery-taskset-meta-${gid}${x}`))).toBe(0);
    backend.disconnect();
  });

  it('Python\'s self.add_to_chord in a Python part adds a celeriac task; a Python body, and a celeriac one', async () => {
    const r = await chord([py('extend', 5, [['js', 10], ['js', 11]]), add.s(1, 1)], py('collect')).applyAsync().then(track);
    const values = (await r.get(TIMEOUT)) as number[];
    expect(values[3]).toBe(2);
    expect(values.slice(0, 3).sort((a, b) => a - b)).toEqual([5, 10, 11]);
    const r2 = await chord([add.s(1, 1), py('extend', 7, [['py', 30], ['js', 31]])], xsum.s()).applyAsync().then(track);
    expect(await r2.get(TIMEOUT)).toBe(2 + 7 + 30 + 31);
  });

  it('celeriac\'s addToChord writes what Python\'s add_to_chord writes (INCRBY .t 1), the parts then the same commands', async () => {
    type Cmd = string[];
    const seen: Cmd[] = [];
    const monitor = await monitorRedis('127.0.0.1', 6379, (args, database) => {
      if (database === String(RESULTS_DB) && args[1]?.startsWith('celery-taskset-meta-')) seen.push(args);
    });
    const shapes: string[][] = [];
    try {
      for (const part of [extend.s(5, [['js', 10]]), py('extend', 5, [['js', 10]])]) {
        const r = await chord([add.s(1, 1), part, add.s(2, 2)], collect.s()).applyAsync().then(track);
        expect(((await r.get(TIMEOUT)) as number[]).sort((a, b) => a - b)).toEqual([2, 4, 5, 10]);
        await new Promise((res) => setTimeout(res, 200));
        const gid = r.parent!.id;
        // Command and key (gid abstracted), arguments but for ZADD's member and the size's value.
        shapes.push(seen.filter((c) => c[1]!.includes(gid)).map(([name, key, ...rest]) => {
          const cmd = name!.toUpperCase();
          const args = cmd === 'ZADD' ? [rest[0]] : /^(SETEX|PUBLISH|SET)$/.test(cmd) ? [] : rest;
          return [cmd, key!.replace(gid, '<gid>'), ...args].join(' ');
        }).sort());
      }
    } finally {
      monitor.close();
    }
    expect(shapes[0]).toContain('INCRBY celery-taskset-meta-<gid>.t 1');
    expect(shapes[0]!.filter((x) => x.startsWith('ZADD'))).toEqual(['ZADD celery-taskset-meta-<gid>.j 0', 'ZADD celery-taskset-meta-<gid>.j 1', 'ZADD celery-taskset-meta-<gid>.j 1', 'ZADD celery-taskset-meta-<gid>.j 2']);
    expect(shapes[0]).toEqual(shapes[1]);
  });

  it('result_chord_ordered false: the body gets the results in completion order, added tasks included', async () => {
    const r = await chord([slow.s(0, 600), slow.s(1, 300), slow.s(2, 0)], uCollect.s()).applyAsync().then(track);
    expect(await r.get(TIMEOUT)).toEqual([2, 1, 0]);
    // The adding part at once, then 2 (150 ms), the added task (300 ms), 0 (900 ms).
    const r2 = await chord([slow.s(0, 900), uExtend.s(1, 9), slow.s(2, 150)], uCollect.s()).applyAsync().then(track);
    expect(await r2.get(TIMEOUT)).toEqual([1, 2, 9, 0]);
  });

  it('a group saved by celeriac is restored by Python', async () => {
    const r = await group(add.s(1, 1), py('add', 2, 2)).applyAsync().then(track);
    await r.save();
    const out = await pythonClient('restore', r.id);
    expect(out.restore).toEqual({ id: r.id, value: [2, 4] });
  });
});
