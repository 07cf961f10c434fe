/**
 * The `celeriac` command line against a worker process: call, result, purge, --version, and the
 * error a user gets for an app that cannot be found.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { APP_SPEC, createSandbox, projectRoot, runCli, type Sandbox, startWorker } from './helpers.ts';

vi.setConfig({ testTimeout: 30_000, hookTimeout: 40_000 });

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let sb: Sandbox;

beforeAll(async () => {
  sb = await createSandbox('cli');
  await startWorker(sb, ['-c', '2']);
});

afterAll(async () => {
  await sb?.cleanup();
});

describe('call and result', () => {
  it('`call tasks.add --args [2,3]` prints an id; `result <id>` prints 5', async () => {
    const call = await runCli(sb, ['call', 'tasks.add', '--args', '[2,3]']);
    expect(call.stderr).toBe('');
    expect(call.code).toBe(0);
    const id = call.stdout.trim();
    expect(id).toMatch(UUID);

    const result = await runCli(sb, ['result', id, '--timeout', '15']);
    expect(result).toEqual({ stdout: '5\n', stderr: '', code: 0 });
    expect(await sb.tasks.app.AsyncResult(id).state).toBe('SUCCESS');
  });

  it('-A works after the verb too, and kwargs reach the task', async () => {
    const call = await runCli(sb, ['call', 'tasks.echo', '--args', '["x"]', '--kwargs', '{"y":"ü"}', '-A', APP_SPEC], { appSpec: null });
    expect(call.code).toBe(0);
    const id = call.stdout.trim();
    expect(id).toMatch(UUID);
    const result = await runCli(sb, ['result', '--timeout', '15', id, '-A', APP_SPEC], { appSpec: null });
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual(['x', { y: 'ü' }]);
  });

  it('`result` of a failed task prints the state and error, and exits non-zero', async () => {
    const r = await sb.tasks.fail.delay('cli');
    const result = await runCli(sb, ['result', r.id, '--timeout', '15']);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^FAILURE: /);
    expect(result.stdout).toContain('cannot handle cli');
  });

  it('bad --args is refused before anything is sent', async () => {
    const call = await runCli(sb, ['call', 'tasks.add', '--args', '{"not":"a list"}']);
    expect(call.code).not.toBe(0);
    expect(call.stdout).toBe('');
    expect(call.stderr).toContain('--args must be a JSON array');
  });
});

describe('purge', () => {
  it('`purge -f` removes the waiting messages and reports how many', async () => {
    // A queue no worker consumes, so the messages wait there.
    for (let i = 0; i < 3; i++) await sb.tasks.add.applyAsync([i, i], {}, { queue: 'idle' });
    const purge = await runCli(sb, ['purge', '-f', '-Q', 'idle']);
    expect(purge).toEqual({ stdout: 'Purged 3 messages from 1 known task queue.\n', stderr: '', code: 0 });
    const again = await runCli(sb, ['purge', '--force', '-Q', 'idle']);
    expect(again.stdout).toBe('Purged 0 messages from 1 known task queue.\n');
  });

  it('`purge` without -f asks for confirmation instead of deleting', async () => {
    await sb.tasks.add.applyAsync([1, 1], {}, { queue: 'idle2' });
    const purge = await runCli(sb, ['purge', '-Q', 'idle2']);
    expect(purge.code).not.toBe(0);
    expect(purge.stderr).toContain('-f/--force');
    expect(await (await sb.tasks.app.transport()).size('idle2')).toBe(1);
  });
});

describe('version and errors', () => {
  it('--version prints the package version', async () => {
    const pkg = JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { version: string };
    expect(await runCli(sb, ['--version'], { appSpec: null })).toEqual({ stdout: `${pkg.version}\n`, stderr: '', code: 0 });
  });

  it('-A nosuch names what was tried and exits non-zero, without a stack trace', async () => {
    const { stdout, stderr, code } = await runCli(sb, ['call', 'tasks.add'], { appSpec: 'nosuch' });
    expect(code).not.toBe(0);
    expect(code).not.toBeNull();
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^Error: Cannot find module nosuch/);
    expect(stderr).toContain(`looked for ${path.join(projectRoot, 'nosuch')}.{ts,`);
    expect(stderr).toContain('-A module:attribute');
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it('a worker given an unsupported broker URL says so and exits non-zero', async () => {
    const { stderr, code } = await runCli(sb, ['worker', '-b', 'kafka://localhost:9092']);
    expect(code).not.toBe(0);
    expect(code).not.toBeNull();
    expect(stderr).toContain('unsupported broker URL scheme "kafka"');
    expect(stderr).toContain('sqlite://');
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it('-A with a missing export lists the exports the module has', async () => {
    const { stderr, code } = await runCli(sb, ['worker'], { appSpec: './test/fixtures/worker-app/tasks.ts:nope' });
    expect(code).not.toBe(0);
    expect(stderr).toContain('has no export "nope"');
    expect(stderr).toMatch(/its exports are: .*\bapp\b/);
  });
});
