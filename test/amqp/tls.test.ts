/**
 * RabbitMQ over TLS, on a private node whose TLS listener checks client certificates against a
 * throwaway CA: celeriac clients and workers (amqps:// with the ssl_* options, or amqp:// with
 * Celery's brokerUseSsl), Python Celery's broker_use_ssl in both directions, and the errors a user
 * sees when the certificates do not fit.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Celery } from '../../src/index.ts';
import { ConfigurationError } from '../../src/errors.ts';
import { createTransport } from '../../src/transport/registry.ts';
import { createLogger } from '../../src/common/log.ts';
import { Worker } from '../../src/worker/worker.ts';
import { PYTHON, spawnCeleryWorker, stopChild } from '../helpers/python-worker.ts';
import { type PrivateRabbit, privateRabbit, type TestCertificates, testCertificates } from './helpers.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'celeriac-tls-'));
const quiet = { warning: () => undefined, info: () => undefined };
let certs: TestCertificates;
let rabbit: PrivateRabbit;
let tlsUrl: string;
const apps: Celery[] = [];
let worker: Worker | undefined;
let python: ReturnType<typeof spawnCeleryWorker>['child'] | undefined;
let pythonLog = '';

const pythonEnv = () => ({
  ...process.env,
  PYTHONPATH: path.join(here, 'py'),
  CELERIAC_TLS_BROKER: tlsUrl,
  CELERIAC_TLS_CA: certs.ca,
  CELERIAC_TLS_CERT: certs.clientCert,
  CELERIAC_TLS_KEY: certs.clientKey,
});

function app(name: string, config: Record<string, unknown>): Celery {
  const a = new Celery(name, { backend: 'rpc://', brokerTransportOptions: { logger: quiet }, ...config });
  a.task('tlsjs.add', (x: number, y: number) => x + y);
  apps.push(a);
  return a;
}

beforeAll(async () => {
  certs = testCertificates(path.join(dir, 'certs'));
  rabbit = await privateRabbit({ tls: certs });
  tlsUrl = `amqp://guest:guest@localhost:${rabbit.tlsPort}//`;
}, 90_000);

afterAll(async () => {
  await stopChild(python);
  await worker?.shutdown();
  await Promise.all(apps.map((a) => a.close()));
  await rabbit?.destroy();
  fs.rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe('RabbitMQ over TLS', () => {
  it('a celeriac client (Celery\'s brokerUseSsl) and worker (amqps:// with ssl_* options) run a task, rpc:// result included', async () => {
    const query = new URLSearchParams({ ssl_ca_certs: certs.ca, ssl_certfile: certs.clientCert, ssl_keyfile: certs.clientKey }).toString();
    const workerApp = app('tls-worker', { broker: `amqps://guest:guest@localhost:${rabbit.tlsPort}//?${query}`, taskDefaultQueue: 'tls-js' });
    worker = new Worker(workerApp, { queues: ['tls-js'], concurrency: 4, logger: createLogger({ level: 'CRITICAL' }) });
    await worker.start();
    const client = app('tls-client', {
      broker: tlsUrl,
      brokerUseSsl: { caCerts: certs.ca, certfile: certs.clientCert, keyfile: certs.clientKey, certReqs: 'required' },
      taskDefaultQueue: 'tls-js',
    });
    const r = await client.sendTask('tlsjs.add', [20, 22]);
    expect(await r.get({ timeout: 20 })).toBe(42);
  }, 30_000);

  it('a Python client with broker_use_ssl gets its result from the celeriac worker', async () => {
    const out = await new Promise<string>((resolve, reject) => {
      execFile(PYTHON, [path.join(here, 'py', 'tlsapp.py'), 'tlsjs.add', '[5, 6]', 'tls-js'], { env: pythonEnv(), timeout: 40_000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`tlsapp.py failed: ${err.message}\n${stderr}`)) : resolve(stdout),
      );
    });
    expect(JSON.parse(out)).toBe(11);
  }, 45_000);

  it('a Python worker with broker_use_ssl runs a task a celeriac client sent over TLS', async () => {
    const started = spawnCeleryWorker(['-A', 'tlsapp', 'worker', '-P', 'solo', '-l', 'INFO', '-Q', 'tls-py', '-n', `tlspy${process.pid}@%h`,
      '--without-mingle', '--without-gossip', '--without-heartbeat'], { cwd: path.join(here, 'py'), env: pythonEnv(), onOutput: (t) => (pythonLog += t) });
    python = started.child;
    await started.ready;
    const client = app('tls-client-py', { broker: tlsUrl, brokerUseSsl: { ca_certs: certs.ca, certfile: certs.clientCert, keyfile: certs.clientKey } });
    const r = await client.sendTask('tlspy.mul', [6, 7], {}, { queue: 'tls-py' });
    expect(await r.get({ timeout: 20 }), pythonLog).toBe(42);
  }, 60_000);

  it('refuses a broker whose certificate no trusted CA signed, and says so', async () => {
    const t = createTransport(tlsUrl, { logger: quiet, ssl: true, ssl_certfile: certs.clientCert, ssl_keyfile: certs.clientKey });
    try {
      await expect(t.fetch(['tls-none'], 1, 1000)).rejects.toThrow(
        /unreachable \(TLS: self[- ]signed certificate in certificate chain; the broker's certificate is not signed by a CA this client trusts: give that CA's PEM file as ssl_ca_certs \(brokerUseSsl.caCerts\), or set ssl_cert_reqs=none to skip the check\); reconnecting$/,
      );
    } finally {
      await t.close();
    }
  });

  it('a broker that asks for a client certificate turns away a client without one', async () => {
    const t = createTransport(tlsUrl, { logger: quiet, ssl: true, ssl_ca_certs: certs.ca });
    try {
      await expect(t.fetch(['tls-none'], 1, 1000)).rejects.toThrow(
        /unreachable \(TLS: tlsv13 alert certificate required; the broker asks for a client certificate: give ssl_certfile and ssl_keyfile \(brokerUseSsl.certfile, keyfile\)\); reconnecting$/,
      );
    } finally {
      await t.close();
    }
  });

  it('says when the port does not speak TLS', async () => {
    const t = createTransport(`amqps://guest:guest@localhost:${rabbit.port}//?ssl_ca_certs=${encodeURIComponent(certs.ca)}`, { logger: quiet });
    try {
      await expect(t.fetch(['tls-none'], 1, 1000)).rejects.toThrow(/unreachable \(TLS: wrong version number; that port does not speak TLS: use the broker's TLS port \(RabbitMQ's is 5671\) or a plain URL without ssl\); reconnecting$/);
    } finally {
      await t.close();
    }
  });

  it('names the file it cannot read, and a bad brokerUseSsl', () => {
    expect(() => createTransport(`amqps://localhost:${rabbit.tlsPort}//?ssl_ca_certs=/nonexistent/ca.pem`)).toThrow(
      new ConfigurationError('ssl_ca_certs: cannot read /nonexistent/ca.pem (ENOENT); give the path of a PEM file'),
    );
    expect(() => new Celery('bad', { brokerUseSsl: { ca: certs.ca } as never })).toThrow(/brokerUseSsl \(Celery's broker_use_ssl\) has unknown key "ca": expected caCerts, certfile, keyfile, certReqs/);
    expect(() => new Celery('bad', { brokerUseSsl: { certReqs: 'always' } as never })).toThrow(/certReqs must be 'required', 'optional' or 'none'/);
  });
});
