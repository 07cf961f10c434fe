/**
 * kombu's message compression between celeriac and Python Celery 5.2 on Redis: a Python client's
 * zlib-compressed task runs on a celeriac worker, and a celeriac client's runs on a Python worker.
 * Broker under a key prefix unique to the run; results by task id, deleted afterwards.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Celery } from '../../src/index.ts';
import { createLogger } from '../../src/common/log.ts';
import { Worker } from '../../src/worker/worker.ts';
import { spawnCeleryWorker, stopChild } from '../helpers/python-worker.ts';
import { celeryPython, deleteByPrefix, redisClient, RESULTS_DB, runPrefix, trackResults, TRANSPORT_DB } from './helpers.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const prefix = runPrefix('compression');
const brokerBase = `redis://127.0.0.1:6379/${TRANSPORT_DB}`;
const brokerUrl = `${brokerBase}?global_keyprefix=${encodeURIComponent(prefix)}`;
const backendUrl = `redis://127.0.0.1:6379/${RESULTS_DB}`;
const env = { ...process.env, PYTHONPATH: path.join(here, 'py'), CELERIAC_TEST_BROKER: brokerBase, CELERIAC_TEST_BACKEND: backendUrl, CELERIAC_TEST_PREFIX: prefix };
const results = trackResults();

const app = new Celery('zip', { broker: brokerUrl, backend: backendUrl });
app.task('jstasks.concat', (a: string, b: string) => a + b);
let jsWorker: Worker;
let python: ChildProcess | undefined;

beforeAll(async () => {
  jsWorker = new Worker(app, { queues: ['js'], logger: createLogger({ level: 'CRITICAL' }) });
  await jsWorker.start();
  const { child, ready } = spawnCeleryWorker(
    ['-A', 'pytasks', 'worker', '-P', 'solo', '-l', 'INFO', '-Q', 'py', '-n', `zip${process.pid}@%h`, '--without-mingle', '--without-gossip', '--without-heartbeat'],
    { cwd: path.join(here, 'py'), env },
  );
  python = child;
  await ready;
}, 60_000);

afterAll(async () => {
  await stopChild(python);
  await jsWorker.shutdown();
  await deleteByPrefix(TRANSPORT_DB, prefix);
  await results.cleanup();
});

function pythonSend(task: string, queue: string, compression: string, args: unknown[]): Promise<{ id: string; result: unknown }> {
  return new Promise((resolve, reject) => {
    execFile(celeryPython(), [path.join(here, 'py', 'compressed_client.py'), task, queue, compression, JSON.stringify(args)], { env, timeout: 30_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`compressed_client.py failed: ${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout) as { id: string; result: unknown }),
    );
  });
}

describe('compressed task messages with Python Celery', () => {
  it('a Python client sends with compression="zlib"; the celeriac worker runs it', async () => {
    const long = 'x'.repeat(5000);
    const { id, result } = await pythonSend('jstasks.concat', 'js', 'zlib', [long, 'é']);
    results.add(id);
    expect(result).toBe(`${long}é`);
  });

  it('a celeriac client sends with compression "zlib"; the Python worker runs it', async () => {
    const r = await app.sendTask('pytasks.add', [40, 2], {}, { queue: 'py', compression: 'zlib' });
    results.add(r.id);
    expect(await r.get({ timeout: 15 })).toBe(42);
  });

  it('what goes on the wire is kombu compression: the header names it and the body is zlib', async () => {
    const raw = redisClient(TRANSPORT_DB);
    const r = await app.sendTask('nobody.listens', ['a'], {}, { queue: 'zipped_only', compression: 'gzip' });
    results.add(r.id);
    const [entry] = await raw.lrange(`${prefix}zipped_only`, 0, -1);
    raw.disconnect();
    const envelope = JSON.parse(entry!);
    expect(envelope.headers.compression).toBe('application/x-gzip');
    const { inflateSync } = await import('node:zlib');
    expect(JSON.parse(inflateSync(Buffer.from(envelope.body, 'base64')).toString('utf8'))[0]).toEqual(['a']);
  });

  it('an unknown compression is refused when sending, by name', async () => {
    await expect(app.sendTask('pytasks.add', [1, 2], {}, { queue: 'py', compression: 'bzip2' })).rejects.toThrow(/compression "bzip2" \(bzip2\) has no codec in Node\.js/);
  });
});
