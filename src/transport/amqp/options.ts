/**
 * AMQP URLs and transport options.
 *
 *   amqp://[user[:password]@]host[:port][/vhost]    port 5672, user/password guest/guest, vhost "/"
 *   amqps://…                                       TLS, port 5671
 *
 * The vhost is the URL path without its first "/", URL-decoded: `amqp://h//` and `amqp://h/` are
 * "/", `amqp://h/%2Fprod` is "/prod", `amqp://h/prod` is "prod" (as kombu reads it).
 * Options come from code (camelCase or snake_case) and the URL query, the query winning:
 *   heartbeat            seconds between heartbeats (60; 0 = off)
 *   connect_timeout      seconds for the TCP + AMQP handshake (4, kombu's default)
 *   publish_timeout      seconds a publish (or declare, size, purge) waits for the broker to be
 *                        reachable again before failing (20)
 *   queue_max_priority   x-max-priority of declared queues (Celery's task_queue_max_priority);
 *                        unset = no priority argument, as Celery declares by default
 *   ssl, ssl_cert_reqs, ssl_ca_certs, ssl_certfile, ssl_keyfile
 *                        TLS (src/transport/tls.ts): on with amqps:// or ssl=true, port 5671 then
 *   logger               { warning(msg), info(msg) } for connection trouble (default: stderr)
 */
import os from 'node:os';
import { ConfigurationError } from '../../errors.ts';
import { maskUrl, mergeOptions } from '../sqlite/db.ts';
import { tlsSocketOptions, usesTls } from '../tls.ts';

export interface LineLogger {
  warning(msg: string): void;
  info(msg: string): void;
}

export interface AmqpSettings {
  /** The URL with the password masked. */
  url: string;
  connect: {
    protocol: 'amqp' | 'amqps';
    hostname: string;
    port: number;
    username: string;
    password: string;
    vhost: string;
    heartbeat: number;
    frameMax: number;
  };
  /** Socket options for amqplib: connect timeout, TLS. */
  socket: Record<string, unknown>;
  publishTimeoutMs: number;
  maxPriority: number | undefined;
  log: LineLogger;
}

export function amqpSettings(url: URL, options: Record<string, unknown>): AmqpSettings {
  const opts = mergeOptions(url, options);
  if (url.protocol !== 'amqp:' && url.protocol !== 'amqps:') throw new ConfigurationError(`not an AMQP URL: ${maskUrl(url)}`);
  if (!url.hostname) throw new ConfigurationError(`AMQP URL ${maskUrl(url)} has no host: expected e.g. amqp://guest:guest@localhost:5672//`);
  const tls = usesTls(url, 'amqps:', opts);
  const vhost = decodeURIComponent(url.pathname.replace(/^\//, '')) || '/';
  const socket: Record<string, unknown> = {
    timeout: numberOption('connect_timeout', opts.connect_timeout, 4) * 1000,
    noDelay: true,
    clientProperties: { connection_name: `celeriac ${os.hostname()}:${process.pid}` }, // shown by rabbitmqctl and the management UI
  };
  if (tls) Object.assign(socket, tlsSocketOptions(opts), { servername: url.hostname.replace(/^\[|\]$/g, '') });
  const maxPriority = opts.queue_max_priority ?? opts.task_queue_max_priority;
  return {
    url: maskUrl(url),
    connect: {
      protocol: tls ? 'amqps' : 'amqp',
      hostname: url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(url.port || (tls ? 5671 : 5672)),
      username: url.username ? decodeURIComponent(url.username) : 'guest',
      password: url.username ? decodeURIComponent(url.password) : 'guest',
      vhost,
      heartbeat: numberOption('heartbeat', opts.heartbeat, 60),
      frameMax: 131072, // py-amqp's value; amqplib's default frames are smaller
    },
    socket,
    publishTimeoutMs: numberOption('publish_timeout', opts.publish_timeout, 20) * 1000,
    maxPriority: maxPriority === undefined || maxPriority === null || maxPriority === '' ? undefined : priorityOption(maxPriority),
    log: lineLogger(opts.logger),
  };
}

function lineLogger(option: unknown): LineLogger {
  const l = option as Partial<LineLogger> | undefined;
  if (l && typeof l.warning === 'function' && typeof l.info === 'function') return l as LineLogger;
  const write = (msg: string): void => void process.stderr.write(`celeriac: ${msg}\n`);
  return { warning: write, info: write };
}

function numberOption(name: string, value: unknown, fallback: number): number {
  if (value === undefined || value === null || value === '') return fallback;
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isFinite(n) || n < 0) throw new ConfigurationError(`amqp option ${name} must be a non-negative number, not ${JSON.stringify(value)}`);
  return n;
}

function priorityOption(value: unknown): number {
  const n = typeof value === 'number' ? value : Number(value);
  // RabbitMQ accepts 1..255 (values above 10 are discouraged, as in its docs).
  if (!Number.isInteger(n) || n < 1 || n > 255) throw new ConfigurationError(`amqp option queue_max_priority must be an integer 1..255, not ${JSON.stringify(value)}`);
  return n;
}

