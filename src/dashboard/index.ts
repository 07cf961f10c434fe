import '../control/control.ts';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Celery } from '../app/celery.ts';
import { ConfigurationError } from '../errors.ts';
import { receiveEvents } from '../events/receiver.ts';
import type { Subscription } from '../transport/types.ts';
import { flowerRoutes } from './api.ts';
import { DashboardContext } from './context.ts';
import { EventIngest } from './ingest.ts';
import { Inspector } from './inspector.ts';
import { DashboardMetrics } from './metrics.ts';
import { queueLengths, queueNames } from './queues.ts';
import { isLoopback, Security } from './security.ts';
import { startServer } from './server.ts';
import { DashboardStore } from './store.ts';
import { pageRoutes } from './views.ts';

export interface DashboardOptions {
  port?: number;
  address?: string;
  /** The history file (default celeriac-dashboard.db); ':memory:' keeps nothing. */
  db?: string;
  maxTasks?: number;
  retentionHours?: number;
  basicAuth?: string[];
  authToken?: string;
  /** Serve a non-loopback address with no authentication. */
  unsafeNoAuth?: boolean;
  /** Ask the workers to send task events every 5 s (Flower's default). */
  enableEvents?: boolean;
}

/** Flower sends enable_events this often, so workers started without -E show their tasks. */
const ENABLE_EVENTS_MS = 5000;
const INSPECT_MS = 30_000;
const PRUNE_MS = 60_000;

export interface Dashboard {
  readonly url: string;
  readonly context: DashboardContext;
  close(): Promise<void>;
}

/** `celeriac dashboard`: the monitor for the app's cluster, served until close(). */
export async function startDashboard(app: Celery, o: DashboardOptions = {}): Promise<Dashboard> {
  const address = o.address ?? '127.0.0.1';
  const security = new Security({ basicAuth: o.basicAuth, authToken: o.authToken });
  if (!isLoopback(address) && !security.enabled && !o.unsafeNoAuth) {
    throw new ConfigurationError(`refusing to serve ${address} without authentication: anyone who reaches it could revoke tasks and stop workers. ` +
      'Give --basic-auth user:password or --auth-token, bind 127.0.0.1, or pass --unsafe-no-auth if that is really what you want');
  }
  const transport = await app.transport();
  if (!transport.broadcast) throw new ConfigurationError(`broker ${transport.url} has no broadcast: the dashboard needs its events and remote control`);
  app.conf.taskSendSentEvent = true; // what the dashboard sends shows at once, with its queue

  const store = new DashboardStore(o.db ?? 'celeriac-dashboard.db', { maxTasks: o.maxTasks ?? 100_000, retentionHours: o.retentionHours ?? 168 });
  const metrics = new DashboardMetrics();
  const ingest = new EventIngest(store, metrics);
  const inspector = new Inspector(app);
  const d = new DashboardContext(app, store, ingest, inspector, metrics);
  const subscription: Subscription = await receiveEvents(transport.broadcast, (e) => ingest.event(e));
  const refresh = () => void inspector.refresh().catch(() => undefined);
  // a worker announces itself before its mailbox answers: ask it a moment later
  ingest.on('worker-online', () => setTimeout(refresh, 1500).unref());

  const wake = () => {
    if (o.enableEvents !== false) void app.control.broadcast('enable_events', {}, { reply: false }).catch(() => undefined);
  };
  wake();
  void app.control.broadcast('heartbeat', {}, { reply: false }).catch(() => undefined);
  refresh();
  const timers = [setInterval(wake, ENABLE_EVENTS_MS), setInterval(refresh, INSPECT_MS), setInterval(() => store.prune(), PRUNE_MS)];
  store.prune();

  let metricsAt = 0;
  const renderMetrics = async () => {
    if (Date.now() - metricsAt > 5000) {
      metricsAt = Date.now();
      for (const q of await queueLengths(app, queueNames(app, inspector)).catch(() => [])) {
        metrics.queueLength.set({ queue: q.name }, q.messages);
        if (q.dead !== null) metrics.deadLetters.set({ queue: q.name }, q.dead);
      }
    }
    return metrics.render();
  };

  const { server, live } = startServer(d, security, [...flowerRoutes(d), ...pageRoutes(d)], renderMetrics);
  await listen(server, o.port ?? 5555, address);
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${address.includes(':') ? `[${address}]` : address}:${port}`,
    context: d,
    async close() {
      for (const t of timers) clearInterval(t);
      live.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await subscription.close();
      ingest.close();
      store.close();
    },
  };
}

function listen(server: Server, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new ConfigurationError(`port ${port} on ${address} is in use: pick another with --port`) : err));
    server.listen(port, address, () => resolve());
  });
}
