/**
 * Messages a worker process cannot run: an unregistered task name, and malformed messages put
 * on the SQLite queue. The worker says why, keeps running, and keeps the message as a dead letter.
 */
import { randomUUID } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { TaskError } from '../../src/index.ts';
import type { Message } from '../../src/protocol/message.ts';
import { createSandbox, deadLetters, rejection, type Sandbox, startWorker, waitFor, withDb, type WorkerProcess } from './helpers.ts';

vi.setConfig({ testTimeout: 30_000, hookTimeout: 40_000 });

let sb: Sandbox;
let worker: WorkerProcess;

beforeAll(async () => {
  sb = await createSandbox('bad-messages');
  worker = await startWorker(sb, ['-c', '2']);
});

afterAll(async () => {
  await sb?.cleanup();
});

/** The worker is still up and runs a good task. */
async function stillWorks(): Promise<void> {
  expect(worker.status).toBeUndefined();
  const r = await sb.tasks.add.delay(20, 22);
  expect(await r.get({ timeout: 10 })).toBe(42);
}

/** Wait for the dead letter whose envelope or reason matches. */
function deadLetterWith(text: string) {
  return waitFor(`a dead letter containing ${text}`, () => deadLetters(sb).find((d) => d.envelope.includes(text) || (d.reason ?? '').includes(text)));
}

function taskMessage(id: string, body: string | Buffer, contentType = 'application/json', contentEncoding = 'utf-8', headers: Record<string, unknown> = {}): Message {
  return {
    headers: { lang: 'py', task: 'tasks.add', id, root_id: id, retries: 0, argsrepr: '(1, 2)', kwargsrepr: '{}', ...headers },
    properties: { correlation_id: id, priority: 0, delivery_mode: 2 },
    contentType,
    contentEncoding,
    body: typeof body === 'string' ? Buffer.from(body, 'utf8') : body,
  };
}

describe('unregistered task', () => {
  it('fails with NotRegistered, is logged, dead-lettered, and the worker keeps going', async () => {
    const r = await sb.tasks.app.sendTask('no.such.task', [1, 2], { k: 'v' });

    const err = await rejection(r.get({ timeout: 10 }));
    expect(err).toBeInstanceOf(TaskError);
    expect((err as TaskError).excType).toBe('NotRegistered');
    expect((err as TaskError).message).toContain('no.such.task');
    expect(await r.state).toBe('FAILURE');
    expect(await r.result).toMatchObject({ exc_type: 'NotRegistered', exc_module: 'celery.exceptions' });

    const line = await worker.waitForLine('Received unregistered task');
    expect(line).toContain("Received unregistered task of type 'no.such.task'");
    expect(line).toContain('ERROR');

    const dead = await deadLetterWith(r.id);
    expect(dead.queue).toBe('celery');
    expect(dead.reason).toContain('not registered');
    const envelope = JSON.parse(dead.envelope);
    expect(envelope.headers).toMatchObject({ task: 'no.such.task', id: r.id });
    expect(JSON.parse(Buffer.from(envelope.body, 'base64').toString('utf8'))[0]).toEqual([1, 2]);

    await stillWorks();
  });
});

describe('malformed messages', () => {
  it('a body that is not JSON is rejected with the reason and kept', async () => {
    const id = randomUUID();
    const transport = await sb.tasks.app.transport();
    await transport.publish('celery', taskMessage(id, '{"not json'));

    const line = await worker.waitForLine(/Received invalid task message from queue celery: message body is not valid JSON/);
    expect(line).toContain('The message was rejected and kept as a dead letter');
    const dead = await deadLetterWith(id);
    expect(dead.reason).toContain('not valid JSON');
    expect(Buffer.from(JSON.parse(dead.envelope).body, 'base64').toString('utf8')).toBe('{"not json');
    await stillWorks();
  });

  it('a body that is JSON but not [args, kwargs, embed] is rejected and kept', async () => {
    const id = randomUUID();
    const transport = await sb.tasks.app.transport();
    await transport.publish('celery', taskMessage(id, '[1]'));

    await worker.waitForLine('task body must be a JSON array [args, kwargs, embed], got [1]');
    const dead = await deadLetterWith(id);
    expect(dead.reason).toContain('got [1]');
    await stillWorks();
  });

  it('a message with an unsupported content type is rejected and kept', async () => {
    const id = randomUUID();
    const transport = await sb.tasks.app.transport();
    await transport.publish('celery', taskMessage(id, 'binary stuff', 'application/x-python-serialize'));

    await worker.waitForLine('content type "application/x-python-serialize" is not supported');
    await deadLetterWith(id);
    await stillWorks();
  });

  it('a raw queue row that is not a message envelope at all is rejected and kept', async () => {
    const raw = `garbage row ${randomUUID()} {{{`;
    const mark = worker.lines.length;
    withDb(sb, (db) => {
      db.prepare(`INSERT INTO celeriac_messages (queue, priority, visible_at, delayed, envelope, delivery_tag)
                  VALUES ('celery', 0, ?, 0, ?, ?)`).run(Date.now(), raw, randomUUID());
    });

    const line = await worker.waitForLine(/Received invalid task message from queue celery: /, 10_000, mark);
    expect(line).toMatch(/message envelope is not valid JSON/);
    const dead = await deadLetterWith(raw);
    expect(dead.envelope).toBe(raw);
    expect(dead.reason).toMatch(/message envelope is not valid JSON/);
    await stillWorks();
  });

  it('a body that is not valid UTF-8 is rejected, never run with replacement characters', async () => {
    const id = randomUUID();
    const transport = await sb.tasks.app.transport();
    const body = Buffer.concat([Buffer.from('[["a\u00e9'), Buffer.from([0xff, 0xfe]), Buffer.from('", 1], {}, {}]')]);
    await transport.publish('celery', taskMessage(id, body));

    await worker.waitForLine('message body is not valid UTF-8');
    const dead = await deadLetterWith(id);
    expect(dead.reason).toContain('not valid UTF-8');
    await stillWorks();
  });

  it('a compression no Node codec reads (bzip2) is rejected with its name', async () => {
    const id = randomUUID();
    const transport = await sb.tasks.app.transport();
    await transport.publish('celery', taskMessage(id, 'BZh9...', 'application/json', 'utf-8', { compression: 'application/x-bz2' }));

    await worker.waitForLine('compression "application/x-bz2" (bzip2) has no codec in Node.js');
    const dead = await deadLetterWith(id);
    expect(dead.reason).toContain('use zlib or brotli');
    await stillWorks();
  });

  it('a utf-16 body and a zlib-compressed body run as declared', async () => {
    const transport = await sb.tasks.app.transport();
    const utf16 = randomUUID();
    await transport.publish('celery', taskMessage(utf16, Buffer.from('\ufeff[[40, 2], {}, {}]', 'utf16le'), 'application/json', 'utf-16'));
    expect(await sb.tasks.app.AsyncResult(utf16).get({ timeout: 10 })).toBe(42);
    const zipped = randomUUID();
    await transport.publish('celery', taskMessage(zipped, deflateSync('[[7, 8], {}, {}]'), 'application/json', 'utf-8', { compression: 'application/x-gzip' }));
    expect(await sb.tasks.app.AsyncResult(zipped).get({ timeout: 10 })).toBe(15);
  });

  it('nothing was lost: every rejected message is in the dead-letter table and the queue is empty', async () => {
    expect(deadLetters(sb)).toHaveLength(7);
    expect(withDb(sb, (db) => (db.prepare('SELECT count(*) AS n FROM celeriac_messages').get() as { n: number }).n)).toBe(0);
    expect(worker.lines.filter((l) => l.includes('CRITICAL'))).toEqual([]);
  });
});
