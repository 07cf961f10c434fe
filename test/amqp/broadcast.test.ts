/**
 * Events and remote control over RabbitMQ with the real Python Celery 5.2, in a vhost of its
 * own: `celery inspect ping` is answered by a celeriac worker, celeriac's Mailbox is answered by
 * a Python worker, and celeriac's event receiver gets the Python worker's heartbeats. The
 * entities declared match Celery's (REFERENCE.md §3.1: kombu would refuse any difference, too).
 */
import { spawnCeleryWorker, stopChild } from '../helpers/python-worker.ts';
import { type ChildProcess, execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Celery } from '../../src/index.ts';
import { Mailbox } from '../../src/control/mailbox.ts';
import type { CeleryEvent } from '../../src/events/event.ts';
import { receiveEvents } from '../../src/events/receiver.ts';
import { createTransport } from '../../src/transport/registry.ts';
import type { ExchangeSpec, Transport } from '../../src/transport/types.ts';
import type { Message } from '../../src/protocol/message.ts';
import { createLogger } from '../../src/common/log.ts';
import { Worker } from '../../src/worker/worker.ts';
import { createVhosts, cuttableProxy, deleteVhosts, runId, vhostUrl } from './helpers.ts';

const PYTHON = '/usr/bin/python3';
const vhost = runId('bcast');
const broker = vhostUrl(vhost);
const jsNode = `js${process.pid}@celeriac-test`;
const pyNode = `py${process.pid}@celeriac-test`;
const warnings: string[] = [];
const logger = { warning: (m: string) => void warnings.push(m), info: () => undefined };

const app = new Celery('t', { broker, brokerTransportOptions: { logger } });
let worker: Worker | undefined;
let python: ChildProcess | undefined;
let pythonLog = '';
let transport: Transport;

function startPythonWorker(): Promise<void> {
  const args = ['-b', broker, 'worker', '-P', 'solo', '-l', 'INFO', '-Q', 'pyq', '-n', pyNode, '--without-mingle', '--without-gossip'];
  const { child, ready } = spawnCeleryWorker(args, { onOutput: (text) => (pythonLog += text) });
  python = child;
  return ready;
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 20_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stdout}\n${stderr}`)) : resolve(stdout + stderr)));
  });
}

beforeAll(async () => {
  await createVhosts([vhost]);
  transport = createTransport(broker, { logger });
  worker = new Worker(app, { hostname: jsNode, queues: ['jsq'], logger: createLogger({ write: () => undefined }) });
  await Promise.all([worker.start(), startPythonWorker()]);
}, 30_000);

afterAll(async () => {
  await stopChild(python);
  await worker?.shutdown();
  await transport?.close();
  await deleteVhosts([vhost]);
}, 30_000);

describe('AMQP broadcast with Python Celery 5.2', () => {
  it('declares the exchanges and queues as Celery does', async () => {
    const exchanges = await run('rabbitmqctl', ['list_exchanges', '-q', '-p', vhost, 'name', 'type', 'durable', 'auto_delete']);
    const ex = (name: string) => exchanges.split('\n').find((l) => l.split('\t')[0] === name)?.split('\t').slice(1);
    expect(ex('celeryev')).toEqual(['topic', 'true', 'false']);
    expect(ex('celery.pidbox')).toEqual(['fanout', 'false', 'false']);
    expect(ex('reply.celery.pidbox')).toEqual(['direct', 'false', 'false']);
    const queues = await run('rabbitmqctl', ['list_queues', '-q', '-p', vhost, 'name', 'durable', 'auto_delete', 'arguments']);
    const pidbox = queues.split('\n').find((l) => l.startsWith(`${jsNode}.celery.pidbox\t`));
    expect(pidbox).toBeDefined();
    expect(pidbox).toMatch(/\tfalse\ttrue\t/);
    expect(pidbox).toMatch(/x-expires.*10000/);
    expect(pidbox).toMatch(/x-message-ttl.*300000/);
    expect(warnings).toEqual([]);
  }, 20_000);

  it('answers `celery inspect ping` from a celeriac worker', async () => {
    const out = await run(PYTHON, ['-m', 'celery', '-b', broker, 'inspect', 'ping', '-t', '3']);
    expect(out).toContain(jsNode);
    expect(out).toMatch(/pong/);
    expect(out).toContain(pyNode);
  }, 20_000);

  it("gets a Python worker's pong through celeriac's Mailbox", async () => {
    const replies = await new Mailbox(transport.broadcast!, `oid-${process.pid}`).call('ping', {}, { timeout: 2 });
    expect(replies).toContainEqual({ [pyNode]: { ok: 'pong' } });
    expect(replies).toContainEqual({ [jsNode]: { ok: 'pong' } });
  }, 10_000);

  it("receives the Python worker's heartbeat events", async () => {
    const got: CeleryEvent[] = [];
    let seen!: () => void;
    const heard = new Promise<void>((resolve) => (seen = resolve));
    const sub = await receiveEvents(transport.broadcast!, (e) => {
      got.push(e);
      if (e.type === 'worker-heartbeat' && e.hostname === pyNode) seen();
    });
    try {
      await Promise.race([heard, new Promise((r) => setTimeout(r, 5000))]);
    } finally {
      await sub.close();
    }
    const beat = got.find((e) => e.type === 'worker-heartbeat' && e.hostname === pyNode);
    expect(beat).toBeDefined();
    expect(beat).toMatchObject({ freq: 2, sw_ident: 'py-celery' });
  }, 10_000);

  it('subscribes again after a reconnection, and deletes the queue on close', async () => {
    const proxy = await cuttableProxy(5672);
    const viaProxy = createTransport(vhostUrl(vhost, proxy.port), { logger: { warning: () => undefined, info: () => undefined } });
    const exchange: ExchangeSpec = { name: 'celeriac.test.fanout', type: 'fanout', durable: false };
    const queue = `bcast-${process.pid}`;
    const got: string[] = [];
    const message = (text: string): Message => ({ headers: {}, properties: {}, contentType: 'application/json', contentEncoding: 'utf-8', body: Buffer.from(JSON.stringify(text)) });
    const arrived = async (text: string) => {
      for (let i = 0; i < 50 && !got.includes(text); i++) {
        await transport.broadcast!.publishExchange(exchange, '', message(text));
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(got).toContain(text);
    };
    try {
      const sub = await viaProxy.broadcast!.subscribe({ exchange, bindingKey: '', queue, expiresMs: 10_000 }, (m) => void got.push(JSON.parse(m.body.toString()) as string));
      await arrived('before');
      proxy.cut(300);
      await arrived('after');
      await sub.close();
      const queues = await run('rabbitmqctl', ['list_queues', '-q', '-p', vhost, 'name']);
      expect(queues.split('\n')).not.toContain(queue);
    } finally {
      await viaProxy.close();
      await proxy.close();
    }
  }, 20_000);
});
