import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { parsePythonDate } from '../src/protocol/json.ts';
import { buildTaskMessage } from '../src/protocol/task-message.ts';
import { createTransport } from '../src/transport/registry.ts';
import { toEnvelope, UNDECODABLE_CONTENT_TYPE } from '../src/protocol/envelope.ts';
import { SqliteTransport } from '../src/transport/sqlite/index.ts';
import { sqlitePath } from '../src/transport/sqlite/db.ts';
import type { ExchangeSpec, Transport } from '../src/transport/types.ts';
import type { Message } from '../src/protocol/message.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixture = path.join(root, 'test/fixtures/sqlite-consumer.ts');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'celeriac-sqlite-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
let seq = 0;
const newUrl = (query = ''): string => `sqlite:///${path.join(dir, `t-${seq++}.db`)}${query}`;

const open: Transport[] = [];
const children: ChildProcess[] = [];
const make = (url: string): SqliteTransport => {
  const t = createTransport(url) as SqliteTransport;
  open.push(t);
  return t;
};
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await Promise.all(open.splice(0).map((t) => t.close()));
});

const task = (id: string, eta?: Date) =>
  buildTaskMessage({ id, name: 'tasks.add', args: [1], origin: 'test@host', replyTo: 'reply', eta });

function child(args: string[]): { proc: ChildProcess; stdout: Promise<string>; line: Promise<string> } {
  const proc = spawn(process.execPath, ['--import', 'tsx', fixture, ...args], { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(proc);
  let out = '';
  let onLine: (s: string) => void = () => {};
  const line = new Promise<string>((resolve) => (onLine = resolve));
  proc.stdout!.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    if (out.includes('\n')) onLine(out.split('\n')[0]!);
  });
  const stdout = new Promise<string>((resolve, reject) =>
    proc.on('exit', (code, sig) => (code === 0 ? resolve(out) : reject(new Error(`child exited ${code ?? sig}`)))),
  );
  stdout.catch(() => {}); // a killed child is expected; callers that await stdout still see it
  return { proc, stdout, line };
}

function raw(t: SqliteTransport): Database.Database {
  const db = new Database(t.file);
  db.pragma('busy_timeout = 10000');
  return db;
}

describe('sqlite transport', () => {
  it('parses URLs and transport options', () => {
    expect(sqlitePath(new URL('sqlite://'))).toBe(path.resolve('celeriac.db'));
    expect(sqlitePath(new URL('sqlite://data/broker.db'))).toBe(path.resolve('data/broker.db'));
    expect(sqlitePath(new URL('sqlite://file.db'))).toBe(path.resolve('file.db'));
    // SQLAlchemy's convention: three slashes then a relative path, four for an absolute one.
    expect(sqlitePath(new URL('sqlite:///rel/broker.db'))).toBe(path.resolve('rel/broker.db'));
    expect(sqlitePath(new URL('sqlite:////abs/broker.db'))).toBe('/abs/broker.db');
    const t = make(newUrl('?visibility_timeout=5'));
    expect(t.visibilityTimeoutMs).toBe(5000);
    expect(t.capabilities).toEqual({ delaysEta: true, deadLetters: true });
  });

  it('two processes draining one file get disjoint messages and, together, all of them', async () => {
    const url = newUrl();
    const t = make(url);
    const sent = Array.from({ length: 2000 }, (_, i) => `m${i}`);
    // A pause after each batch: one process alone cannot keep up with the publisher and leave the other nothing.
    const [a, b] = [child(['drain', url, 'q', '50', '20']), child(['drain', url, 'q', '50', '20'])];
    expect(await Promise.all([a.line, b.line])).toEqual(['ready', 'ready']); // both waiting in fetch
    await Promise.all(sent.map((id) => t.publish('q', task(id))));
    while ((await t.size('q')) > 0) await new Promise((r) => setTimeout(r, 50));
    for (const c of [a, b]) c.proc.stdin!.end(); // they finish the batch they hold, then stop
    const got = await Promise.all([a.stdout, b.stdout]).then((outs) => outs.map((o) => JSON.parse(o.split('\n')[1]!) as string[]));
    const [ga, gb] = got as [string[], string[]];
    expect(ga.length).toBeGreaterThan(0);
    expect(gb.length).toBeGreaterThan(0);
    expect(ga.filter((id) => new Set(gb).has(id))).toEqual([]);
    expect([...ga, ...gb].sort()).toEqual([...sent].sort());
    expect(await t.size('q')).toBe(0);
  }, 30_000);

  it("gives a kill -9'ed consumer's messages to another consumer within seconds", async () => {
    const url = newUrl();
    const t = make(url);
    for (let i = 0; i < 5; i++) await t.publish('q', task(`k${i}`));
    const c = child(['hold', url, 'q', '5']);
    expect(await c.line).toBe('locked');
    expect(await t.fetch(['q'], 10, 0)).toEqual([]);
    const exited = new Promise((resolve) => c.proc.on('exit', resolve));
    c.proc.kill('SIGKILL');
    await exited;
    const other = make(url); // a restarted worker: checks for dead owners on its first fetch
    const start = Date.now();
    const got = await other.fetch(['q'], 10, 5000);
    expect(got.map((d) => d.message.headers.id).sort()).toEqual(['k0', 'k1', 'k2', 'k3', 'k4']);
    expect(got.every((d) => d.info.redelivered)).toBe(true);
    expect(Date.now() - start).toBeLessThan(3000);
  }, 30_000);

  it('redelivers after the visibility timeout when the owner is not on this host', async () => {
    const t = make(newUrl('?visibility_timeout=1'));
    await t.publish('q', task('ghost'));
    const db = raw(t);
    db.prepare(`UPDATE celeriac_messages SET owner = 'otherhost:1:x', owner_pid = 1, owner_host = 'otherhost',
      locked_until = ?, delivery_count = 1`).run(Date.now() + 1000);
    db.close();
    expect(await t.fetch(['q'], 1, 0)).toEqual([]);
    const start = Date.now();
    const [d] = await t.fetch(['q'], 1, 5000);
    expect(d!.message.headers.id).toBe('ghost');
    expect(d!.info.redelivered).toBe(true);
    expect(Date.now() - start).toBeGreaterThanOrEqual(700);
  });

  it('a live consumer keeps its locks past the visibility timeout', async () => {
    const url = newUrl('?visibility_timeout=1');
    const holder = make(url);
    const other = make(url);
    await holder.publish('q', task('long'));
    const [d] = await holder.fetch(['q'], 1, 0);
    await new Promise((r) => setTimeout(r, 1800));
    expect(await other.fetch(['q'], 1, 0)).toEqual([]);
    await d!.ack();
    expect(await other.size('q')).toBe(0);
  });

  it('a consumer whose event loop stalled past the visibility timeout does not take its own messages again', async () => {
    const url = newUrl('?visibility_timeout=0.3');
    const holder = make(url);
    await holder.publish('q', task('stalled'));
    const [d] = await holder.fetch(['q'], 1, 0);
    const until = Date.now() + 800;
    while (Date.now() < until); // a synchronous stall: the lock refresh cannot run
    expect(await holder.fetch(['q'], 1, 0)).toEqual([]);
    const other = make(url);
    const [again] = await other.fetch(['q'], 1, 0); // another consumer may take over an expired lock
    expect(again!.message.headers.id).toBe('stalled');
    await again!.ack();
    await d!.ack();
  });

  it('holds a message with a future eta until it is due', async () => {
    const t = make(newUrl());
    await t.publish('q', task('later', new Date(Date.now() + 1200)));
    await t.publish('q', task('now'));
    await t.publish('q', task('past', new Date(Date.now() - 60_000)));
    expect(await t.size('q')).toBe(3);
    const first = await t.fetch(['q'], 10, 0);
    expect(first.map((d) => d.message.headers.id)).toEqual(['now', 'past']);
    expect(await t.fetch(['q'], 10, 300)).toEqual([]);
    const [later] = await t.fetch(['q'], 10, 5000);
    expect(later!.message.headers.id).toBe('later');
    expect(parsePythonDate(String(later!.message.headers.eta))!.getTime()).toBeLessThanOrEqual(Date.now());
  });

  it('is durable across close and reopen', async () => {
    const url = newUrl();
    const t = createTransport(url);
    await t.publish('q', task('kept'));
    await t.close();
    const again = make(url);
    expect(await again.size('q')).toBe(1);
    const [d] = await again.fetch(['q'], 1, 0);
    expect(d!.message.headers.id).toBe('kept');
    expect(d!.info.redelivered).toBe(false);
  });

  it('returns an undecodable row as an undecodable delivery and never loses it', async () => {
    const t = make(newUrl());
    await t.declareQueue('q');
    const db = raw(t);
    db.prepare(`INSERT INTO celeriac_messages (queue, priority, visible_at, envelope, delivery_tag)
      VALUES ('q', 0, 0, '{not json', 'tag-1')`).run();
    const [d] = await t.fetch(['q'], 1, 0);
    expect(d!.message.contentType).toBe(UNDECODABLE_CONTENT_TYPE);
    expect(d!.message.body.toString()).toBe('{not json');
    expect(d!.deliveryTag).toBe('tag-1');
    await d!.reject(false, 'undecodable');
    const dead = db.prepare('SELECT queue, envelope, reason FROM celeriac_dead_letters').all();
    expect(dead).toEqual([{ queue: 'q', envelope: '{not json', reason: 'undecodable' }]);
    expect(db.prepare('SELECT count(*) AS n FROM celeriac_messages').get()).toEqual({ n: 0 });
    db.close();
  });

  it('does not let a stale delivery settle a message someone else now holds', async () => {
    const url = newUrl('?visibility_timeout=1');
    const t = make(url);
    await t.publish('q', task('x'));
    const [stale] = await t.fetch(['q'], 1, 0);
    const db = raw(t);
    db.prepare("UPDATE celeriac_messages SET owner = 'someone', owner_host = 'otherhost'").run();
    db.close();
    await stale!.ack();
    expect(await make(url).fetch(['q'], 1, 0)).toEqual([]); // still locked by "someone", not deleted
    const check = raw(t);
    expect(check.prepare('SELECT count(*) AS n FROM celeriac_messages').get()).toEqual({ n: 1 });
    check.close();
  });

  it('refuses a directory that does not exist, naming it, and creates nothing', () => {
    const missing = path.join(dir, 'no-such-dir');
    expect(() => make(`sqlite:///${missing}/x.db`)).toThrow(`SQLite database directory ${missing} does not exist`);
    expect(fs.existsSync(missing)).toBe(false);
  });

  it('creates a relative sqlite:/// path under the working directory, not at the filesystem root', async () => {
    const cwd = process.cwd();
    const name = `rel-${process.pid}-${seq++}.db`;
    process.chdir(dir);
    try {
      const t = make(`sqlite:///${name}`);
      await t.publish('q', task('rel'));
      expect(t.file).toBe(path.join(fs.realpathSync(dir), name));
      expect(fs.existsSync(path.join(dir, name))).toBe(true);
      expect(fs.existsSync(path.join('/', name))).toBe(false);
    } finally {
      process.chdir(cwd);
    }
  });

  it('creates the database and its -wal and -shm files readable by their owner only', async () => {
    const old = process.umask(0o022);
    try {
      const t = make(newUrl());
      await t.publish('q', task('private'));
      expect(await t.fetch(['q'], 1, 0)).toHaveLength(1);
      for (const f of [t.file, `${t.file}-wal`, `${t.file}-shm`]) expect((fs.statSync(f).mode & 0o777).toString(8)).toBe('600');
    } finally {
      process.umask(old);
    }
  });

  it('stops with a clear error when the file is deleted or replaced under a consumer and a client', async () => {
    const url = newUrl();
    const consumer = make(url);
    const client = make(url);
    await client.publish('q', task('before'));
    expect(await consumer.fetch(['q'], 1, 0)).toHaveLength(1);
    fs.rmSync(consumer.file);
    fs.rmSync(`${consumer.file}-wal`, { force: true });
    fs.rmSync(`${consumer.file}-shm`, { force: true });
    await expect(consumer.fetch(['q'], 1, 200)).rejects.toThrow(`the SQLite broker file ${consumer.file} was deleted while in use`);
    await expect(client.publish('q', task('lost'))).rejects.toThrow('was deleted while in use');
    // A new process creates a new file; the old handles say it was replaced.
    const fresh = make(url);
    await fresh.publish('q', task('after'));
    await expect(consumer.fetch(['q'], 1, 200)).rejects.toThrow('was replaced by another file while in use');
    await expect(client.publish('q', task('lost'))).rejects.toThrow('was replaced by another file');
    expect(await fresh.fetch(['q'], 1, 0)).toHaveLength(1);
  });

  it('gives the space of a large message back to the filesystem once it is acknowledged', async () => {
    const t = make(newUrl());
    const big = buildTaskMessage({ id: 'big', name: 'tasks.echo', args: ['x'.repeat(20 * 1024 * 1024)], origin: 'test@host', replyTo: 'reply' });
    await t.publish('q', big);
    const [d] = await t.fetch(['q'], 1, 0);
    expect(d!.message.body.length).toBeGreaterThan(20 * 1024 * 1024);
    await d!.ack();
    const size = () => fs.statSync(t.file).size;
    for (let i = 0; i < 300 && size() > 4 * 1024 * 1024; i++) await new Promise((r) => setTimeout(r, 50));
    expect(size()).toBeLessThan(4 * 1024 * 1024);
    // Still a working broker afterwards.
    await t.publish('q', task('after'));
    expect((await t.fetch(['q'], 1, 0)).map((x) => x.deliveryTag)).toHaveLength(1);
  });

  it('still delivers rows written by earlier versions, with the envelope in the message row', async () => {
    const t = make(newUrl());
    const db = raw(t);
    const envelope = toEnvelope(task('old-row'), { exchange: '', routingKey: 'q', deliveryTag: 'tag-old' });
    db.prepare(`INSERT INTO celeriac_messages (queue, priority, visible_at, delayed, envelope, delivery_tag)
                VALUES ('q', 0, 0, 0, ?, 'tag-old')`).run(envelope);
    db.close();
    const [d] = await t.fetch(['q'], 1, 0);
    expect(d!.message.headers.id).toBe('old-row');
    await d!.ack();
    expect(await t.size('q')).toBe(0);
  });
});

describe('sqlite exchanges', () => {
  const fanout: ExchangeSpec = { name: 'sq.fanout', type: 'fanout' };
  const topic: ExchangeSpec = { name: 'sq.topic', type: 'topic' };
  const note = (text: string): Message => ({ headers: { text }, properties: {}, contentType: 'application/json', contentEncoding: 'utf-8', body: Buffer.from('null') });
  const count = (t: SqliteTransport, table: string): number => {
    const db = raw(t);
    try {
      return (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
    } finally {
      db.close();
    }
  };
  async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('writes nothing that no binding takes, and prunes what every subscriber has read', async () => {
    const t = make(newUrl());
    await t.broadcast.publishExchange(fanout, '', note('nobody'));
    expect(count(t, 'celeriac_broadcast')).toBe(0);
    const got: string[] = [];
    const sub = await t.broadcast.subscribe({ exchange: topic, bindingKey: 'worker.#', queue: 'gossip' }, (m) => void got.push(String(m.headers.text)));
    await t.broadcast.publishExchange(topic, 'task.succeeded', note('unbound'));
    expect(count(t, 'celeriac_broadcast')).toBe(0);
    await t.broadcast.publishExchange(topic, 'worker.heartbeat', note('beat'));
    expect(count(t, 'celeriac_broadcast')).toBe(1);
    await until('the message', () => got.length === 1);
    expect(got).toEqual(['beat']);
    await until('the read message to be pruned', () => count(t, 'celeriac_broadcast') === 0);
    await sub.close();
    expect(count(t, 'celeriac_subscribers')).toBe(0);
  });

  it("delivers to another process; a kill -9'ed subscriber is dropped, and with it what only it would read", async () => {
    const url = newUrl();
    const t = make(url);
    const listener = child(['listen', url, fanout.name]);
    let out = '';
    listener.proc.stdout!.on('data', (c: Buffer) => void (out += c.toString()));
    expect(await listener.line).toBe('ready');
    for (const text of ['m1', 'm2', 'm3']) await t.broadcast.publishExchange(fanout, '', note(text));
    await until('the other process to print the messages', () => out === 'ready\nm1\nm2\nm3\n');
    // A live subscription here, so this process does the upkeep.
    await t.broadcast.subscribe({ exchange: topic, bindingKey: '#', queue: 'upkeep' }, () => undefined);
    listener.proc.kill('SIGKILL');
    await until('the dead subscription to go', () => count(t, 'celeriac_subscribers') === 1);
    await t.broadcast.publishExchange(fanout, '', note('after'));
    expect(count(t, 'celeriac_broadcast')).toBe(0);
  });
});
