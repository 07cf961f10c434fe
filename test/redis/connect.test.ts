/**
 * A Redis broker that cannot be used at start: nothing listening, a wrong password, a database
 * the server does not have, a certificate nobody trusts. The worker retries what may pass, as
 * Celery's consumer (one line per attempt), and stops with one line when it gives up or when a
 * retry cannot help; a client's call fails within brokerConnectionTimeout with one line.
 * Servers of our own on spare ports; the shared one only for DB 99 (nothing is written).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CeleryConfig } from '../../src/app/config.ts';
import { closedPort, connectAttempt } from '../helpers/connect-attempt.ts';
import { Celery } from '../../src/index.ts';
import { deleteByPrefix, privateRedis, type PrivateRedis, REDIS_HOST, redisClient, runPrefix, sparePort, waitForRedis } from './helpers.ts';

const prefix = runPrefix('connect');

const attempt = (broker: string, config: CeleryConfig = {}) => connectAttempt(broker, config, { global_keyprefix: prefix });

describe('Redis broker connection at start', () => {
  let locked: ChildProcess;
  let lockedPort: number;
  let tls: PrivateRedis;
  beforeAll(async () => {
    lockedPort = await sparePort();
    locked = spawn('redis-server', ['--port', String(lockedPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--requirepass', 'sesame'], { stdio: 'ignore' });
    await waitForRedis({ port: lockedPort, password: 'sesame' } as { port: number });
    tls = await privateRedis();
  });
  afterAll(async () => {
    locked.kill('SIGTERM');
    await tls.stop();
    await deleteByPrefix(0, prefix);
  });

  it('nothing listening: the worker retries with a line per attempt, then gives up with one line; a call fails with one line', async () => {
    const port = await closedPort();
    const url = `redis://127.0.0.1:${port}/0`;
    const { worker, client, log } = await attempt(url, { brokerConnectionMaxRetries: 1, brokerConnectionTimeout: 1 });
    expect(worker).toMatch(new RegExp(`^Cannot connect to ${url}: connect ECONNREFUSED 127\\.0\\.0\\.1:${port} \\(gave up after 1 retry, brokerConnectionMaxRetries\\)$`));
    expect(log.filter((l) => l.startsWith('ERROR'))).toEqual([`ERROR consumer: Cannot connect to ${url}: connect ECONNREFUSED 127.0.0.1:${port}. Trying again in 2.00 seconds... (1/1)`]);
    expect(client).toBe(`Cannot connect to ${url}: connect ECONNREFUSED 127.0.0.1:${port}`);
  });

  it('brokerConnectionRetryOnStartup false: the worker stops at the first failure', async () => {
    const port = await closedPort();
    const { worker, log } = await attempt(`redis://127.0.0.1:${port}/0`, { brokerConnectionRetryOnStartup: false });
    expect(worker).toMatch(/^Cannot connect to redis:\/\/127\.0\.0\.1:\d+\/0: connect ECONNREFUSED/);
    expect(log.filter((l) => /Trying again/.test(l))).toEqual([]);
  });

  it('a wrong password fails at once with one line, not retried, the password masked', async () => {
    const { worker, client, log } = await attempt(`redis://:wrongpass@127.0.0.1:${lockedPort}/0`);
    const line = `Cannot connect to redis://:**@127.0.0.1:${lockedPort}/0: authentication failed (WRONGPASS invalid username-password pair or user is disabled.); check the user name and password in the URL`;
    expect({ worker, client }).toEqual({ worker: line, client: line });
    expect(log.join('\n')).not.toMatch(/Trying again|wrongpass/);
  });

  it('no password where one is needed fails at once with one line', async () => {
    const { worker, client } = await attempt(`redis://127.0.0.1:${lockedPort}/0`);
    expect(worker).toMatch(/^Cannot connect to redis:\/\/127\.0\.0\.1:\d+\/0: authentication failed \(NOAUTH Authentication required\.\); check the user name and password in the URL$/);
    expect(client).toBe(worker);
  });

  it('a database the server does not have (/99) fails at once with one line, and nothing lands in DB 0', async () => {
    const { worker, client, log } = await attempt(`redis://${REDIS_HOST}/99`);
    const line = `Cannot connect to redis://${REDIS_HOST}/99: the server has no such database (ERR DB index is out of range); use a database number it has (0-15 unless its "databases" setting says more)`;
    expect({ worker, client }).toEqual({ worker: line, client: line });
    expect(log.join('\n')).not.toMatch(/ready\.|Trying again/);
    const db0 = redisClient(0);
    try {
      expect(await db0.scan('0', 'MATCH', `${prefix}*`, 'COUNT', 100_000).then(([, keys]) => keys)).toEqual([]);
    } finally {
      db0.disconnect();
    }
  });

  it('an untrusted TLS certificate: the caller gets the explanation, not a retry error', async () => {
    const { worker, client } = await attempt(`rediss://127.0.0.1:${tls.tlsPort}/0`);
    const line = new RegExp(`^Cannot connect to rediss://127\\.0\\.0\\.1:${tls.tlsPort}/0: TLS: .*; the broker's certificate is not signed by a CA this client trusts: give that CA's PEM file as ssl_ca_certs`);
    expect(worker).toMatch(line);
    expect(client).toMatch(line);
  });

  it('an untrusted TLS certificate on the result backend: get() rejects with the explanation', async () => {
    const app = new Celery('tls-backend', { broker: 'memory://', backend: `rediss://127.0.0.1:${tls.tlsPort}/0`, resultBackendTransportOptions: { logger: { warning: () => undefined, info: () => undefined } } });
    try {
      await expect(app.AsyncResult('x').get({ timeout: 30 })).rejects.toThrow(/^Cannot connect to rediss:\/\/127\.0\.0\.1:\d+\/0: TLS: .*certificate is not signed by a CA this client trusts/);
    } finally {
      await app.close();
    }
  });
});
