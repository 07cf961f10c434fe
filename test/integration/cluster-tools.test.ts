/**
 * The cluster tools on the embedded SQLite default, with real worker processes on one broker
 * file: `celeriac inspect`, `control`, `status` and `events`, revoke with terminate, mingle and
 * gossip (src/transport/sqlite/broadcast.ts carries them).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TaskRevokedError } from '../../src/index.ts';
import { createSandbox, runCli, type Sandbox, startProcess, startWorker, type WorkerProcess } from './helpers.ts';

let sb: Sandbox;
let a: WorkerProcess;

beforeAll(async () => {
  sb = await createSandbox('cluster-tools');
  a = await startWorker(sb, ['-n', 'a@test', '-E', '-c', '4']);
}, 60_000);
afterAll(() => sb?.cleanup());

async function until(what: string, check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function inspectJson(method: string): Promise<Record<string, unknown>> {
  const { stdout, stderr, code } = await runCli(sb, ['inspect', method, '-j', '-t', '2', '-d', 'a@test']);
  expect(stderr).toBe('');
  expect(code).toBe(0);
  return JSON.parse(stdout) as Record<string, unknown>;
}

const running = async (id: string) => ((await inspectJson('active'))['a@test'] as { id: string }[]).some((t) => t.id === id);

describe('cluster tools on the SQLite broker', () => {
  it('inspect ping and stats, and status, are answered by the worker', async () => {
    const ping = await runCli(sb, ['inspect', 'ping', '-t', '2']);
    expect(ping).toMatchObject({ code: 0, stderr: '' });
    expect(ping.stdout).toBe('->  a@test: OK\n        pong\n\n1 node online.\n');
    const stats = (await inspectJson('stats'))['a@test'] as { pid: number; pool: { 'max-concurrency': number } };
    expect(stats.pid).toBe(a.pid);
    expect(stats.pool['max-concurrency']).toBe(4);
    const status = await runCli(sb, ['status', '-t', '2']);
    expect(status).toEqual({ code: 0, stderr: '', stdout: 'a@test: OK\n\n1 node online.\n' });
  });

  it('inspect active lists a running task; revoke with terminate stops it, from the CLI and from AsyncResult', async () => {
    const r1 = await sb.tasks.gated.delay('never-1', 'g1');
    await until('the task to run', () => running(r1.id));
    const revoke = await runCli(sb, ['control', 'revoke', r1.id, '--terminate', '-t', '2']);
    expect(revoke.stdout).toContain(`->  a@test: OK\n        terminate: tasks ${r1.id} flagged as revoked`);
    await expect(r1.get({ timeout: 10 })).rejects.toThrow(TaskRevokedError);
    expect(await r1.state).toBe('REVOKED');

    const r2 = await sb.tasks.gated.delay('never-2', 'g2');
    await until('the task to run', () => running(r2.id));
    await r2.revoke({ terminate: true });
    await expect(r2.get({ timeout: 10 })).rejects.toThrow(TaskRevokedError);
    expect(await r2.result).toMatchObject({ exc_type: 'TaskRevokedError', exc_message: ['terminated'] });
    expect(await running(r2.id)).toBe(false);
  });

  it('control rate_limit sets a rate and refuses a bad one', async () => {
    const ok = await runCli(sb, ['control', 'rate_limit', 'tasks.add', '10/s', '-t', '2']);
    expect(ok).toMatchObject({ code: 0, stdout: '->  a@test: OK\n        new rate limit set successfully\n\n1 node online.\n' });
    const bad = await runCli(sb, ['control', 'rate_limit', 'tasks.add', 'fast', '-t', '2']);
    expect(bad.stdout).toContain('->  a@test: ERROR\n        Invalid rate limit string: "fast"');
  });

  it('celeriac events streams the worker\'s heartbeats and task events', async () => {
    const events = startProcess(sb, ['events', '--json']);
    try {
      await events.waitForLine('Starting capture');
      await events.waitForLine(/"type": "worker-heartbeat"/);
      const r = await sb.tasks.add.delay(2, 3);
      expect(await r.get({ timeout: 10 })).toBe(5);
      const line = await events.waitForLine(new RegExp(`"uuid": "${r.id}".*"type": "task-succeeded"|"type": "task-succeeded".*"uuid": "${r.id}"`));
      expect(JSON.parse(line)).toMatchObject({ type: 'task-succeeded', uuid: r.id, hostname: 'a@test', result: '5' });
      for (const type of ['task-received', 'task-started']) expect(events.output()).toContain(`"type": "${type}"`);
    } finally {
      await events.stop();
    }
  });

  it('mingle: a second worker gets the revokes of the first; gossip: the first sees it join and leave', async () => {
    const revoke = await runCli(sb, ['control', 'revoke', 'revoked-before-b', '-t', '2']);
    expect(revoke.stdout).toContain('->  a@test: OK');
    const from = a.lines.length;
    const b = await startWorker(sb, ['-n', 'b@test', '-Q', 'b-only']);
    expect(b.output()).toContain('mingle: sync with 1 nodes');
    const { stdout } = await runCli(sb, ['inspect', 'revoked', '-j', '-t', '2', '-d', 'b@test']);
    expect((JSON.parse(stdout) as Record<string, string[]>)['b@test']).toContain('revoked-before-b');
    await a.waitForLine('gossip: b@test joined', 15_000, from);
    expect(await b.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    await a.waitForLine('gossip: b@test left', 15_000, from);
    const status = await runCli(sb, ['status', '-t', '2']);
    expect(status.stdout).toBe('a@test: OK\n\n1 node online.\n');
  });
});
