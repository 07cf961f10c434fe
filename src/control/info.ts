import { filterHiddenSettings, maskUrl } from '../common/censor.ts';
import { isoformat } from '../protocol/json.ts';
import type { ControlTarget, HeldRequest } from './target.ts';

/**
 * The replies of `inspect active/reserved/scheduled/query_task/active_queues/stats` in Celery
 * 5.2's exact shape (celery/worker/request.py `info`, celery/worker/worker.py `stats`, kombu's
 * `Queue.as_dict`), so tools written for Celery read them unchanged.
 */

/** Python's `isoformat()` of an aware UTC datetime: microseconds and `+00:00`. */
export const pyIso = (d: Date) => isoformat(d, { z: false });

/** Celery's `Request.info()`. */
export function requestInfo(w: ControlTarget, h: HeldRequest, safe: boolean): Record<string, unknown> {
  const r = h.request;
  return {
    id: r.id,
    name: r.name,
    args: safe ? r.argsrepr : r.args,
    kwargs: safe ? r.kwargsrepr : r.kwargs,
    type: r.name,
    hostname: w.hostname,
    time_start: h.timeStart,
    acknowledged: h.acked,
    delivery_info: {
      exchange: h.info.exchange,
      routing_key: h.info.routingKey,
      priority: h.info.priority ?? null,
      // kombu's virtual transports leave it unset (None) unless the message was restored.
      redelivered: h.info.redelivered ? true : isAmqp(w) ? false : null,
    },
    worker_pid: h.state === 'active' ? h.workerPid ?? process.pid : null,
  };
}

/** Celery's `scheduled` entry: `priority` is the ETA timer's, which Celery always sets to 6. */
export function scheduledInfo(w: ControlTarget, h: HeldRequest): Record<string, unknown> {
  return { eta: h.request.eta ? pyIso(h.request.eta) : null, priority: 6, request: requestInfo(w, h, false) };
}

const isAmqp = (w: ControlTarget) => /^amqps?:/.test(w.app.conf.broker);

/** kombu's `Queue.as_dict(recurse=True)` for a queue bound to the direct exchange of its name. */
export function queueInfo(queue: string, maxPriority: number | null): Record<string, unknown> {
  return {
    name: queue,
    exchange: { name: queue, type: 'direct', arguments: null, durable: true, passive: false, auto_delete: false, delivery_mode: null, no_declare: false },
    routing_key: queue,
    queue_arguments: maxPriority === null ? null : { 'x-max-priority': maxPriority },
    binding_arguments: null,
    consumer_arguments: null,
    durable: true,
    exclusive: false,
    auto_delete: false,
    no_ack: false,
    alias: null,
    bindings: [],
    no_declare: null,
    expires: null,
    message_ttl: null,
    max_length: null,
    max_length_bytes: null,
    max_priority: maxPriority,
  };
}

export function maxPriorityOf(w: ControlTarget): number | null {
  const o = w.app.conf.brokerTransportOptions;
  const v = o.queue_max_priority ?? o.task_queue_max_priority;
  return typeof v === 'number' ? v : null;
}

const DEFAULT_PORTS: Record<string, number> = { redis: 6379, rediss: 6379, amqp: 5672, amqps: 5671, sentinel: 26379 };

/** kombu's `Connection.info()` (no password), as Celery's stats has it under `broker`. */
export function brokerInfo(w: ControlTarget): Record<string, unknown> {
  const conf = w.app.conf;
  const [first, ...alternates] = conf.broker.split(';');
  let url: URL | undefined;
  try {
    url = new URL(first!);
  } catch {
    url = undefined;
  }
  const transport = url ? url.protocol.replace(/:$/, '') : conf.broker.split(':')[0]!;
  const path = url ? decodeURIComponent(url.pathname.replace(/^\//, '')) : '';
  const amqp = transport === 'amqp' || transport === 'amqps';
  return {
    hostname: url?.hostname || 'localhost',
    userid: url?.username ? decodeURIComponent(url.username) : amqp ? 'guest' : null,
    virtual_host: path || '/',
    port: url?.port ? Number(url.port) : DEFAULT_PORTS[transport] ?? null,
    insist: false,
    ssl: transport === 'rediss' || transport === 'amqps' || (conf.brokerUseSsl !== false && conf.brokerUseSsl !== undefined),
    transport: transport === 'amqps' ? 'amqp' : transport,
    connect_timeout: 4,
    transport_options: filterHiddenSettings(conf.brokerTransportOptions),
    login_method: amqp ? 'PLAIN' : null,
    uri_prefix: null,
    heartbeat: 120.0,
    failover_strategy: 'round-robin',
    alternates: alternates.map((a) => maskUrl(a)),
  };
}

/** Celery's `WorkController.stats()` plus the consumer's `broker` and `prefetch_count`. */
export function stats(w: ControlTarget): Record<string, unknown> {
  const u = process.resourceUsage();
  return {
    total: w.processedTotals(),
    pid: process.pid,
    clock: String(w.clock.value),
    uptime: Math.round(Date.now() / 1000 - w.startedAt),
    // The prefork pool's description (celery/concurrency/prefork.py `_get_info`, asynpool's
    // `human_write_stats`); the async pool describes its single process so.
    pool: w.poolName === 'async' ? { ...w.poolInfo(), writes: writes(w) } : w.poolInfo(),
    ...(w.autoscaler ? { autoscaler: w.autoscaler.info() } : {}),
    broker: brokerInfo(w),
    prefetch_count: w.prefetchLimit,
    rusage: {
      utime: u.userCPUTime / 1e6,
      stime: u.systemCPUTime / 1e6,
      maxrss: u.maxRSS,
      ixrss: u.sharedMemorySize,
      idrss: u.unsharedDataSize,
      isrss: u.unsharedStackSize,
      minflt: u.minorPageFault,
      majflt: u.majorPageFault,
      nswap: u.swappedOut,
      inblock: u.fsRead,
      oublock: u.fsWrite,
      msgsnd: u.ipcSent,
      msgrcv: u.ipcReceived,
      nsignals: u.signalsCount,
      nvcsw: u.voluntaryContextSwitches,
      nivcsw: u.involuntaryContextSwitches,
    },
  };
}

function writes(w: ControlTarget): Record<string, unknown> {
  const total = Object.values(w.processedTotals()).reduce((a, b) => a + b, 0);
  const share = total ? '1.00' : '0.00';
  const active = w.heldRequests().filter((h) => h.state === 'active').length;
  return { total, avg: share, all: share, raw: String(total), strategy: 'fair', inqueues: { total: 1, active: active > 0 ? 1 : 0 } };
}
