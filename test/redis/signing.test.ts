/**
 * Message signing (Celery's auth serializer) between celeriac and Python Celery 5.2 on Redis: each
 * side verifies what the other signed, and a celeriac worker that accepts only signed messages
 * refuses unsigned and tampered ones into the dead letters with the reason. The key and
 * certificate are made with openssl for the run. Broker under a run-unique key prefix.
 */
import { execFile, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Celery } from '../../src/index.ts';
import { ConfigurationError } from '../../src/errors.ts';
import { createLogger } from '../../src/common/log.ts';
import { Worker } from '../../src/worker/worker.ts';
import { spawnCeleryWorker, stopChild } from '../helpers/python-worker.ts';
import { celeryPython, deleteByPrefix, redisClient, RESULTS_DB, runPrefix, trackResults, TRANSPORT_DB } from './helpers.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const prefix = runPrefix('signing');
const brokerBase = `redis://127.0.0.1:6379/${TRANSPORT_DB}`;
const brokerUrl = `${brokerBase}?global_keyprefix=${encodeURIComponent(prefix)}`;
const backendUrl = `redis://127.0.0.1:6379/${RESULTS_DB}`;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'celeriac-signing-'));
const keyFile = path.join(dir, 'signer.key');
const certFile = path.join(dir, 'store', 'signer.pem');
const results = trackResults();
const env = {
  ...process.env, PYTHONPATH: path.join(here, 'py'), CELERIAC_TEST_BROKER: brokerBase, CELERIAC_TEST_BACKEND: backendUrl,
  CELERIAC_TEST_PREFIX: prefix, SIGNING_KEY: keyFile, SIGNING_CERT: certFile, SIGNING_STORE: path.join(dir, 'store'),
};

let app: Celery;
let worker: Worker;
let python: ChildProcess | undefined;
const logLines: string[] = [];

beforeAll(async () => {
  fs.mkdirSync(path.join(dir, 'store'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/C=FR/O=celeriac tests/CN=signer'], { stdio: 'ignore' });
  app = new Celery('signed', {
    broker: brokerUrl, backend: backendUrl, taskSerializer: 'auth', acceptContent: ['auth'],
    securityKey: keyFile, securityCertificate: certFile, securityCertStore: path.join(dir, 'store'),
  });
  app.task('jssigned.mul', (x: number, y: number) => x * y);
  const logger = createLogger({ level: 'ERROR', write: (line: string) => void logLines.push(line) });
  worker = new Worker(app, { queues: ['js'], logger });
  await worker.start();
  const started = spawnCeleryWorker(
    ['-A', 'signedtasks', 'worker', '-P', 'solo', '-l', 'INFO', '-Q', 'py', '-n', `signed${process.pid}@%h`, '--without-mingle', '--without-gossip', '--without-heartbeat'],
    { cwd: path.join(here, 'py'), env },
  );
  python = started.child;
  await started.ready;
}, 60_000);

afterAll(async () => {
  await stopChild(python);
  await worker?.shutdown();
  await deleteByPrefix(TRANSPORT_DB, prefix);
  await results.cleanup();
  fs.rmSync(dir, { recursive: true, force: true });
});

function deadLetters(queue: string): Promise<string[]> {
  const r = redisClient(TRANSPORT_DB);
  return r.lrange(`${prefix}${queue}.celeriac.dead`, 0, -1).finally(() => r.disconnect());
}

async function waitForDeadLetter(queue: string, text: string): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const hit = (await deadLetters(queue)).find((d) => d.includes(text));
    if (hit) return hit;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no dead letter in ${queue} containing ${text}`);
}

describe('signed task messages with Python Celery', () => {
  it('a celeriac client signs; the Python worker (setup_security) verifies and runs it', async () => {
    const r = await app.sendTask('signed.add', [40, 2], {}, { queue: 'py' });
    results.add(r.id);
    expect(await r.get({ timeout: 15 })).toBe(42);
  });

  it('a Python client signs; the celeriac worker verifies and runs it', async () => {
    const out = await new Promise<string>((resolve, reject) =>
      execFile(celeryPython(), [path.join(here, 'py', 'signedtasks.py'), 'jssigned.mul', 'js', '6', '7'], { env, timeout: 30_000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout.trim()),
      ),
    );
    const [id, value] = out.split(' ');
    results.add(id);
    expect(value).toBe('42');
  });

  it('the celeriac worker refuses an unsigned message into the dead letters, with the reason', async () => {
    const plain = new Celery('plain', { broker: brokerUrl, backend: backendUrl });
    const r = await plain.sendTask('jssigned.mul', [1, 2], {}, { queue: 'js' });
    results.add(r.id);
    const dead = await waitForDeadLetter('js', r.id);
    expect(dead).toContain('Refusing to deserialize untrusted content of type json (application/json)');
    await plain.close();
  });

  it('the celeriac worker refuses a tampered signed message (Bad signature)', async () => {
    const transport = await app.transport();
    const { buildTaskMessage } = await import('../../src/protocol/task-message.ts');
    const id = `tampered-${prefix}`;
    const message = buildTaskMessage({ id, name: 'jssigned.mul', args: [3, 3], origin: 'test', replyTo: app.oid, serializer: 'auth' });
    const fields = Buffer.from(message.body.toString(), 'base64');
    const at = fields.lastIndexOf(Buffer.from('[[3, 3]'));
    fields.write('[[9, 3]', at);
    await transport.publish('js', { ...message, body: Buffer.from(fields.toString('base64')) });
    const dead = await waitForDeadLetter('js', id);
    expect(dead).toContain('Bad signature');
    expect(logLines.join('\n')).toContain('Bad signature');
    const again = await app.sendTask('jssigned.mul', [5, 5], {}, { queue: 'js' });
    results.add(again.id);
    expect(await again.get({ timeout: 10 })).toBe(25);
  });

  it('signing without verifying is refused, as Celery refuses it', () => {
    expect(() => new Celery('half', { taskSerializer: 'auth', acceptContent: ['json', 'auth'], securityKey: keyFile, securityCertificate: certFile, securityCertStore: certFile }))
      .toThrow(ConfigurationError);
    expect(() => new Celery('nokey', { taskSerializer: 'auth', acceptContent: ['auth'] })).toThrow(/needs securityKey, securityCertificate and securityCertStore/);
  });
});
