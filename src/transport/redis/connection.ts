/**
 * Redis URLs, options and connections, shared by the Redis broker and the Redis result store.
 *
 *   redis://[[user]:password@]host[:port][/db]     TCP (port 6379, db 0 by default)
 *   rediss://…                                      TLS; also redis:// with ssl=true; options
 *                                                   ssl_cert_reqs, ssl_ca_certs, ssl_certfile,
 *                                                   ssl_keyfile (src/transport/tls.ts)
 *   redis+socket:///path/to/redis.sock[?virtual_host=db]   Unix socket (also ?db=)
 *   sentinel://[:password@]host[:port][/db]?master_name=mymaster
 *                                                   Sentinel; more sentinels with the option
 *                                                   `sentinels: [{host, port}]`; `sentinel_kwargs:
 *                                                   {password}` for the sentinels themselves
 *
 * Options come from code (camelCase or snake_case) and the URL query, the query winning.
 * ioredis reconnects with a capped backoff; commands issued while disconnected fail after a
 * couple of attempts, so callers (the worker's fetch loop) see a rejected promise and retry.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { ConfigurationError } from '../../errors.ts';
import { maskUrl, mergeOptions } from '../sqlite/db.ts';
import { explainTlsError, tlsSocketOptions, usesTls } from '../tls.ts';
import { startupError, trackStartup } from './startup.ts';

export { maskUrl, mergeOptions };

/** What the broker and the store log through: a Logger, or one line on stderr. */
export interface LineLogger {
  warning(msg: string): void;
  info(msg: string): void;
}

export function lineLogger(option: unknown): LineLogger {
  const l = option as Partial<LineLogger> | undefined;
  if (l && typeof l.warning === 'function' && typeof l.info === 'function') return l as LineLogger;
  const write = (msg: string): void => void process.stderr.write(`celeriac: ${msg}\n`);
  return { warning: write, info: write };
}

/** A non-negative number option (URL query values are strings), or the fallback. */
export function numberOption(name: string, value: unknown, fallback: number): number {
  if (value === undefined || value === null || value === '') return fallback;
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isFinite(n) || n < 0) throw new ConfigurationError(`redis option ${name} must be a non-negative number, not ${JSON.stringify(value)}`);
  return n;
}

function dbNumber(raw: string, url: URL): number {
  if (raw === '') return 0;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new ConfigurationError(`invalid Redis database ${JSON.stringify(raw)} in ${maskUrl(url)}: expected a number, e.g. redis://localhost:6379/0`);
  return n;
}

/** ioredis options for a URL plus merged (snake_case) options. */
export function redisOptions(url: URL, opts: Record<string, unknown>): RedisOptions {
  const common: RedisOptions = {
    lazyConnect: true,
    maxRetriesPerRequest: 2,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 5), 1000),
    connectTimeout: numberOption('socket_connect_timeout', opts.socket_connect_timeout, 10) * 1000,
    connectionName: 'celeriac',
    username: decodeURIComponent(url.username) || undefined,
    password: decodeURIComponent(url.password) || undefined,
  };
  if (opts.socket_timeout !== undefined) common.commandTimeout = numberOption('socket_timeout', opts.socket_timeout, 0) * 1000;
  const db = (path: string) => dbNumber(path.replace(/^\//, ''), url);
  switch (url.protocol) {
    case 'redis:':
    case 'rediss:': {
      if (!url.hostname) throw new ConfigurationError(`Redis URL ${maskUrl(url)} has no host: expected e.g. redis://localhost:6379/0`);
      const tls = usesTls(url, 'rediss:', opts) ? tlsSocketOptions(opts) : undefined;
      return { ...common, host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 6379), db: db(url.pathname), tls };
    }
    case 'redis+socket:':
    case 'socket:':
    case 'unix:': {
      const path = decodeURIComponent(url.pathname);
      if (!path) throw new ConfigurationError(`Redis socket URL ${maskUrl(url)} has no path: expected e.g. redis+socket:///run/redis.sock`);
      return { ...common, path, db: db(String(opts.virtual_host ?? opts.db ?? '')) };
    }
    case 'sentinel:': {
      const name = opts.master_name;
      if (typeof name !== 'string' || !name) throw new ConfigurationError(`sentinel URL ${maskUrl(url)} needs the transport option master_name (e.g. ?master_name=mymaster)`);
      const extra = Array.isArray(opts.sentinels) ? (opts.sentinels as { host: string; port?: number }[]) : [];
      const kw = (opts.sentinel_kwargs ?? {}) as { password?: string; username?: string };
      return {
        ...common,
        name,
        db: db(url.pathname),
        sentinels: [{ host: url.hostname || '127.0.0.1', port: Number(url.port || 26379) }, ...extra.map((s) => ({ host: s.host, port: Number(s.port ?? 26379) }))],
        sentinelPassword: kw.password,
        sentinelUsername: kw.username,
      };
    }
    default:
      throw new ConfigurationError(`not a Redis URL: ${maskUrl(url)}`);
  }
}

/**
 * Options for a connection that SUBSCRIBEs. ioredis writes SUBSCRIBE at once while a new connection
 * is still in its handshake (the command is allowed while Redis loads), so a SUBSCRIBE issued then
 * goes out before the ready check's INFO, which Redis then refuses in subscribed mode: the ready
 * check fails, ioredis drops the connection and the pending subscriptions with it. Without the ready
 * check and the async CLIENT SETINFO, the handshake is SELECT and CLIENT SETNAME, both written before
 * anything else can be.
 */
export function subscriberOptions(connection: RedisOptions): RedisOptions {
  return { ...connection, enableReadyCheck: false, disableClientInfo: true };
}

/**
 * Reports each outage once ("connection lost … reconnecting", then "reconnected"), however many
 * connections of one broker or store see it.
 */
export class OutageLog {
  private down = false;
  constructor(
    private readonly what: string,
    private readonly log: LineLogger,
    /** The masked URL, for errors that end a connection before it was ever ready (startup.ts). */
    private readonly url: string,
  ) {}

  watch(client: Redis): Redis {
    trackStartup(client, this.url);
    let everReady = false;
    client.on('error', (err: Error) => {
      keepSocketErrorsHandled(client);
      if (this.down || startupError(client)) return; // the caller's error says it
      this.down = true;
      const why = explainTlsError(err).message.split('\n')[0];
      this.log.warning(everReady ? `${this.what}: connection lost (${why}); reconnecting` : `${this.what}: cannot connect (${why}); retrying`);
    });
    client.on('ready', () => {
      everReady = true;
      if (!this.down) return;
      this.down = false;
      this.log.info(`${this.what}: reconnected`);
    });
    return client;
  }
}

const guardedSockets = new WeakSet<object>();

/**
 * ioredis listens for its socket's first error only (`once`). A TLS socket can raise a second one
 * (the server's alert after we refused its certificate), which would be an uncaught exception
 * (seen once in CI): after the first, the socket's later errors are ignored, it is closing anyway.
 */
function keepSocketErrorsHandled(client: Redis): void {
  const socket = client.stream;
  if (!socket || guardedSockets.has(socket)) return;
  guardedSockets.add(socket);
  socket.on('error', () => undefined);
}

/**
 * A failure a retry may cure: the connection (refused, reset, closed, ioredis giving up on a
 * command), or a server still loading its data or failing over. Not a Redis error reply.
 */
export function transientError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'ReplyError') return /^(LOADING|BUSY|TRYAGAIN|MASTERDOWN|READONLY|CLUSTERDOWN)\b/.test(err.message);
  const code = (err as NodeJS.ErrnoException).code;
  return (
    err.name === 'MaxRetriesPerRequestError' ||
    (typeof code === 'string' && /^E(CONN|PIPE|TIMEDOUT|HOSTUNREACH|NETUNREACH|NOTCONN|AI_AGAIN)/.test(code)) ||
    /Connection is closed|Stream isn't writeable|Command timed out|Socket closed/i.test(err.message)
  );
}

/** Close politely when connected, at once otherwise; never rejects. */
export async function closeClient(client: Redis): Promise<void> {
  if (client.status === 'ready') {
    try {
      await client.quit();
      return;
    } catch {
      // fall through
    }
  }
  client.disconnect();
}
