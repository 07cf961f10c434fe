/**
 * The worker pools in a cluster (Redis broker, real worker processes, Python Celery 5.2 as peer):
 * a pool whose every child spins still answers ping and sends heartbeats; revoke-with-terminate
 * kills the child; pool_grow/pool_shrink/pool_restart/autoscale from Python's `celery control`
 * act on the real pool; `inspect stats` describes it; a Python client's tasks run in each pool.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { receiveEvents } from '../../src/events/receiver.ts';
import { type FixtureModule, pidAlive, runCli, type Sandbox, startWorker, stopAllWorkers, waitFor } from '../integration/helpers.ts';
import { celeryPython, deleteByPrefix, REDIS_HOST, RESULTS_DB, runPrefix, TEST_DB, trackResults } from './helpers.ts';

vi.setConfig({ testTimeout: 90_000, hookTimeout: 60_000 });

const PY_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'py');
const prefix = runPrefix('pools');
const brokerBase = `redis://${REDIS_HOST}/${TEST_DB}`;
const backend = `redis://${REDIS_HOST}/${RESULTS_DB}`;
const broker = `${brokerBase}?global_keyprefix=${encodeURIComponent(prefix)}`;
const node = `pools${process.pid}@test`;
const results = trackResults();
let sb: Sandbox;

beforeAll(async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'celeriac-pools-'));
  Object.assign(process.env, { CELERIAC_TEST_BROKER: broker, CELERIAC_TEST_BACKEND: backend, CELERIAC_TEST_DIR: dir });
  const tasks: FixtureModule = await import('../fixtures/worker-app/tasks.ts');
  const env = { ...process.env, CELERIAC_TEST_POOL_RESTARTS: '1', AUTOSCALE_KEEPALIVE: '1' };
  sb = {
    dir, dbFile: '', brokerUrl: broker, env, tasks,
    async cleanup() {
      await stopAllWorkers();
      await tasks.app.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

afterEach(async () => {
  await stopAllWorkers();
});

afterAll(async () => {
  await sb?.cleanup();
  await results.cleanup();
  await deleteByPrefix(TEST_DB, prefix);
});

const start = (args: string[]) => startWorker(sb, ['-n', node, '--without-mingle', '--without-gossip', ...args]);
const inspect = () => sb.tasks.app.control.inspect({ timeout: 2, destination: [node] });
const poolOf = async () => ((await inspect().stats())[node] as { pool: Record<string, any> } | undefined)?.pool;
/** Python Celery 5.2 (app test/redis/py/ixtasks.py on this broker): `celery <args>`. */
function python(args: string[], script?: string): Promise<string> {
  const env = { ...process.env, PYTHONPATH: PY_DIR, CELERIAC_TEST_BROKER: brokerBase, CELERIAC_TEST_BACKEND: backend, CELERIAC_TEST_PREFIX: prefix, CELERIAC_TEST_QUEUE: 'celery' };
  const argv = script ? [path.join(PY_DIR, script), ...args] : ['-m', 'celery', '-A', 'ixtasks', ...args];
  return new Promise((resolve, reject) => {
    execFile(celeryPython(), argv, { cwd: PY_DIR, env, timeout: 60_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)));
  });
}

describe('-P processes in a cluster', () => {
  it('with every child in a CPU loop, ping is answered and heartbeats keep coming; active names the children', async () => {
    const worker = await start(['-P', 'processes', '-c', '2', '--heartbeat-interval', '0.5']);
    const transport = await sb.tasks.app.transport();
    const beats: number[] = [];
    const sub = await receiveEvents(transport.broadcast!, (e) => {
      if (e.type === 'worker-heartbeat' && e.hostname === node) beats.push(Date.now());
    });
    try {
      const spins = [await sb.tasks.spin.delay(8000), await sb.tasks.spin.delay(8000)];
      results.add(spins);
      const active = await waitFor('both tasks running', async () => {
        const a = ((await inspect().active())[node] ?? []) as Array<{ id: string; worker_pid: number }>;
        return a.length === 2 ? a : undefined;
      }, 20_000);
      const pool = await poolOf();
      expect(new Set(active.map((t) => t.worker_pid))).toEqual(new Set(pool!.processes));
      expect(pool!.processes).not.toContain(worker.pid);
      const before = beats.length;
      expect(await sb.tasks.app.control.ping({ timeout: 2, destination: [node] })).toEqual([{ [node]: { ok: 'pong' } }]);
      await waitFor('heartbeats while both children spin', () => beats.length >= before + 3, 5000);
      expect(((await inspect().active())[node] ?? []) as unknown[]).toHaveLength(2);
      const ran = await Promise.all(spins.map((r) => r.get({ timeout: 30 })));
      expect(new Set(ran.map((v) => v.pid))).toEqual(new Set(pool!.processes));
    } finally {
      await sub.close();
    }
  });

  it('revoke with terminate kills the child running the task: REVOKED, and a fresh child', async () => {
    await start(['-P', 'processes', '-c', '1']);
    const r = await sb.tasks.spinForever.delay();
    results.add(r);
    const [running] = await waitFor('the task running', async () => {
      const a = ((await inspect().active())[node] ?? []) as Array<{ worker_pid: number }>;
      return a.length === 1 ? a : undefined;
    }, 20_000);
    await sb.tasks.app.control.revoke(r.id, { terminate: true });
    await waitFor('REVOKED', async () => (await r.state) === 'REVOKED', 20_000);
    await waitFor('the child gone', () => !pidAlive(running!.worker_pid));
    const next = await sb.tasks.add.delay(2, 2);
    results.add(next);
    expect(await next.get({ timeout: 20 })).toBe(4);
  });

  it('a task handed over but waiting for a free child is reserved, and terminating it leaves the running child alone', async () => {
    await start(['-P', 'processes', '-c', '1']);
    const first = await sb.tasks.spinForever.delay();
    const second = await sb.tasks.spinForever.delay();
    results.add([first, second]);
    const [running] = await waitFor('one running, one waiting', async () => {
      const i = inspect();
      const active = ((await i.active())[node] ?? []) as Array<{ id: string; worker_pid: number | null }>;
      const reserved = ((await i.reserved())[node] ?? []) as unknown[];
      return active.length === 1 && reserved.length === 1 ? active : undefined;
    }, 20_000);
    const waiting = running!.id === first.id ? second : first;
    await sb.tasks.app.control.revoke(waiting.id, { terminate: true });
    await waitFor('REVOKED', async () => (await waiting.state) === 'REVOKED', 20_000);
    expect(pidAlive(running!.worker_pid!)).toBe(true);
    expect(((await inspect().active())[node] ?? []) as Array<{ id: string }>).toMatchObject([{ id: running!.id }]);
    await sb.tasks.app.control.revoke(running!.id, { terminate: true });
    await waitFor('the child gone', () => !pidAlive(running!.worker_pid!));
  });

  it('pool_grow, pool_shrink and pool_restart from Python\'s celery control act on the real pool; stats shows it', async () => {
    const worker = await start(['-P', 'processes', '-c', '1']);
    const first = await poolOf();
    expect(first).toMatchObject({ 'max-concurrency': 1, 'max-tasks-per-child': 'N/A', 'put-guarded-by-semaphore': false });
    expect(first!.processes).toHaveLength(1);
    expect(first!.processes[0]).not.toBe(worker.pid);
    expect(await python(['control', 'pool_grow', '2', '-d', node, '-t', '5'])).toContain('pool will grow');
    const grown = await waitFor('3 children', async () => ((await poolOf())?.processes.length === 3 ? poolOf() : undefined), 20_000);
    expect(grown!['max-concurrency']).toBe(3);
    expect(grown!.processes).toContain(first!.processes[0]);
    expect(await python(['control', 'pool_shrink', '1', '-d', node, '-t', '5'])).toContain('pool will shrink');
    await waitFor('2 children', async () => (await poolOf())?.processes.length === 2, 20_000);
    const before = (await poolOf())!.processes as number[];
    expect(await python(['control', 'pool_restart', '-d', node, '-t', '5'])).toContain('reload started');
    const after = await waitFor('new children', async () => {
      const p = (await poolOf())!.processes as number[];
      return p.length === 2 && p.every((pid) => !before.includes(pid)) ? p : undefined;
    }, 30_000);
    expect(after).toHaveLength(2);
    expect(await python(['control', 'autoscale', '3', '1', '-d', node, '-t', '5'])).toContain('Autoscale not enabled');
  });

  it('--autoscale 3,1 grows to 3 children under a burst and back to 1 when idle; autoscale from Python moves the bounds', async () => {
    const worker = await start(['-P', 'processes', '--autoscale', '3,1']);
    expect(worker.output()).toContain('{min=1, max=3} (processes)');
    expect((await poolOf())!.processes).toHaveLength(1);
    const burst = await Promise.all(Array.from({ length: 6 }, () => sb.tasks.spin.delay(1500)));
    results.add(burst);
    await waitFor('3 children', async () => (await poolOf())?.processes.length === 3, 30_000);
    await Promise.all(burst.map((r) => r.get({ timeout: 60 })));
    await waitFor('back to 1 child', async () => (await poolOf())?.processes.length === 1, 30_000);
    await worker.waitForLine('Scaling up 2 processes.');
    expect(await python(['control', 'autoscale', '2', '2', '-d', node, '-t', '5'])).toContain('autoscale now max=2 min=2');
    await waitFor('2 children', async () => (await poolOf())?.processes.length === 2, 20_000);
    expect(await python(['control', 'pool_grow', '1', '-d', node, '-t', '5'])).toContain('pool_grow is not supported with autoscale');
    // The same command from celeriac's own CLI.
    const cli = await runCli(sb, ['control', 'autoscale', '3', '1', '-d', node, '-t', '5']);
    expect(cli.stdout).toContain('autoscale now max=3 min=1');
  });
});

describe('a Python client\'s tasks, on each pool', () => {
  for (const pool of ['async', 'threads', 'processes', 'solo']) {
    it(`-P ${pool}`, async () => {
      await start(['-P', pool, '-c', '2']);
      const out = JSON.parse(await python([JSON.stringify([
        { task: 'tasks.add', args: [40, 2] },
        { task: 'tasks.echo', args: [1], kwargs: { two: 2, 'über': ['ü'] } },
        { task: 'tasks.fail', args: ['python'] },
      ])], 'ixclient.py')) as Array<Record<string, unknown>>;
      results.add(out.map((o) => o.id as string));
      expect(out[0]!.result).toBe(42);
      expect(out[1]!.result).toEqual([1, { two: 2, 'über': ['ü'] }]);
      expect(out[2]).toMatchObject({ exc_type: 'TypeError', exc_args: ['cannot handle python'] });
    });
  }
});
