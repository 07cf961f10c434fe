/**
 * What the threads and processes pools add (SQLite broker, real worker processes): hard time
 * limits that stop a task which never yields, soft limits in a child, children replaced after
 * N tasks or past a memory limit, a child killed with kill -9, a task module that fails to load
 * in a child; and on the async pool, the hard-limit warning and the blocked-loop detector.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { TaskError, TaskRevokedError } from '../../src/index.ts';
import { createSandbox, openGate, pidAlive, readEvents, rejection, runCli, type Sandbox, startWorker, stopAllWorkers, waitFor, withDb } from './helpers.ts';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

let sb: Sandbox;

beforeAll(async () => {
  sb = await createSandbox('pools');
});

afterEach(async () => {
  await stopAllWorkers();
});

afterAll(async () => {
  await sb?.cleanup();
});

const pidFile = (label: string) => {
  try {
    return Number(readFileSync(path.join(sb.dir, `${label}.pid`), 'utf8'));
  } catch {
    return 0;
  }
};

/**
 * A warm stop for a test whose last task just finished: its ack is written when its child reports
 * the start, which may come after the result the test read; a kill -9 could leave it unacked, and
 * the broker would give it to the next test's worker.
 */
const stopWarm = async (worker: Awaited<ReturnType<typeof startWorker>>) => {
  worker.signal('SIGTERM');
  await worker.exited;
};

for (const pool of ['processes', 'threads'] as const) {
  describe(`-P ${pool}`, () => {
    it('a task in `while (true) {}` ends TimeLimitExceeded at its hard limit, with Celery\'s log line; the next task runs', async () => {
      const worker = await startWorker(sb, ['-P', pool, '-c', '1', '--time-limit', '2']);
      const r = await sb.tasks.spinForever.delay();
      const err = await rejection(r.get({ timeout: 30 }));
      expect(err).toBeInstanceOf(TaskError);
      expect((err as TaskError).excType).toBe('TimeLimitExceeded');
      expect(await r.state).toBe('FAILURE');
      await worker.waitForLine(`Hard time limit (2s) exceeded for tasks.spin_forever[${r.id}]`);
      // A fresh child took the place of the one stopped: the worker goes on.
      expect(await (await sb.tasks.add.delay(20, 22)).get({ timeout: 20 })).toBe(42);
      await stopWarm(worker);
    });

    it('a soft time limit fires in the child: the task sees SoftTimeLimitExceeded on its signal', async () => {
      const worker = await startWorker(sb, ['-P', pool, '-c', '1', '--soft-time-limit', '1']);
      const r = await sb.tasks.softAware.delay();
      const value = await r.get({ timeout: 20 });
      expect(value.caught).toBe('SoftTimeLimitExceeded');
      if (pool === 'processes') expect(value.pid).not.toBe(worker.pid);
      await worker.waitForLine(`Soft time limit (1s) exceeded for tasks.soft_aware[${r.id}]`);
    });

    it('a runner that exits (process.exit outside the task) fails its task with WorkerLostError; the next task runs', async () => {
      const worker = await startWorker(sb, ['-P', pool, '-c', '1']);
      const r = await sb.tasks.exitRunner.delay(3);
      const err = await rejection(r.get({ timeout: 20 }));
      expect((err as TaskError).excType).toBe('WorkerLostError');
      expect((err as TaskError).message).toBe('Worker exited prematurely: exitcode 3 Job: 1.');
      expect(await (await sb.tasks.add.delay(3, 4)).get({ timeout: 20 })).toBe(7);
      await stopWarm(worker);
    });

    it('worker_process_init fires once in each child, after it loaded the task module', async () => {
      const file = path.join(sb.dir, 'process-init.log');
      const before = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).length : 0;
      const worker = await startWorker(sb, ['-P', pool, '-c', '2']);
      const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean).slice(before);
      expect(lines).toHaveLength(2);
      expect(new Set(lines).size).toBe(2);
      expect(lines).not.toContain(`${worker.pid}:0`);
    });

    it('--max-tasks-per-child replaces a child after N tasks', async () => {
      await startWorker(sb, ['-P', pool, '-c', '1', '--max-tasks-per-child', '2']);
      const runners: string[] = [];
      for (let i = 0; i < 4; i++) {
        const v = await (await sb.tasks.selfInfo.delay(i)).get({ timeout: 20 });
        runners.push(`${v.pid}/${v.threadId}`);
      }
      expect(runners[0]).toBe(runners[1]);
      expect(runners[2]).toBe(runners[3]);
      expect(runners[2]).not.toBe(runners[1]);
    });
  });
}

describe('-P processes', () => {
  it('--max-memory-per-child replaces the child after the task that took it past the limit, never during it', async () => {
    const worker = await startWorker(sb, ['-P', 'processes', '-c', '1', '--max-memory-per-child', '200000']);
    const small = await (await sb.tasks.grow.delay(1)).get({ timeout: 20 });
    const big = await (await sb.tasks.grow.delay(250)).get({ timeout: 30 });
    expect(big.pid).toBe(small.pid);
    expect(big.rss).toBeGreaterThan(200000);
    await worker.waitForLine('child process exiting after exceeding memory limit');
    const after = await (await sb.tasks.grow.delay(1)).get({ timeout: 20 });
    expect(after.pid).not.toBe(big.pid);
    await waitFor('the old child to exit', () => !pidAlive(big.pid));
    await stopWarm(worker);
  });

  it('a child killed with kill -9 fails its task with WorkerLostError; a new child runs the next one', async () => {
    const worker = await startWorker(sb, ['-P', 'processes', '-c', '1']);
    const r = await sb.tasks.pidThenWait.delay('never', 'lost');
    const pid = await waitFor('the task to write its pid', () => pidFile('lost'));
    expect(pid).not.toBe(worker.pid);
    process.kill(pid, 'SIGKILL');
    const err = await rejection(r.get({ timeout: 20 }));
    expect((err as TaskError).excType).toBe('WorkerLostError');
    expect((err as TaskError).message).toBe('Worker exited prematurely: signal 9 (SIGKILL) Job: 1.');
    await worker.waitForLine(`Process 'ForkPoolWorker-1' pid:${pid} exited with 'signal 9 (SIGKILL)'`);
    expect(await (await sb.tasks.add.delay(1, 1)).get({ timeout: 20 })).toBe(2);
    await stopWarm(worker);
  });

  it('under acksLate + rejectOnWorkerLost the task of a killed child is requeued and runs again', async () => {
    const worker = await startWorker(sb, ['-P', 'processes', '-c', '1']);
    const r = await sb.tasks.pidThenWaitLate.delay('requeue-gate', 'requeued');
    const first = await waitFor('the first run', () => pidFile('requeued'));
    process.kill(first, 'SIGKILL');
    await worker.waitForLine(`Task tasks.pid_then_wait_late[${r.id}] rejected: Worker exited prematurely: signal 9 (SIGKILL)`);
    await waitFor('the second run', () => readEvents(sb).filter((e) => e.id === r.id && e.event === 'start').length === 2);
    openGate(sb, 'requeue-gate');
    const second = await r.get({ timeout: 20 });
    expect(second).not.toBe(first);
    expect(await r.state).toBe('SUCCESS');
  });

  // -c 1: the child runs the first task and holds the second, sent ahead (not started, not acked).
  const holdSecond = async (gate: string, label: string) => {
    const running = await sb.tasks.pidThenWait.delay(gate, label);
    const ahead = await sb.tasks.grow.delay(1);
    const pid = await waitFor('the task to write its pid', () => pidFile(label));
    const transport = await sb.tasks.app.transport();
    await waitFor('the worker to hold the second task', async () => (await transport.size('celery')) === 0);
    return { running, ahead, pid };
  };

  it('a task sent ahead to a child killed with kill -9 runs in the next child, neither lost nor failed', async () => {
    const worker = await startWorker(sb, ['-P', 'processes', '-c', '1']);
    const { running, ahead, pid } = await holdSecond('never', 'ahead-killed');
    process.kill(pid, 'SIGKILL');
    expect(((await rejection(running.get({ timeout: 20 }))) as TaskError).excType).toBe('WorkerLostError');
    expect((await ahead.get({ timeout: 20 })).pid).not.toBe(pid);
    expect(await ahead.state).toBe('SUCCESS');
    await stopWarm(worker);
  });

  it('revoke with terminate of a task sent ahead but not started skips it and leaves the child alive', async () => {
    const worker = await startWorker(sb, ['-P', 'processes', '-c', '1']);
    const { running, ahead, pid } = await holdSecond('ahead-gate', 'ahead-running');
    await ahead.revoke({ terminate: true });
    await expect(ahead.get({ timeout: 10 })).rejects.toThrow(TaskRevokedError);
    expect(pidAlive(pid)).toBe(true);
    openGate(sb, 'ahead-gate');
    expect(await running.get({ timeout: 20 })).toBe(pid);
    expect((await (await sb.tasks.grow.delay(1)).get({ timeout: 20 })).pid).toBe(pid);
    await stopWarm(worker);
  });

  it('a task sent ahead to a child that passes its memory limit runs in the next child', async () => {
    const worker = await startWorker(sb, ['-P', 'processes', '-c', '1', '--max-memory-per-child', '200000']);
    const big = await sb.tasks.grow.delay(250);
    const next = await sb.tasks.grow.delay(1);
    const b = await big.get({ timeout: 30 });
    expect(b.rss).toBeGreaterThan(200000);
    expect((await next.get({ timeout: 30 })).pid).not.toBe(b.pid);
    await stopWarm(worker);
  });

  it('a task module that fails to import in a child is a start-up error naming it, not a hang', async () => {
    const { stderr, code } = await runCli(sb, ['worker', '-P', 'processes', '-c', '1'], { appSpec: './test/fixtures/pool-broken/tasks.ts:app' });
    expect(code).toBe(2);
    expect(stderr).toContain('A processes pool child could not load the app ./test/fixtures/pool-broken/tasks.ts:app');
    expect(stderr).toContain('this module refuses to load in a pool child');
  });
});

describe('shutdown with children', () => {
  const started = (label: string) => readEvents(sb).filter((e) => e.event === 'start' && e.label.startsWith(label));

  for (const pool of ['processes', 'threads'] as const) {
    it(`-P ${pool}: warm shutdown lets the children finish, gives back what no child had, exits 0; no child outlives the worker`, async () => {
      const worker = await startWorker(sb, ['-P', pool, '-c', '1', '--prefetch-multiplier', '4']);
      const results = [];
      for (let i = 0; i < 3; i++) results.push(await sb.tasks.gated.delay(`warm-${pool}`, `warm-${pool}-${i}`));
      await waitFor('one task running', () => started(`warm-${pool}`).length === 1);
      worker.signal('SIGTERM');
      // One runs in the child, one waits for it (and runs before the exit), the third goes back.
      await worker.waitForLine('Restoring 1 unacknowledged message(s)');
      openGate(sb, `warm-${pool}`);
      expect(await worker.exited).toEqual({ code: 0, signal: null });
      const states = await Promise.all(results.map((r) => r.state));
      expect(states.filter((s) => s === 'SUCCESS')).toHaveLength(2);
      expect(states.filter((s) => s === 'PENDING')).toHaveLength(1);
      const pids = [...new Set(started(`warm-${pool}`).map((e) => e.pid))];
      for (const pid of pids) if (pid !== worker.pid) await waitFor('the child to be gone', () => !pidAlive(pid));
      await (await sb.tasks.app.transport()).purge('celery');
    });
  }

  it('-P processes: a task waiting in the main process for a free child is not acknowledged yet; after kill -9 of the worker it runs on the next one', async () => {
    const worker = await startWorker(sb, ['-P', 'processes', '-c', '1']);
    await sb.tasks.gated.delay('crash-gate', 'crash-0');
    const waiting = await sb.tasks.add.delay(2, 3);
    await waitFor('one task running', () => started('crash').length === 1);
    const transport = await sb.tasks.app.transport();
    await waitFor('the worker to hold the second task', async () => (await transport.size('celery')) === 0);
    // The child reports the start to the main process, which then acknowledges: killed before that,
    // the running task would come back too and hold the next worker's only child.
    const messages = () => withDb(sb, (db) => (db.prepare("SELECT count(*) AS n FROM celeriac_messages WHERE queue = 'celery'").get() as { n: number }).n);
    await waitFor('the running task to be acknowledged', () => messages() === 1);
    const child = started('crash')[0]!.pid;
    worker.signal('SIGKILL');
    await worker.exited;
    await waitFor('the orphaned child to exit', () => !pidAlive(child));
    await startWorker(sb, ['-P', 'processes', '-c', '1']);
    expect(await waiting.get({ timeout: 20 })).toBe(5);
    openGate(sb, 'crash-gate');
  });

  it('-P processes: cold shutdown kills the children and gives back the running acksLate task', async () => {
    const worker = await startWorker(sb, ['-P', 'processes', '-c', '1']);
    const r = await sb.tasks.pidThenWaitLate.delay('cold-gate', 'cold');
    const child = await waitFor('the task running', () => pidFile('cold'));
    worker.signal('SIGTERM');
    await worker.waitForLine('Warm shutdown');
    worker.signal('SIGTERM');
    const status = await worker.exited;
    expect(status.code).not.toBe(0);
    await waitFor('the child to be gone', () => !pidAlive(child));
    expect(await r.state).toBe('PENDING');
    openGate(sb, 'cold-gate');
    await startWorker(sb, ['-P', 'processes', '-c', '1']);
    expect(await r.get({ timeout: 20 })).not.toBe(child);
  });
});

describe('-P async', () => {
  it('warns once at start-up that a hard limit cannot stop synchronous code, and names a task that blocks the loop', async () => {
    const worker = await startWorker(sb, ['-P', 'gevent', '--time-limit', '30']);
    expect(worker.output()).toContain("pool gevent is celeriac's async pool");
    expect(worker.lines.filter((l) => l.includes('the async pool cannot stop a task that never awaits'))).toHaveLength(1);
    const r = await sb.tasks.spin.delay(1500);
    await r.get({ timeout: 20 });
    await worker.waitForLine(new RegExp(`Event loop blocked for \\d+\\.\\ds by tasks\\.spin\\[${r.id}\\]`));
  });
});
