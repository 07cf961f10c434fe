/**
 * Connections against a private redis-server on spare ports (never the shared one): losing and
 * regaining the server, Unix socket, TLS and Sentinel URLs, for the broker and the result store.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Celery } from '../../src/index.ts';
import { createKeyValueStore } from '../../src/backend/registry.ts';
import { buildTaskMessage } from '../../src/protocol/task-message.ts';
import { OutageLog, redisOptions } from '../../src/transport/redis/connection.ts';
import { createTransport } from '../../src/transport/registry.ts';
import type { Delivery, Transport } from '../../src/transport/types.ts';
import { type PrivateRedis, privateRedis, startSentinel } from './helpers.ts';

let server: PrivateRedis;
beforeAll(async () => {
  server = await privateRedis();
});
afterAll(async () => {
  await server.stop();
  fs.rmSync(server.dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const task = (id: string) => buildTaskMessage({ id, name: 'tasks.add', args: [], origin: 'test@host', replyTo: 'reply' });
const ids = (ds: Delivery[]) => ds.map((d) => String(d.message.headers.id));

/** Publish one message through `t` and fetch it back. */
async function roundTrip(t: Transport, id: string): Promise<void> {
  await t.publish('q', task(id));
  const got = await t.fetch(['q'], 1, 2000);
  expect(ids(got)).toEqual([id]);
  await got[0]!.ack();
}

describe('losing the server', () => {
  it('fetch rejects while Redis is down, works again when it is back, and says so once', async () => {
    const lines: string[] = [];
    const logger = { warning: (m: string) => lines.push(`W ${m}`), info: (m: string) => lines.push(`I ${m}`) };
    const t = createTransport(`redis://127.0.0.1:${server.port}/0`, { logger });
    const raw = new Redis({ port: server.port, lazyConnect: true });
    try {
      await roundTrip(t, 'before');
      await server.stop();
      const start = Date.now();
      await expect(t.fetch(['q'], 1, 5000)).rejects.toThrow();
      expect(Date.now() - start).toBeLessThan(5000);
      await expect(t.publish('q', task('lost'))).rejects.toThrow();

      await server.start();
      // Like the worker: retry every 200 ms until the broker answers.
      let got: Delivery[] | undefined;
      for (let i = 0; i < 50 && !got; i++) got = await t.fetch(['q'], 1, 0).catch(() => sleep(200).then(() => undefined));
      expect(got).toEqual([]);
      // Wake-ups work again: a waiting fetch sees another client's LPUSH long before its safety poll.
      const pending = t.fetch(['q'], 1, 5000);
      const envelope = JSON.stringify({ body: '', 'content-type': 'application/json', 'content-encoding': 'utf-8', headers: { id: 'after' }, properties: { delivery_tag: 'tag-after', delivery_info: { exchange: '', routing_key: 'q' } } });
      const pushed = Date.now();
      setTimeout(() => void raw.lpush('q', envelope), 100);
      expect(ids(await pending)).toEqual(['after']);
      expect(Date.now() - pushed).toBeLessThan(900);
      expect(lines.filter((l) => l.includes('connection lost'))).toHaveLength(1);
      expect(lines.filter((l) => l.includes('reconnected'))).toHaveLength(1);
      expect(lines.join('\n')).toMatch(/^W redis broker redis:\/\/127\.0\.0\.1:\d+\/0: connection lost \(.+\); reconnecting$/m);
    } finally {
      raw.disconnect();
      await t.close();
    }
  });
});

describe('a socket that errs twice', () => {
  // A TLS socket can: our refusal of the server's certificate, then the server's alert. ioredis
  // listens for a socket's first error only; a second must not be an uncaught exception.
  it('is reported once, and its second error is not an uncaught exception', async () => {
    const lines: string[] = [];
    const outage = new OutageLog('redis broker test', { warning: (m) => lines.push(m), info: (m) => lines.push(m) }, 'redis://test');
    const client = outage.watch(new Redis({ port: server.port }));
    try {
      expect(await client.ping()).toBe('PONG');
      const socket = client.stream;
      socket.emit('error', new Error('certificate refused'));
      expect(() => socket.emit('error', new Error('tlsv1 alert decode error'))).not.toThrow();
      expect(lines.filter((l) => l.includes('connection lost'))).toHaveLength(1);
      expect(lines[0]).toContain('certificate refused');
    } finally {
      client.disconnect();
    }
  });
});

describe('without key tracking', () => {
  it('falls back to short polling when CLIENT TRACKING is refused, and says so once', async () => {
    const admin = new Redis({ port: server.port, lazyConnect: true });
    await admin.acl('SETUSER', 'notrack', 'on', '>pw', '~*', '&*', '+@all', '-client|tracking');
    const lines: string[] = [];
    const t = createTransport(`redis://notrack:pw@127.0.0.1:${server.port}/5`, { logger: { warning: (m: string) => lines.push(m), info: (m: string) => lines.push(m) } });
    try {
      expect(await t.fetch(['q'], 1, 0)).toEqual([]);
      const pending = t.fetch(['q'], 1, 5000);
      const envelope = JSON.stringify({ body: '', 'content-type': 'application/json', 'content-encoding': 'utf-8', headers: { id: 'polled' }, properties: { delivery_tag: 'tag-polled', delivery_info: { exchange: '', routing_key: 'q' } } });
      await admin.select(5);
      const pushed = Date.now();
      setTimeout(() => void admin.lpush('q', envelope), 100);
      expect(ids(await pending)).toEqual(['polled']);
      expect(Date.now() - pushed).toBeLessThan(400);
      expect(lines).toEqual([expect.stringMatching(/no key-change notifications \(NOPERM.*\); idle consumers poll every 50 ms$/)]);
    } finally {
      await t.close();
      await admin.acl('DELUSER', 'notrack');
      admin.disconnect();
    }
  });
});

describe('URL schemes', () => {
  it('redis+socket:///path?virtual_host=N', async () => {
    const t = createTransport(`redis+socket://${server.socket}?virtual_host=2`);
    await t.publish('q', task('s1'));
    const raw = new Redis({ port: server.port, db: 2, lazyConnect: true });
    expect(await raw.llen('q')).toBe(1);
    raw.disconnect();
    expect(ids(await t.fetch(['q'], 1, 0))).toEqual(['s1']);
    await t.close();
  });

  it('rediss:// with a CA file, and refuses an unverifiable server by default', async () => {
    const ca = path.join(server.dir, 'cert.pem');
    const ok = createTransport(`rediss://127.0.0.1:${server.tlsPort}/3?ssl_ca_certs=${encodeURIComponent(ca)}`);
    await roundTrip(ok, 'tls');
    await ok.close();
    const store = createKeyValueStore(`rediss://127.0.0.1:${server.tlsPort}/3?ssl_cert_reqs=none`);
    await store.set('k', 'v', 10);
    expect(await store.get('k')).toBe('v');
    await store.close();
    const warnings: string[] = [];
    const strict = createTransport(`rediss://127.0.0.1:${server.tlsPort}/3`, { logger: { warning: (m: string) => void warnings.push(m), info: () => undefined } });
    // The caller's error is the explanation (not ioredis' retry error after its retries).
    await expect(strict.size('q')).rejects.toThrow(/^Cannot connect to rediss:\/\/127\.0\.0\.1:\d+\/3: TLS: self[- ]signed certificate; the broker's certificate is not signed by a CA this client trusts: give that CA's PEM file as ssl_ca_certs \(brokerUseSsl.caCerts\), or set ssl_cert_reqs=none to skip the check$/);
    await strict.close();
    expect(warnings).toEqual([]);
  });

  it("redis:// with Celery's brokerUseSsl and redisBackendUseSsl connects over TLS, broker and results", async () => {
    const ca = path.join(server.dir, 'cert.pem');
    const app = new Celery('redis-tls', {
      broker: `redis://127.0.0.1:${server.tlsPort}/3`,
      backend: `redis://127.0.0.1:${server.tlsPort}/3`,
      brokerUseSsl: { caCerts: ca },
      redisBackendUseSsl: { ssl_ca_certs: ca, ssl_cert_reqs: 2 } as never, // redis-py's names, as a Python config has them
    });
    try {
      await roundTrip(await app.transport(), 'tls-app');
      const backend = await app.backend();
      await backend.storeResult('tls-result', 42, 'SUCCESS');
      expect(await backend.getTaskMeta('tls-result')).toMatchObject({ status: 'SUCCESS', result: 42 });
      await backend.forget('tls-result');
    } finally {
      await app.close();
    }
    expect(() => new Celery('bad', { redisBackendUseSsl: 'yes' as never })).toThrow(
      /^configuration redisBackendUseSsl \(Celery's redis_backend_use_ssl\) must be true, false or an object/,
    );
  });

  it('sentinel:// finds the master through Sentinel (master_name)', async () => {
    const sentinel = await startSentinel(server.port, server.dir);
    try {
      const t = createTransport(`sentinel://127.0.0.1:${sentinel.port}/4`, { masterName: 'mymaster' });
      await roundTrip(t, 'via-sentinel');
      await t.close();
      const store = createKeyValueStore(`sentinel://127.0.0.1:${sentinel.port}/4?master_name=mymaster`);
      await store.set('k', 'v', null);
      const raw = new Redis({ port: server.port, db: 4, lazyConnect: true });
      expect(await raw.get('k')).toBe('v');
      raw.disconnect();
      await store.close();
    } finally {
      await sentinel.stop();
    }
  });

  it('parses options and rejects bad URLs without showing the password', () => {
    expect(redisOptions(new URL('redis://:s3cret@h:6380/7'), {})).toMatchObject({ host: 'h', port: 6380, db: 7, password: 's3cret' });
    expect(redisOptions(new URL('redis://u:p@h'), {})).toMatchObject({ port: 6379, db: 0, username: 'u', password: 'p' });
    expect(redisOptions(new URL('rediss://h/1'), { ssl_cert_reqs: 'CERT_NONE' }).tls).toMatchObject({ rejectUnauthorized: false });
    expect(() => createTransport('sentinel://:pw@h:26379/0')).toThrow(/master_name/);
    expect(() => createTransport('redis://:s3cret@h:6379/x')).toThrow(/^(?!.*s3cret).*invalid Redis database/);
    expect(() => createTransport('redis://h/0?queue_order_strategy=random')).toThrow(/queue_order_strategy/);
    expect(() => createTransport('redis://h/0?priority_steps=3,1')).toThrow(/priority_steps/);
    expect(createTransport('redis://:s3cret@h:6379/0').url).toBe('redis://:**@h:6379/0');
  });
});
