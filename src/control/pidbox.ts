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

/** Longest `pattern` a request may address nodes with (hostnames are at most 255 characters). */
const MAX_PATTERN = 255;

/** Does a request address this node? (kombu's Node.handle_message: destination list, or pattern + matcher). */
export function addressedTo(req: ControlRequest, hostname: string): boolean {
  if (req.destination && req.destination.length > 0) return req.destination.includes(hostname);
  if (req.pattern) {
    if (typeof req.pattern !== 'string' || req.pattern.length > MAX_PATTERN) return false;
    if (req.matcher === 'pcre') {
      try {
        return new RegExp(req.pattern).test(hostname);
      } catch {
        return false;
      }
    }
    return globMatch(req.pattern, hostname);
  }
  return true;
}

type Token = { star: true } | { star: false; test: (c: string) => boolean };

/** fnmatch's `*`, `?`, `[seq]`, `[!seq]`; the rest literal. */
function tokens(glob: string): Token[] {
  const out: Token[] = [];
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (!out.at(-1)?.star) out.push({ star: true });
    } else if (c === '?') out.push({ star: false, test: () => true });
    else if (c === '[' && glob.indexOf(']', i + 2) > 0) {
      const end = glob.indexOf(']', i + 2);
      const negate = glob[i + 1] === '!';
      const set = glob.slice(negate ? i + 2 : i + 1, end);
      out.push({ star: false, test: (ch) => inSet(set, ch) !== negate });
      i = end;
    } else out.push({ star: false, test: (ch) => ch === c });
  }
  return out;
}

function inSet(set: string, ch: string): boolean {
  for (let i = 0; i < set.length; i++) {
    if (set[i + 1] === '-' && i + 2 < set.length) {
      if (ch >= set[i]! && ch <= set[i + 2]!) return true;
      i += 2;
    } else if (set[i] === ch) return true;
  }
  return false;
}

/** Wildcard matching that backtracks only to the last `*`: O(pattern × text), never exponential. */
function globMatch(glob: string, text: string): boolean {
  const t = tokens(glob);
  let p = 0;
  let s = 0;
  let starP = -1;
  let starS = 0;
  while (s < text.length) {
    const tok = t[p];
    if (tok && !tok.star && tok.test(text[s]!)) {
      p++;
      s++;
    } else if (tok?.star) {
      starP = p++;
      starS = s;
    } else if (starP >= 0) {
      p = starP + 1;
      s = ++starS;
    } else return false;
  }
  while (t[p]?.star) p++;
  return p === t.length;
}
