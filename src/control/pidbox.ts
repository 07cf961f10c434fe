import { dumps, loads } from '../protocol/json.ts';
import type { Message } from '../protocol/message.ts';
import type { ExchangeSpec } from '../transport/types.ts';
import { bodyText } from '../protocol/serializers.ts';

/** kombu's pidbox: requests on a fanout exchange, replies on a direct one keyed by the client's oid. */
export const PIDBOX_EXCHANGE: ExchangeSpec = { name: 'celery.pidbox', type: 'fanout', durable: false };
export const REPLY_EXCHANGE: ExchangeSpec = { name: 'reply.celery.pidbox', type: 'direct', durable: false };

export const nodeQueue = (hostname: string) => `${hostname}.celery.pidbox`;
export const replyQueue = (oid: string) => `${oid}.reply.celery.pidbox`;

export interface ControlRequest {
  method: string;
  arguments: Record<string, unknown>;
  destination: string[] | null;
  pattern: string | null;
  matcher: string | null;
  ticket?: string;
  reply_to?: { exchange: string; routing_key: string };
}

export function jsonMessage(body: unknown, headers: Record<string, unknown>, deliveryMode: number): Message {
  return { headers, properties: { delivery_mode: deliveryMode }, contentType: 'application/json', contentEncoding: 'utf-8', body: Buffer.from(dumps(body)) };
}

export function readJson(message: Message): unknown {
  return loads(bodyText(message));
}

/** Does a request address this node? (kombu's Node.handle_message: destination list, or pattern + matcher). */
export function addressedTo(req: ControlRequest, hostname: string): boolean {
  if (req.destination && req.destination.length > 0) return req.destination.includes(hostname);
  if (req.pattern) {
    if (req.matcher === 'pcre') return new RegExp(req.pattern).test(hostname);
    return globToRegExp(req.pattern).test(hostname);
  }
  return true;
}

function globToRegExp(glob: string): RegExp {
  const re = glob.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.').replace(/\[!/g, '[^');
  return new RegExp('^' + re + '$');
}
