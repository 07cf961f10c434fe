/**
 * The dashboard on RabbitMQ (a vhost of its own): nothing in it is broker-specific beyond the
 * transport interface, so the worker list, the live task record, queue lengths and the dead-letter
 * count work as on Redis.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Celery } from '../../src/app/celery.ts';
import { type Dashboard, startDashboard } from '../../src/dashboard/index.ts';
import { createLogger } from '../../src/common/log.ts';
import { Worker } from '../../src/worker/worker.ts';
import { createVhosts, deleteVhosts, runId, vhostUrl } from '../amqp/helpers.ts';
import { until } from './helpers.ts';

const vhost = runId('dashboard');
const node = `dash${process.pid}@celeriac-test`;
const app = new Celery('dashboard-amqp', { broker: vhostUrl(vhost) });
app.task('dash.echo', (v: unknown) => v);
let worker: Worker | undefined;
let dashboard: Dashboard | undefined;

beforeAll(async () => {
  await createVhosts([vhost]);
  worker = new Worker(app, { hostname: node, queues: ['dashq'], taskEvents: true, heartbeatInterval: 1, logger: createLogger({ write: () => undefined }) });
  await worker.start();
  dashboard = await startDashboard(app, { port: 0, db: ':memory:' });
}, 30_000);

afterAll(async () => {
  await dashboard?.close();
  await worker?.shutdown();
  await app.close();
  await deleteVhosts([vhost]);
}, 30_000);

const get = async (p: string) => (await fetch(dashboard!.url + p)).json() as Promise<Record<string, unknown>>;

describe('dashboard on RabbitMQ', () => {
  it('lists the worker from its heartbeats, with its queues from inspect', async () => {
    const workers = await until('the worker', async () => {
      const list = (await get('/api/dashboard/workers')) as unknown as { hostname: string; online: boolean; queues: string[] }[];
      const w = list.find((x) => x.hostname === node);
      return w?.online && w.queues.includes('dashq') && w;
    });
    expect(workers.online).toBe(true);
  });

  it('records a task from its events, and answers queue lengths and the dead-letter count', async () => {
    const r = await app.sendTask('dash.echo', ['over amqp'], {}, { queue: 'dashq' });
    const info = await until('the task', async () => {
      const res = await fetch(`${dashboard!.url}/api/task/info/${r.id}`);
      const i = res.ok ? ((await res.json()) as Record<string, unknown>) : undefined;
      return i?.state === 'SUCCESS' && i;
    });
    expect(info).toMatchObject({ worker: node, args: "('over amqp',)", result: "'over amqp'", routing_key: 'dashq' });
    const { queues } = (await get('/api/dashboard/queues')) as { queues: { name: string; messages: number; dead: number | null }[] };
    expect(queues).toEqual(expect.arrayContaining([{ name: 'dashq', messages: 0, dead: 0 }]));
  });
});
