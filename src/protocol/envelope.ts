import { DecodeError } from '../errors.ts';
import { decodeBase64Bytes, splitBody } from './envelope-bytes.ts';
import { dumps, loads } from './json.ts';
import type { DeliveryInfo, Message } from './message.ts';

/**
 * kombu's virtual-transport envelope: the JSON string a Redis list (and the SQLite broker) holds.
 * `{"body": base64, "content-encoding", "content-type", "headers", "properties": {…,
 * "delivery_info", "priority", "body_encoding": "base64", "delivery_tag"}}`.
 */
export interface EnvelopeTarget {
  exchange: string;
  routingKey: string;
  deliveryTag: string;
}

export function toEnvelope(message: Message, target: EnvelopeTarget): string {
  // Written as dumps() would write the envelope object, without building it: this runs for every message sent.
  const props = message.properties as Record<string, unknown>;
  let properties = '';
  for (const k in props) {
    const v = props[k];
    if (k !== 'priority' && v !== undefined && Object.hasOwn(props, k)) properties += dumps(k) + ': ' + dumps(v) + ', ';
  }
  properties += '"delivery_info": {"exchange": ' + dumps(target.exchange) + ', "routing_key": ' + dumps(target.routingKey) + '}, ' +
    '"priority": ' + dumps(props.priority ?? 0) + ', "body_encoding": "base64", "delivery_tag": ' + dumps(target.deliveryTag);
  return '{"body": "' + message.body.toString('base64') + '", "content-encoding": ' + dumps(message.contentEncoding) +
    ', "content-type": ' + dumps(message.contentType) + ', "headers": ' + dumps(message.headers) + ', "properties": {' + properties + '}}';
}

/** Body bytes encoded per step: a multiple of 3, so the steps' base64 joins into the whole's. */
const ENCODE_STEP = 48 * 1024;

/**
 * The envelope toEnvelope writes, as bytes, with the body encoded straight into them: for a large
 * body neither its base64 nor the envelope becomes one long string.
 */
export function envelopeBytes(message: Message, target: EnvelopeTarget): Buffer {
  const text = toEnvelope({ ...message, body: EMPTY }, target);
  const head = text.indexOf('""') + 1; // toEnvelope writes the body first: {"body": "<base64>", …
  const size = Buffer.byteLength(text) + Math.ceil(message.body.length / 3) * 4;
  const out = Buffer.allocUnsafe(size);
  let at = out.write(text.slice(0, head), 0, 'latin1');
  for (let from = 0; from < message.body.length; from += ENCODE_STEP) {
    at += out.write(message.body.toString('base64', from, Math.min(message.body.length, from + ENCODE_STEP)), at, 'latin1');
  }
  at += out.write(text.slice(head), at, 'utf8');
  return out.subarray(0, at);
}

const EMPTY = Buffer.alloc(0);

/** Content type of a broker entry that is not a message at all; the worker rejects it with the reason. */
export const UNDECODABLE_CONTENT_TYPE = 'application/x-celeriac-undecodable';
const DECODE_ERROR_HEADER = 'x-celeriac-decode-error';

/** Wrap a broker entry that could not be read as an envelope, so it is reported and dead-lettered, never lost. */
export function undecodableMessage(raw: string | Buffer, error: unknown): Message {
  const reason = error instanceof Error ? error.message : String(error);
  return { headers: { [DECODE_ERROR_HEADER]: reason }, properties: {}, contentType: UNDECODABLE_CONTENT_TYPE, contentEncoding: 'binary', body: Buffer.from(raw) };
}

export function undecodableReason(message: Message): string | undefined {
  if (message.contentType !== UNDECODABLE_CONTENT_TYPE) return undefined;
  const reason = message.headers[DECODE_ERROR_HEADER];
  return typeof reason === 'string' ? reason : 'the queue entry is not a message envelope';
}

export interface DecodedEnvelope {
  message: Message;
  delivery: DeliveryInfo;
  deliveryTag: string | undefined;
  /** The envelope's properties as they are, `delivery_info`, `body_encoding` and `delivery_tag` included. */
  properties: Record<string, unknown>;
}

/**
 * `raw` as bytes is for large envelopes (a Redis fetch gives those as bytes): their body is then
 * decoded from the bytes, not from a copy JSON.parse makes (envelope-bytes.ts).
 */
export function fromEnvelope(raw: string | Buffer): DecodedEnvelope {
  const split = typeof raw === 'string' ? undefined : splitBody(raw);
  const text = split ? split.text : raw.toString();
  let env: unknown;
  try {
    env = loads(text); // kombu reads it with its json.loads: NaN/Infinity and 5.3 type tags included
  } catch (err) {
    throw new DecodeError(`message envelope is not valid JSON: ${(err as Error).message}`, text, { cause: err });
  }
  if (env === null || typeof env !== 'object' || Array.isArray(env)) {
    throw new DecodeError('message envelope is not a JSON object', text);
  }
  const e = env as Record<string, unknown>;
  const props = isObject(e.properties) ? e.properties : {}; // freshly parsed: ours, no copy needed
  const info = isObject(props.delivery_info) ? props.delivery_info : {};
  const { delivery_info: _i, body_encoding: encoding, delivery_tag: tag, ...properties } = props;
  if (typeof e.body !== 'string') throw new DecodeError('message envelope has no "body" string', text);
  let body: Buffer;
  if (split) body = encoding === 'base64' ? decodeBase64Bytes(split.body) : Buffer.from(split.body);
  else body = encoding === 'base64' ? Buffer.from(e.body, 'base64') : Buffer.from(e.body, 'utf8');
  return {
    message: {
      headers: isObject(e.headers) ? e.headers : {},
      properties,
      contentType: typeof e['content-type'] === 'string' ? e['content-type'] : 'application/json',
      contentEncoding: typeof e['content-encoding'] === 'string' ? e['content-encoding'] : 'utf-8',
      body,
    },
    delivery: {
      exchange: typeof info.exchange === 'string' ? info.exchange : '',
      routingKey: typeof info.routing_key === 'string' ? info.routing_key : '',
      redelivered: info.redelivered === true || (isObject(e.headers) && e.headers.redelivered === true),
      priority: typeof props.priority === 'number' ? props.priority : undefined,
    },
    deliveryTag: typeof tag === 'string' ? tag : undefined,
    properties: props,
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
