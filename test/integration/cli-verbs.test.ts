/**
 * The rest of Celery's verbs and worker flags: --help with Celery's flag names, report, shell
 * through a pipe, and the worker's -X, --purge and -I.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { REDIS_HOST, RESULTS_DB, TEST_DB } from '../helpers/redis-db.ts';
import { createSandbox, projectRoot, queueSize, runCli, type Sandbox, startWorker, stopAllWorkers } from './helpers.ts';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 40_000 });

let sb: Sandbox;

beforeAll(async () => {
  sb = await createSandbox('cli-verbs');
});

afterAll(async () => {
  await sb?.cleanup();
});

/**
 * Celery 5.2's flags per verb (`celery <verb> --help`). The worker's pool flags (-P, --time-limit,
 * --soft-time-limit, --max-tasks-per-child, --max-memory-per-child, --autoscale) come with pools.
 */
const CELERY_FLAGS: Record<string, string[]> = {
  worker: ['-n', '--hostname', '-D', '--detach', '-S', '--statedb', '-l', '--loglevel', '-O', '--prefetch-multiplier', '-c', '--concurrency',
    '-E', '--task-events', '--events', '--purge', '--discard', '-Q', '--queues', '-X', '--exclude-queues', '-I', '--include',
    '--without-gossip', '--without-mingle', '--without-heartbeat', '--heartbeat-interval', '-B', '--beat', '-s', '--schedule-filename',
    '--schedule', '--scheduler', '-f', '--logfile', '--pidfile', '--uid', '--gid', '--umask', '--executable'],
  beat: ['--detach', '-s', '--schedule', '-S', '--scheduler', '--max-interval', '-l', '--loglevel', '-f', '--logfile', '--pidfile', '--uid', '--gid', '--umask', '--executable'],
  call: ['-a', '--args', '-k', '--kwargs', '--eta', '--countdown', '--expires', '--serializer', '--queue', '--exchange', '--routing-key'],
  result: ['-t', '--task', '--traceback'],
  purge: ['-f', '--force', '-Q', '--queues', '-X', '--exclude-queues'],
  inspect: ['-t', '--timeout', '-d', '--destination', '-j', '--json'],
  control: ['-t', '--timeout', '-d', '--destination', '-j', '--json'],
  status: ['-t', '--timeout', '-d', '--destination', '-j', '--json'],
  events: ['-d', '--dump', '-c', '--camera', '--detach', '-F', '--frequency', '--freq', '-r', '--maxrate', '-l', '--loglevel',
    '-f', '--logfile', '--pidfile', '--uid', '--gid', '--umask', '--executable'],
  multi: ['start', 'stop', 'stopwait', 'restart', 'kill', 'show', 'names', 'get', 'expand', '--pidfile', '--logfile', '--range-prefix', '--hostname', '--nosplash', '--quiet', '--verbose', '--no-color'],
  report: [],
  shell: ['-I', '--ipython', '-B', '--bpython', '--python', '-T', '--without-tasks', '--eventlet', '--gevent'],
  'list bindings': [],
  migrate: ['-n', '--limit', '-t', '--timeout', '-a', '--ack-messages', '-T', '--tasks', '-Q', '--queues', '-F', '--forever'],
};
const GLOBAL = ['-A', '--app', '-b', '--broker', '--result-backend', '--config', '--workdir'];

describe('--help', () => {
  for (const [verb, flags] of Object.entries(CELERY_FLAGS)) {
    it(`${verb} --help lists Celery's flags`, async () => {
      const { stdout, code } = await runCli(sb, [...verb.split(' '), '--help'], { appSpec: null });
      expect(code).toBe(0);
      const words = new Set(stdout.split(/[\s,=]+/).map((w) => w.replace(/^\[|\]$/g, '')));
      const missing = [...flags, ...GLOBAL].filter((f) => !words.has(f));
      expect(missing, stdout).toEqual([]);
    });
  }
});

describe('report', () => {
  it('prints versions and the settings, with passwords and secret settings censored', async () => {
    // Not connected to: report only prints them.
    const { stdout, stderr, code } = await runCli(sb, ['report', '-b', `redis://user:s3cret-pw@${REDIS_HOST}/${TEST_DB}`,
      '--result-backend', `redis://:hunter2-pw@${REDIS_HOST}/${RESULTS_DB}`, '--config', './test/fixtures/config/secret.ts']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/software -> celeriac:\d+\.\d+\.\d+ node:v\d+/);
    expect(stdout).toMatch(/amqplib:\d+\.\d+\.\d+ ioredis:\d+\.\d+\.\d+ better-sqlite3:\d+\.\d+\.\d+/);
    expect(stdout).toContain(`broker_url: 'redis://user:********@${REDIS_HOST}/${TEST_DB}'`);
    expect(stdout).toContain(`result_backend: 'redis://:********@${REDIS_HOST}/${RESULTS_DB}'`);
    expect(stdout).toContain("security_key: '********'");
    expect(stdout).toContain('task_acks_late: True');
    expect(stdout).not.toMatch(/s3cret|hunter2|very-secret/);
  });
});

describe('shell', () => {
  it('runs piped lines one after the other, awaits included, with the app and its tasks in scope', async () => {
    const worker = await startWorker(sb);
    const child = spawn(process.execPath, [path.join(projectRoot, 'bin', 'celeriac.js'), '-A', './test/fixtures/worker-app/tasks.ts:app', 'shell'], {
      cwd: projectRoot, env: sb.env, stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stdin.end([
      'const r = await add.delay(2, 3)',
      'await r.get({ timeout: 20 })',
      'app.main',
      'typeof group',
      'nosuch.thing',
      'await chain(add.s(1, 1), add.s(10)).delay().then((x) => x.get({ timeout: 20 }))',
    ].join('\n') + '\n');
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect(out.split('\n').filter(Boolean)).toEqual([
      'undefined',
      '5',
      "'itest'",
      "'function'",
      'Uncaught ReferenceError: nosuch is not defined',
      '12',
    ]);
    expect(code).toBe(0);
    await worker.stop();
  });
});

describe('list bindings', () => {
  it('on SQLite: the task queues, and the exchanges\' subscriptions of a running worker', async () => {
    const worker = await startWorker(sb, ['-n', 'lb@box']);
    const { stdout, code } = await runCli(sb, ['list', 'bindings']);
    expect(code).toBe(0);
    const rows = stdout.trim().split('\n').slice(2).map((l) => l.trim().split(/\s+/));
    expect(rows).toContainEqual(['celery', 'celery', 'celery']);
    expect(rows).toContainEqual(['lb@box.celery.pidbox', 'celery.pidbox']);
    await worker.stop();
  });
});

describe('worker queue options', () => {
  it('--purge empties the queues first; -X takes a queue out of -Q; -I imports a task module', async () => {
    await sb.tasks.add.delay(1, 1);
    await sb.tasks.add.delay(2, 2);
    expect(queueSize(sb)).toBe(2);
    const worker = await startWorker(sb, ['--purge', '-Q', 'celery,other', '-X', 'other', '-I', './test/fixtures/worker-app/extra.ts']);
    expect(worker.output()).toContain('purge: erased 2 messages from 1 known task queue.');
    expect(worker.output()).toMatch(/\.> celery +exchange=celery/);
    expect(worker.output()).not.toMatch(/\.> other /);
    expect(worker.output()).toContain('  . extra.ping');
    expect(await (await sb.tasks.app.sendTask('extra.ping')).get({ timeout: 20 })).toBe('pong');
    await worker.stop();
    const empty = await runCli(sb, ['worker', '-Q', 'a', '-X', 'a']);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain('-X/--exclude-queues a leaves no queue to consume');
    await stopAllWorkers();
  });
});
