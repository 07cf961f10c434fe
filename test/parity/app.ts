/**
 * celeriac side of the parity tests (test/parity/*): the same task names as py/parityapp.py, so a
 * scenario can run on a Python worker and on a celeriac worker and the two be compared.
 *
 * Environment: PARITY_BROKER, PARITY_BACKEND (URLs; the tests use a private Redis with a password).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Celery } from '../../src/index.ts';

const broker = process.env.PARITY_BROKER;
if (!broker) throw new Error('test/parity/app.ts: set PARITY_BROKER (and PARITY_BACKEND)');

export const app = new Celery('parity', { broker, backend: process.env.PARITY_BACKEND ?? null });

/** `self.request.delivery_info` under Celery's key names. */
function deliveryInfo(info: { exchange: string; routingKey: string; priority?: number; redelivered: boolean } | null) {
  return info && { exchange: info.exchange, routing_key: info.routingKey, priority: info.priority ?? null, redelivered: info.redelivered };
}

/** What the request says about the message it came in. */
export const props = app.task({ name: 'parity.props', bind: true }, (self) => ({
  properties: self.request.properties,
  delivery_info: deliveryInfo(self.request.deliveryInfo),
}));

/** Retries once, then reports what the retried message was delivered with. */
export const retryOnce = app.task({ name: 'parity.retry_once', bind: true }, (self) => {
  if (self.request.retries === 0) return self.retry({ countdown: 0 });
  return { retries: self.request.retries, priority: self.request.properties.priority ?? null, delivery_info: deliveryInfo(self.request.deliveryInfo) };
});

export const sleepFor = app.task({ name: 'parity.sleep' }, async (seconds: number) => {
  await sleep(seconds * 1000);
  return seconds;
});
