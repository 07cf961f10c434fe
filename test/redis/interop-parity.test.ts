/**
 * Celery parity, side by side: a Python Celery 5.2 client sends the same calls to a Python worker
 * (queue "py") and to a celeriac worker (queue "js") and what each stores, logs and calls must
 * match — errbacks with their own arguments, keyword arguments by name, soft and hard time
 * limits, result handles as results, Celery's exception types.
 *
 * Broker in the test DB under a key prefix unique to the run (both sides), results in the results DB.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Celery } from '../../src/app/celery.ts';
import { createLogger } from '../../src/common/log.ts';
import { Worker } from '../../src/worker/worker.ts';
import { celeryPython, deleteByPrefix, PY_DIR, type Proc, redisClient, RESULTS_DB, runPrefix, startPythonWorker, TEST_DB } from './helpers.ts';
import { makeParityApp } from './parityapp.ts';

const DB = TEST_DB;
const prefix = runPrefix('parity');
const broker = `redis://127.0.0.1:6379/${DB}`;
const backend = `redis://127.0.0.1:6379/${RESULTS_DB}`;
const env = { CELERIAC_TEST_BROKER: broker, CELERIAC_TEST_BACKEND: backend, CELERIAC_TEST_PREFIX: prefix, CELERIAC_TEST_QUEUE: 'py' };
const raw = redisClient(DB);
const taskIds: string[] = [];
const resultKeys: string[] = [];
const jsLog: string[] = [];

type Call = { until?: string; task: string; args?: unknown[]; kwargs?: Record<string, unknown>; options?: Record<string, unknown>; link_error?: unknown[]; chord?: Call[]; rebuild?: boolean };
type Outcome = { id: string; keys: string[]; state: string; result?: any; meta: any; caught?: string | null; error?: string; rebuilt?: { type: string; value: unknown } };

function pythonClient(calls: Call[]): Promise<Outcome[]> {
  return new Promise((resolve, reject) => {
    execFile(celeryPython(), [path.join(PY_DIR, 'parityclient.py'), JSON.stringify(calls)], { cwd: PY_DIR, env: { ...process.env, ...env, PYTHONPATH: PY_DIR }, timeout: 40_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`parityclient.py failed: ${err.message}\n${stderr}`));
      const out = JSON.parse(stdout) as Outcome[];
      taskIds.push(...out.map((o) => o.id));
      resultKeys.push(...out.flatMap((o) => o.keys));
      resolve(out);
    });
  });
}

/** The same calls on the Python worker and on the celeriac worker: [python, celeriac]. */
async function bothWorkers(calls: (side: 'py' | 'js') => Call[]): Promise<[Outcome[], Outcome[]]> {
  const withQueue = (side: 'py' | 'js') => calls(side).map((c) => ({ ...c, options: { ...c.options, queue: side } }));
  const py = withQueue('py');
  const out = await pythonClient([...py, ...withQueue('js')]);
  return [out.slice(0, py.length), out.slice(py.length)];
}

/** What the errbacks of tag recorded, with the failed task's id and the tag made generic. */
async function recorded(tag: string, count: number, failedId: string): Promise<unknown[]> {
  const deadline = Date.now() + 15_000;
  let entries: string[] = [];
  while (Date.now() < deadline) {
    entries = await raw.lrange(prefix + 'eb:' + tag, 0, -1);
    const ids = await raw.lrange(prefix + 'eb:ids', 0, -1);
    if (entries.length >= count && ids.some((e) => e.includes(failedId))) break;
    await sleep(50);
  }
  const ids = (await raw.lrange(prefix + 'eb:ids', 0, -1)).filter((e) => e.includes(failedId));
  const generic = (s: string) => JSON.parse(s.replaceAll(failedId, '<id>').replaceAll(`"${tag}"`, '"<tag>"').replaceAll(`"boom ${tag}"`, '"boom <tag>"'));
  return [...entries, ...ids].map(generic).sort((a, b) => (a.kind < b.kind ? -1 : 1));
}

let app: Celery;
let jsWorker: Worker;
let python: Proc;

beforeAll(async () => {
  app = makeParityApp({ broker, backend, prefix, queue: 'js' });
  const logger = createLogger({ level: 'WARNING', write: (line) => jsLog.push(line) });
  jsWorker = new Worker(app, { queues: ['js'], concurrency: 4, hostname: `parjs${process.pid}@test`, logger, withoutMingle: true, withoutGossip: true, withoutHeartbeat: true });
  [python] = await Promise.all([
    // prefork: time limits need a pool of processes in Celery.
    startPythonWorker('paritytasks', ['-P', 'prefork', '-c', '2', '-l', 'INFO', '-Q', 'py', '-n', `parpy${process.pid}@test`, '--without-mingle', '--without-gossip', '--without-heartbeat'], env),
    jsWorker.start(),
  ]);
}, 40_000);

afterAll(async () => {
  await python?.stop();
  await jsWorker?.shutdown();
  await app?.close();
  raw.disconnect();
  await deleteByPrefix(DB, prefix);
  const results = redisClient(RESULTS_DB);
  if (taskIds.length > 0) await results.del(...taskIds.map((id) => `celery-task-meta-${id}`), ...resultKeys);
  results.disconnect();
});

describe('errbacks', () => {
  it('get the request, the error and the traceback, then their own args; immutable ones only theirs; one-parameter and bound ones are sent with the task id', async () => {
    const [[py], [js]] = await bothWorkers((side) => [{
      task: 'par.fail',
      args: [side],
      link_error: [
        { task: 'par.eb_args', args: [side, 'x'] },
        { task: 'par.eb_kw', args: [side], kwargs: { extra: 'k' } },
        { task: 'par.eb_own', args: [side, 'a'], immutable: true },
        { task: 'par.eb_rest', args: [side] },
        { task: 'par.eb_id' },
        { task: 'par.eb_bound', args: [side] },
      ],
    }]);
    expect(py!.meta).toMatchObject({ exc_type: 'ValueError', exc_module: 'builtins' });
    expect(js!.meta).toMatchObject({ exc_type: 'ValueError', exc_module: 'builtins' });
    const onPython = await recorded('py', 5, py!.id);
    const onCeleriac = await recorded('js', 5, js!.id);
    expect(onPython).toEqual([
      { kind: 'args', id: '<id>', exc: 'boom <tag>', tb: true, extra: 'x' },
      { kind: 'bound', args: ['<id>', '<tag>'] },
      { kind: 'id', task_id: '<id>' },
      { kind: 'kw', id: '<id>', extra: 'k' },
      { kind: 'own', a: 'a', b: null },
      { kind: 'rest', n: 4, id: '<id>' },
    ]);
    expect(onCeleriac).toEqual(onPython);
  });
});

describe('keyword arguments by name', () => {
  it('land in their positions, defaults apply, and what does not fit fails with Python\'s TypeError', async () => {
    const calls: Call[] = [
      { task: 'par.add', args: [2], kwargs: { y: 3 } },
      { task: 'par.add', args: [2] },
      { task: 'par.add', kwargs: { x: 5 } },
      { task: 'par.add', args: [2], kwargs: { z: 3 } },
      { task: 'par.add' },
      { task: 'par.add', args: [1, 2, 3] },
      { task: 'par.add', args: [1], kwargs: { x: 2 } },
      { task: 'par.add10', kwargs: { y: 4, x: 1 } },
      { task: 'par.add10', args: [1] },
      { task: 'par.badd', args: [1, 2, 3] },
      { task: 'par.badd', kwargs: { y: 1 } },
    ];
    const [py, js] = await bothWorkers(() => calls);
    const seen = (o: Outcome) => ({ state: o.state, meta: o.meta, caught: o.caught ?? null });
    expect(py.map(seen)).toEqual(js.map(seen));
    expect(js.map((o) => o.meta)).toEqual([
      [2, 3], [2, 1], [5, 1],
      { exc_type: 'TypeError', exc_message: ["add() got an unexpected keyword argument 'z'"], exc_module: 'builtins' },
      { exc_type: 'TypeError', exc_message: ["add() missing 1 required positional argument: 'x'"], exc_module: 'builtins' },
      { exc_type: 'TypeError', exc_message: ['add() takes from 1 to 2 positional arguments but 3 were given'], exc_module: 'builtins' },
      { exc_type: 'TypeError', exc_message: ["add() got multiple values for argument 'x'"], exc_module: 'builtins' },
      [1, 4], [1, 10],
      { exc_type: 'TypeError', exc_message: ['badd() takes 3 positional arguments but 4 were given'], exc_module: 'builtins' },
      { exc_type: 'TypeError', exc_message: ["badd() missing 1 required positional argument: 'x'"], exc_module: 'builtins' },
    ]);
  });

  it('a task without params gets them as a trailing object, and the worker says so once per task name', async () => {
    app.task('par.trailing', (x: number, rest: unknown) => [x, rest]);
    const results = [];
    for (let i = 0; i < 3; i++) results.push(await app.sendTask('par.trailing', [i], { y: i }, { queue: 'js' }));
    taskIds.push(...results.map((r) => r.id));
    expect(await Promise.all(results.map((r) => r.get({ timeout: 10 })))).toEqual([[0, { y: 0 }], [1, { y: 1 }], [2, { y: 2 }]]);
    expect(jsLog.filter((l) => l.includes('Task par.trailing got keyword arguments (y)'))).toHaveLength(1);
  });
});

describe('time limits', () => {
  it('a task catches its soft limit, an unhandled one ends the task, a hard limit after a soft one still fires; each is logged as Celery logs it', async () => {
    const [py, js] = await bothWorkers(() => [
      { task: 'par.soft_handled', options: { soft_time_limit: 0.5, time_limit: 4 } },
      { task: 'par.soft_unhandled', options: { soft_time_limit: 0.5, time_limit: 4 } },
      { task: 'par.soft_then_hard', options: { soft_time_limit: 0.5, time_limit: 1.5 } },
    ]);
    const seen = (o: Outcome) => ({ state: o.state, meta: o.meta, caught: o.caught ?? null });
    expect(js.map(seen)).toEqual(py.map(seen));
    expect(js.map(seen)).toEqual([
      { state: 'SUCCESS', meta: 'handled', caught: null },
      { state: 'FAILURE', meta: { exc_type: 'SoftTimeLimitExceeded', exc_message: [], exc_module: 'billiard.exceptions' }, caught: 'SoftTimeLimitExceeded' },
      { state: 'FAILURE', meta: { exc_type: 'TimeLimitExceeded', exc_message: [1.5], exc_module: 'billiard.exceptions' }, caught: 'TimeLimitExceeded' },
    ]);
    for (const [i, task] of [[1, 'par.soft_unhandled'], [2, 'par.soft_then_hard']] as const) {
      const line = `Soft time limit (0.5s) exceeded for ${task}[`;
      expect(python.log()).toContain(line + py[i]!.id + ']');
      expect(jsLog.join('\n')).toContain(line + js[i]!.id + ']');
    }
    expect(python.log()).toContain(`Hard time limit (1.5s) exceeded for par.soft_then_hard[${py[2]!.id}]`);
    expect(jsLog.join('\n')).toContain(`Hard time limit (1.5s) exceeded for par.soft_then_hard[${js[2]!.id}]`);
  });
});

describe('result handles as results', () => {
  it('a returned AsyncResult or GroupResult is stored as its tuple, and a Python client rebuilds it', async () => {
    const calls = () => [
      { task: 'par.spawn_one', rebuild: true },
      { task: 'par.spawn_group', rebuild: true },
    ];
    // Every task and spawned child is deleted afterwards, whatever the assertions say.
    const track = (outcomes: Outcome[]) => {
      for (const o of outcomes) {
        const m = o.meta as [[string, null], [[string, null], null][] | null] | undefined;
        if (Array.isArray(m)) taskIds.push(m[0][0], ...(m[1] ?? []).map((c) => c[0][0]));
      }
    };
    const timedOut = (o: Outcome) => o.error?.startsWith('TimeoutError') ?? false;
    const spawned = (i: number) => (i === 0 ? ['SUCCESS'] : ['SUCCESS', 'SUCCESS']);
    let [py, js] = await bothWorkers(calls);
    track([...py, ...js]);
    // Python Celery 5.2's client now and then never sees a group's members finish (GroupResult.join
    // times out after 25 s), whichever worker ran them: in about one run of three on an idle
    // machine for its own prefork worker, now and then for celeriac's on a busy one. What each
    // worker stored is checked all the same, and the calls are made once more before comparing.
    if ([...py, ...js].some(timedOut)) {
      for (const outcomes of [js, py]) for (const [i, o] of outcomes.entries()) expect(await spawnedStates(o)).toEqual(spawned(i));
      [py, js] = await bothWorkers(calls);
      track([...py, ...js]);
    }
    // Twice in a row for Python's own worker (it happens): what that worker stored was checked above
    // and is checked again here; the reference for what the client rebuilds is then celeriac's row.
    for (const [i, o] of py.entries()) {
      if (!timedOut(o)) continue;
      expect(await spawnedStates(o)).toEqual(spawned(i));
      py[i] = { ...o, rebuilt: js[i]!.rebuilt, error: js[i]!.error };
    }
    // The Python client's error (a timeout, say) is part of what is compared, so a failure names it.
    const seen = (o: Outcome) => ({ state: o.state, rebuilt: o.rebuilt, error: o.error });
    expect(js.map(seen)).toEqual(py.map(seen));
    expect(js.map(seen)).toEqual([
      { state: 'SUCCESS', rebuilt: { type: 'AsyncResult', value: [1, 2] } },
      { state: 'SUCCESS', rebuilt: { type: 'GroupResult', value: [[1, 2], [3, 1]] } },
    ]);
    // [[id, parent], children]: a task id and no parent; a group's members as children.
    expect(js[0]!.meta).toEqual([[expect.any(String), null], null]);
    expect(js[1]!.meta).toEqual([[expect.any(String), null], [[[expect.any(String), null], null], [[expect.any(String), null], null]]]);
    expect(py[1]!.meta).toEqual([[expect.any(String), null], [[[expect.any(String), null], null], [[expect.any(String), null], null]]]);
  }, 75_000);
});

/** The stored states of what a spawn task returned: its AsyncResult, or its GroupResult's members. */
async function spawnedStates(o: Outcome): Promise<string[]> {
  const tuple = o.meta as [[string, null], [[string, null], null][] | null] | undefined;
  if (!Array.isArray(tuple)) return [`no result handle stored (${o.state}, ${o.error})`];
  const ids = tuple[1] ? tuple[1].map((m) => m[0][0]) : [tuple[0][0]];
  return Promise.all(ids.map((id) => app.AsyncResult(id).state));
}

describe("Celery's exception types", () => {
  it('replacing a task with an empty chain fails with celery.exceptions.ImproperlyConfigured; an unknown task with NotRegistered; a chord with a failed part with ChordError', async () => {
    const [py, js] = await bothWorkers(() => [
      { task: 'par.replace_empty' },
      { task: 'par.nope' },
      { task: 'par.add', chord: [{ task: 'par.fail', args: ['c'] }, { task: 'par.add', args: [1, 2] }] },
    ]);
    const seen = (o: Outcome) => ({ state: o.state, type: o.meta?.exc_type, module: o.meta?.exc_module, caught: o.caught ?? null });
    expect(js.map(seen)).toEqual(py.map(seen));
    expect(js.map(seen)).toEqual([
      { state: 'FAILURE', type: 'ImproperlyConfigured', module: 'celery.exceptions', caught: 'ImproperlyConfigured' },
      { state: 'FAILURE', type: 'NotRegistered', module: 'celery.exceptions', caught: 'NotRegistered' },
      { state: 'FAILURE', type: 'ChordError', module: 'celery.exceptions', caught: 'ChordError' },
    ]);
    expect(js[0]!.meta.exc_message).toEqual(py[0]!.meta.exc_message);
    expect(js[2]!.meta.exc_message).toEqual([expect.stringMatching(/^Dependency \S+ raised ValueError\('boom c'\)$/)]);
    expect(py[2]!.meta.exc_message).toEqual([expect.stringMatching(/^Dependency \S+ raised ValueError\('boom c'\)$/)]);
  });

  it("a retry stores the exception given to retry(), or nothing, as Celery's RETRY state", async () => {
    const [py, js] = await bothWorkers(() => [
      { task: 'par.retry_later', args: [true], until: 'RETRY' },
      { task: 'par.retry_later', args: [false], until: 'RETRY' },
    ]);
    const seen = (o: Outcome) => ({ state: o.state, meta: o.meta });
    expect(js.map(seen)).toEqual(py.map(seen));
    expect(js.map(seen)).toEqual([
      { state: 'RETRY', meta: { exc_type: 'KeyError', exc_message: ['transient'], exc_module: 'builtins' } },
      { state: 'RETRY', meta: null },
    ]);
  });
});
