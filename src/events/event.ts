import os from 'node:os';
import { dumps, loads } from '../protocol/json.ts';
import type { Message } from '../protocol/message.ts';
import type { ExchangeSpec } from '../transport/types.ts';
import { bodyText } from '../protocol/serializers.ts';

/** `celeryev`: topic on AMQP; the Redis transport maps it to PUBLISH with kombu's channel names. */
export const EVENT_EXCHANGE: ExchangeSpec = { name: 'celeryev', type: 'topic', durable: true };

export type CeleryEvent = Record<string, unknown> & { type: string; hostname?: string; timestamp?: number; clock?: number };

/** Hours west of UTC, as Celery's `utcoffset()` (Tokyo is -9). */
export function utcoffset(): number {
  return Math.trunc(new Date().getTimezoneOffset() / 60);
}

/** `task-succeeded` → `task.succeeded`. */
export const routingKeyFor = (type: string) => type.replace(/-/g, '.');

/** An event dict with Celery's field order: hostname, utcoffset, pid, clock, fields…, timestamp, type. */
export function makeEvent(type: string, hostname: string, clock: number, fields: Record<string, unknown>): CeleryEvent {
  return { hostname, utcoffset: utcoffset(), pid: process.pid, clock, ...fields, timestamp: Date.now() / 1000, type };
}

export function eventMessage(body: unknown, hostname: string): Message {
  return {
    headers: { hostname },
    properties: { delivery_mode: 1 },
    contentType: 'application/json',
    contentEncoding: 'utf-8',
    body: Buffer.from(dumps(body)),
  };
}

/** Events in a message: one dict, or a list of them (`task.multi`, Celery's buffered task events). */
export function eventsIn(message: Message): CeleryEvent[] {
  const body = loads(bodyText(message));
  const list = Array.isArray(body) ? body : [body];
  return list.filter((e): e is CeleryEvent => e !== null && typeof e === 'object' && typeof (e as CeleryEvent).type === 'string');
}

export function loadavg(): [number, number, number] {
  const [a = 0, b = 0, c = 0] = os.loadavg();
  return [round(a), round(b), round(c)];
}

const round = (n: number) => Math.round(n * 100) / 100;
