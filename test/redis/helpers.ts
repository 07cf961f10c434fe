/**
 * Redis test helpers. The server at 127.0.0.1:6379 is shared: tests keep to the DBs of
 * ../helpers/redis-db.ts (TRANSPORT_DB and the other DB constants are its TEST_DB; result
 * backends use RESULTS_DB), to a key prefix unique to the run, and delete what they created.
 * Pub/sub channels are not per DB: the key prefix (kombu's global_keyprefix prefixes them too)
 * keeps them apart.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import type { RedisTransport } from '../../src/transport/redis/index.ts';
import type { Transport } from '../../src/transport/types.ts';
import { deleteByPrefix, REDIS_HOST, runPrefix, TEST_DB } from '../helpers/redis-db.ts';

export { deleteByPrefix, REDIS_HOST, RESULTS_DB, redisClient, runPrefix, TEST_DB, trackResults } from '../helpers/redis-db.ts';
export const TRANSPORT_DB = TEST_DB;

/** The shared transport conformance suite's view of the Redis broker. */
export function redisConformanceKind() {
  const prefix = runPrefix('conformance');
  let seq = 0;
  return {
    name: 'redis',
    newUrl: () => `redis://${REDIS_HOST}/${TRANSPORT_DB}?global_keyprefix=${encodeURIComponent(`${prefix}${seq++}:`)}`,
    deadLetters: async (t: Transport): Promise<{ reason: string | null }[]> => {
      const rt = t as RedisTransport;
      const records = await rt.client.lrange(rt.keys.dead('q'), 0, -1);
      return records.reverse().map((r) => JSON.parse(r) as { reason: string | null });
    },
    /** Tests of behaviour Redis deliberately does differently, with the reason. */
    skip: {
      'delivers higher priorities first':
        "kombu's Redis transport consumes LOWER priority numbers first (steps 0,3,6,9 as separate lists); kept for wire compatibility, checked in test/redis/transport.test.ts",
      'fetches from several queues, best priority first, and only from those queues':
        'same inverted priority order, and queues are taken round robin as kombu does; checked in test/redis/transport.test.ts',
    } as Record<string, string>,
    cleanup: () => deleteByPrefix(TRANSPORT_DB, prefix),
  };
}

export interface PrivateRedis {
  port: number;
  tlsPort: number;
  socket: string;
  dir: string;
  /** Start (again) on the same ports. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** A free TCP port in 6300..6399 (the shared server keeps 6379). */
export async function sparePort(exclude: number[] = []): Promise<number> {
  for (let port = 6300 + Math.floor(Math.random() * 100), n = 0; n < 100; n++, port = 6300 + ((port - 6300 + 1) % 100)) {
    if (port === 6379 || exclude.includes(port)) continue;
    const free = await new Promise<boolean>((resolve) => {
      const srv = net.createServer().once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port in 6300..6399');
}

/** Wait until something answers PING on the port (or the socket). */
export async function waitForRedis(opts: { port?: number; path?: string }, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const r = new Redis({ ...opts, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    r.on('error', () => undefined);
    try {
      await r.connect();
      if ((await r.ping()) === 'PONG') return;
    } catch {
      if (Date.now() > deadline) throw new Error(`redis on ${JSON.stringify(opts)} did not start`);
      await new Promise((res) => setTimeout(res, 50));
    } finally {
      r.disconnect();
    }
  }
}

/**
 * A private redis-server (no persistence) on spare ports: TCP, TLS with a self-signed certificate
 * for 127.0.0.1 (`cert.pem` in `dir`), and a Unix socket. For tests that stop and restart Redis.
 */
export async function privateRedis(): Promise<PrivateRedis> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'celeriac-redis-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
  const port = await sparePort();
  const tlsPort = await sparePort([port]);
  const socket = path.join(dir, 'redis.sock');
  let proc: ChildProcess | undefined;
  const server: PrivateRedis = {
    port, tlsPort, socket, dir,
    async start() {
      proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
        '--unixsocket', socket, '--unixsocketperm', '700', '--tls-port', String(tlsPort), '--tls-auth-clients', 'no',
        '--tls-cert-file', path.join(dir, 'cert.pem'), '--tls-key-file', path.join(dir, 'key.pem'), '--tls-ca-cert-file', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
      await waitForRedis({ port });
    },
    async stop() {
      const p = proc;
      proc = undefined;
      if (!p || p.exitCode !== null) return;
      const exited = new Promise((res) => p.once('exit', res));
      p.kill('SIGTERM');
      await exited;
    },
  };
  await server.start();
  return server;
}

/** A Sentinel watching `masterPort` as "mymaster"; resolves with its port and a stop function. */
export async function startSentinel(masterPort: number, dir: string): Promise<{ port: number; stop: () => Promise<void> }> {
  const port = await sparePort([masterPort]);
  const conf = path.join(dir, `sentinel-${port}.conf`);
  fs.writeFileSync(conf, `port ${port}\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 ${masterPort} 1\n`);
  const p = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
  await waitForRedis({ port });
  return {
    port,
    stop: async () => {
      if (p.exitCode !== null) return;
      const exited = new Promise((res) => p.once('exit', res));
      p.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * A Python 3 interpreter that has Celery: $CELERIAC_TEST_PYTHON, else the first `python3` on PATH
 * that can import it (a virtualenv's python3 may come first without it). Throws when there is none:
 * the interop tests must not silently test nothing.
 */
export function celeryPython(): string {
  // The system interpreter first: it is the one with the Debian Celery 5.2 the wire reference was taken with.
  const candidates = process.env.CELERIAC_TEST_PYTHON
    ? [process.env.CELERIAC_TEST_PYTHON]
    : ['/usr/bin/python3', ...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean).map((dir) => path.join(dir, 'python3'))];
  for (const exe of [...new Set(candidates)]) {
    try {
      execFileSync(exe, ['-c', 'import celery, redis'], { stdio: 'ignore', timeout: 20_000 });
      return exe;
    } catch {
      // not there, or without Celery
    }
  }
  throw new Error('no python3 with Celery 5 and redis-py found on PATH: set CELERIAC_TEST_PYTHON to one');
}

/** A child process whose output is kept, for the workers of the interop tests. */
export interface Proc {
  readonly child: ChildProcess;
  /** Everything written to stdout and stderr so far. */
  log(): string;
  /** Resolves when the output matches `re`; rejects on exit or after `ms`. */
  waitFor(re: RegExp, ms?: number): Promise<void>;
  /** SIGTERM (warm shutdown), SIGKILL after `ms`. */
  stop(ms?: number): Promise<void>;
  /** SIGKILL (to its whole process group when started with `group`), resolved once it has exited. */
  kill(): Promise<void>;
}

/** `group`: the child leads a process group of its own, so kill() also ends its children (a prefork pool). */
export function spawnLogged(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; group?: boolean } = {}): Proc {
  const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], detached: opts.group === true });
  let out = '';
  const watchers = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    out += chunk.toString();
    for (const w of [...watchers]) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  exited.then(() => [...watchers].forEach((w) => w()));
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  const killAll = () => {
    try {
      if (opts.group && child.pid) process.kill(-child.pid, 'SIGKILL');
      else child.kill('SIGKILL');
    } catch {
      // already gone
    }
  };
  const end = async (signal: NodeJS.Signals, ms: number) => {
    if (gone()) {
      if (signal === 'SIGKILL') killAll(); // children of a group may outlive their parent
      return;
    }
    if (signal === 'SIGKILL') killAll();
    else child.kill(signal);
    const timer = setTimeout(killAll, ms);
    await exited;
    clearTimeout(timer);
  };
  return {
    child,
    log: () => out,
    waitFor: (re, ms = 20_000) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => done(new Error(`no ${re} in the output of ${path.basename(cmd)} within ${ms} ms:\n${out}`)), ms);
        const check = () => {
          if (re.test(out)) done();
          else if (gone()) done(new Error(`${path.basename(cmd)} exited (${child.exitCode ?? child.signalCode}) before ${re}:\n${out}`));
        };
        const done = (err?: Error) => {
          clearTimeout(timer);
          watchers.delete(check);
          if (err) reject(err);
          else resolve();
        };
        watchers.add(check);
        check();
      }),
    stop: (ms = 10_000) => end('SIGTERM', ms),
    kill: () => end('SIGKILL', 0),
  };
}

const projectRoot = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
export const PY_DIR = path.join(projectRoot, 'test', 'redis', 'py');

/**
 * `python3 -m celery -A <module> worker …` in `dir` (default test/redis/py), in a process group of
 * its own (kill() ends a prefork pool too); resolves once it logs "ready.".
 */
export async function startPythonWorker(module: string, args: string[], env: NodeJS.ProcessEnv, dir = PY_DIR): Promise<Proc> {
  const p = spawnLogged(celeryPython(), ['-m', 'celery', '-A', module, 'worker', ...args], { cwd: dir, env: { ...process.env, PYTHONPATH: dir, ...env }, group: true });
  try {
    await p.waitFor(/ ready\./, 30_000);
  } catch (err) {
    await p.kill();
    throw err;
  }
  return p;
}

/** `node bin/celeriac.js -A <module> worker …`; resolves once it logs "ready.". */
export async function startCeleriacWorker(module: string, args: string[], env: NodeJS.ProcessEnv): Promise<Proc> {
  const p = spawnLogged(process.execPath, [path.join(projectRoot, 'bin', 'celeriac.js'), '-A', module, 'worker', ...args], { cwd: projectRoot, env: { ...process.env, ...env } });
  try {
    await p.waitFor(/ ready\./, 30_000);
  } catch (err) {
    await p.kill();
    throw err;
  }
  return p;
}

export interface DurableRedis {
  port: number;
  dir: string;
  start(): Promise<void>;
  /** SIGKILL: a crash. Every write acknowledged so far is on disk (appendfsync always). */
  crash(): Promise<void>;
  /** Stop for good and remove the data folder. */
  destroy(): Promise<void>;
}

/** A private redis-server on a spare port that keeps its data across restarts (AOF, fsync on every write). */
export async function durableRedis(): Promise<DurableRedis> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'celeriac-redis-aof-'));
  const port = await sparePort();
  let proc: ChildProcess | undefined;
  const halt = async (signal: NodeJS.Signals) => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((res) => p.once('exit', res));
    p.kill(signal);
    await exited;
  };
  const server: DurableRedis = {
    port,
    dir,
    async start() {
      proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always'], { stdio: 'ignore' });
      await waitForRedis({ port });
    },
    crash: () => halt('SIGKILL'),
    async destroy() {
      await halt('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}
