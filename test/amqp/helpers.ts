/**
 * RabbitMQ test helpers. The broker at 127.0.0.1:5672 is shared: every test keeps to its own
 * vhost (created and deleted here with rabbitmqctl) or to queue names unique to the run, and
 * deletes what it declared. Tests that stop the broker start a private one (privateRabbit).
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import amqplib from 'amqplib';
import type { AmqpTransport } from '../../src/transport/amqp/index.ts';
import type { Transport } from '../../src/transport/types.ts';

export const SHARED = 'amqp://guest:guest@127.0.0.1:5672';

/** A name no other run shares (vhosts, queues). */
export function runId(name: string): string {
  return `celeriac-test-${name}-${process.pid}-${Date.now().toString(36)}`;
}

export const vhostUrl = (vhost: string, port = 5672): string => `amqp://guest:guest@127.0.0.1:${port}/${encodeURIComponent(vhost)}`;

const bin = (s: string) => `<<"${s.replace(/[^\w.-]/g, '')}">>`;
const addVhosts = (names: string[]) =>
  `[begin ok = rabbit_vhost:add(V, <<"celeriac-test">>), ok = rabbit_auth_backend_internal:set_permissions(<<"guest">>, V, <<".*">>, <<".*">>, <<".*">>, <<"celeriac-test">>) end || V <- [${names.map(bin).join(',')}]].`;
const deleteVhostsCode = (names: string[]) => `[rabbit_vhost:delete(V, <<"celeriac-test">>) || V <- [${names.map(bin).join(',')}]].`;

/** Create vhosts on the shared broker (one rabbitmqctl call), guest with all permissions. */
export function createVhostsSync(names: string[]): void {
  execFileSync('rabbitmqctl', ['eval', addVhosts(names)], { stdio: 'pipe', timeout: 30_000 });
}

export function createVhosts(names: string[]): Promise<void> {
  return rabbitmqctl(['eval', addVhosts(names)]);
}

/** Delete vhosts and wait until the broker no longer lists them (a loaded broker may lag). */
export async function deleteVhosts(names: string[]): Promise<void> {
  if (names.length === 0) return;
  await rabbitmqctl(['eval', deleteVhostsCode(names)]);
  for (let i = 0; i < 60; i++) {
    const left = (await listVhosts()).filter((v) => names.includes(v));
    if (left.length === 0) return;
    await new Promise((r) => setTimeout(r, 500));
    if (i % 10 === 9) await rabbitmqctl(['eval', deleteVhostsCode(left)]);
  }
  throw new Error(`rabbitmqctl: vhosts still listed after deletion: ${names.join(', ')}`);
}

function listVhosts(): Promise<string[]> {
  return new Promise((resolve, reject) => {
    execFile('rabbitmqctl', ['list_vhosts', '-q', '--no-table-headers'], { timeout: 30_000 }, (err, out) => (err ? reject(err) : resolve(out.split('\n').map((l) => l.trim()))));
  });
}

function rabbitmqctl(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('rabbitmqctl', args, { timeout: 30_000 }, (err, _out, stderr) => (err ? reject(new Error(`rabbitmqctl: ${err.message}\n${stderr}`)) : resolve()));
  });
}

/** A plain amqplib connection for looking at (and cleaning up) what a test left. */
export async function rawChannel(url: string): Promise<{ ch: amqplib.Channel; close: () => Promise<void> }> {
  const conn = await amqplib.connect(url);
  conn.on('error', () => undefined);
  const ch = await conn.createChannel();
  ch.on('error', () => undefined);
  return { ch, close: () => conn.close().catch(() => undefined) };
}

/** Take (and remove) every message of a queue. */
export async function drain(url: string, queue: string): Promise<amqplib.GetMessage[]> {
  const { ch, close } = await rawChannel(url);
  try {
    const out: amqplib.GetMessage[] = [];
    for (let m; (m = await ch.get(queue, { noAck: true })) !== false;) out.push(m);
    return out;
  } finally {
    await close();
  }
}

/** The shared transport conformance suite's view of RabbitMQ: one fresh vhost per URL. */
export function amqpConformanceKind() {
  const pool: string[] = [];
  const used: string[] = [];
  const base = runId('conf');
  return {
    name: 'amqp',
    newUrl: () => {
      if (pool.length === 0) {
        const batch = Array.from({ length: 10 }, (_, i) => `${base}-${used.length + i}`);
        createVhostsSync(batch);
        pool.push(...batch);
      }
      const vhost = pool.shift()!;
      used.push(vhost);
      return vhostUrl(vhost);
    },
    deadLetters: async (t: Transport): Promise<{ reason: string | null }[]> => {
      const vhost = (t as AmqpTransport).settings.connect.vhost;
      const dead = await drain(vhostUrl(vhost), 'q.celeriac.dead');
      return dead.map((m) => ({ reason: (m.properties.headers?.['x-celeriac-reason'] as string | undefined) ?? null }));
    },
    /** Tests of behaviour RabbitMQ deliberately does differently, with the reason. */
    skip: {
      'delivers higher priorities first':
        "RabbitMQ orders by priority only in queues declared with x-max-priority, which Celery's queues do not have unless task_queue_max_priority is set; checked with queue_max_priority in test/amqp/transport.test.ts",
      'reject with requeue puts the message at the back, marked redelivered':
        'RabbitMQ puts a requeued message back at its original position (the front), as it does for Celery; checked in test/amqp/transport.test.ts',
      'purges and sizes ready messages only':
        'basic.nack has no reply: a requeued message is back in its queue a moment later, so a size() right after the reject may not count it yet; purge and size are checked in test/amqp/transport.test.ts',
      'fetches from several queues, best priority first, and only from those queues':
        'no priorities without x-max-priority, and deliveries of several queues come in arrival order; checked in test/amqp/transport.test.ts',
    } as Record<string, string>,
    cleanup: async () => {
      await deleteVhosts([...used, ...pool.splice(0)]);
    },
  };
}

/** A free TCP port in 5690..5789, not the shared broker's. */
export async function sparePort(exclude: number[] = []): Promise<number> {
  for (let n = 0; n < 100; n++) {
    const port = 5690 + Math.floor(Math.random() * 100);
    if (exclude.includes(port)) continue;
    const free = await new Promise<boolean>((resolve) => {
      const srv = net.createServer().once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port in 5690..5789');
}

export interface PrivateRabbit {
  port: number;
  url: string;
  /** With `tls`: the TLS listener's port (it asks for a client certificate signed by the test CA). */
  tlsPort?: number;
  start(): Promise<void>;
  /** Graceful stop (SIGTERM: clients see CONNECTION_FORCED). */
  stop(): Promise<void>;
  /** Stop and delete its files. */
  destroy(): Promise<void>;
}

async function waitForPort(port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      const c = await amqplib.connect(`amqp://guest:guest@127.0.0.1:${port}`);
      await c.close();
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`private RabbitMQ on ${port} did not start`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Files of a throwaway certificate authority: its certificate, a server's and a client's. */
export interface TestCertificates {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

/** Make a CA, a server certificate for localhost/127.0.0.1 and a client certificate, with openssl. */
export function testCertificates(dir: string): TestCertificates {
  fs.mkdirSync(dir, { recursive: true });
  const f = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe', cwd: dir });
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...key, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=celeriac test CA');
  fs.writeFileSync(f('server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  for (const [who, subject, ext] of [['server', '/CN=localhost', ['-extfile', f('server.ext')]], ['client', '/CN=celeriac test client', []]] as const) {
    openssl('req', ...key, '-keyout', f(`${who}.key`), '-out', f(`${who}.csr`), '-subj', subject);
    openssl('x509', '-req', '-in', f(`${who}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${who}.pem`), '-days', '2', ...ext);
  }
  return { ca: f('ca.pem'), serverCert: f('server.pem'), serverKey: f('server.key'), clientCert: f('client.pem'), clientKey: f('client.key') };
}

/** A private rabbitmq-server node (no plugins) on spare ports, data in a temp dir. */
export async function privateRabbit(options: { tls?: TestCertificates } = {}): Promise<PrivateRabbit> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'celeriac-rabbit-'));
  const port = await sparePort();
  const dist = port + 20000;
  const tlsPort = options.tls ? await sparePort([port]) : undefined;
  const tls = options.tls
    ? [
        `listeners.ssl.default = 127.0.0.1:${tlsPort}`,
        `ssl_options.cacertfile = ${options.tls.ca}`,
        `ssl_options.certfile = ${options.tls.serverCert}`,
        `ssl_options.keyfile = ${options.tls.serverKey}`,
        'ssl_options.verify = verify_peer',
        'ssl_options.fail_if_no_peer_cert = true',
      ].map((line) => line + '\n').join('')
    : '';
  fs.writeFileSync(path.join(dir, 'rabbitmq.conf'), `listeners.tcp.local = 127.0.0.1:${port}\nloopback_users = none\n${tls}`);
  fs.writeFileSync(path.join(dir, 'enabled_plugins'), '[].\n');
  fs.writeFileSync(path.join(dir, 'rabbitmq-env.conf'), '');
  const env = {
    ...process.env,
    HOME: dir, // its own Erlang cookie
    RABBITMQ_NODENAME: `celeriac-test-${port}@localhost`,
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(dist),
    RABBITMQ_CONFIG_FILE: path.join(dir, 'rabbitmq.conf'),
    RABBITMQ_CONF_ENV_FILE: path.join(dir, 'rabbitmq-env.conf'),
    RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, 'enabled_plugins'),
    RABBITMQ_MNESIA_BASE: path.join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: path.join(dir, 'log'),
    ERL_EPMD_ADDRESS: '127.0.0.1',
  };
  let proc: ChildProcess | undefined;
  const server: PrivateRabbit = {
    port,
    url: `amqp://guest:guest@127.0.0.1:${port}//`,
    tlsPort,
    async start() {
      proc = spawn('/usr/lib/rabbitmq/bin/rabbitmq-server', [], { cwd: dir, env, stdio: 'ignore', detached: true });
      await waitForPort(port, 30_000);
    },
    async stop() {
      const p = proc;
      proc = undefined;
      if (!p || p.exitCode !== null) return;
      const exited = new Promise((res) => p.once('exit', res));
      p.kill('SIGTERM');
      // Its own process group (the script, the Erlang VM and its helpers), ended together if stuck.
      const killer = setTimeout(() => process.kill(-p.pid!, 'SIGKILL'), 20_000);
      await exited;
      clearTimeout(killer);
    },
    async destroy() {
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}

export interface CuttableProxy {
  port: number;
  /** Drop every connection at once (no AMQP close), and refuse new ones for `ms`. */
  cut(ms: number): void;
  close(): Promise<void>;
}

/** A TCP proxy to 127.0.0.1:`target` whose connections can be cut like a network failure. */
export async function cuttableProxy(target: number): Promise<CuttableProxy> {
  const sockets = new Set<net.Socket>();
  let refuseUntil = 0;
  const server = net.createServer((client) => {
    if (Date.now() < refuseUntil) return void client.destroy();
    const upstream = net.connect(target, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  const port = await sparePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port,
    cut(ms) {
      refuseUntil = Date.now() + ms;
      for (const s of sockets) s.resetAndDestroy();
    },
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
