/**
 * Celery's daemon habits: `worker --detach` with its pid and log files, `multi start` and
 * `multi stopwait`, and a pid file that names a live process.
 */
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { isAlive } from '../../src/cli/pidfile.ts';
import { APP_SPEC, createSandbox, runCli, type Sandbox, waitFor } from './helpers.ts';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 40_000 });

let sb: Sandbox;
const started = new Set<number>();
const host = os.hostname();
const short = host.split('.')[0]!;

beforeAll(async () => {
  sb = await createSandbox('cli-daemon');
});

afterEach(() => {
  // Detached processes are no children of the test: kill any a failed test left behind.
  for (const pid of started) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  started.clear();
});

afterAll(async () => {
  await sb?.cleanup();
});

const file = (name: string) => path.join(sb.dir, name);
const pidIn = (name: string) => {
  const pid = Number(readFileSync(file(name), 'utf8').trim());
  started.add(pid);
  return pid;
};
const gone = (pid: number) => waitFor(`process ${pid} to exit`, () => !isAlive(pid), 30_000);

describe('worker --detach', () => {
  it('returns at once; the worker writes its pid file and logs to its log file (%n, %I, %d expanded, as in --statedb), and removes the pid file at exit', async () => {
    const r = await runCli(sb, ['worker', '--detach', '-n', 'd1@%h', '-l', 'INFO', `--pidfile=${file('%n.pid')}`, `--logfile=${file('%n%I.log')}`,
      `--statedb=${file('%n-%d.state')}`]);
    expect(r).toMatchObject({ code: 0, stdout: '', stderr: '' });
    const pid = pidIn('d1.pid');
    expect(isAlive(pid)).toBe(true);
    expect(readFileSync(file('d1.pid'), 'utf8')).toBe(`${pid}\n`);
    await waitFor('ready in the log file', () => readFileSync(file('d1.log'), 'utf8').includes(`d1@${host} ready.`), 30_000);
    expect(await (await sb.tasks.add.delay(20, 22)).get({ timeout: 20 })).toBe(42);

    // A second worker with the same pid file refuses to start, as Celery's (EX_CANTCREAT).
    const again = await runCli(sb, ['worker', '--detach', '-n', 'd1@%h', `--pidfile=${file('%n.pid')}`]);
    expect(again.code).toBe(73);
    expect(again.stderr).toContain(`Pidfile (${file('d1.pid')}) already exists.\nSeems we're already running? (pid: ${pid})`);

    process.kill(pid, 'SIGTERM');
    await gone(pid);
    expect(existsSync(file('d1.pid'))).toBe(false);
    expect(readFileSync(file('d1.log'), 'utf8')).toContain('Warm shutdown');
    expect(existsSync(file(`d1-${host.split('.').slice(1).join('.')}.state`))).toBe(true);
  });

  it('a stale pid file (its process gone) is removed, and the worker starts', async () => {
    const dead = 2 ** 22 - 1; // above any pid this machine gives out (pid_max 4194304)
    const { writeFileSync } = await import('node:fs');
    writeFileSync(file('stale.pid'), `${dead}\n`);
    const r = await runCli(sb, ['worker', '--detach', '-n', 'stale@%h', `--pidfile=${file('%n.pid')}`, `--logfile=${file('%n.log')}`]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('Stale pidfile exists - Removing it.');
    const pid = pidIn('stale.pid');
    expect(pid).not.toBe(dead);
    process.kill(pid, 'SIGTERM');
    await gone(pid);
  });

  it('a worker that cannot start says so, pointing to its log file', async () => {
    const r = await runCli(sb, ['worker', '--detach', '-n', 'bad@%h', '-I', 'no.such.module', `--pidfile=${file('%n.pid')}`, `--logfile=${file('%n.log')}`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`before it was running; see ${file('bad.log')}`);
    expect(readFileSync(file('bad.log'), 'utf8')).toContain('Cannot find module no.such.module');
  });
});

describe('multi', () => {
  it('`multi start w1 w2` runs two named workers; `multi stopwait` leaves no process and no pid file', async () => {
    const args = ['w1', 'w2', '-A', APP_SPEC, '-l', 'INFO', '-c:2', '3', `--pidfile=${file('%n.pid')}`, `--logfile=${file('%n%I.log')}`];
    const start = await runCli(sb, ['multi', 'start', ...args], { appSpec: null });
    expect(start.stderr).toBe('');
    expect(start.stdout).toContain(`> Starting nodes...\n\t> w1@${short}: OK\n\t> w2@${short}: OK`);
    expect(start.code).toBe(0);
    const pids = [pidIn('w1.pid'), pidIn('w2.pid')];
    for (const n of ['w1', 'w2']) await waitFor(`${n} ready`, () => readFileSync(file(`${n}.log`), 'utf8').includes(`${n}@${short} ready.`), 30_000);
    expect(readFileSync(file('w2.log'), 'utf8')).toContain('concurrency: 3');
    expect(await (await sb.tasks.add.delay(1, 2)).get({ timeout: 20 })).toBe(3);

    const names = await runCli(sb, ['multi', 'names', ...args], { appSpec: null });
    expect(names.stdout).toBe(`w1@${short}\nw2@${short}\n`);

    const stop = await runCli(sb, ['multi', 'stopwait', ...args], { appSpec: null });
    expect(stop.code).toBe(0);
    expect(stop.stdout).toContain(`\t> w1@${short}: TERM -> ${pids[0]}`);
    expect(stop.stdout).toMatch(new RegExp(`> w2@${short}: OK`));
    for (const pid of pids) expect(isAlive(pid)).toBe(false);
    expect(existsSync(file('w1.pid'))).toBe(false);
    expect(existsSync(file('w2.pid'))).toBe(false);

    const again = await runCli(sb, ['multi', 'stop', ...args], { appSpec: null });
    expect(again.stdout).toContain(`> w1@${short}: DOWN`);
  });

  it('`multi restart` starts nodes again under new pids; `multi kill` sends SIGKILL', async () => {
    const args = ['r1', '-A', APP_SPEC, `--pidfile=${file('%n.pid')}`, `--logfile=${file('%n.log')}`];
    expect((await runCli(sb, ['multi', 'start', ...args], { appSpec: null })).code).toBe(0);
    const first = pidIn('r1.pid');
    const restart = await runCli(sb, ['multi', 'restart', ...args], { appSpec: null });
    expect(restart.code).toBe(0);
    expect(restart.stdout).toContain(`> Restarting node r1@${short}: OK`);
    const second = pidIn('r1.pid');
    expect(second).not.toBe(first);
    expect(isAlive(first)).toBe(false);
    const kill = await runCli(sb, ['multi', 'kill', ...args], { appSpec: null });
    expect(kill.stdout).toContain(`Sending SIGKILL to node r1@${short} (${second})`);
    await gone(second);
  });
});
