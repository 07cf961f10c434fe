/**
 * Command-line details users meet (issue 11, item 17): Celery's log levels, one-line errors, a
 * closed stdout pipe, where an import error comes from, and `celeriac result` as Celery's.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Celery } from '../../src/index.ts';
import { createLogger } from '../../src/common/log.ts';
import { Worker } from '../../src/worker/worker.ts';
import { deleteByPrefix, runPrefix, TRANSPORT_DB } from '../redis/helpers.ts';
import { createSandbox, projectRoot, runCli, type Sandbox, startProcess, type WorkerProcess } from './helpers.ts';

vi.setConfig({ testTimeout: 30_000, hookTimeout: 40_000 });

const BIN = path.join(projectRoot, 'bin', 'celeriac.js');
let sb: Sandbox;
let worker: WorkerProcess;

beforeAll(async () => {
  sb = await createSandbox('cli-details');
  worker = startProcess(sb, ['worker', '-l', 'FATAL', '-c', '2']);
});

afterAll(async () => {
  await sb?.cleanup();
});

describe('log levels as Celery', () => {
  it('-l FATAL is accepted: the worker runs tasks and logs nothing below CRITICAL', async () => {
    const r = await sb.tasks.add.delay(2, 3);
    expect(await r.get({ timeout: 20 })).toBe(5);
    expect(worker.status).toBeUndefined();
    expect(worker.output()).not.toMatch(/INFO|WARNING|ready\./);
  });

  it('-l verbose is a one-line error naming the accepted levels, not a stack', async () => {
    const { stdout, stderr, code } = await runCli(sb, ['worker', '-l', 'verbose']);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toBe('Error: -l/--loglevel: invalid log level "verbose": use one of DEBUG, INFO, WARNING, ERROR, CRITICAL, FATAL\n');
  });
});

describe('a task module that throws while importing', () => {
  it('names the file, line and column of the error, on one line', async () => {
    const { stderr, code } = await runCli(sb, ['call', 'tasks.add'], { appSpec: './test/fixtures/apps/broken/throws.ts' });
    expect(code).toBe(2);
    expect(stderr).toBe('Error: Error while importing module ./test/fixtures/apps/broken/throws.ts: boom from throws.ts (at test/fixtures/apps/broken/throws.ts:2:9)\n');
  });

  it('a JavaScript syntax error too', async () => {
    const { stderr, code } = await runCli(sb, ['call', 'tasks.add'], { appSpec: './test/fixtures/apps/broken/syntax.mjs' });
    expect(code).toBe(2);
    expect(stderr).toBe('Error: Error while importing module ./test/fixtures/apps/broken/syntax.mjs: Unexpected token \';\' (at test/fixtures/apps/broken/syntax.mjs:3:11)\n');
  });
});

describe('celeriac result', () => {
  it('-t is --task as in Celery (the timeout is --timeout), and the value prints as Python\'s json', async () => {
    const r = await sb.tasks.echo.delay(NaN, 12345678901234567890n, -Infinity);
    const result = await runCli(sb, ['result', r.id, '-t', 'tasks.echo', '--timeout', '20']);
    expect(result).toEqual({ stdout: '[NaN, 12345678901234567890, -Infinity]\n', stderr: '', code: 0 });
  });

  it('with an rpc:// backend says that rpc results reach only the client that sent the task', async () => {
    const { stdout, stderr, code } = await runCli(sb, ['result', '0b6e4a5e-0000-4000-8000-000000000000', '-b', 'amqp://guest:guest@127.0.0.1:5672//', '--result-backend', 'rpc://']);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^Error: celeriac result cannot read an rpc:\/\/ result: rpc results reach only the client that sent the task; .*Redis or SQLite result backend.*\n$/);
  });
});

describe('celeriac inspect against a worker on Redis', () => {
  const prefix = runPrefix('cli-epipe');
  const broker = `redis://127.0.0.1:6379/${TRANSPORT_DB}?global_keyprefix=${encodeURIComponent(prefix)}`;
  let app: Celery;
  let redisWorker: Worker;

  beforeAll(async () => {
    app = new Celery('epipe', { broker, resultBackendTransportOptions: { big: 12345678901234567890n, inf: Infinity } });
    redisWorker = new Worker(app, { hostname: `epipe${process.pid}@test`, logger: createLogger({ level: 'CRITICAL' }), withoutMingle: true, withoutGossip: true });
    await redisWorker.start();
  });

  afterAll(async () => {
    await redisWorker?.shutdown();
    await deleteByPrefix(TRANSPORT_DB, prefix);
  });

  it('inspect ping exits quietly with status 0 when the reader has gone', async () => {
    const child = spawn(process.execPath, [BIN, '-b', broker, 'inspect', 'ping', '-t', '3'], { cwd: projectRoot, env: sb.env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy(); // the reader is gone before the first line
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });

  it('prints big integers and Infinity in replies as Python\'s json does, with -j and without', async () => {
    const json = await runCli(sb, ['-b', broker, 'inspect', 'conf', '-j', '-t', '3', '-d', `epipe${process.pid}@test`], { appSpec: null });
    expect(json.stderr).toBe('');
    expect(json.stdout).toContain('"result_backend_transport_options": {"big": 12345678901234567890, "inf": Infinity}');
    const text = await runCli(sb, ['-b', broker, 'inspect', 'conf', '-t', '3', '-d', `epipe${process.pid}@test`], { appSpec: null });
    expect(text.stderr).toBe('');
    expect(text.stdout).toMatch(/"big": 12345678901234567890,\n\s+"inf": Infinity\n/);
  });
});
