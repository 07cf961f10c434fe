/**
 * `self.request.properties` and `deliveryInfo` as Celery's request has them, and a retry that
 * keeps the message's priority: the same tasks sent by the same Python client to a Python worker
 * and to a celeriac worker, their answers compared.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVhosts, deleteVhosts, runId, vhostUrl } from '../amqp/helpers.ts';
import { type Parity, pyClient, startBroker, startCeleriac, startPython, type Worker } from './helpers.ts';

type Props = { properties: Record<string, unknown>; delivery_info: Record<string, unknown> };

describe('the request of a task, on a Python and on a celeriac worker', () => {
  let p: Parity;
  let ts: Worker;
  let py: Worker;
  beforeAll(async () => {
    p = await startBroker();
    [ts, py] = await Promise.all([startCeleriac(p, 'ts@request', 'tsq'), startPython(p, 'py@request', 'pyq')]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([ts?.stop(), py?.stop()]);
    await p?.stop();
  });

  it('self.request.properties: the message properties as received, the same keys and values as Celery', async () => {
    const [mine, theirs] = (await Promise.all([pyClient(p, 'call', 'parity.props', 'tsq', { priority: 5 }), pyClient(p, 'call', 'parity.props', 'pyq', { priority: 5 })])) as Props[];
    expect(Object.keys(mine!.properties)).toEqual(Object.keys(theirs!.properties));
    const fixed = (x: Props) => ({ ...x.properties, correlation_id: typeof x.properties.correlation_id, reply_to: typeof x.properties.reply_to, delivery_tag: typeof x.properties.delivery_tag });
    expect(fixed(mine!)).toEqual({ ...fixed(theirs!), delivery_info: { exchange: '', routing_key: 'tsq' } });
    expect(mine!.properties.priority).toBe(5);
  });

  it('deliveryInfo has the priority, as Celery\'s request.delivery_info', async () => {
    const [mine, theirs] = (await Promise.all([pyClient(p, 'call', 'parity.props', 'tsq', { priority: 3 }), pyClient(p, 'call', 'parity.props', 'pyq', { priority: 3 })])) as Props[];
    const { redelivered: r1, ...a } = mine!.delivery_info;
    const { redelivered: r2, ...b } = theirs!.delivery_info;
    expect(a).toEqual({ ...b, routing_key: 'tsq' });
    expect(a.priority).toBe(3);
    expect(Boolean(r1)).toBe(Boolean(r2));
  });

  it('a retry keeps the priority, queue and routing of the message it retries', async () => {
    const [mine, theirs] = await Promise.all([pyClient(p, 'call', 'parity.retry_once', 'tsq', { priority: 7 }), pyClient(p, 'call', 'parity.retry_once', 'pyq', { priority: 7 })]);
    expect(theirs).toMatchObject({ retries: 1, priority: 7, delivery_info: { routing_key: 'pyq', priority: 7 } });
    expect(mine).toMatchObject({ retries: 1, priority: 7, delivery_info: { routing_key: 'tsq', priority: 7 } });
  });
});

describe('the request of a task on RabbitMQ, on a Python and on a celeriac worker', () => {
  const vhost = runId('parity-request');
  const AMQP = vhostUrl(vhost);
  const queues = { ts: 'tsq', py: 'pyq' };
  let p: Parity;
  let a: Parity;
  let ts: Worker;
  let py: Worker;
  beforeAll(async () => {
    await createVhosts([vhost]);
    p = await startBroker(); // the result backend
    a = { ...p, broker: AMQP, env: { ...p.env, PARITY_BROKER: AMQP } };
    [ts, py] = await Promise.all([startCeleriac(a, 'ts@request-amqp', queues.ts), startPython(a, 'py@request-amqp', queues.py)]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([ts?.stop(), py?.stop()]);
    await deleteVhosts([vhost]);
    await p?.stop();
  });

  it("self.request.properties are py-amqp's: content type and encoding, application_headers, then the basic properties", async () => {
    const [mine, theirs] = (await Promise.all([pyClient(a, 'call', 'parity.props', queues.ts, { priority: 4 }), pyClient(a, 'call', 'parity.props', queues.py, { priority: 4 })])) as Props[];
    expect(Object.keys(mine!.properties)).toEqual(Object.keys(theirs!.properties));
    expect(Object.keys(mine!.properties.application_headers as object)).toEqual(Object.keys(theirs!.properties.application_headers as object));
    expect(mine!.properties).toMatchObject({ content_type: 'application/json', content_encoding: 'utf-8', delivery_mode: 2, priority: 4 });
    expect({ ...mine!.delivery_info, routing_key: 0 }).toEqual({ ...theirs!.delivery_info, routing_key: 0 });
  });

  it('a retry keeps the priority', async () => {
    const [mine, theirs] = await Promise.all([pyClient(a, 'call', 'parity.retry_once', queues.ts, { priority: 6 }), pyClient(a, 'call', 'parity.retry_once', queues.py, { priority: 6 })]);
    expect(theirs).toMatchObject({ retries: 1, priority: 6, delivery_info: { priority: 6 } });
    expect(mine).toMatchObject({ retries: 1, priority: 6, delivery_info: { priority: 6 } });
  });
});
